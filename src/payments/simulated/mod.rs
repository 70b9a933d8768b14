//! A simulated card processor: configurable latency, test tokens that decline, fail or
//! time out (like card networks' test numbers), idempotent by key, and a record of every
//! call so tests can prove that nobody was charged twice.
//!
//! | token | outcome |
//! | --- | --- |
//! | `tok_ok` (or any `tok_ok_*`) | authorized |
//! | `tok_decline` | declined, `card_declined` |
//! | `tok_insufficient_funds` | declined, `insufficient_funds` |
//! | `tok_fail` | processor failure |
//! | `tok_timeout` | authorized at the processor, but the answer never comes |
//! | anything else | declined, `card_not_recognized` |
//!
//! Refunds may be partial, several per charge, never more than was captured in all, and
//! are idempotent by key: a refund asked again with its key is answered as the first time
//! and pays nothing more.
//!
//! The ledger lives in memory and, once [`SimulatedGateway::record_in`] is given a pool,
//! in Postgres as well (`simulated_charges`, `simulated_refunds`): a real processor
//! outlives the server's restarts and is the same for every node, and so then is this one
//! (what this process does not know it looks up there). Without a pool, an authorization
//! id issued before a restart (`auth_…`) is still honoured for capture and void, and
//! voiding an unknown idempotency key succeeds.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use super::{Authorization, AuthorizeRequest, PaymentError, PaymentGateway};

mod store;

/// What the processor holds for one authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Authorized,
    Captured,
    Voided,
    /// Some of the captured money was given back.
    PartiallyRefunded,
    Refunded,
}

