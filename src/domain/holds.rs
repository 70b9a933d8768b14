//! The hold book: the holds of one on-sale, as plain data. It owns what the sale promises
//! buyers and nothing else — the holds and their deadlines, the GA tier counters, the free
//! seats of each section, each buyer's holds and tickets against their limits, the sale
//! window and the event's status, and a memory of ended holds (to answer "expired" or "already
//! bought" rather than "not found").
//!
//! Who calls it: [`crate::actors::event::EventActor`], the one writer, which serializes
//! requests through its mailbox, passes the time in, and carries out the [`Effect`]s each
//! call returns, in their order. The tests here drive it the same way, with real
//! [`SeatBoard`]s standing in for the section actors.
//!
//! What it never does: read the clock, await, touch Postgres, Redis or a socket, or decide
//! which seats of a section are free (the section's [`SeatBoard`] decides; the book only
//! keeps the count of free seats that placements report back through
//! [`HoldBook::confirm`]).
//!
//! A seat hold takes three steps because its seats live on other boards: [`HoldBook::reserve`]
//! checks the request against the sale and the buyer's limits and answers where to place
//! it; the caller holds the seats on the boards; then [`HoldBook::confirm`] starts the
//! hold's clock, or [`HoldBook::abort`] gives back what `reserve` counted. A GA tier hold is
//! done in `reserve`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::event::EventStatus;
use super::hold_id::hold_id_for;
use super::seat_board::SeatChange;
use super::venue::{seat_label, SectionKind};
use super::FieldErrors;
use crate::views::{HeldSeat, HeldTier, HoldView};

#[cfg(test)]
mod tests;

