//! The seat states of one section and every rule about changing them. The section actor
//! owns one board and applies each message to it whole; keeping the rules here, free of
//! actors, lets a property test check them against a simple model.
//!
//! Seats are indexed by their position in the section (the seat-map order). A seat moves
//! AVAILABLE → HELD → PAYMENT_PENDING → SOLD, or back to AVAILABLE on release or expiry,
//! or from PAYMENT_PENDING back to HELD when a payment is declined. A refunded SOLD seat
//! and a BLOCKED seat the organizer releases come back AVAILABLE, or HELD straight away for
//! a waitlist offer; nothing else leaves SOLD or BLOCKED. Every change names the hold it
//! belongs to, and a hold can change only its seats.

use std::ops::Range;

use uuid::Uuid;

/// One seat's state, one byte each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Seat {
    Available = 0,
    Held = 1,
    PaymentPending = 2,
    Sold = 3,
    Blocked = 4,
}

impl Seat {
    /// The state on the wire (`held` covers payment pending: to others it is just taken).
    pub fn wire(self) -> &'static str {
        match self {
            Seat::Available => "available",
            Seat::Held | Seat::PaymentPending => "held",
            Seat::Sold => "sold",
            Seat::Blocked => "blocked",
        }
    }

    /// One character per seat in packed snapshots: a, h, s, b.
    pub fn code(self) -> char {
        match self {
            Seat::Available => 'a',
            Seat::Held | Seat::PaymentPending => 'h',
            Seat::Sold => 's',
            Seat::Blocked => 'b',
        }
    }
}

/// Counts of seats by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub available: u32,
    pub held: u32,
    pub pending: u32,
    pub sold: u32,
    pub blocked: u32,
}

/// What a hold does to its seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatChange {
    /// Back to available (release, expiry, rollback).
    Release,
    /// HELD → PAYMENT_PENDING.
    BeginPayment,
    /// PAYMENT_PENDING → HELD.
    CancelPayment,
    /// PAYMENT_PENDING → SOLD.
    Sell,
    /// SOLD → AVAILABLE: a refunded seat is for sale again (the hold id is not used).
    Return,
    /// SOLD → HELD by this hold: a refunded seat offered to the waitlist.
    ReturnTo,
    /// HELD by this hold → HELD by another (an ended hold's seats offered to the waitlist,
    /// never free in between).
    HandOver(Uuid),
    /// BLOCKED → AVAILABLE: the organizer put a blocked seat on sale (the hold id is not used).
    Unblock,
    /// BLOCKED → HELD by this hold: a released seat offered to the waitlist.
    UnblockTo,
}

#[derive(Debug, Clone)]
pub struct SeatBoard {
    states: Vec<Seat>,
    holders: Vec<Option<Uuid>>,
    /// Position ranges of the rows, front row first.
    rows: Vec<Range<u32>>,
    counts: Counts,
}