impl ChargeStatus {
    fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Authorized => "AUTHORIZED",
            ChargeStatus::Captured => "CAPTURED",
            ChargeStatus::Voided => "VOIDED",
            ChargeStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            ChargeStatus::Refunded => "REFUNDED",
        }
    }

    fn parse(text: &str) -> ChargeStatus {
        match text {
            "CAPTURED" => ChargeStatus::Captured,
            "VOIDED" => ChargeStatus::Voided,
            "PARTIALLY_REFUNDED" => ChargeStatus::PartiallyRefunded,
            "REFUNDED" => ChargeStatus::Refunded,
            _ => ChargeStatus::Authorized,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Charge {
    pub authorization_id: String,
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub status: ChargeStatus,
}

/// One refund the processor paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub idempotency_key: String,
    pub authorization_id: String,
    pub amount_cents: i64,
}

/// One call as the processor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayCall {
    Authorize {
        idempotency_key: String,
        amount_cents: i64,
    },
    Capture {
        authorization_id: String,
    },
    Void {
        idempotency_key: String,
    },
    Refund {
        authorization_id: String,
        amount_cents: i64,
        idempotency_key: String,
    },
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

#[derive(Default)]
struct Ledger {
    /// By authorize idempotency key: the first outcome, replayed for retries.
    outcomes: HashMap<String, Result<Authorization, PaymentError>>,
    charges: HashMap<String, Charge>,
    /// By refund idempotency key.
    refunds: HashMap<String, Refund>,
    calls: Vec<GatewayCall>,
}

pub struct SimulatedGateway {
    /// How long each call takes, in microseconds; changed at run time by `set_latency`.
    latency_micros: std::sync::atomic::AtomicU64,
    /// How long `tok_timeout` keeps the caller waiting (longer than any sane timeout).
    hang: Duration,
    ledger: Mutex<Ledger>,
    /// Where the ledger is kept beyond this process, once given.
    store: OnceLock<sqlx::PgPool>,
}

impl SimulatedGateway {
    pub fn new(latency: Duration) -> SimulatedGateway {
        SimulatedGateway {
            latency_micros: std::sync::atomic::AtomicU64::new(micros(latency)),
            hang: Duration::from_secs(3600),
            ledger: Mutex::new(Ledger::default()),
            store: OnceLock::new(),
        }
    }

    /// Keeps the ledger in Postgres too from now on, and looks up there what this process
    /// does not know (charges made before a restart or by another node).
    pub fn record_in(&self, pool: sqlx::PgPool) {
        let _ = self.store.set(pool);
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic while holding the lock cannot leave the ledger half-changed: every
        // change below is a single insert or field write.
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every authorization the processor made, by key.
    pub fn charges(&self) -> Vec<Charge> {
        self.ledger().charges.values().cloned().collect()
    }

    /// Every refund paid, in no particular order.
    pub fn refunds(&self) -> Vec<Refund> {
        self.ledger().refunds.values().cloned().collect()
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<GatewayCall> {
        self.ledger().calls.clone()
    }

    /// Money taken and not given back, in minor units.
    pub fn captured_cents(&self) -> i64 {
        self.ledger()
            .charges
            .values()
            .filter(|c| {
                matches!(
                    c.status,
                    ChargeStatus::Captured | ChargeStatus::PartiallyRefunded
                )
            })
            .map(|c| c.amount_cents - c.refunded_cents)
            .sum()
    }

    /// Every call from now on takes this long (a processor slowing down or recovering).
    pub fn set_latency(&self, latency: Duration) {
        self.latency_micros
            .store(micros(latency), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn latency(&self) -> Duration {
        Duration::from_micros(
            self.latency_micros
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    async fn pause(&self) {
        let latency = self.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    fn set_status(
        &self,
        authorization_id: &str,
        from: &[ChargeStatus],
        to: ChargeStatus,
    ) -> Result<(), PaymentError> {
        let mut ledger = self.ledger();
        let known = ledger
            .charges
            .values()
            .any(|c| c.authorization_id == authorization_id);
        if !known && authorization_id.starts_with("auth_") {
            // Issued before this process started: a real processor outlives our restarts,
            // and so does this one's word for its own authorizations.
            ledger.charges.insert(
                format!("earlier:{authorization_id}"),
                Charge {
                    authorization_id: authorization_id.to_owned(),
                    idempotency_key: format!("earlier:{authorization_id}"),
                    amount_cents: 0,
                    refunded_cents: 0,
                    status: ChargeStatus::Authorized,
                },
            );
        }
        let charge = ledger
            .charges
            .values_mut()
            .find(|c| c.authorization_id == authorization_id)
            .ok_or_else(|| PaymentError::Failed(format!("no authorization {authorization_id}")))?;
        if charge.status == to {
            return Ok(());
        }
        if !from.contains(&charge.status) {
            return Err(PaymentError::Failed(format!(
                "authorization {authorization_id} is {:?}",
                charge.status
            )));
        }
        charge.status = to;
        Ok(())
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn use_database(&self, pool: &sqlx::PgPool) {
        self.record_in(pool.clone());
    }

    fn simulate_latency(&self, latency: Duration) -> Option<Duration> {
        let before = self.latency();
        self.set_latency(latency);
        Some(before)
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, PaymentError> {
        let replay = {
            let mut ledger = self.ledger();
            ledger.calls.push(GatewayCall::Authorize {
                idempotency_key: request.idempotency_key.clone(),
                amount_cents: request.amount_cents,
            });
            ledger.outcomes.get(&request.idempotency_key).cloned()
        };
        self.pause().await;
        if let Some(outcome) = replay {
            return outcome;
        }
        let token = request.payment_token.as_str();
        let outcome = match token {
            "tok_decline" => Err(PaymentError::Declined {
                reason: "card_declined".into(),
            }),
            "tok_insufficient_funds" => Err(PaymentError::Declined {
                reason: "insufficient_funds".into(),
            }),
            "tok_fail" => Err(PaymentError::Failed("processor_error".into())),
            "tok_ok" | "tok_timeout" => Ok(Authorization {
                authorization_id: format!("auth_{}", uuid::Uuid::new_v4().simple()),
            }),
            t if t.starts_with("tok_ok_") => Ok(Authorization {
                authorization_id: format!("auth_{}", uuid::Uuid::new_v4().simple()),
            }),
            _ => Err(PaymentError::Declined {
                reason: "card_not_recognized".into(),
            }),
        };
        {
            let mut ledger = self.ledger();
            if let Ok(auth) = &outcome {
                ledger.charges.insert(
                    request.idempotency_key.clone(),
                    Charge {
                        authorization_id: auth.authorization_id.clone(),
                        idempotency_key: request.idempotency_key.clone(),
                        amount_cents: request.amount_cents,
                        refunded_cents: 0,
                        status: ChargeStatus::Authorized,
                    },
                );
            }
            ledger
                .outcomes
                .insert(request.idempotency_key.clone(), outcome.clone());
        }
        if let Ok(auth) = &outcome {
            self.keep(&auth.authorization_id).await?;
        }
        if token == "tok_timeout" {
            tokio::time::sleep(self.hang).await;
            return Err(PaymentError::Timeout);
        }
        outcome
    }

    async fn capture(
        &self,
        authorization_id: &str,
        _idempotency_key: &str,
    ) -> Result<(), PaymentError> {
        self.ledger().calls.push(GatewayCall::Capture {
            authorization_id: authorization_id.into(),
        });
        self.pause().await;
        self.recall(authorization_id).await?;
        self.set_status(
            authorization_id,
            &[ChargeStatus::Authorized],
            ChargeStatus::Captured,
        )?;
        self.keep(authorization_id).await
    }

    async fn void(&self, authorize_idempotency_key: &str) -> Result<(), PaymentError> {
        let authorization_id = {
            let mut ledger = self.ledger();
            ledger.calls.push(GatewayCall::Void {
                idempotency_key: authorize_idempotency_key.into(),
            });
            ledger
                .charges
                .get(authorize_idempotency_key)
                .map(|c| c.authorization_id.clone())
        };
        self.pause().await;
        match authorization_id {
            Some(id) => {
                self.set_status(&id, &[ChargeStatus::Authorized], ChargeStatus::Voided)?;
                self.keep(&id).await
            }
            None => Ok(()),
        }
    }

    async fn refund(
        &self,
        authorization_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<(), PaymentError> {
        self.ledger().calls.push(GatewayCall::Refund {
            authorization_id: authorization_id.into(),
            amount_cents,
            idempotency_key: idempotency_key.into(),
        });
        self.pause().await;
        if amount_cents <= 0 {
            return Err(PaymentError::Failed(
                "a refund must be of a positive amount".into(),
            ));
        }
        if self.ledger().refunds.contains_key(idempotency_key) {
            return Ok(());
        }
        self.recall(authorization_id).await?;
        let refund = Refund {
            idempotency_key: idempotency_key.to_owned(),
            authorization_id: authorization_id.to_owned(),
            amount_cents,
        };
        let Some(pool) = self.store.get() else {
            return self.pay_back(refund);
        };
        // The store decides, so that a refund asked of two processes at once (or again
        // after a restart) is paid once.
        let fresh = self.refund_in_store(pool, &refund).await?;
        let mut ledger = self.ledger();
        if fresh {
            if let Some(charge) = ledger
                .charges
                .values_mut()
                .find(|c| c.authorization_id == authorization_id)
            {
                charge.refunded_cents += amount_cents;
                charge.status = if charge.refunded_cents >= charge.amount_cents {
                    ChargeStatus::Refunded
                } else {
                    ChargeStatus::PartiallyRefunded
                };
            }
        }
        ledger.refunds.insert(idempotency_key.to_owned(), refund);
        Ok(())
    }
}

impl SimulatedGateway {
    /// A refund decided in memory (no store): of a captured charge, within what is left.
    fn pay_back(&self, refund: Refund) -> Result<(), PaymentError> {
        let mut ledger = self.ledger();
        let charge = ledger
            .charges
            .values_mut()
            .find(|c| c.authorization_id == refund.authorization_id)
            .ok_or_else(|| {
                PaymentError::Failed(format!("no authorization {}", refund.authorization_id))
            })?;
        if !matches!(
            charge.status,
            ChargeStatus::Captured | ChargeStatus::PartiallyRefunded
        ) {
            return Err(PaymentError::Failed(format!(
                "authorization {} is {:?}",
                refund.authorization_id, charge.status
            )));
        }
        if charge.refunded_cents + refund.amount_cents > charge.amount_cents {
            return Err(PaymentError::Failed(format!(
                "authorization {} has no {} left to refund",
                refund.authorization_id, refund.amount_cents
            )));
        }
        charge.refunded_cents += refund.amount_cents;
        charge.status = if charge.refunded_cents == charge.amount_cents {
            ChargeStatus::Refunded
        } else {
            ChargeStatus::PartiallyRefunded
        };
        ledger
            .refunds
            .insert(refund.idempotency_key.clone(), refund);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: &str, key: &str) -> AuthorizeRequest {
        AuthorizeRequest {
            payment_token: token.into(),
            amount_cents: 1500,
            currency: "USD".into(),
            idempotency_key: key.into(),
        }
    }

    #[actix_web::test]
    async fn test_tokens_behave_like_card_network_test_numbers() {
        let gateway = SimulatedGateway::new(Duration::ZERO);
        assert!(gateway.authorize(&request("tok_ok", "a")).await.is_ok());
        assert_eq!(
            gateway.authorize(&request("tok_decline", "b")).await,
            Err(PaymentError::Declined {
                reason: "card_declined".into()
            })
        );
        assert!(matches!(
            gateway.authorize(&request("tok_fail", "c")).await,
            Err(PaymentError::Failed(_))
        ));
        assert!(matches!(
            gateway.authorize(&request("4242", "d")).await,
            Err(PaymentError::Declined { .. })
        ));
    }

    #[actix_web::test]
    async fn a_retried_authorization_replays_the_first_and_charges_once() {
        let gateway = SimulatedGateway::new(Duration::ZERO);
        let first = gateway.authorize(&request("tok_ok", "key")).await;
        let again = gateway.authorize(&request("tok_ok", "key")).await;
        assert_eq!(first, again);
        assert_eq!(gateway.charges().len(), 1);
        let id = first.map(|a| a.authorization_id).unwrap_or_default();
        assert!(gateway.capture(&id, "c1").await.is_ok());
        assert!(
            gateway.capture(&id, "c1").await.is_ok(),
            "capture is idempotent"
        );
        assert_eq!(gateway.captured_cents(), 1500);
        assert!(
            gateway.void("key").await.is_err(),
            "a captured charge cannot be voided"
        );
        assert!(gateway.refund(&id, 1500, "r1").await.is_ok());
        assert_eq!(gateway.captured_cents(), 0);
    }

    #[actix_web::test]
    async fn refunds_are_partial_idempotent_by_key_and_never_exceed_the_capture() {
        let gateway = SimulatedGateway::new(Duration::ZERO);
        let id = gateway
            .authorize(&request("tok_ok", "k"))
            .await
            .map(|a| a.authorization_id)
            .unwrap_or_default();
        assert!(
            gateway.refund(&id, 500, "early").await.is_err(),
            "nothing is captured yet"
        );
        assert!(gateway.capture(&id, "c").await.is_ok());
        assert!(gateway.refund(&id, 500, "r1").await.is_ok());
        assert!(gateway.refund(&id, 500, "r1").await.is_ok(), "a retry");
        assert_eq!(gateway.captured_cents(), 1000, "the retry paid nothing");
        assert!(
            gateway.refund(&id, 1001, "r2").await.is_err(),
            "more than is left"
        );
        assert!(gateway.refund(&id, 1000, "r3").await.is_ok());
        assert_eq!(gateway.captured_cents(), 0);
        assert_eq!(gateway.refunds().len(), 2);
        assert_eq!(
            gateway.charges().first().map(|c| c.status),
            Some(ChargeStatus::Refunded)
        );
        assert!(gateway.refund(&id, 0, "r4").await.is_err());
    }

    #[actix_web::test]
    async fn a_timed_out_authorization_exists_and_can_be_voided_by_key() {
        let gateway = SimulatedGateway {
            hang: Duration::from_millis(1),
            ..SimulatedGateway::new(Duration::ZERO)
        };
        assert_eq!(
            gateway.authorize(&request("tok_timeout", "t")).await,
            Err(PaymentError::Timeout)
        );
        assert_eq!(
            gateway.charges().first().map(|c| c.status),
            Some(ChargeStatus::Authorized)
        );
        assert!(gateway.void("t").await.is_ok());
        assert_eq!(
            gateway.charges().first().map(|c| c.status),
            Some(ChargeStatus::Voided)
        );
        assert!(gateway.void("never-seen").await.is_ok());
    }
}
