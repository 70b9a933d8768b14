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
//! The ledger lives in memory. A real processor outlives the server's restarts, so an
//! authorization id this simulator issued before a restart (`auth_…`) is still honoured
//! for capture and void, and voiding an unknown idempotency key succeeds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Authorization, AuthorizeRequest, PaymentError, PaymentGateway};

/// What the processor holds for one authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Authorized,
    Captured,
    Voided,
    Refunded,
}

#[derive(Debug, Clone)]
pub struct Charge {
    pub authorization_id: String,
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub status: ChargeStatus,
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
    },
}

#[derive(Default)]
struct Ledger {
    /// By authorize idempotency key: the first outcome, replayed for retries.
    outcomes: HashMap<String, Result<Authorization, PaymentError>>,
    charges: HashMap<String, Charge>,
    calls: Vec<GatewayCall>,
}

pub struct SimulatedGateway {
    latency: Duration,
    /// How long `tok_timeout` keeps the caller waiting (longer than any sane timeout).
    hang: Duration,
    ledger: Mutex<Ledger>,
}

impl SimulatedGateway {
    pub fn new(latency: Duration) -> SimulatedGateway {
        SimulatedGateway {
            latency,
            hang: Duration::from_secs(3600),
            ledger: Mutex::new(Ledger::default()),
        }
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

    /// Every call, in order.
    pub fn calls(&self) -> Vec<GatewayCall> {
        self.ledger().calls.clone()
    }

    /// Money taken and not given back, in minor units.
    pub fn captured_cents(&self) -> i64 {
        self.ledger()
            .charges
            .values()
            .filter(|c| c.status == ChargeStatus::Captured)
            .map(|c| c.amount_cents)
            .sum()
    }

    async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
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
                        status: ChargeStatus::Authorized,
                    },
                );
            }
            ledger
                .outcomes
                .insert(request.idempotency_key.clone(), outcome.clone());
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
        self.set_status(
            authorization_id,
            &[ChargeStatus::Authorized],
            ChargeStatus::Captured,
        )
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
            Some(id) => self.set_status(&id, &[ChargeStatus::Authorized], ChargeStatus::Voided),
            None => Ok(()),
        }
    }

    async fn refund(
        &self,
        authorization_id: &str,
        amount_cents: i64,
        _idempotency_key: &str,
    ) -> Result<(), PaymentError> {
        self.ledger().calls.push(GatewayCall::Refund {
            authorization_id: authorization_id.into(),
            amount_cents,
        });
        self.pause().await;
        self.set_status(
            authorization_id,
            &[ChargeStatus::Captured],
            ChargeStatus::Refunded,
        )
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
