//! Refunds, end to end: who may refund what (the organizer any order of their event, the
//! buyer their own tickets inside the refund policy), how much, and the three steps that
//! keep a refund paid once: the refund row claims its tickets (two refunds cannot both take
//! one), the gateway is asked with the refund's id as its idempotency key (asked again
//! after a crash or a lost answer, it pays nothing more), and the completion commits the
//! cancelled tickets, the order's and payment's new status, the buyer's notice and the
//! seats' way back to the on-sale (the engine's inbox) together.
//!
//! A refund whose gateway answer never came stays PENDING and is asked again by
//! [`Refunds::retry_pending`]; one the gateway refused fails and lets its tickets go.
//! Event cancellation (`cancellation`) runs every order of the event through here.
//!
//! Called by the refund handler and the background loop; knows nothing of HTTP.

pub mod cancellation;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::actors::orders::read_order;
use crate::actors::Engine;
use crate::domain::orders::{OrderStatus, TicketStatus};
use crate::domain::refunds::refund_amount;
use crate::payments::PaymentError;
use crate::persistence::refunds::{self, Begun, Initiator, NewRefund, RefundRow};
use crate::views::OrderView;

/// What was asked.
#[derive(Debug, Clone)]
pub struct RefundAsk {
    pub order_id: Uuid,
    /// The account asking (`None`: the system, for an event's cancellation).
    pub caller: Option<Uuid>,
    /// Some tickets of the order; `None`: every ticket it has left.
    pub ticket_ids: Option<Vec<Uuid>>,
    pub reason: String,
    pub idempotency_key: Option<String>,
}

/// A refund as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundView {
    pub refund_id: Uuid,
    /// `SUCCEEDED`, or `PENDING` while the gateway has not answered (it is asked again).
    pub status: String,
    pub amount_cents: i64,
    /// What the refund policy kept back.
    pub fee_cents: i64,
    pub reason: String,
}

