//! Payments: the [`PaymentGateway`] trait every processor sits behind, the simulated card
//! processor that is the default, and the reconciler that voids authorizations that never
//! became an order.
//!
//! Every call carries an idempotency key: a retried call with the same key returns the
//! first call's result and never charges twice.

pub mod breaker;
pub mod capturer;
pub mod reconciler;
pub mod simulated;

use async_trait::async_trait;

pub use simulated::SimulatedGateway;

/// A request to reserve money on a card.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The card, tokenized by the client (`tok_ok`, `tok_decline`, …for the simulator).
    pub payment_token: String,
    pub amount_cents: i64,
    pub currency: String,
    pub idempotency_key: String,
}

/// Money reserved on the card, to be captured or voided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub authorization_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was refused; the buyer can try another.
    #[error("declined: {reason}")]
    Declined { reason: String },
    /// The processor failed; nothing is known to be charged.
    #[error("processor failure: {0}")]
    Failed(String),
    /// No answer in time: the card may or may not have been authorized (void it by key).
    #[error("the processor did not answer in time")]
    Timeout,
    /// Not asked: the processor is degraded and the breaker is open (nothing was sent, so
    /// nothing can be charged); worth asking again after `retry_after`.
    #[error("the processor is degraded; retry in {retry_after:?}")]
    Unavailable { retry_after: std::time::Duration },
}

#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// A short name stored with each payment.
    fn name(&self) -> &'static str;

    /// Offered the server's database at start-up: a processor that keeps its own records
    /// there (the simulator) takes it; a real one has its own and ignores it.
    fn use_database(&self, _pool: &sqlx::PgPool) {}

    /// Whether a new authorization would be refused without asking the processor (a
    /// breaker is open), and for how long: checkouts fail fast instead of queueing.
    fn unavailable(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether payments are degraded (a breaker is open or probing): the waiting rooms
    /// slow their admission meanwhile.
    fn degraded(&self) -> bool {
        false
    }

    /// A simulator only: every call from now on takes `latency` (an operator slowing the
    /// processor on purpose to rehearse degradation). Returns the latency it had, or None
    /// for a real processor, which cannot be slowed.
    fn simulate_latency(&self, _latency: std::time::Duration) -> Option<std::time::Duration> {
        None
    }

    /// Figures of its own for `/metrics` (the breaker's state), registered per server.
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        Vec::new()
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, PaymentError>;

    /// Takes the authorized money.
    async fn capture(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<(), PaymentError>;

    /// Releases an authorization, found by the idempotency key it was requested with (so
    /// an authorization whose answer was lost can still be voided). Voiding what does not
    /// exist succeeds: there is nothing to release.
    async fn void(&self, authorize_idempotency_key: &str) -> Result<(), PaymentError>;

    /// Gives captured money back: `amount_cents` of it (a partial refund) or all. Asked
    /// again with the same idempotency key, answers as the first time and pays nothing more.
    async fn refund(
        &self,
        authorization_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<(), PaymentError>;
}
