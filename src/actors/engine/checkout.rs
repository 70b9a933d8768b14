//! Paying: a held hold through PAYMENT_PENDING, the payment row, the card's authorization,
//! the order writer's durable commit, then SOLD, and the capture queued behind the answer
//! (`payments::capturer`) — or, on any failure, the authorization voided and the hold HELD
//! again. Also the reconciler's pass over what a crash left between those steps. Called by the checkout handler and the start-up loop.

use uuid::Uuid;

use super::{not_found_as_hold, Engine};
use crate::actors::event::{BeginCheckout, CancelCheckout, FinishCheckout};
use crate::actors::messages::EngineError;
use crate::actors::order_writer::{OrderWriteError, WriteOrder};
use crate::actors::orders::{new_order, view_of_new, with_tickets};
use crate::cluster::LeaseToken;
use crate::domain::holds::HoldError;
use crate::domain::orders::PaymentStatus;
use crate::metrics::{figures, outcome_of};
use crate::payments::capturer::Capture;
use crate::payments::{reconciler, AuthorizeRequest, PaymentError};
use crate::persistence::orders::{self, NewOrder, OrderRow};
use crate::persistence::payments::{self, NewPayment};
use crate::persistence::WriteError;
use crate::views::{HoldView, OrderView};

impl Engine {
    /// The order a checkout with this key already made, whatever happened since (the hold
    /// is gone, the shopping window closed, the sale ended): a retry of a completed
    /// checkout gets the same order. A key used for another hold is refused.
    pub async fn replay(
        &self,
        hold_id: Uuid,
        buyer_id: Uuid,
        idempotency_key: &str,
    ) -> Result<Option<OrderView>, EngineError> {
        let Some(order) = orders::find_by_key(&self.pool, buyer_id, idempotency_key).await? else {
            return Ok(None);
        };
        if order.hold_id != Some(hold_id) {
            return Err(EngineError::Hold(HoldError::Invalid(
                crate::domain::FieldErrors::single(
                    "Idempotency-Key",
                    "this key was used for another hold",
                ),
            )));
        }
        Ok(Some(self.order_view(order).await?))
    }

    /// Pays for a hold and turns it into an order with tickets. Retrying with the same
    /// idempotency key returns the same order and never charges twice.
    #[tracing::instrument(skip(self, idempotency_key, payment_token))]
    pub async fn checkout(
        &self,
        hold_id: Uuid,
        buyer_id: Uuid,
        idempotency_key: &str,
        payment_token: &str,
    ) -> Result<OrderView, EngineError> {
        match self.replay(hold_id, buyer_id, idempotency_key).await? {
            Some(order) => Ok(order),
            None => {
                self.pay(hold_id, buyer_id, idempotency_key, payment_token)
                    .await
            }
        }
    }

    /// Pays for a hold no checkout with this key has paid for yet ([`Engine::replay`]
    /// answered none): [`Engine::checkout`] after its replay. Counted and timed on
    /// `/metrics` by outcome.
    #[tracing::instrument(skip(self, idempotency_key, payment_token))]
    pub async fn pay(
        &self,
        hold_id: Uuid,
        buyer_id: Uuid,
        idempotency_key: &str,
        payment_token: &str,
    ) -> Result<OrderView, EngineError> {
        let started = std::time::Instant::now();
        let paid = self
            .pay_for(hold_id, buyer_id, idempotency_key, payment_token)
            .await;
        let f = figures();
        f.checkout_duration.observe(started.elapsed().as_secs_f64());
        match &paid {
            Ok(_) => f.checkouts_confirmed.inc(),
            Err(EngineError::Hold(_)) => f.checkouts.with_label_values(&["refused"]).inc(),
            Err(error) => f.checkouts.with_label_values(&[outcome_of(error)]).inc(),
        }
        paid
    }

    async fn pay_for(
        &self,
        hold_id: Uuid,
        buyer_id: Uuid,
        idempotency_key: &str,
        payment_token: &str,
    ) -> Result<OrderView, EngineError> {
        let purchased = || async {
            match orders::find_by_hold(&self.pool, hold_id).await? {
                Some(order) if order.buyer_id == buyer_id => Err(EngineError::Hold(
                    HoldError::AlreadyPurchased(order.order_id),
                )),
                _ => Err(EngineError::Hold(HoldError::HoldNotFound)),
            }
        };
        let Some(event_id) = self.event_of_hold(hold_id).await? else {
            return purchased().await;
        };
        let (event, lease) = self
            .registry
            .get_owned(event_id)
            .await
            .map_err(not_found_as_hold)?;
        let hold = match event.send(BeginCheckout { hold_id, buyer_id }).await? {
            Ok(hold) => hold,
            // Bought before this node ran the on-sale (a restart, a takeover).
            Err(EngineError::Hold(HoldError::HoldNotFound)) => return purchased().await,
            Err(error) => return Err(error),
        };

        match self
            .pay_and_write(&hold, &lease, idempotency_key, payment_token)
            .await
        {
            Ok((order, authorization_id, payment_id)) => {
                event.do_send(FinishCheckout {
                    hold_id,
                    order_id: order.order_id,
                });
                // The order is durable: the buyer is answered, the money taken after.
                self.captures.capture(Capture {
                    authorization_id,
                    payment_id,
                });
                Ok(view_of_new(&order, &hold))
            }
            Err(error) => {
                // Refused because payments are degraded: the buyer gets the time back, once.
                let degraded = matches!(error, EngineError::PaymentUnavailable(_))
                    || (matches!(error, EngineError::PaymentFailed(_)) && self.payments_degraded());
                event.do_send(CancelCheckout {
                    hold_id,
                    extend: self.degraded_extension.filter(|_| degraded),
                });
                Err(error)
            }
        }
    }

