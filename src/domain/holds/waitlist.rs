//! Waitlists and what comes back: refunded tickets, and tickets a hold leaves when it ends.
//!
//! Whatever comes back is offered first to the buyers waiting for its tier or section, in
//! the order they joined: the first waiter whose quantity fits what came back (and whose
//! per-buyer limit has room) gets an exclusive hold of it for the on-sale's offer duration.
//! A waiter asking for more than came back keeps their place for a larger return. The
//! tickets pass from the old owner to the offer without ever being free in between (a
//! refunded seat goes SOLD → HELD, an ended hold's seat HELD → HELD), so nobody else can
//! take them. An offer that ends unbought passes on the same way; what no waiter takes goes
//! back on sale.
//!
//! What an ended ordinary hold leaves goes to the waitlist only while nobody waits in the
//! waiting room's line: the line, admitted in its order, has it first. Seats the organizer
//! takes out of the blocked ones (camera positions, house seats) go to the waitlist first
//! too.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{news, seat_effects, Effect, Effects, Ended, Hold, HoldBook, HoldEvent, HoldStatus};
use super::{Lines, Note, Offer, OfferEnd, WaitFor, Waiter};
use crate::domain::hold_id::hold_id_for;
use crate::domain::seat_board::SeatChange;

/// Where tickets that come back are coming from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Sold, and refunded.
    Sold,
    /// Blocked, and put on sale by the organizer.
    Blocked,
    /// Held by this hold, which ended.
    Hold(Uuid),
}

impl HoldBook {
    /// Buyers waiting when the book starts (in join order), and the last inbox note the
    /// state it starts from already includes.
    pub fn with_waiters(mut self, waiters: Vec<Waiter>, inbox_seq: i64) -> HoldBook {
        self.waiters = waiters;
        self.inbox_seq = inbox_seq;
        self
    }

    /// The last inbox note taken.
    pub fn inbox_seq(&self) -> i64 {
        self.inbox_seq
    }

    /// Buyers waiting (offers aside), in join order.
    pub fn waiters(&self) -> &[Waiter] {
        &self.waiters
    }

    /// How many buyers wait in the waiting room's line now.
    pub fn set_line_waiting(&mut self, waiting: u64) {
        self.line_waiting = waiting;
    }

    /// Takes inbox note `seq` if it is newer than the last one taken (notes come again
    /// when two catch-ups overlap: each is taken once).
    pub fn note(&mut self, seq: i64, note: Note, now: DateTime<Utc>) -> Effects {
        let mut effects = Effects::new();
        if seq <= self.inbox_seq {
            return effects;
        }
        self.inbox_seq = seq;
        match note {
            Note::Joined(waiter) => {
                let known = self.waiters.iter().any(|w| w.entry_id == waiter.entry_id)
                    || self
                        .holds
                        .values()
                        .any(|h| h.offer == Some(waiter.entry_id));
                if !known {
                    self.waiters.push(waiter);
                }
            }
            Note::Left { entry_id } => {
                self.waiters.retain(|w| w.entry_id != entry_id);
                let offered = self
                    .holds
                    .iter()
                    .find(|(_, h)| h.offer == Some(entry_id) && h.status == HoldStatus::Held)
                    .map(|(id, _)| *id);
                if let Some(hold_id) = offered {
                    self.end_hold(hold_id, Ended::Released, now, &mut effects);
                }
            }
            Note::Returned {
                buyer_id,
                seats,
                tiers,
            } => self.give_back(buyer_id, &seats, &tiers, now, &mut effects),
            Note::Unblocked { seats } => {
                for (index, mut positions) in self.positions_of(&seats) {
                    positions.sort_unstable();
                    self.pass_seats(index, positions, Source::Blocked, now, &mut effects);
                }
            }
        }
        effects.extend(self.update_status(now));
        effects
    }

    /// Refunded tickets come back: the buyer has them no longer, and they go to the
    /// waitlist first, then on sale.
    fn give_back(
        &mut self,
        buyer_id: Uuid,
        seats: &[Uuid],
        tiers: &[(Uuid, u32)],
        now: DateTime<Utc>,
        effects: &mut Effects,
    ) {
        let mut returned = 0;
        for (index, mut positions) in self.positions_of(seats) {
            positions.sort_unstable();
            returned += positions.len() as u32;
            self.pass_seats(index, positions, Source::Sold, now, effects);
        }
        for &(tier_id, quantity) in tiers {
            let Some(index) = self.tiers.iter().position(|t| t.tier_id == tier_id) else {
                continue;
            };
            let quantity = quantity.min(self.tiers[index].sold);
            self.tiers[index].sold -= quantity;
            returned += quantity;
            self.pass_tier(index, quantity, now, effects);
        }
        if let Some(buyer) = self.buyers.get_mut(&buyer_id) {
            buyer.bought = buyer.bought.saturating_sub(returned);
        }
    }

    /// The positions of `seats` that are in sections on sale, by section index.
    fn positions_of(&self, seats: &[Uuid]) -> Vec<(usize, Vec<u32>)> {
        super::group_by(
            seats
                .iter()
                .filter_map(|id| self.seat_index.get(id).copied())
                .filter(|(i, _)| self.sections[*i].placeable()),
        )
    }

