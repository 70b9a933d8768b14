//! What the hold book's callers send and get back: requests, states, news, effects,
//! refusals, the sections, tiers and rules it is built from, and its counts.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::event::EventStatus;
use crate::domain::seat_board::SeatChange;
use crate::domain::venue::SectionKind;
use crate::domain::FieldErrors;
use crate::views::HoldView;

/// How many ended holds are remembered, to answer "expired" rather than "not found".
pub const ENDED_MEMORY: usize = 200_000;

/// What a buyer asks to hold.
#[derive(Debug, Clone)]
pub enum HoldRequest {
    /// These exact seats, possibly across sections.
    Seats(Vec<Uuid>),
    /// The best `quantity` seats together, in one section or in any (at one price, when
    /// `price_cents` is given).
    BestAvailable {
        section_id: Option<Uuid>,
        price_cents: Option<i64>,
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

/// What happened to a hold, for its holder's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldEvent {
    Held,
    ExpiringSoon,
    Expired,
    Released,
    PaymentPending,
    Confirmed,
    /// A waitlist offer: an exclusive hold of tickets that came back.
    Offered,
}

/// News of a hold for its holder.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldNews {
    pub buyer_id: Uuid,
    pub hold_id: Uuid,
    pub status: HoldEvent,
    pub expires_at: DateTime<Utc>,
    pub order_id: Option<Uuid>,
}

impl HoldNews {
    /// Where a live hold stands, as news for a socket that just connected.
    pub fn standing(hold: &crate::views::HoldView) -> HoldNews {
        HoldNews {
            buyer_id: hold.buyer_id,
            hold_id: hold.hold_id,
            status: match hold.status {
                HoldStatus::Held => HoldEvent::Held,
                HoldStatus::PaymentPending => HoldEvent::PaymentPending,
            },
            expires_at: hold.expires_at,
            order_id: None,
        }
    }
}

/// What is kept of a live hold outside the process (Redis), to take it back after a
/// restart or on the node that takes the on-sale over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MirroredHold {
    pub hold_id: Uuid,
    pub buyer_id: Uuid,
    pub expires_at: DateTime<Utc>,
    /// (section, position) of each seat.
    pub seats: Vec<(Uuid, u32)>,
    /// (tier, quantity) of a general-admission hold.
    pub tier: Option<(Uuid, u32)>,
    /// The waitlist entry a hold was offered to.
    #[serde(default)]
    pub offer: Option<Uuid>,
}

/// What a buyer on a waitlist waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    Tier(Uuid),
    Section(Uuid),
}

/// A buyer waiting for tickets of a sold-out tier or section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiter {
    pub entry_id: Uuid,
    pub buyer_id: Uuid,
    pub wants: WaitFor,
    pub quantity: u32,
}

/// What the book learns from Postgres, in the order it was written there (the engine's
/// inbox: what any node commits that the on-sale's owner must hear of).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// Tickets of `buyer_id` were refunded: these seats and tier tickets are for sale again
    /// (waitlist first).
    Returned {
        buyer_id: Uuid,
        seats: Vec<Uuid>,
        tiers: Vec<(Uuid, u32)>,
    },
    /// The organizer put these blocked seats on sale (waitlist first).
    Unblocked { seats: Vec<Uuid> },
    /// A buyer joined a waitlist.
    Joined(Waiter),
    /// A buyer left a waitlist (declining their offer, if they had one).
    Left { entry_id: Uuid },
}

/// A waitlist offer was made: this hold is the entry's until `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub entry_id: Uuid,
    pub buyer_id: Uuid,
    pub hold_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub seat_ids: Vec<Uuid>,
    pub quantity: u32,
}

/// How a waitlist offer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferEnd {
    Purchased,
    Expired,
    /// The buyer let it go, or left the waitlist.
    Declined,
}

impl OfferEnd {
    /// The entry's status once its offer ended this way.
    pub fn entry_status(self) -> &'static str {
        match self {
            OfferEnd::Purchased => "PURCHASED",
            OfferEnd::Expired => "EXPIRED",
            OfferEnd::Declined => "LEFT",
        }
    }
}

