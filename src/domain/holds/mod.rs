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
//!
//! The book also keeps the event's waitlists: tickets that come back (refunded, or left by
//! a hold that ended while nobody waits in the line) are offered, in join order, to the
//! buyers waiting for their tier or section, as exclusive holds that pass to the next
//! waiter when they end unbought (`waitlist`). What Postgres learns that the book must
//! hear of (refunds, joins) reaches it as numbered [`Note`]s, each taken once.
//!
//! The parts: [`types`] (what callers send and get back), this file (the book and how a
//! hold moves), `checkout` (a hold paid for), `placing` (where a seat request goes), `reads` (counts, demand, views and
//! mirror copies), `waitlist` (waiters, offers, returns).

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::event::EventStatus;
use super::hold_id::hold_id_for;
use super::seat_board::SeatChange;
use super::venue::{seat_label, SectionKind};
use super::FieldErrors;
use crate::views::{HeldSeat, HeldTier, HoldView};

mod checkout;
mod placing;
mod reads;
mod types;
mod waitlist;

pub use types::*;

#[cfg(test)]
mod tests;

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
    /// The waitlist entry this hold was offered to.
    offer: Option<Uuid>,
    /// It was given more time once already (a checkout failed while payments were degraded).
    extended: bool,
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
    /// Buyers waiting for tickets, in join order (those with an offer are not here).
    waiters: Vec<Waiter>,
    /// The last inbox note taken.
    inbox_seq: i64,
    /// Buyers waiting in the waiting room's line: while any do, what an ended hold leaves
    /// goes back on sale for them rather than to the waitlist.
    line_waiting: u64,
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
            waiters: Vec::new(),
            inbox_seq: 0,
            line_waiting: 0,
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
                    offer: saved.offer,
                    extended: false,
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
                    offer: None,
                    extended: false,
                };
                let view = self.view_of(hold_id, &hold);
                self.start_clock(hold_id, hold, now, &mut effects);
                Reservation::Held(view)
            }
            HoldRequest::Seats(seat_ids) => self.plan_seats(hold_id, seat_ids)?,
            HoldRequest::BestAvailable {
                section_id,
                price_cents,
                quantity,
            } => self.plan_best(hold_id, section_id, price_cents, quantity)?,
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
            offer: None,
            extended: false,
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
    pub fn release(
        &mut self,
        hold_id: Uuid,
        buyer_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Effects, HoldError> {
        let hold = self.own_hold(hold_id, buyer_id)?;
        if hold.status == HoldStatus::PaymentPending {
            return Err(HoldError::CheckoutInProgress);
        }
        let mut effects = Effects::new();
        self.end_hold(hold_id, Ended::Released, now, &mut effects);
        Ok(effects)
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
                self.end_hold(hold_id, Ended::Expired, now, &mut effects);
            }
        }
        for (_, hold_id) in take_due(&mut self.warnings, now) {
            if let Some(hold) = self.holds.get(&hold_id) {
                // (A hold given more time since has a later warning of its own.)
                if hold.status == HoldStatus::Held
                    && hold.expires_at - self.rules.hold_warning <= now
                {
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

    fn deadline(&self, now: DateTime<Utc>, not_after: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let usual = now + self.rules.hold_duration;
        not_after.map_or(usual, |cap| usual.min(cap))
    }

    fn tier_effect(&self, index: usize) -> Effect {
        let tier = &self.tiers[index];
        Effect::Tier {
            tier: index,
            counts: crate::domain::live_map::TierCounts {
                available: tier.available(),
                held: tier.held,
                sold: tier.sold,
            },
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
        let event = if hold.offer.is_some() {
            HoldEvent::Offered
        } else {
            HoldEvent::Held
        };
        effects.push(news(hold_id, &hold, event, None));
        self.holds.insert(hold_id, hold);
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
