//! The shapes the API answers with for holds, orders, tickets and waiting rooms: plain
//! data, built by the hold book, the order readers and the waiting rooms, serialized by
//! the HTTP layer. Nothing here reads or decides anything.

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
    /// The waitlist entry this hold was offered to (an offer, not a hold the buyer made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<Uuid>,
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
    /// Money given back so far (refunds).
    pub refunded_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub tickets: Vec<TicketView>,
    #[serde(skip)]
    pub buyer_id: Uuid,
}

/// A buyer's place in a waiting room, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueView {
    /// `waiting`, `admitted`, `sold_out` or `closed`.
    pub state: &'static str,
    /// While waiting: `pre_queue` (before the sale: places are drawn at random when it
    /// starts) or `line` (first in, first out from here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// 1 is next; absent in the pre-queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    /// From the admission rate measured over the last minute; absent while paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// Everyone waiting in this room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sale_starts_at: Option<DateTime<Utc>>,
    /// Send it as `X-Admission-Token` on holds and checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<DateTime<Utc>>,
    /// The shopping window closes: holds end by then at the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl QueueView {
    /// A view with only its state (the rest is filled in by the room).
    pub fn state(state: &'static str) -> QueueView {
        QueueView {
            state,
            phase: None,
            position: None,
            ahead: None,
            eta_seconds: None,
            waiting: None,
            sale_starts_at: None,
            admission_token: None,
            admitted_at: None,
            expires_at: None,
        }
    }
}

/// The room's figures, for the organizer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoomStats {
    /// `not_open`, `pre_queue`, `selling`, `sold_out` or `closed`.
    pub phase: &'static str,
    pub waiting: u64,
    /// Admitted buyers whose shopping window is open.
    pub admitted: u64,
    /// Admitted, window open, not bought yet.
    pub shopping: u64,
    pub admitted_total: u64,
    pub admitted_last_minute: u64,
    /// The organizer's rate.
    pub admission_per_minute: u32,
    /// The rate actually achieved over the last minute (buyers per minute).
    pub measured_per_minute: f64,
    pub paused: bool,
    /// Seats and tickets on sale at the last tick.
    pub available: Option<u64>,
    /// How long the people waiting now would take to get in at the measured (or set) rate.
    pub eta_drain_seconds: Option<u64>,
    pub queue_opens_at: DateTime<Utc>,
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    /// The door: `off`, `always` or `auto`.
    pub proof_of_work: &'static str,
    pub proof_of_work_joins_per_minute: i32,
    /// New buyers who joined over the last minute.
    pub joins_last_minute: u64,
    /// Whether a new join must bring a solved challenge right now.
    pub proof_of_work_asked: bool,
}
