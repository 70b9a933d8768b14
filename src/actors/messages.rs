//! The engine's error, shared by the actors, the engine and the waiting room.

use crate::domain::holds::HoldError;

/// Why the engine refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The hold book refused (the sale, the buyer's limits, the hold's state).
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    #[error("payment failed: {0}")]
    PaymentFailed(String),
    /// The card processor is degraded (its breaker is open): nothing was asked or charged,
    /// the hold is kept; worth retrying after this long.
    #[error("payments are degraded; retry in {0:?}")]
    PaymentUnavailable(std::time::Duration),
    /// The order writer's queue is full (Postgres is slow): nothing was charged, the hold
    /// is kept; retry shortly.
    #[error("the order writer is saturated")]
    OrdersBusy,
    #[error("the engine is busy or stopped")]
    Unavailable,
    /// This node does not (or no longer) own the on-sale, and it could not be handed to
    /// the node that does: the client retries shortly.
    #[error("the on-sale's owner is unavailable")]
    OwnerUnavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<actix::MailboxError> for EngineError {
    fn from(_: actix::MailboxError) -> Self {
        EngineError::Unavailable
    }
}