    /// Ends a hold that is not being paid for: its tickets go to the waitlist (an offer's
    /// always; an ordinary hold's while nobody waits in the line), the rest back on sale.
    pub(super) fn end_hold(
        &mut self,
        hold_id: Uuid,
        how: Ended,
        now: DateTime<Utc>,
        effects: &mut Effects,
    ) {
        let Some(hold) = self.holds.remove(&hold_id) else {
            return;
        };
        let event = match how {
            Ended::Expired => HoldEvent::Expired,
            Ended::Released | Ended::Purchased(_) => HoldEvent::Released,
        };
        effects.push(news(hold_id, &hold, event, None));
        if let Some(entry_id) = hold.offer {
            let how = match how {
                Ended::Expired => OfferEnd::Expired,
                _ => OfferEnd::Declined,
            };
            effects.push(Effect::OfferEnded { entry_id, how });
        }
        self.deadlines.remove(&(hold.expires_at, hold_id));
        self.buyer_done(hold.buyer_id, hold.lines.tickets());
        self.remember(hold_id, how);
        effects.push(Effect::Unmirror(hold_id));
        let to_waitlist = hold.offer.is_some() || self.line_waiting == 0;
        match hold.lines {
            Lines::Seats(lines) if to_waitlist => {
                for (index, positions) in lines {
                    self.pass_seats(index, positions, Source::Hold(hold_id), now, effects);
                }
            }
            Lines::Seats(lines) => {
                for (index, positions) in &lines {
                    self.sections[*index].free += positions.len() as u32;
                }
                seat_effects(hold_id, &Lines::Seats(lines), SeatChange::Release, effects);
            }
            Lines::Tier { index, quantity } => {
                self.tiers[index].held -= quantity;
                if to_waitlist {
                    self.pass_tier(index, quantity, now, effects);
                } else {
                    effects.push(self.tier_effect(index));
                }
            }
        }
    }

    /// Seats of section `index` coming back: offered to its waiters in order, the rest
    /// back on sale.
    fn pass_seats(
        &mut self,
        index: usize,
        mut positions: Vec<u32>,
        from: Source,
        now: DateTime<Utc>,
        effects: &mut Effects,
    ) {
        let wants = WaitFor::Section(self.sections[index].section_id);
        while let Some(waiter) = self.next_waiter(wants, positions.len() as u32) {
            let rest = positions.split_off(waiter.quantity as usize);
            let offered = std::mem::replace(&mut positions, rest);
            let hold_id = hold_id_for(self.event_id);
            let (old, change) = match from {
                Source::Sold => (hold_id, SeatChange::ReturnTo),
                Source::Blocked => (hold_id, SeatChange::UnblockTo),
                Source::Hold(old) => (old, SeatChange::HandOver(hold_id)),
            };
            effects.push(Effect::Seats {
                section: index,
                hold_id: old,
                positions: offered.clone(),
                change,
            });
            let seat_ids = offered
                .iter()
                .filter_map(|p| self.sections[index].seats.get(*p as usize))
                .map(|s| s.seat_id)
                .collect();
            let lines = Lines::Seats(vec![(index, offered)]);
            self.offer(waiter, hold_id, lines, seat_ids, now, effects);
        }
        if positions.is_empty() {
            return;
        }
        self.sections[index].free += positions.len() as u32;
        let (hold_id, change) = match from {
            Source::Sold => (Uuid::nil(), SeatChange::Return),
            Source::Blocked => (Uuid::nil(), SeatChange::Unblock),
            Source::Hold(old) => (old, SeatChange::Release),
        };
        effects.push(Effect::Seats {
            section: index,
            hold_id,
            positions,
            change,
        });
    }

    /// `quantity` tickets of tier `index` coming back (already out of its sold or held
    /// count): offered to its waiters in order, the rest back on sale.
    fn pass_tier(
        &mut self,
        index: usize,
        quantity: u32,
        now: DateTime<Utc>,
        effects: &mut Effects,
    ) {
        let wants = WaitFor::Tier(self.tiers[index].tier_id);
        let mut left = quantity;
        while let Some(waiter) = self.next_waiter(wants, left) {
            left -= waiter.quantity;
            self.tiers[index].held += waiter.quantity;
            let lines = Lines::Tier {
                index,
                quantity: waiter.quantity,
            };
            let hold_id = hold_id_for(self.event_id);
            self.offer(waiter, hold_id, lines, Vec::new(), now, effects);
        }
        effects.push(self.tier_effect(index));
    }

    /// Takes out of the waitlist the first waiter for `wants` who fits in `available`
    /// tickets and may have them under the per-buyer limit.
    fn next_waiter(&mut self, wants: WaitFor, available: u32) -> Option<Waiter> {
        let limit = self.rules.max_per_buyer;
        let i = self.waiters.iter().position(|w| {
            let has = self.buyers.get(&w.buyer_id).map_or(0, |b| b.has());
            w.wants == wants && w.quantity <= available && has + w.quantity <= limit
        })?;
        Some(self.waiters.remove(i))
    }

    /// An exclusive hold of `lines` for `waiter`, until the offer duration is up.
    fn offer(
        &mut self,
        waiter: Waiter,
        hold_id: Uuid,
        lines: Lines,
        seat_ids: Vec<Uuid>,
        now: DateTime<Utc>,
        effects: &mut Effects,
    ) {
        let expires_at = now + self.rules.offer_duration;
        effects.push(Effect::Offered(Offer {
            entry_id: waiter.entry_id,
            buyer_id: waiter.buyer_id,
            hold_id,
            expires_at,
            seat_ids,
            quantity: lines.tickets(),
        }));
        let buyer = self.buyers.entry(waiter.buyer_id).or_default();
        buyer.holds += 1;
        buyer.held += lines.tickets();
        let hold = Hold {
            buyer_id: waiter.buyer_id,
            lines,
            expires_at,
            status: HoldStatus::Held,
            offer: Some(waiter.entry_id),
            extended: false,
        };
        self.start_clock(hold_id, hold, now, effects);
    }
}