    /// Records the payment, authorizes it, writes the order. On failure nothing is charged
    /// (the authorization is voided) and nothing is written.
    async fn pay_and_write(
        &self,
        hold: &HoldView,
        lease: &LeaseToken,
        idempotency_key: &str,
        payment_token: &str,
    ) -> Result<(NewOrder, String, Uuid), EngineError> {
        // A degraded processor is not asked (nor a payment row written): the buyer hears
        // at once, and keeps the hold.
        if let Some(retry_after) = self.gateway.unavailable() {
            return Err(EngineError::PaymentUnavailable(retry_after));
        }
        // The epoch keeps two owners' attempts at one checkout apart at the processor: a
        // stale owner voids its own authorization, never the one the new owner used.
        let gateway_key = format!("{}:{}:{}", hold.hold_id, lease.epoch, idempotency_key);
        let payment = NewPayment {
            payment_id: Uuid::new_v4(),
            buyer_id: hold.buyer_id,
            event_id: hold.event_id,
            hold_id: hold.hold_id,
            gateway: self.gateway.name().to_owned(),
            idempotency_key: gateway_key.clone(),
            amount_cents: hold.total_cents,
            currency: hold.currency.clone(),
        };
        let payment_id = match payments::insert_pending(&self.pool, &payment).await {
            Ok(()) => payment.payment_id,
            Err(WriteError::Conflict(_)) => payments::find_by_key(&self.pool, &gateway_key)
                .await?
                .map(|p| p.payment_id)
                .ok_or_else(|| {
                    EngineError::Unexpected(anyhow::anyhow!("payment {gateway_key} vanished"))
                })?,
            Err(WriteError::Other(e)) => return Err(e.into()),
        };

        let request = AuthorizeRequest {
            payment_token: payment_token.to_owned(),
            amount_cents: hold.total_cents,
            currency: hold.currency.clone(),
            idempotency_key: gateway_key.clone(),
        };
        let outcome = tokio::time::timeout(self.payment_timeout, self.gateway.authorize(&request))
            .await
            .unwrap_or(Err(PaymentError::Timeout));
        let authorization = match outcome {
            Ok(authorization) => authorization,
            Err(PaymentError::Declined { reason }) => {
                payments::set_status(
                    &self.pool,
                    payment_id,
                    PaymentStatus::Declined,
                    None,
                    Some(&reason),
                )
                .await?;
                return Err(EngineError::PaymentDeclined(reason));
            }
            Err(PaymentError::Unavailable { retry_after }) => {
                // Nothing was asked: the row is closed as voided.
                self.void(&gateway_key, payment_id);
                return Err(EngineError::PaymentUnavailable(retry_after));
            }
            Err(error) => {
                self.void(&gateway_key, payment_id);
                return Err(EngineError::PaymentFailed(error.to_string()));
            }
        };

        let order = new_order(
            hold,
            lease.epoch,
            idempotency_key,
            payment_id,
            &authorization.authorization_id,
            self.clock.now(),
        );
        let written = self
            .writer
            .send(WriteOrder(order.clone()))
            .await
            .map_err(EngineError::from)?;
        if let Err(error) = written {
            self.void(&gateway_key, payment_id);
            return Err(match error {
                OrderWriteError::Refused(constraint) => {
                    tracing::error!(hold_id = %hold.hold_id, %constraint, "Postgres refused an order the actors allowed");
                    EngineError::Unexpected(anyhow::anyhow!("order refused by {constraint}"))
                }
                OrderWriteError::Failed(reason) => EngineError::Unexpected(anyhow::anyhow!(reason)),
                OrderWriteError::Fenced => {
                    self.cluster.fenced(hold.event_id, "orders");
                    EngineError::OwnerUnavailable
                }
                OrderWriteError::Busy => EngineError::OrdersBusy,
            });
        }
        Ok((order, authorization.authorization_id, payment_id))
    }

    /// Voids an authorization that will not become an order, behind the buyer's answer:
    /// a processor slow enough to fail the checkout would make the void slow too, and the
    /// buyer (who keeps the hold) should hear at once. Whatever this misses, the
    /// reconciler voids.
    fn void(&self, gateway_key: &str, payment_id: Uuid) {
        let (gateway, pool, key) = (
            self.gateway.clone(),
            self.pool.clone(),
            gateway_key.to_owned(),
        );
        tokio::spawn(async move {
            match gateway.void(&key).await {
                Ok(()) => {
                    if let Err(error) =
                        payments::set_status(&pool, payment_id, PaymentStatus::Voided, None, None)
                            .await
                    {
                        tracing::error!(?error, %payment_id, "could not record a void; the reconciler will retry");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, %payment_id, "void failed; the reconciler will retry")
                }
            }
        });
    }

    async fn order_view(&self, order: OrderRow) -> Result<OrderView, EngineError> {
        Ok(with_tickets(&self.pool, order).await?)
    }

    /// Voids authorizations older than `grace` that never became an order, and captures
    /// authorized payments whose order exists.
    pub async fn reconcile(&self, grace: chrono::Duration) -> anyhow::Result<reconciler::Report> {
        reconciler::run_once(&self.pool, self.gateway.as_ref(), self.clock.now() - grace).await
    }
}
