//! Messages and values shared by several actors and the engine.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::FieldErrors;

/// What a buyer asks to hold.
#[derive(Debug, Clone)]
pub enum HoldRequest {
    /// These exact seats, possibly across sections.
    Seats(Vec<Uuid>),
    /// The best `quantity` seats together, in one section or in any.
    BestAvailable {
        section_id: Option<Uuid>,
        quantity: u32,
    },
    /// A quantity of a general-admission tier.
    Tier { tier_id: Uuid, quantity: u32 },
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldStatus {
    Held,
    PaymentPending,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldSeat {
    pub seat_id: Uuid,
    pub section_id: Uuid,
    /// Section, row and number, e.g. `101 B-12`.
    pub label: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldTier {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub name: String,
    pub quantity: u32,
    pub price_cents: i64,
}

/// A hold as the buyer sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldView {
    pub hold_id: Uuid,
    pub event_id: Uuid,
    pub status: HoldStatus,
    pub seats: Vec<HeldSeat>,
    pub tier: Option<HeldTier>,
    pub quantity: u32,
    pub total_cents: i64,
    pub currency: String,
    pub expires_at: DateTime<Utc>,
    #[serde(skip)]
    pub buyer_id: Uuid,
}

/// Why the engine refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such event")]
    EventNotFound,
    #[error("the sale is not open: {0}")]
    SaleNotOpen(String),
    #[error("seats unavailable")]
    SeatUnavailable(Vec<Uuid>),
    #[error("sold out")]
    SoldOut,
    #[error("at most {0} tickets per order")]
    MaxPerOrderExceeded(u32),
    #[error("at most {0} active holds per buyer")]
    TooManyHolds(u32),
    /// The buyer's tickets for this event (bought and held) would pass their limit.
    #[error("at most {limit} tickets per buyer")]
    BuyerLimitExceeded { limit: u32, has: u32 },
    #[error("invalid request")]
    Invalid(FieldErrors),
    #[error("no such hold")]
    HoldNotFound,
    #[error("the hold expired")]
    HoldExpired,
    #[error("the hold belongs to another buyer")]
    NotYourHold,
    #[error("a checkout of this hold is already in progress")]
    CheckoutInProgress,
    #[error("the hold was already bought")]
    AlreadyPurchased(Uuid),
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    #[error("payment failed: {0}")]
    PaymentFailed(String),
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

/// A ticket as its holder sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    pub ticket_id: Uuid,
    pub section_id: Uuid,
    pub seat_id: Option<Uuid>,
    pub tier_id: Option<Uuid>,
    /// Section and seat (`101 B-12`) or section and tier (`Floor GENERAL`).
    pub label: String,
    pub price_cents: i64,
    /// The unguessable token the QR code carries.
    pub qr_token: String,
    pub status: String,
}

/// An order as its buyer sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub event_title: String,
    pub hold_id: Option<Uuid>,
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub tickets: Vec<TicketView>,
    #[serde(skip)]
    pub buyer_id: Uuid,
}