/// The order after a refund, with the refund (none when nothing was left to refund).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refunded {
    #[serde(flatten)]
    pub order: OrderView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundView>,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no such order")]
    NotFound,
    /// Outside the refund policy, or tickets that cannot be refunded (409 with the policy).
    #[error("{0}")]
    NotAllowed(String),
    #[error("invalid request: {0}")]
    Invalid(&'static str, String),
    /// Another refund of these tickets is under way.
    #[error("a refund of these tickets is in progress")]
    InProgress,
    /// The gateway refused the refund; nothing was refunded.
    #[error("the gateway refused the refund: {0}")]
    Failed(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub struct Refunds {
    engine: Arc<Engine>,
    doors: Arc<crate::doors::Doors>,
    timeout: Duration,
}

impl Refunds {
    pub fn new(engine: Arc<Engine>, doors: Arc<crate::doors::Doors>, timeout: Duration) -> Refunds {
        Refunds {
            engine,
            doors,
            timeout,
        }
    }

    fn pool(&self) -> &sqlx::PgPool {
        self.engine.pool()
    }

    fn now(&self) -> DateTime<Utc> {
        self.engine.clock().now()
    }

    /// Refunds what `ask` names. Asked again (the same key, or tickets refunded already),
    /// answers the order as it stands and pays nothing more.
    pub async fn refund(&self, ask: RefundAsk) -> Result<Refunded, RefundError> {
        let (order, tickets) = refunds::context(self.pool(), ask.order_id)
            .await?
            .ok_or(RefundError::NotFound)?;
        let initiator = match ask.caller {
            None => Initiator::EventCancelled,
            Some(caller) if caller == order.organizer_id => Initiator::Organizer,
            Some(caller) if caller == order.buyer_id => Initiator::Buyer,
            // Somebody else's order: not theirs to know of.
            Some(_) => return Err(RefundError::NotFound),
        };
        let policy = order.policy();
        if initiator == Initiator::Buyer {
            policy
                .buyer_may_cancel(order.start_time, self.now())
                .map_err(RefundError::NotAllowed)?;
        }
        if let Some(key) = &ask.idempotency_key {
            if let Some(refund_id) = self.refund_by_key(ask.order_id, key).await? {
                return self.drive_existing(refund_id, ask.order_id).await;
            }
        }
        if !matches!(
            order.status,
            OrderStatus::Confirmed | OrderStatus::PartiallyRefunded | OrderStatus::Refunded
        ) {
            return Err(RefundError::NotAllowed(format!(
                "the order is {}",
                order.status.as_str()
            )));
        }
        let live: Vec<&refunds::OrderTicket> = tickets
            .iter()
            .filter(|t| matches!(t.status, TicketStatus::Valid | TicketStatus::Used))
            .collect();
        let chosen: Vec<&refunds::OrderTicket> = match &ask.ticket_ids {
            None => live.clone(),
            Some(ids) => {
                let mut chosen = Vec::new();
                for id in ids {
                    let Some(ticket) = tickets.iter().find(|t| t.ticket_id == *id) else {
                        return Err(RefundError::Invalid(
                            "ticket_ids",
                            format!("{id} is not a ticket of this order"),
                        ));
                    };
                    match ticket.status {
                        TicketStatus::Transferred => {
                            return Err(RefundError::NotAllowed(format!(
                                "ticket {id} was transferred: refund the ticket it became"
                            )))
                        }
                        // Refunded already: asked again.
                        TicketStatus::Cancelled => {}
                        _ if !chosen
                            .iter()
                            .any(|c: &&refunds::OrderTicket| c.ticket_id == *id) =>
                        {
                            chosen.push(ticket)
                        }
                        _ => {}
                    }
                }
                chosen
            }
        };
        if initiator == Initiator::Buyer {
            if let Some(t) = chosen.iter().find(|t| t.status == TicketStatus::Used) {
                return Err(RefundError::NotAllowed(format!(
                    "ticket {} was used at the door",
                    t.ticket_id
                )));
            }
            if let Some(t) = chosen.iter().find(|t| t.holder_id != Some(order.buyer_id)) {
                return Err(RefundError::NotAllowed(format!(
                    "ticket {} was transferred to somebody else",
                    t.ticket_id
                )));
            }
        }
        if chosen.iter().any(|t| t.in_refund) {
            return Err(RefundError::InProgress);
        }
        if chosen.is_empty() {
            return Ok(Refunded {
                order: self.order(ask.order_id).await?,
                refund: None,
            });
        }
        let Some(payment_id) = order.payment_id else {
            return Err(RefundError::NotAllowed("the order has no payment".into()));
        };
        let worth: i64 = chosen.iter().map(|t| t.unit_price_cents).sum();
        let all_left = chosen.len() == live.len();
        let gross = refund_amount(order.total_cents, order.refunded_cents, worth, all_left);
        let fee = if initiator == Initiator::Buyer {
            policy.fee(gross)
        } else {
            0
        };
        let refund = NewRefund {
            refund_id: Uuid::new_v4(),
            order_id: order.order_id,
            payment_id,
            event_id: order.event_id,
            amount_cents: gross - fee,
            fee_cents: fee,
            currency: order.currency.trim().to_owned(),
            initiated_by: initiator,
            requested_by: ask.caller,
            reason: ask.reason.clone(),
            idempotency_key: ask.idempotency_key.clone(),
            ticket_ids: chosen.iter().map(|t| t.ticket_id).collect(),
            now: self.now(),
        };
        match refunds::begin(self.pool(), &refund).await? {
            Begun::Started => self.drive_existing(refund.refund_id, order.order_id).await,
            Begun::Again(refund_id) => self.drive_existing(refund_id, order.order_id).await,
            Begun::Busy => Err(RefundError::InProgress),
        }
    }

    async fn refund_by_key(&self, order_id: Uuid, key: &str) -> anyhow::Result<Option<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT refund_id FROM refunds WHERE order_id = $1 AND idempotency_key = $2",
        )
        .bind(order_id)
        .bind(key)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn order(&self, order_id: Uuid) -> anyhow::Result<OrderView> {
        read_order(self.pool(), order_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("order {order_id} vanished"))
    }

    /// Carries a refund as far as it goes now, and answers the order with it.
    async fn drive_existing(
        &self,
        refund_id: Uuid,
        order_id: Uuid,
    ) -> Result<Refunded, RefundError> {
        let refund = refunds::find(self.pool(), refund_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("refund {refund_id} vanished"))?;
        let status = match refund.status.as_str() {
            "PENDING" => self.drive(&refund).await?,
            "FAILED" => {
                return Err(RefundError::Failed(
                    refund.last_error.clone().unwrap_or_default(),
                ))
            }
            other => other.to_owned(),
        };
        Ok(Refunded {
            order: self.order(order_id).await?,
            refund: Some(RefundView {
                refund_id,
                status,
                amount_cents: refund.amount_cents,
                fee_cents: refund.fee_cents,
                reason: refund.reason,
            }),
        })
    }

    /// Asks the gateway for a PENDING refund (by its key: never paid twice) and completes
    /// it; the refund's status after.
    pub async fn drive(&self, refund: &RefundRow) -> Result<String, RefundError> {
        let paid = self.pay_back(refund).await;
        let now = self.now();
        match paid {
            Ok(()) => {
                if let Some(noted) = refunds::complete(self.pool(), refund.refund_id, now).await? {
                    self.after_completion(refund, noted).await;
                }
                Ok("SUCCEEDED".into())
            }
            Err(PaymentError::Timeout) => {
                refunds::attempted(self.pool(), refund.refund_id, "the gateway did not answer")
                    .await?;
                Ok("PENDING".into())
            }
            // (Refunds are never held back by the breaker; kept PENDING if one ever is.)
            Err(PaymentError::Unavailable { .. }) => {
                refunds::attempted(self.pool(), refund.refund_id, "the gateway is degraded")
                    .await?;
                Ok("PENDING".into())
            }
            Err(PaymentError::Declined { reason } | PaymentError::Failed(reason)) => {
                refunds::fail(self.pool(), refund.refund_id, &reason, now).await?;
                Err(RefundError::Failed(reason))
            }
        }
    }

    async fn pay_back(&self, refund: &RefundRow) -> Result<(), PaymentError> {
        if refund.amount_cents == 0 {
            // Free tickets (or a fee that took it all): nothing to ask the gateway for.
            return Ok(());
        }
        let Some(authorization) = refund.gateway_ref.as_deref() else {
            return Err(PaymentError::Failed(
                "the payment has no authorization".into(),
            ));
        };
        let gateway = self.engine.gateway();
        if refund.payment_status == "AUTHORIZED" {
            // The order's capture has not happened yet: take the money, then give it back.
            let key = format!("capture:{}", refund.payment_id);
            tokio::time::timeout(self.timeout, gateway.capture(authorization, &key))
                .await
                .map_err(|_| PaymentError::Timeout)??;
            refunds::captured(self.pool(), refund.payment_id)
                .await
                .map_err(|e| PaymentError::Failed(e.to_string()))?;
        }
        let key = refund.refund_id.to_string();
        tokio::time::timeout(
            self.timeout,
            gateway.refund(authorization, refund.amount_cents, &key),
        )
        .await
        .map_err(|_| PaymentError::Timeout)?
    }

    /// The seats are on their way back (the inbox note is committed): the owner takes it
    /// now, and this node's door forgets the tickets.
    async fn after_completion(&self, refund: &RefundRow, noted: bool) {
        if noted {
            self.engine.notify_inbox(refund.event_id).await;
        }
        let tickets: Vec<Uuid> =
            sqlx::query_scalar("SELECT ticket_ids FROM refunds WHERE refund_id = $1")
                .bind(refund.refund_id)
                .fetch_optional(self.pool())
                .await
                .ok()
                .flatten()
                .map(|ids: Vec<Uuid>| ids)
                .unwrap_or_default();
        if let Err(error) = self.doors.refresh(refund.event_id, &tickets).await {
            tracing::warn!(event_id = %refund.event_id, %error, "could not refresh the door after a refund");
        }
    }

    /// Asks the gateway again for refunds still PENDING after `grace` (answers lost, or a
    /// crash while asking); how many completed.
    pub async fn retry_pending(&self, grace: chrono::Duration) -> anyhow::Result<usize> {
        let stale = refunds::stale_pending(self.pool(), self.now() - grace, 200).await?;
        let mut completed = 0;
        for refund in stale {
            match self.drive(&refund).await {
                Ok(status) if status == "SUCCEEDED" => completed += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(refund_id = %refund.refund_id, %error, "a pending refund failed")
                }
            }
        }
        Ok(completed)
    }
}
