//! A cancelled event's refunds, as a job that survives crashes: the cancellation listed
//! every order (one row each, in the same transaction that cancelled the event); workers on
//! any node claim batches of them for a while (`FOR UPDATE SKIP LOCKED`, so two never take
//! one; a dead worker's claim lapses), refund each through [`Refunds::refund`] with a key
//! of the order's attempt, and settle it. A refund whose gateway answer was lost stays
//! PENDING holding its tickets; the next attempt drives that one (its key again: paid
//! once) rather than starting another.

use std::collections::HashMap;

use chrono::Duration;
use futures_util::StreamExt;
use uuid::Uuid;

use super::{RefundAsk, RefundError, Refunds};
use crate::persistence::{cancellations, refunds};

/// How long a worker has the orders it claimed: long enough for a batch, short enough that
/// a dead worker's orders are soon taken up (a batch that overruns it is still safe: a
/// second worker finds the first's refund under way and asks by its key).
const CLAIM_FOR: i64 = 10;
/// Attempts at one order before it is given up on (and shown as failed to the organizer).
const MAX_ATTEMPTS: i32 = 5;

impl Refunds {
    /// One pass of the cancellation job: claims up to `batch` orders and refunds them, a
    /// few at a time; how many were settled.
    pub async fn cancellation_pass(&self, batch: i64, parallel: usize) -> anyhow::Result<usize> {
        let claimed =
            cancellations::claim(self.pool(), self.now(), Duration::seconds(CLAIM_FOR), batch)
                .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let mut reasons: HashMap<Uuid, String> = HashMap::new();
        for (event_id, _, _) in &claimed {
            if !reasons.contains_key(event_id) {
                let reason = cancellations::cancellation_reason(self.pool(), *event_id).await?;
                reasons.insert(*event_id, reason);
            }
        }
        let settled = std::sync::atomic::AtomicUsize::new(0);
        let work = claimed.iter().map(|(event_id, order_id, attempt)| {
            let reason = reasons.get(event_id).cloned().unwrap_or_default();
            let settled = &settled;
            async move {
                if self
                    .cancel_order(*event_id, *order_id, *attempt, reason)
                    .await
                {
                    settled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        futures_util::stream::iter(work)
            .buffer_unordered(parallel.max(1))
            .for_each(|()| async {})
            .await;
        Ok(settled.into_inner())
    }

    /// Refunds one order of a cancelled event; whether it was settled.
    async fn cancel_order(
        &self,
        event_id: Uuid,
        order_id: Uuid,
        attempt: i32,
        reason: String,
    ) -> bool {
        let ask = RefundAsk {
            order_id,
            caller: None,
            ticket_ids: None,
            reason,
            idempotency_key: Some(format!("cancel:{event_id}:{attempt}")),
        };
        let mut outcome = self.refund(ask.clone()).await;
        if matches!(outcome, Err(RefundError::InProgress)) {
            // An earlier attempt's refund is still asking the gateway: ask again by its key.
            match refunds::pending_of(self.pool(), order_id).await {
                Ok(pending) => {
                    for refund in pending {
                        let _ = self.drive(&refund).await;
                    }
                    outcome = self.refund(ask).await;
                }
                Err(error) => outcome = Err(error.into()),
            }
        }
        let now = self.now();
        let settled = match outcome {
            Ok(done) => match done.refund {
                Some(refund) if refund.status == "PENDING" => {
                    Err("the gateway did not answer".to_owned())
                }
                refund => Ok(refund.map(|r| r.refund_id)),
            },
            Err(error) => Err(error.to_string()),
        };
        let written = match settled {
            Ok(refund_id) => {
                cancellations::settle(
                    self.pool(),
                    event_id,
                    order_id,
                    "REFUNDED",
                    refund_id,
                    None,
                    now,
                )
                .await
            }
            Err(error) if attempt >= MAX_ATTEMPTS => {
                tracing::warn!(%event_id, %order_id, %error, "gave up refunding an order of a cancelled event");
                cancellations::settle(
                    self.pool(),
                    event_id,
                    order_id,
                    "FAILED",
                    None,
                    Some(&error),
                    now,
                )
                .await
            }
            Err(error) => {
                let retry_at = now + Duration::seconds(5 * i64::from(attempt.max(1)));
                return cancellations::retry_later(
                    self.pool(),
                    event_id,
                    order_id,
                    &error,
                    retry_at,
                )
                .await
                .map(|()| false)
                .unwrap_or(false);
            }
        };
        match written {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%event_id, %order_id, %error, "could not settle an order of a cancelled event");
                false
            }
        }
    }
}
