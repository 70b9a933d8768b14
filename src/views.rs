//! The shapes the API answers with for holds, orders and tickets: plain data, built by
//! the hold book and the order readers, serialized by the HTTP layer. Nothing here reads
//! or decides anything.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::holds::HoldStatus;
use crate::domain::orders::{OrderStatus, TicketStatus};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HeldSeat {
    pub seat_id: Uuid,
    pub section_id: Uuid,
    /// Section, row and number, e.g. `101 B-12`.
    pub label: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HeldTier {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub name: String,
    pub quantity: u32,
    pub price_cents: i64,
}

/// A hold as the buyer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
    pub status: TicketStatus,
}

/// An order as its buyer sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub event_title: String,
    pub hold_id: Option<Uuid>,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub tickets: Vec<TicketView>,
    #[serde(skip)]
    pub buyer_id: Uuid,
}
