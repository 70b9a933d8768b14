//! Captures, behind the buyer's answer. A checkout answers once its order is durable (the
//! card authorized, the order committed); taking the money is a step of its own after
//! that: captures queue here, a task takes whatever has queued (up to [`BATCH`]), asks the
//! processor for each at once, and records every capture that went through in one
//! `UPDATE`. Nothing here is needed for correctness: a capture that is lost (a crash, a
//! full queue, a processor error) is found by the reconciler, which captures authorized
//! payments whose order exists. Idempotent on both sides: the processor is asked with a
//! key of the payment, and the row only moves from AUTHORIZED.

use std::sync::Arc;

use futures_util::future::join_all;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::PaymentGateway;
use crate::persistence::payments;

/// Captures asked of the processor at once at most.
pub const BATCH: usize = 256;
/// Captures waiting at most; more are left to the reconciler.
const QUEUE: usize = 65_536;

/// A payment to capture: the processor's authorization and the payment's row.
#[derive(Debug, Clone)]
pub struct Capture {
    pub authorization_id: String,
    pub payment_id: Uuid,
}

#[derive(Clone)]
pub struct Capturer {
    queue: mpsc::Sender<Capture>,
}

impl Capturer {
    /// Starts the capturing task on the current runtime.
    pub fn start(pool: PgPool, gateway: Arc<dyn PaymentGateway>) -> Capturer {
        let (queue, mut waiting) = mpsc::channel::<Capture>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while waiting.recv_many(&mut batch, BATCH).await > 0 {
                capture_batch(&pool, gateway.as_ref(), std::mem::take(&mut batch)).await;
            }
        });
        Capturer { queue }
    }

    /// Queues a capture (left to the reconciler when the queue is full or closed).
    pub fn capture(&self, capture: Capture) {
        if let Err(error) = self.queue.try_send(capture) {
            tracing::warn!(%error, "a capture was not queued; the reconciler will capture it");
        }
    }
}

/// Asks the processor for each capture at once, then records those that went through.
pub async fn capture_batch(pool: &PgPool, gateway: &dyn PaymentGateway, batch: Vec<Capture>) {
    let keys: Vec<String> = batch
        .iter()
        .map(|c| format!("capture:{}", c.payment_id))
        .collect();
    let asked = batch
        .iter()
        .zip(&keys)
        .map(|(c, key)| gateway.capture(&c.authorization_id, key));
    let answers = join_all(asked).await;
    let mut captured = Vec::with_capacity(batch.len());
    for (capture, answer) in batch.iter().zip(answers) {
        match answer {
            Ok(()) => captured.push(capture.payment_id),
            Err(error) => {
                tracing::warn!(%error, payment_id = %capture.payment_id, "capture failed; the reconciler will retry")
            }
        }
    }
    let f = crate::metrics::figures();
    f.captures
        .with_label_values(&["captured"])
        .inc_by(captured.len() as u64);
    f.captures
        .with_label_values(&["failed"])
        .inc_by((batch.len() - captured.len()) as u64);
    if let Err(error) = payments::mark_captured(pool, &captured).await {
        tracing::error!(
            ?error,
            count = captured.len(),
            "could not record captures; the reconciler will retry"
        );
    }
}