impl SeatBoard {
    /// A board of `rows` (position ranges covering 0..n in order), all seats available but
    /// `sold` and `blocked`.
    pub fn new(rows: Vec<Range<u32>>, sold: &[u32], blocked: &[u32]) -> SeatBoard {
        let len = rows.last().map_or(0, |r| r.end) as usize;
        let mut board = SeatBoard {
            states: vec![Seat::Available; len],
            holders: vec![None; len],
            rows,
            counts: Counts {
                available: len as u32,
                ..Counts::default()
            },
        };
        for &p in blocked {
            board.set(p, Seat::Blocked, None);
        }
        for &p in sold {
            board.set(p, Seat::Sold, None);
        }
        board
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn state(&self, position: u32) -> Option<Seat> {
        self.states.get(position as usize).copied()
    }

    pub fn holder(&self, position: u32) -> Option<Uuid> {
        self.holders.get(position as usize).copied().flatten()
    }

    pub fn states(&self) -> &[Seat] {
        &self.states
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn set(&mut self, position: u32, state: Seat, holder: Option<Uuid>) {
        let i = position as usize;
        let Some(old) = self.states.get(i).copied() else {
            return;
        };
        *self.count_of(old) -= 1;
        *self.count_of(state) += 1;
        self.states[i] = state;
        self.holders[i] = holder;
    }

    fn count_of(&mut self, state: Seat) -> &mut u32 {
        match state {
            Seat::Available => &mut self.counts.available,
            Seat::Held => &mut self.counts.held,
            Seat::PaymentPending => &mut self.counts.pending,
            Seat::Sold => &mut self.counts.sold,
            Seat::Blocked => &mut self.counts.blocked,
        }
    }

    /// Holds every one of `positions` for `hold`, or none: the error lists the positions
    /// that are not available (or do not exist, or are named twice).
    pub fn hold(&mut self, hold: Uuid, positions: &[u32]) -> Result<(), Vec<u32>> {
        let mut seen = std::collections::HashSet::with_capacity(positions.len());
        let taken: Vec<u32> = positions
            .iter()
            .copied()
            .filter(|&p| !seen.insert(p) || self.state(p) != Some(Seat::Available))
            .collect();
        if !taken.is_empty() {
            return Err(taken);
        }
        for &p in positions {
            self.set(p, Seat::Held, Some(hold));
        }
        Ok(())
    }

    /// Finds and holds `quantity` seats: side by side in one row when any row has room
    /// (front rows first, nearest the middle of the row), otherwise the front-most seats
    /// wherever they are. `None` (and nothing held) when fewer are available.
    pub fn hold_best_available(&mut self, hold: Uuid, quantity: u32) -> Option<Vec<u32>> {
        if quantity == 0 || quantity > self.counts.available {
            return None;
        }
        let positions = self.best_block(quantity).unwrap_or_else(|| {
            (0..self.states.len() as u32)
                .filter(|&p| self.states[p as usize] == Seat::Available)
                .take(quantity as usize)
                .collect()
        });
        self.hold(hold, &positions).ok()?;
        Some(positions)
    }

    fn best_block(&self, quantity: u32) -> Option<Vec<u32>> {
        for row in &self.rows {
            let middle = (row.start + row.end) as f64 / 2.0;
            let mut best: Option<(f64, u32)> = None;
            let mut run_start = row.start;
            for p in row.clone() {
                if self.states[p as usize] != Seat::Available {
                    run_start = p + 1;
                    continue;
                }
                if p + 1 - run_start >= quantity {
                    let start = p + 1 - quantity;
                    let distance = ((start as f64 + quantity as f64 / 2.0) - middle).abs();
                    if best.is_none_or(|(d, _)| distance < d) {
                        best = Some((distance, start));
                    }
                }
            }
            if let Some((_, start)) = best {
                return Some((start..start + quantity).collect());
            }
        }
        None
    }

    /// Returns `hold`'s seats among `positions` (held or payment pending) to availability;
    /// how many were released.
    pub fn release(&mut self, hold: Uuid, positions: &[u32]) -> u32 {
        self.move_own(
            hold,
            positions,
            &[Seat::Held, Seat::PaymentPending],
            Seat::Available,
        )
    }

    /// HELD → PAYMENT_PENDING for all of `positions`, which must all be `hold`'s.
    pub fn begin_payment(&mut self, hold: Uuid, positions: &[u32]) -> bool {
        self.move_all(hold, positions, Seat::Held, Seat::PaymentPending)
    }

    /// PAYMENT_PENDING → HELD (a declined or failed payment).
    pub fn cancel_payment(&mut self, hold: Uuid, positions: &[u32]) -> bool {
        self.move_all(hold, positions, Seat::PaymentPending, Seat::Held)
    }

    /// PAYMENT_PENDING → SOLD, once the order is durable.
    pub fn sell(&mut self, hold: Uuid, positions: &[u32]) -> bool {
        self.move_all(hold, positions, Seat::PaymentPending, Seat::Sold)
    }

    /// Applies what a hold does to its seats; whether every seat moved.
    pub fn apply(&mut self, hold: Uuid, positions: &[u32], change: SeatChange) -> bool {
        match change {
            SeatChange::Release => self.release(hold, positions) as usize == positions.len(),
            SeatChange::BeginPayment => self.begin_payment(hold, positions),
            SeatChange::CancelPayment => self.cancel_payment(hold, positions),
            SeatChange::Sell => self.sell(hold, positions),
            SeatChange::Return => self.unsell(positions, None),
            SeatChange::ReturnTo => self.unsell(positions, Some(hold)),
            SeatChange::Unblock => self.unblock(positions, None),
            SeatChange::UnblockTo => self.unblock(positions, Some(hold)),
            SeatChange::HandOver(to) => {
                if !positions
                    .iter()
                    .all(|&p| self.owns(hold, p, &[Seat::Held, Seat::PaymentPending]))
                {
                    return false;
                }
                for &p in positions {
                    self.set(p, Seat::Held, Some(to));
                }
                true
            }
        }
    }

    /// SOLD → AVAILABLE, or → HELD by `hold`, for every one of `positions` that is sold;
    /// whether all were.
    pub fn unsell(&mut self, positions: &[u32], hold: Option<Uuid>) -> bool {
        self.take_back(positions, Seat::Sold, hold)
    }

    /// BLOCKED → AVAILABLE, or → HELD by `hold`, for every one of `positions` that is
    /// blocked; whether all were.
    pub fn unblock(&mut self, positions: &[u32], hold: Option<Uuid>) -> bool {
        self.take_back(positions, Seat::Blocked, hold)
    }

    fn take_back(&mut self, positions: &[u32], from: Seat, hold: Option<Uuid>) -> bool {
        let mut all = true;
        for &p in positions {
            if self.state(p) != Some(from) {
                all = false;
                continue;
            }
            match hold {
                Some(hold) => self.set(p, Seat::Held, Some(hold)),
                None => self.set(p, Seat::Available, None),
            }
        }
        all
    }

    fn owns(&self, hold: Uuid, position: u32, from: &[Seat]) -> bool {
        self.state(position).is_some_and(|s| from.contains(&s))
            && self.holder(position) == Some(hold)
    }

    fn move_all(&mut self, hold: Uuid, positions: &[u32], from: Seat, to: Seat) -> bool {
        if !positions.iter().all(|&p| self.owns(hold, p, &[from])) {
            return false;
        }
        let holder = if to == Seat::Sold { None } else { Some(hold) };
        for &p in positions {
            self.set(p, to, holder);
        }
        true
    }

    fn move_own(&mut self, hold: Uuid, positions: &[u32], from: &[Seat], to: Seat) -> u32 {
        let mut moved = 0;
        for &p in positions {
            if self.owns(hold, p, from) {
                self.set(p, to, None);
                moved += 1;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn board(rows: u32, per_row: u32) -> SeatBoard {
        SeatBoard::new(
            (0..rows).map(|r| r * per_row..(r + 1) * per_row).collect(),
            &[],
            &[],
        )
    }

    #[test]
    fn only_a_sold_seat_is_refunded_and_only_a_blocked_one_released() {
        let mut b = SeatBoard::new(vec![0..2, 2..4], &[0, 1], &[2]);
        let (offer, other) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(
            !b.apply(offer, &[2, 3], SeatChange::Return),
            "blocked and free seats are not sold"
        );
        assert_eq!(b.state(2), Some(Seat::Blocked));
        assert!(b.apply(offer, &[0], SeatChange::ReturnTo));
        assert_eq!((b.state(0), b.holder(0)), (Some(Seat::Held), Some(offer)));
        assert!(b.apply(Uuid::nil(), &[1], SeatChange::Return));
        assert_eq!(b.state(1), Some(Seat::Available));
        assert!(
            !b.apply(offer, &[1], SeatChange::Unblock),
            "an available seat is not blocked"
        );
        assert!(b.apply(offer, &[2], SeatChange::UnblockTo));
        assert!(
            !b.apply(other, &[0], SeatChange::HandOver(offer)),
            "not the other hold's seat"
        );
        assert!(b.apply(offer, &[0, 2], SeatChange::HandOver(other)));
        assert_eq!((b.holder(0), b.holder(2)), (Some(other), Some(other)));
        let c = b.counts();
        assert_eq!((c.available, c.held, c.sold, c.blocked), (2, 2, 0, 0));
    }

    #[test]
    fn a_hold_is_all_or_nothing() {
        let mut b = board(1, 5);
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(b.hold(one, &[1, 2]), Ok(()));
        assert_eq!(b.hold(two, &[0, 2, 3]), Err(vec![2]));
        assert_eq!(b.state(0), Some(Seat::Available));
        assert_eq!(b.hold(two, &[0, 0]), Err(vec![0]));
        assert_eq!(b.hold(two, &[9]), Err(vec![9]));
        assert_eq!(
            b.counts(),
            Counts {
                available: 3,
                held: 2,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn only_the_holder_moves_its_seats() {
        let mut b = board(1, 4);
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        b.hold(one, &[0, 1]).unwrap_or_default();
        assert_eq!(b.release(two, &[0, 1]), 0);
        assert!(!b.begin_payment(two, &[0]));
        assert!(!b.sell(one, &[0]), "selling needs payment first");
        assert!(b.begin_payment(one, &[0, 1]));
        assert_eq!(b.release(one, &[1]), 1);
        assert!(b.sell(one, &[0]));
        assert_eq!(
            b.counts(),
            Counts {
                available: 3,
                sold: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn best_available_prefers_a_block_in_the_front_row_near_its_middle() {
        let mut b = board(3, 10);
        let taken = Uuid::new_v4();
        b.hold(taken, &[3, 4]).unwrap_or_default(); // breaks the front row left of its middle
        let got = b.hold_best_available(Uuid::new_v4(), 4);
        assert_eq!(
            got,
            Some(vec![5, 6, 7, 8]),
            "a block of 4 still fits in row 0, right of the gap"
        );
        let got = b.hold_best_available(Uuid::new_v4(), 6);
        assert_eq!(got, Some(vec![12, 13, 14, 15, 16, 17]), "row 1, centred");
    }

    #[test]
    fn best_available_splits_a_group_only_when_no_row_has_room() {
        let mut b = board(2, 3);
        b.hold(Uuid::new_v4(), &[1, 4]).unwrap_or_default();
        assert_eq!(
            b.hold_best_available(Uuid::new_v4(), 3),
            Some(vec![0, 2, 3])
        );
        assert_eq!(
            b.hold_best_available(Uuid::new_v4(), 2),
            None,
            "one seat left"
        );
        assert_eq!(b.counts().available, 1);
    }

    #[test]
    fn sold_and_blocked_seats_start_taken() {
        let rows: Vec<Range<u32>> = std::iter::once(0..4).collect();
        let b = SeatBoard::new(rows, &[1], &[2]);
        assert_eq!(
            b.counts(),
            Counts {
                available: 2,
                sold: 1,
                blocked: 1,
                ..Counts::default()
            }
        );
        assert_eq!(b.state(2).map(Seat::wire), Some("blocked"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Hold(u8, Vec<u32>),
        Best(u8, u32),
        Release(u8),
        Begin(u8),
        Cancel(u8),
        Sell(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let hold = 0u8..6;
        prop_oneof![
            (hold.clone(), proptest::collection::vec(0u32..24, 1..5))
                .prop_map(|(h, p)| Op::Hold(h, p)),
            (hold.clone(), 1u32..6).prop_map(|(h, q)| Op::Best(h, q)),
            hold.clone().prop_map(Op::Release),
            hold.clone().prop_map(Op::Begin),
            hold.clone().prop_map(Op::Cancel),
            hold.prop_map(Op::Sell),
        ]
    }

    /// The model: each seat's state and owner, changed by the plainest possible rules.
    #[derive(Default)]
    struct Model {
        seats: HashMap<u32, (Seat, Option<u8>)>,
    }

    impl Model {
        fn of(&self, hold: u8, state: Seat) -> Vec<u32> {
            let mut v: Vec<u32> = self
                .seats
                .iter()
                .filter(|(_, (s, h))| *s == state && *h == Some(hold))
                .map(|(p, _)| *p)
                .collect();
            v.sort_unstable();
            v
        }
    }

    proptest! {
        #[test]
        fn the_board_agrees_with_a_simple_model(ops in proptest::collection::vec(op(), 1..60)) {
            let ids: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
            let mut board = SeatBoard::new((0..4).map(|r| r * 6..(r + 1) * 6).collect(), &[], &[23]);
            let mut model = Model::default();
            for p in 0..24 { model.seats.insert(p, (if p == 23 { Seat::Blocked } else { Seat::Available }, None)); }

            for op in ops {
                match op {
                    Op::Hold(h, positions) => {
                        let mut unique = positions.clone(); unique.sort_unstable(); unique.dedup();
                        let possible = unique.len() == positions.len()
                            && positions.iter().all(|p| model.seats.get(p).is_some_and(|(s, _)| *s == Seat::Available));
                        let result = board.hold(ids[h as usize], &positions);
                        prop_assert_eq!(result.is_ok(), possible);
                        if possible { for p in positions { model.seats.insert(p, (Seat::Held, Some(h))); } }
                    }
                    Op::Best(h, q) => {
                        let available = model.seats.values().filter(|(s, _)| *s == Seat::Available).count() as u32;
                        let got = board.hold_best_available(ids[h as usize], q);
                        prop_assert_eq!(got.is_some(), q <= available);
                        for p in got.unwrap_or_default() {
                            prop_assert_eq!(model.seats.get(&p).map(|(s, _)| *s), Some(Seat::Available));
                            model.seats.insert(p, (Seat::Held, Some(h)));
                        }
                    }
                    Op::Release(h) => {
                        let mut mine = model.of(h, Seat::Held); mine.extend(model.of(h, Seat::PaymentPending));
                        let all: Vec<u32> = (0..24).collect();
                        prop_assert_eq!(board.release(ids[h as usize], &all) as usize, mine.len());
                        for p in mine { model.seats.insert(p, (Seat::Available, None)); }
                    }
                    Op::Begin(h) | Op::Cancel(h) | Op::Sell(h) => {
                        let (from, to) = match op {
                            Op::Begin(_) => (Seat::Held, Seat::PaymentPending),
                            Op::Cancel(_) => (Seat::PaymentPending, Seat::Held),
                            _ => (Seat::PaymentPending, Seat::Sold),
                        };
                        let mine = model.of(h, from);
                        let moved = match op {
                            Op::Begin(_) => board.begin_payment(ids[h as usize], &mine),
                            Op::Cancel(_) => board.cancel_payment(ids[h as usize], &mine),
                            _ => board.sell(ids[h as usize], &mine),
                        };
                        prop_assert!(moved);
                        let owner = if to == Seat::Sold { None } else { Some(h) };
                        for p in mine { model.seats.insert(p, (to, owner)); }
                    }
                }
                for p in 0..24u32 {
                    let (state, owner) = model.seats[&p];
                    prop_assert_eq!(board.state(p), Some(state));
                    prop_assert_eq!(board.holder(p), owner.map(|h| ids[h as usize]));
                }
                let c = board.counts();
                prop_assert_eq!(c.available + c.held + c.pending + c.sold + c.blocked, 24);
            }
        }
    }
}