/// How many ended holds are remembered, to answer "expired" rather than "not found".
pub const ENDED_MEMORY: usize = 200_000;

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
    /// Tier `tier` (its index) has `available` tickets left.
    Tier { tier: usize, available: u32 },
    /// Tell the holder.
    News(HoldNews),
    /// Keep this hold outside the process.
    Mirror(MirroredHold),
    /// Forget the kept copy of this hold.
    Unmirror(Uuid),
    /// The event's status moved: record it, from `from` to `to`.
    Status { from: EventStatus, to: EventStatus },
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
    fn placeable(&self) -> bool {
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

#[derive(Debug, Clone)]
enum Lines {
    /// Positions per section index.
    Seats(Vec<(usize, Vec<u32>)>),
    Tier {
        index: usize,
        quantity: u32,
    },
}

impl Lines {
    /// How many tickets (seats, or GA tickets) the lines make.
    fn tickets(&self) -> u32 {
        match self {
            Lines::Seats(lines) => lines.iter().map(|(_, p)| p.len() as u32).sum(),
            Lines::Tier { quantity, .. } => *quantity,
        }
    }
}

#[derive(Debug, Clone)]
struct Hold {
    buyer_id: Uuid,
    lines: Lines,
    expires_at: DateTime<Utc>,
    status: HoldStatus,
}

/// A seat hold `reserve` counted whose seats are being placed.
#[derive(Debug, Clone, Copy)]
struct Pending {
    buyer_id: Uuid,
    not_after: Option<DateTime<Utc>>,
    tickets: u32,
}

#[derive(Debug, Clone, Copy)]
enum Ended {
    Expired,
    Released,
    Purchased(Uuid),
}

/// Per-buyer counts: live holds (placed or being placed), tickets in them, tickets bought.
#[derive(Debug, Clone, Copy, Default)]
struct Buyer {
    holds: u32,
    held: u32,
    bought: u32,
}

impl Buyer {
    fn has(&self) -> u32 {
        self.held + self.bought
    }
}

pub struct HoldBook {
    event_id: Uuid,
    currency: String,
    status: EventStatus,
    rules: SaleRules,
    sections: Vec<BookSection>,
    seat_index: HashMap<Uuid, (usize, u32)>,
    tiers: Vec<BookTier>,
    holds: HashMap<Uuid, Hold>,
    pending: HashMap<Uuid, Pending>,
    buyers: HashMap<Uuid, Buyer>,
    deadlines: BTreeSet<(DateTime<Utc>, Uuid)>,
    warnings: BTreeSet<(DateTime<Utc>, Uuid)>,
    ended: HashMap<Uuid, Ended>,
    ended_order: VecDeque<Uuid>,
    ended_memory: usize,
}

impl HoldBook {
    pub fn new(
        event_id: Uuid,
        currency: String,
        status: EventStatus,
        rules: SaleRules,
        sections: Vec<BookSection>,
        tiers: Vec<BookTier>,
    ) -> HoldBook {
        let mut seat_index = HashMap::new();
        for (i, section) in sections.iter().enumerate() {
            for (position, seat) in section.seats.iter().enumerate() {
                seat_index.insert(seat.seat_id, (i, position as u32));
            }
        }
        HoldBook {
            event_id,
            currency,
            status,
            rules,
            sections,
            seat_index,
            tiers,
            holds: HashMap::new(),
            pending: HashMap::new(),
            buyers: HashMap::new(),
            deadlines: BTreeSet::new(),
            warnings: BTreeSet::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            ended_memory: ENDED_MEMORY,
        }
    }

    /// Remembers at most `holds` ended holds (tests make it small).
    pub fn with_ended_memory(mut self, holds: usize) -> HoldBook {
        self.ended_memory = holds;
        self
    }

    /// Tickets each buyer bought before the book started (from Postgres).
    pub fn with_bought(mut self, bought: HashMap<Uuid, u32>) -> HoldBook {
        for (buyer_id, tickets) in bought {
            self.buyers.entry(buyer_id).or_default().bought += tickets;
        }
        self
    }

    pub fn status(&self) -> EventStatus {
        self.status
    }

    pub fn sections(&self) -> &[BookSection] {
        &self.sections
    }

    pub fn tiers(&self) -> &[BookTier] {
        &self.tiers
    }

    /// Takes back holds a previous run mirrored, their seats already held on the boards
    /// (and so not counted in the sections' `free`).
    /// A tier hold that no longer fits its tier is dropped (and unmirrored). Restored holds
    /// are not announced: nobody listens yet.
    pub fn restore(&mut self, saved: Vec<MirroredHold>) -> Effects {
        let mut effects = Effects::new();
        for saved in saved {
            let lines = match saved.tier {
                Some((tier_id, quantity)) => {
                    let Some(index) = self.tiers.iter().position(|t| t.tier_id == tier_id) else {
                        effects.push(Effect::Unmirror(saved.hold_id));
                        continue;
                    };
                    if self.tiers[index].available() < quantity {
                        effects.push(Effect::Unmirror(saved.hold_id));
                        continue;
                    }
                    self.tiers[index].held += quantity;
                    Lines::Tier { index, quantity }
                }
                None => {
                    // (The sections' free counts were taken from boards that hold these
                    // seats already.)
                    Lines::Seats(group_by(saved.seats.iter().filter_map(|(id, position)| {
                        let index = self.sections.iter().position(|s| s.section_id == *id)?;
                        Some((index, *position))
                    })))
                }
            };
            let buyer = self.buyers.entry(saved.buyer_id).or_default();
            buyer.holds += 1;
            buyer.held += lines.tickets();
            self.deadlines.insert((saved.expires_at, saved.hold_id));
            self.holds.insert(
                saved.hold_id,
                Hold {
                    buyer_id: saved.buyer_id,
                    lines,
                    expires_at: saved.expires_at,
                    status: HoldStatus::Held,
                },
            );
        }
        effects
    }

    /// Whether the sale takes holds at `now`.
    pub fn sale_open(&self, now: DateTime<Utc>) -> Result<(), HoldError> {
        open_for_sale(self.status)?;
        if now < self.rules.sale_starts_at {
            return Err(HoldError::SaleNotOpen(format!(
                "the sale opens at {}",
                self.rules.sale_starts_at.to_rfc3339()
            )));
        }
        if now >= self.rules.sale_ends_at {
            return Err(HoldError::SaleNotOpen("the sale has ended".into()));
        }
        Ok(())
    }

    /// Checks a hold request against the sale and the buyer's limits and reserves a hold
    /// id for it. A tier hold is held at once; a seat hold is counted against the buyer
    /// and answered with where to place it, for [`HoldBook::confirm`] or
    /// [`HoldBook::abort`] to finish. The hold ends by `not_after` at the latest (the
    /// buyer's shopping window closes).
    pub fn reserve(
        &mut self,
        buyer_id: Uuid,
        request: HoldRequest,
        not_after: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(Reservation, Effects), HoldError> {
        self.sale_open(now)?;
        let buyer = self.buyers.get(&buyer_id).copied().unwrap_or_default();
        if buyer.holds >= self.rules.max_holds_per_buyer {
            return Err(HoldError::TooManyHolds(self.rules.max_holds_per_buyer));
        }
        let requested = match &request {
            HoldRequest::Tier { quantity, .. } | HoldRequest::BestAvailable { quantity, .. } => {
                *quantity
            }
            HoldRequest::Seats(ids) => u32::try_from(ids.len()).unwrap_or(u32::MAX),
        };
        // (A request over the per-order limit is refused as such further on.)
        if requested <= self.rules.max_per_order
            && buyer.has().saturating_add(requested) > self.rules.max_per_buyer
        {
            return Err(HoldError::BuyerLimitExceeded {
                limit: self.rules.max_per_buyer,
                has: buyer.has(),
            });
        }
        let hold_id = hold_id_for(self.event_id);
        let mut effects = Effects::new();
        let reservation = match request {
            HoldRequest::Tier { tier_id, quantity } => {
                let index = self.reserve_tier(tier_id, quantity, now)?;
                effects.push(self.tier_effect(index));
                let hold = Hold {
                    buyer_id,
                    lines: Lines::Tier { index, quantity },
                    expires_at: self.deadline(now, not_after),
                    status: HoldStatus::Held,
                };
                let view = self.view_of(hold_id, &hold);
                self.start_clock(hold_id, hold, now, &mut effects);
                Reservation::Held(view)
            }
            HoldRequest::Seats(seat_ids) => self.plan_seats(hold_id, seat_ids)?,
            HoldRequest::BestAvailable {
                section_id,
                quantity,
            } => self.plan_best(hold_id, section_id, quantity)?,
        };
        if !matches!(reservation, Reservation::Held(_)) {
            let pending = Pending {
                buyer_id,
                not_after,
                tickets: requested,
            };
            self.pending.insert(hold_id, pending);
        }
        let buyer = self.buyers.entry(buyer_id).or_default();
        buyer.holds += 1;
        buyer.held += requested;
        Ok((reservation, effects))
    }

    /// Takes `quantity` tickets of a tier; answers the tier's index.
    fn reserve_tier(
        &mut self,
        tier_id: Uuid,
        quantity: u32,
        now: DateTime<Utc>,
    ) -> Result<usize, HoldError> {
        let index = self
            .tiers
            .iter()
            .position(|t| t.tier_id == tier_id)
            .ok_or_else(|| {
                HoldError::Invalid(FieldErrors::single("tier_id", "not a tier of this event"))
            })?;
        let tier = &mut self.tiers[index];
        if quantity == 0 {
            return Err(HoldError::Invalid(FieldErrors::single(
                "quantity",
                "must be at least 1",
            )));
        }
        let max = tier.max_per_order.min(self.rules.max_per_order);
        if quantity > max {
            return Err(HoldError::MaxPerOrderExceeded(max));
        }
        if tier.sale_starts_at.is_some_and(|t| now < t)
            || tier.sale_ends_at.is_some_and(|t| now >= t)
        {
            return Err(HoldError::SaleNotOpen(format!(
                "tier {} is not on sale now",
                tier.name
            )));
        }
        if tier.available() < quantity {
            return Err(HoldError::SoldOut);
        }
        tier.held += quantity;
        Ok(index)
    }

    fn plan_seats(&self, hold_id: Uuid, seat_ids: Vec<Uuid>) -> Result<Reservation, HoldError> {
        if seat_ids.is_empty() {
            return Err(HoldError::Invalid(FieldErrors::single(
                "seat_ids",
                "name at least one seat",
            )));
        }
        if seat_ids.len() > self.rules.max_per_order as usize {
            return Err(HoldError::MaxPerOrderExceeded(self.rules.max_per_order));
        }
        let mut seen = HashSet::new();
        let twice = listed(seat_ids.iter().filter(|id| !seen.insert(**id)));
        if !twice.is_empty() {
            return Err(HoldError::Invalid(FieldErrors::single(
                "seat_ids",
                format!("seats named twice: {twice}"),
            )));
        }
        let unknown = listed(
            seat_ids
                .iter()
                .filter(|id| !self.seat_index.contains_key(id)),
        );
        if !unknown.is_empty() {
            return Err(HoldError::Invalid(FieldErrors::single(
                "seat_ids",
                format!("not seats of this event: {unknown}"),
            )));
        }
        let (on_sale, not_on_sale): (Vec<Uuid>, Vec<Uuid>) = seat_ids
            .into_iter()
            .partition(|id| self.sections[self.seat_index[id].0].placeable());
        if !not_on_sale.is_empty() {
            return Err(HoldError::SeatUnavailable(not_on_sale));
        }
        let steps = group_by(on_sale.into_iter().map(|id| {
            let (section, position) = self.seat_index[&id];
            (section, (position, id))
        }))
        .into_iter()
        .map(|(section, seats)| {
            let (positions, seat_ids) = seats.into_iter().unzip();
            SeatStep {
                section,
                positions,
                seat_ids,
            }
        })
        .collect();
        Ok(Reservation::Exact { hold_id, steps })
    }

    fn plan_best(
        &self,
        hold_id: Uuid,
        section_id: Option<Uuid>,
        quantity: u32,
    ) -> Result<Reservation, HoldError> {
        if quantity == 0 {
            return Err(HoldError::Invalid(FieldErrors::single(
                "best_available.quantity",
                "must be at least 1",
            )));
        }
        if quantity > self.rules.max_per_order {
            return Err(HoldError::MaxPerOrderExceeded(self.rules.max_per_order));
        }
        let mut candidates: Vec<usize> = match section_id {
            Some(id) => {
                let index = self
                    .sections
                    .iter()
                    .position(|s| s.section_id == id && s.placeable())
                    .ok_or_else(|| {
                        HoldError::Invalid(FieldErrors::single(
                            "best_available.section_id",
                            "not a seated section on sale",
                        ))
                    })?;
                vec![index]
            }
            // Best seats first: the dearest sections, then the map's order.
            None => {
                let mut all: Vec<usize> = (0..self.sections.len())
                    .filter(|&i| self.sections[i].placeable())
                    .collect();
                all.sort_by_key(|&i| std::cmp::Reverse(self.sections[i].price_cents.unwrap_or(0)));
                all
            }
        };
        candidates.retain(|&i| self.sections[i].free >= quantity);
        if candidates.is_empty() {
            return Err(HoldError::SoldOut);
        }
        Ok(Reservation::Best {
            hold_id,
            quantity,
            candidates,
        })
    }

    /// The seats of a reserved hold are placed (positions per section index): the hold
    /// starts its clock at `now`.
    pub fn confirm(
        &mut self,
        hold_id: Uuid,
        placed: Vec<(usize, Vec<u32>)>,
        now: DateTime<Utc>,
    ) -> Result<(HoldView, Effects), HoldError> {
        let pending = self
            .pending
            .remove(&hold_id)
            .ok_or(HoldError::HoldNotFound)?;
        for (index, positions) in &placed {
            if let Some(section) = self.sections.get_mut(*index) {
                section.free = section.free.saturating_sub(positions.len() as u32);
            }
        }
        let hold = Hold {
            buyer_id: pending.buyer_id,
            lines: Lines::Seats(placed),
            expires_at: self.deadline(now, pending.not_after),
            status: HoldStatus::Held,
        };
        let view = self.view_of(hold_id, &hold);
        let mut effects = Effects::new();
        self.start_clock(hold_id, hold, now, &mut effects);
        Ok((view, effects))
    }

    /// A reserved hold whose seats could not be placed (the caller gave back what it took).
    pub fn abort(&mut self, hold_id: Uuid) {
        if let Some(pending) = self.pending.remove(&hold_id) {
            self.buyer_done(pending.buyer_id, pending.tickets);
        }
    }

    /// The buyer's live hold as it stands.
    pub fn get(&self, hold_id: Uuid, buyer_id: Uuid) -> Result<HoldView, HoldError> {
        let hold = self.own_hold(hold_id, buyer_id)?;
        Ok(self.view_of(hold_id, hold))
    }

    /// The buyer lets go of a hold that is not being paid for.
    pub fn release(&mut self, hold_id: Uuid, buyer_id: Uuid) -> Result<Effects, HoldError> {
        let hold = self.own_hold(hold_id, buyer_id)?;
        if hold.status == HoldStatus::PaymentPending {
            return Err(HoldError::CheckoutInProgress);
        }
        let mut effects = Effects::new();
        self.end_hold(hold_id, Ended::Released, &mut effects);
        Ok(effects)
    }

    /// HELD → PAYMENT_PENDING: from now on the hold cannot expire until the payment ends. A
    /// hold already past its deadline expires here instead (the error comes with the
    /// effects of its expiry), and no payment starts.
    pub fn begin_checkout(
        &mut self,
        hold_id: Uuid,
        buyer_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(HoldView, Effects), (HoldError, Effects)> {
        let hold = self
            .own_hold(hold_id, buyer_id)
            .map_err(|e| (e, Effects::new()))?;
        if hold.status == HoldStatus::PaymentPending {
            return Err((HoldError::CheckoutInProgress, Effects::new()));
        }
        let mut effects = Effects::new();
        if hold.expires_at <= now {
            self.end_hold(hold_id, Ended::Expired, &mut effects);
            return Err((HoldError::HoldExpired, effects));
        }
        let Some(hold) = self.holds.get_mut(&hold_id) else {
            return Err((HoldError::HoldNotFound, effects));
        };
        hold.status = HoldStatus::PaymentPending;
        let hold = &self.holds[&hold_id];
        seat_effects(hold_id, &hold.lines, SeatChange::BeginPayment, &mut effects);
        effects.push(news(hold_id, hold, HoldEvent::PaymentPending, None));
        Ok((self.view_of(hold_id, hold), effects))
    }

    /// The payment did not go through: PAYMENT_PENDING → HELD until the original deadline
    /// (expiring at the next sweep if that has passed).
    pub fn cancel_checkout(&mut self, hold_id: Uuid) -> Effects {
        let mut effects = Effects::new();
        let Some(hold) = self.holds.get_mut(&hold_id) else {
            return effects;
        };
        if hold.status != HoldStatus::PaymentPending {
            return effects;
        }
        hold.status = HoldStatus::Held;
        self.deadlines.insert((hold.expires_at, hold_id));
        let hold = &self.holds[&hold_id];
        seat_effects(
            hold_id,
            &hold.lines,
            SeatChange::CancelPayment,
            &mut effects,
        );
        effects.push(news(hold_id, hold, HoldEvent::Held, None));
        effects
    }

    /// The order is durable: the hold's seats and tickets are sold.
    pub fn finish_checkout(
        &mut self,
        hold_id: Uuid,
        order_id: Uuid,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut effects = Effects::new();
        let Some(hold) = self.holds.remove(&hold_id) else {
            return effects;
        };
        effects.push(news(hold_id, &hold, HoldEvent::Confirmed, Some(order_id)));
        self.deadlines.remove(&(hold.expires_at, hold_id));
        seat_effects(hold_id, &hold.lines, SeatChange::Sell, &mut effects);
        if let Lines::Tier { index, quantity } = hold.lines {
            let tier = &mut self.tiers[index];
            tier.held -= quantity;
            tier.sold += quantity;
            effects.push(self.tier_effect(index));
        }
        let tickets = hold.lines.tickets();
        self.buyer_done(hold.buyer_id, tickets);
        self.buyers.entry(hold.buyer_id).or_default().bought += tickets;
        self.remember(hold_id, Ended::Purchased(order_id));
        effects.push(Effect::Unmirror(hold_id));
        effects.extend(self.update_status(now));
        effects
    }

    /// Expires what is due at `now`, warns holders whose deadline is near, and moves the
    /// event's status with the sale.
    pub fn sweep(&mut self, now: DateTime<Utc>) -> Effects {
        let mut effects = Effects::new();
        for (_, hold_id) in take_due(&mut self.deadlines, now) {
            if self
                .holds
                .get(&hold_id)
                .is_some_and(|h| h.status == HoldStatus::Held && h.expires_at <= now)
            {
                self.end_hold(hold_id, Ended::Expired, &mut effects);
            }
        }
        for (_, hold_id) in take_due(&mut self.warnings, now) {
            if let Some(hold) = self.holds.get(&hold_id) {
                if hold.status == HoldStatus::Held {
                    effects.push(news(hold_id, hold, HoldEvent::ExpiringSoon, None));
                }
            }
        }
        effects.extend(self.update_status(now));
        effects
    }

    /// The event's status in step with the sale at `now`: PUBLISHED → ON_SALE once the
    /// sale opens, ON_SALE ⇄ SOLD_OUT as the last seat is sold or comes back.
    pub fn update_status(&mut self, now: DateTime<Utc>) -> Option<Effect> {
        let free: u32 = self.sections.iter().map(|s| s.free).sum::<u32>()
            + self.tiers.iter().map(BookTier::available).sum::<u32>();
        let next = match self.status {
            EventStatus::Published if now >= self.rules.sale_starts_at => EventStatus::OnSale,
            EventStatus::OnSale
                if free == 0 && self.holds.is_empty() && self.pending.is_empty() =>
            {
                EventStatus::SoldOut
            }
            EventStatus::SoldOut if free > 0 => EventStatus::OnSale,
            _ => return None,
        };
        let from = std::mem::replace(&mut self.status, next);
        Some(Effect::Status { from, to: next })
    }

    /// Every tier's count, for a live map that starts after the book.
    pub fn tier_effects(&self) -> Effects {
        (0..self.tiers.len()).map(|i| self.tier_effect(i)).collect()
    }

    pub fn counts(&self) -> EventCounts {
        EventCounts {
            sections: self
                .sections
                .iter()
                .map(|s| {
                    let free = match s.kind {
                        SectionKind::Seated => s.free,
                        SectionKind::GeneralAdmission => self
                            .tiers
                            .iter()
                            .filter(|t| t.section_id == s.section_id)
                            .map(BookTier::available)
                            .sum(),
                    };
                    (s.section_id, free)
                })
                .collect(),
            tiers: self
                .tiers
                .iter()
                .map(|t| (t.tier_id, t.available()))
                .collect(),
            active_holds: self.holds.len(),
            holders: self.buyers.values().filter(|b| b.holds > 0).count(),
        }
    }

    /// What is left, and what the given shoppers (buyers whose shopping window is open)
    /// may still buy: each their `max_per_buyer` less what they hold and have bought.
    pub fn demand(&self, shoppers: &[Uuid]) -> Demand {
        let counts = self.counts();
        let limit = self.rules.max_per_buyer;
        let promised = shoppers
            .iter()
            .map(|buyer| {
                let has = self.buyers.get(buyer).map_or(0, Buyer::has);
                u64::from(limit.saturating_sub(has))
            })
            .sum();
        Demand {
            available: counts.sections.iter().map(|(_, n)| u64::from(*n)).sum(),
            holders: counts.holders as u64,
            promised,
            per_buyer: limit,
        }
    }

    /// The live holds as they would be mirrored (tests compare a restore with them).
    pub fn mirrored(&self) -> Vec<MirroredHold> {
        let mut holds: Vec<MirroredHold> = self
            .holds
            .iter()
            .map(|(id, hold)| self.mirrored_of(*id, hold))
            .collect();
        holds.sort_by_key(|h| h.hold_id);
        holds
    }

    fn deadline(&self, now: DateTime<Utc>, not_after: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let usual = now + self.rules.hold_duration;
        not_after.map_or(usual, |cap| usual.min(cap))
    }

    fn tier_effect(&self, index: usize) -> Effect {
        Effect::Tier {
            tier: index,
            available: self.tiers[index].available(),
        }
    }

    /// A new hold: its clock starts, it is mirrored, its holder hears of it.
    fn start_clock(
        &mut self,
        hold_id: Uuid,
        hold: Hold,
        now: DateTime<Utc>,
        effects: &mut Effects,
    ) {
        self.deadlines.insert((hold.expires_at, hold_id));
        let warn_at = hold.expires_at - self.rules.hold_warning;
        if self.rules.hold_warning > Duration::zero() && warn_at > now {
            self.warnings.insert((warn_at, hold_id));
        }
        effects.push(Effect::Mirror(self.mirrored_of(hold_id, &hold)));
        effects.push(news(hold_id, &hold, HoldEvent::Held, None));
        self.holds.insert(hold_id, hold);
    }

    /// Ends a hold that is not being paid for: seats and counts go back to the sale.
    fn end_hold(&mut self, hold_id: Uuid, how: Ended, effects: &mut Effects) {
        let Some(hold) = self.holds.remove(&hold_id) else {
            return;
        };
        let event = match how {
            Ended::Expired => HoldEvent::Expired,
            Ended::Released | Ended::Purchased(_) => HoldEvent::Released,
        };
        effects.push(news(hold_id, &hold, event, None));
        self.deadlines.remove(&(hold.expires_at, hold_id));
        seat_effects(hold_id, &hold.lines, SeatChange::Release, effects);
        match &hold.lines {
            Lines::Seats(lines) => {
                for (index, positions) in lines {
                    self.sections[*index].free += positions.len() as u32;
                }
            }
            Lines::Tier { index, quantity } => {
                self.tiers[*index].held -= quantity;
                effects.push(self.tier_effect(*index));
            }
        }
        self.buyer_done(hold.buyer_id, hold.lines.tickets());
        self.remember(hold_id, how);
        effects.push(Effect::Unmirror(hold_id));
    }

    /// A hold of `tickets` ended (released, expired, aborted or bought).
    fn buyer_done(&mut self, buyer_id: Uuid, tickets: u32) {
        if let Some(buyer) = self.buyers.get_mut(&buyer_id) {
            buyer.holds = buyer.holds.saturating_sub(1);
            buyer.held = buyer.held.saturating_sub(tickets);
            if buyer.holds == 0 && buyer.held == 0 && buyer.bought == 0 {
                self.buyers.remove(&buyer_id);
            }
        }
    }

    fn remember(&mut self, hold_id: Uuid, how: Ended) {
        if self.ended.insert(hold_id, how).is_none() {
            self.ended_order.push_back(hold_id);
        }
        while self.ended_order.len() > self.ended_memory {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
    }

    /// The buyer's live hold: `NotYourHold` for another buyer's, and for an ended one why it
    /// ended (expired, bought) or `HoldNotFound`.
    fn own_hold(&self, hold_id: Uuid, buyer_id: Uuid) -> Result<&Hold, HoldError> {
        let hold = self
            .holds
            .get(&hold_id)
            .ok_or_else(|| match self.ended.get(&hold_id) {
                Some(Ended::Expired) => HoldError::HoldExpired,
                Some(Ended::Purchased(order_id)) => HoldError::AlreadyPurchased(*order_id),
                Some(Ended::Released) | None => HoldError::HoldNotFound,
            })?;
        if hold.buyer_id != buyer_id {
            return Err(HoldError::NotYourHold);
        }
        Ok(hold)
    }

    fn mirrored_of(&self, hold_id: Uuid, hold: &Hold) -> MirroredHold {
        let (seats, tier) = match &hold.lines {
            Lines::Seats(lines) => (
                lines
                    .iter()
                    .flat_map(|(i, positions)| {
                        positions.iter().map(|p| (self.sections[*i].section_id, *p))
                    })
                    .collect(),
                None,
            ),
            Lines::Tier { index, quantity } => {
                (Vec::new(), Some((self.tiers[*index].tier_id, *quantity)))
            }
        };
        MirroredHold {
            hold_id,
            buyer_id: hold.buyer_id,
            expires_at: hold.expires_at,
            seats,
            tier,
        }
    }

    fn view_of(&self, hold_id: Uuid, hold: &Hold) -> HoldView {
        let mut seats = Vec::new();
        let mut tier = None;
        match &hold.lines {
            Lines::Seats(lines) => {
                for (index, positions) in lines {
                    let section = &self.sections[*index];
                    for &p in positions {
                        if let Some(seat) = section.seats.get(p as usize) {
                            seats.push(HeldSeat {
                                seat_id: seat.seat_id,
                                section_id: section.section_id,
                                label: format!(
                                    "{} {}",
                                    section.name,
                                    seat_label(&seat.row_label, seat.seat_number)
                                ),
                                price_cents: section.price_cents.unwrap_or(0),
                            });
                        }
                    }
                }
            }
            Lines::Tier { index, quantity } => {
                let t = &self.tiers[*index];
                tier = Some(HeldTier {
                    tier_id: t.tier_id,
                    section_id: t.section_id,
                    name: t.name.clone(),
                    quantity: *quantity,
                    price_cents: t.price_cents,
                });
            }
        }
        let quantity = tier.as_ref().map_or(seats.len() as u32, |t| t.quantity);
        let total_cents = seats.iter().map(|s| s.price_cents).sum::<i64>()
            + tier
                .as_ref()
                .map_or(0, |t| t.price_cents * i64::from(t.quantity));
        HoldView {
            hold_id,
            event_id: self.event_id,
            status: hold.status,
            seats,
            tier,
            quantity,
            total_cents,
            currency: self.currency.clone(),
            expires_at: hold.expires_at,
            buyer_id: hold.buyer_id,
        }
    }
}

fn news(hold_id: Uuid, hold: &Hold, status: HoldEvent, order_id: Option<Uuid>) -> Effect {
    Effect::News(HoldNews {
        buyer_id: hold.buyer_id,
        hold_id,
        status,
        expires_at: hold.expires_at,
        order_id,
    })
}

/// A seat change for every section of the hold.
fn seat_effects(hold_id: Uuid, lines: &Lines, change: SeatChange, effects: &mut Effects) {
    if let Lines::Seats(lines) = lines {
        for (section, positions) in lines {
            effects.push(Effect::Seats {
                section: *section,
                hold_id,
                positions: positions.clone(),
                change,
            });
        }
    }
}

/// Takes the entries of `set` due at `now` out of it.
fn take_due(
    set: &mut BTreeSet<(DateTime<Utc>, Uuid)>,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Uuid)> {
    let due: Vec<(DateTime<Utc>, Uuid)> = set.range(..=(now, Uuid::max())).copied().collect();
    for entry in &due {
        set.remove(entry);
    }
    due
}

fn listed<'a>(ids: impl Iterator<Item = &'a Uuid>) -> String {
    ids.map(Uuid::to_string).collect::<Vec<_>>().join(", ")
}