/// What the caller must do after a call, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Move these seats of section `section` (its index) on its board.
    Seats {
        section: usize,
        hold_id: Uuid,
        positions: Vec<u32>,
        change: SeatChange,
    },
    /// Tier `tier` (its index) now counts `counts` (left, held, sold).
    Tier {
        tier: usize,
        counts: crate::domain::live_map::TierCounts,
    },
    /// Tell the holder.
    News(HoldNews),
    /// Keep this hold outside the process.
    Mirror(MirroredHold),
    /// Forget the kept copy of this hold.
    Unmirror(Uuid),
    /// The event's status moved: record it, from `from` to `to`.
    Status { from: EventStatus, to: EventStatus },
    /// A waitlist entry was offered a hold: record it.
    Offered(Offer),
    /// A waitlist entry's offer ended: record it.
    OfferEnded { entry_id: Uuid, how: OfferEnd },
}

pub type Effects = Vec<Effect>;

/// Why the book refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HoldError {
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
}

/// A seat of a seated section, in board order.
#[derive(Debug, Clone)]
pub struct SeatInfo {
    pub seat_id: Uuid,
    pub row_label: String,
    pub seat_number: i32,
}

/// A seated or standing section, as the book sees it.
#[derive(Debug, Clone)]
pub struct BookSection {
    pub section_id: Uuid,
    pub name: String,
    pub kind: SectionKind,
    /// None: not on sale in this on-sale.
    pub price_cents: Option<i64>,
    pub seats: Vec<SeatInfo>,
    /// Seats neither held, sold nor blocked (seated sections on sale only).
    pub free: u32,
}

impl BookSection {
    /// A seated section on sale: its seats can be held.
    pub(super) fn placeable(&self) -> bool {
        self.kind == SectionKind::Seated && self.price_cents.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct BookTier {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub name: String,
    pub price_cents: i64,
    pub quantity: u32,
    pub sold: u32,
    pub held: u32,
    pub max_per_order: u32,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

impl BookTier {
    pub fn available(&self) -> u32 {
        self.quantity.saturating_sub(self.sold + self.held)
    }
}

/// The rules of this on-sale.
#[derive(Debug, Clone)]
pub struct SaleRules {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_duration: Duration,
    pub max_per_order: u32,
    pub max_holds_per_buyer: u32,
    /// Tickets one buyer may have for the event, bought and held together.
    pub max_per_buyer: u32,
    /// Holders are warned this long before their deadline (zero: never).
    pub hold_warning: Duration,
    /// How long a waitlist offer stays its buyer's.
    pub offer_duration: Duration,
}

/// Where to place a reserved seat hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// A tier hold: held already.
    Held(HoldView),
    /// Hold these positions in these sections, all of them.
    Exact { hold_id: Uuid, steps: Vec<SeatStep> },
    /// Hold `quantity` seats together in the first of these sections (indexes) that has them.
    Best {
        hold_id: Uuid,
        quantity: u32,
        candidates: Vec<usize>,
    },
}

/// The seats of one section an exact seat hold takes.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatStep {
    pub section: usize,
    pub positions: Vec<u32>,
    pub seat_ids: Vec<Uuid>,
}

/// Live counts: seats free per section, tickets left per tier.
#[derive(Debug, Clone)]
pub struct EventCounts {
    pub sections: Vec<(Uuid, u32)>,
    pub tiers: Vec<(Uuid, u32)>,
    pub active_holds: usize,
    /// Buyers with at least one live hold.
    pub holders: usize,
}

/// What the waiting room paces admission by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// Seats and tickets neither held nor sold.
    pub available: u64,
    /// Buyers with at least one live hold.
    pub holders: u64,
    /// Tickets the shoppers may still take, on top of what they hold.
    pub promised: u64,
    /// What one new shopper may take: the on-sale's `max_per_buyer`.
    pub per_buyer: u32,
}

/// Whether an event in `status` may sell at all (its sale window aside): a draft is not
/// found, a cancelled or finished event refuses.
pub fn open_for_sale(status: EventStatus) -> Result<(), HoldError> {
    match status {
        EventStatus::Draft => Err(HoldError::EventNotFound),
        EventStatus::Cancelled => Err(HoldError::SaleNotOpen("the event is cancelled".into())),
        EventStatus::Completed => Err(HoldError::SaleNotOpen("the event is over".into())),
        _ => Ok(()),
    }
}

/// Groups `(key, value)` pairs by key, keys in the order they first appear.
pub fn group_by<K: PartialEq, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Vec<(K, Vec<V>)> {
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    for (key, value) in pairs {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => groups.push((key, vec![value])),
        }
    }
    groups
}
