//! The line of one waiting room, as plain data: who waits, in what order, who has been let
//! in and until when. No actors, no I/O, no clock of its own: the queue actor drives it
//! with the time and the random numbers, so its rules can be tested on their own.
//!
//! Fairness: a buyer who joins before the sale starts gets a random *score* drawn when they
//! join; when the sale starts the pre-queue is ordered by those scores, which is a uniformly
//! random shuffle (arriving early gives no edge over arriving on time). A buyer who joins
//! after the start gets `FIFO_BASE + n`, so later arrivals queue first-in first-out behind
//! everyone shuffled. Scores are what Redis keeps, so a restarted node rebuilds the same line.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Scores at or above this are first-in first-out arrivals; below it, the shuffled
/// pre-queue. (2^52: every score stays an exact integer in Redis's f64 scores.)
pub const FIFO_BASE: u64 = 1 << 52;

/// A buyer let in: their shopping session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Admission {
    /// The admission token's id: one shopping session per token.
    pub jti: Uuid,
    pub admitted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The buyer has bought: they no longer count as shopping.
    pub purchased: bool,
}

/// Where a buyer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spot {
    /// Joined before the start: their place is drawn when the sale starts.
    PreQueue,
    /// In line: `position` 1 is next.
    Waiting {
        position: u64,
    },
    Admitted(Admission),
    NotQueued,
}

#[derive(Debug, Clone, Copy)]
struct Place {
    score: u64,
    /// Index in `order` once the line has started.
    index: Option<usize>,
    last_seen: DateTime<Utc>,
}

/// A Fenwick tree over the line, counting who is still waiting at each index, so a
/// buyer's position is a prefix sum: O(log n) for 100,000 waiting, not a scan.
#[derive(Debug, Clone)]
struct Fenwick {
    /// 1-based; `tree[0]` is unused.
    tree: Vec<i64>,
}

impl Fenwick {
    fn new() -> Fenwick {
        Fenwick { tree: vec![0] }
    }

    fn clear(&mut self) {
        self.tree.truncate(1);
    }

    /// The sum of the first `n` values.
    fn prefix(&self, n: usize) -> i64 {
        let mut i = n.min(self.tree.len() - 1);
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i &= i - 1;
        }
        sum
    }

    /// Appends a value at the end.
    fn push(&mut self, value: i64) {
        let i = self.tree.len();
        let low = i & i.wrapping_neg();
        let node = value + self.prefix(i - 1) - self.prefix(i - low);
        self.tree.push(node);
    }

    /// Adds `delta` to the value at 0-based `index`.
    fn add(&mut self, index: usize, delta: i64) {
        let mut i = index + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Line {
    started: bool,
    /// Joined before the start, in join order (ordered by score when the sale starts).
    prequeue: Vec<Uuid>,
    /// The line after the start; `head` is the next index to admit from.
    order: Vec<Uuid>,
    live: Fenwick,
    head: usize,
    places: HashMap<Uuid, Place>,
    admitted: HashMap<Uuid, Admission>,
    /// Admissions in the order their windows close (the window is the same for everyone).
    windows: VecDeque<(DateTime<Utc>, Uuid)>,
    shopping: u64,
    next_seq: u64,
    /// Buyers who already claimed a visitor's place or admission: one claim each.
    claimed: std::collections::HashSet<Uuid>,
}

/// What a claim (a visitor's place or admission moved to the buyer who signed in) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The buyer has the visitor's place or admission now.
    Moved,
    /// The buyer keeps what they had (their own place, or an earlier claim); the
    /// visitor's is given up. A claim never improves a place drawn by another identity.
    Kept,
    /// The visitor waits in the drawn line: they claim once let in (the draw's outcome
    /// must not be chosen from among several identities).
    TooLate,
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

/// What `join` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// A new place, with its score.
    New(u64),
    /// The buyer already had a place or a live admission: nothing changed.
    Existing,
}

impl Line {
    pub fn new() -> Line {
        Line {
            started: false,
            prequeue: Vec::new(),
            order: Vec::new(),
            live: Fenwick::new(),
            head: 0,
            places: HashMap::new(),
            admitted: HashMap::new(),
            windows: VecDeque::new(),
            shopping: 0,
            next_seq: 0,
            claimed: std::collections::HashSet::new(),
        }
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Buyers waiting (pre-queue and line).
    pub fn waiting(&self) -> u64 {
        self.places.len() as u64
    }

    /// Admitted buyers whose window is open.
    pub fn admitted(&self) -> u64 {
        self.admitted.len() as u64
    }

    /// Admitted buyers whose window is open and who have not bought yet.
    pub fn shopping(&self) -> u64 {
        self.shopping
    }

    /// Buyers whose shopping window is open at `now`, bought or not: each may still buy
    /// what their limit leaves them until the window closes or they leave.
    pub fn sessions(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        self.admitted
            .iter()
            .filter(|(_, a)| a.expires_at > now)
            .map(|(buyer, _)| *buyer)
            .collect()
    }

    /// Whether `buyer` has a place or an open session at `now` (joining again is then free).
    pub fn has(&self, buyer: Uuid, now: DateTime<Utc>) -> bool {
        self.places.contains_key(&buyer)
            || self
                .admitted
                .get(&buyer)
                .is_some_and(|a| a.expires_at > now)
    }

    /// Takes a place for `buyer` (one per buyer): `random` is the pre-queue draw, used only
    /// before the start.
    pub fn join(&mut self, buyer: Uuid, now: DateTime<Utc>, random: u64) -> Joined {
        if let Some(place) = self.places.get_mut(&buyer) {
            place.last_seen = now;
            return Joined::Existing;
        }
        if self
            .admitted
            .get(&buyer)
            .is_some_and(|a| a.expires_at > now)
        {
            return Joined::Existing;
        }
        let score = if self.started {
            let score = FIFO_BASE + self.next_seq;
            self.next_seq += 1;
            score
        } else {
            random >> 12
        };
        self.insert(buyer, score, now);
        Joined::New(score)
    }

    fn insert(&mut self, buyer: Uuid, score: u64, now: DateTime<Utc>) {
        let index = if self.started {
            self.order.push(buyer);
            self.live.push(1);
            Some(self.order.len() - 1)
        } else {
            self.prequeue.push(buyer);
            None
        };
        self.places.insert(
            buyer,
            Place {
                score,
                index,
                last_seen: now,
            },
        );
    }

    /// The sale starts: the pre-queue is ordered by its random scores, ahead of everyone
    /// who joins from now on.
    pub fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let mut early = std::mem::take(&mut self.prequeue);
        early.sort_by_key(|b| self.places.get(b).map_or(u64::MAX, |p| p.score));
        for buyer in early {
            if let Some(place) = self.places.get_mut(&buyer) {
                place.index = Some(self.order.len());
                self.order.push(buyer);
                self.live.push(1);
            }
        }
    }

    /// Where `buyer` stands at `now`; asking counts as being present.
    pub fn spot(&mut self, buyer: Uuid, now: DateTime<Utc>) -> Spot {
        if let Some(place) = self.places.get_mut(&buyer) {
            place.last_seen = now;
            return match place.index {
                None => Spot::PreQueue,
                Some(index) => Spot::Waiting {
                    position: self.live.prefix(index + 1).max(1) as u64,
                },
            };
        }
        match self.admitted.get(&buyer) {
            Some(admission) if admission.expires_at > now => Spot::Admitted(*admission),
            _ => Spot::NotQueued,
        }
    }

    /// The score of a waiting buyer's place.
    pub fn score(&self, buyer: Uuid) -> Option<u64> {
        self.places.get(&buyer).map(|p| p.score)
    }

    /// The buyer's current admission, if its window is open at `now`.
    pub fn admission(&self, buyer: Uuid, now: DateTime<Utc>) -> Option<Admission> {
        self.admitted
            .get(&buyer)
            .filter(|a| a.expires_at > now)
            .copied()
    }

    /// Lets in up to `n` buyers from the front, each with a session from `session`.
    pub fn admit(
        &mut self,
        n: u64,
        mut session: impl FnMut() -> Admission,
    ) -> Vec<(Uuid, Admission)> {
        let mut let_in = Vec::new();
        while (let_in.len() as u64) < n && self.head < self.order.len() {
            let index = self.head;
            let buyer = self.order[index];
            self.head += 1;
            if self
                .places
                .get(&buyer)
                .is_none_or(|p| p.index != Some(index))
            {
                continue; // left the line (dropped) before their turn
            }
            self.places.remove(&buyer);
            self.live.add(index, -1);
            let admission = session();
            self.record(buyer, admission);
            let_in.push((buyer, admission));
        }
        let_in
    }

    fn record(&mut self, buyer: Uuid, admission: Admission) {
        if let Some(old) = self.admitted.insert(buyer, admission) {
            if !old.purchased {
                self.shopping = self.shopping.saturating_sub(1);
            }
        }
        if !admission.purchased {
            self.shopping += 1;
        }
        self.windows.push_back((admission.expires_at, buyer));
    }

    /// The buyer bought: they stop counting as shopping (their window stays open).
    pub fn purchased(&mut self, buyer: Uuid) {
        if let Some(admission) = self.admitted.get_mut(&buyer) {
            if !admission.purchased {
                admission.purchased = true;
                self.shopping = self.shopping.saturating_sub(1);
            }
        }
    }

    /// Forgets admissions whose window has closed; returns who they were.
    pub fn close_windows(&mut self, now: DateTime<Utc>) -> Vec<Uuid> {
        let mut closed = Vec::new();
        while let Some(&(at, buyer)) = self.windows.front() {
            if at > now {
                break;
            }
            self.windows.pop_front();
            let current = self
                .admitted
                .get(&buyer)
                .is_some_and(|a| a.expires_at == at);
            if current {
                if let Some(admission) = self.admitted.remove(&buyer) {
                    if !admission.purchased {
                        self.shopping = self.shopping.saturating_sub(1);
                    }
                    closed.push(buyer);
                }
            }
        }
        closed
    }

    /// Drops places not seen since `cutoff` (the buyer closed the page); returns who.
    pub fn drop_unseen(&mut self, cutoff: DateTime<Utc>) -> Vec<Uuid> {
        let gone: Vec<(Uuid, Option<usize>)> = self
            .places
            .iter()
            .filter(|(_, p)| p.last_seen < cutoff)
            .map(|(b, p)| (*b, p.index))
            .collect();
        if gone.is_empty() {
            return Vec::new();
        }
        for (buyer, index) in &gone {
            self.places.remove(buyer);
            if let Some(index) = index {
                self.live.add(*index, -1);
            }
        }
        let places = &self.places;
        self.prequeue.retain(|b| places.contains_key(b));
        gone.into_iter().map(|(b, _)| b).collect()
    }

    /// Everyone waiting leaves the line (the event sold out); returns who they were.
    pub fn release_all(&mut self) -> Vec<Uuid> {
        let everyone: Vec<Uuid> = self.places.keys().copied().collect();
        self.places.clear();
        self.prequeue.clear();
        self.order.clear();
        self.live.clear();
        self.head = 0;
        everyone
    }

    /// A buyer claims what visitor `from` has. One draw per buyer: a place still in the
    /// pre-queue (not drawn yet) or an admission moves to the buyer if they have nothing
    /// in this room and have not claimed before; otherwise the buyer keeps theirs and the
    /// visitor's is given up. A place in the drawn line is not claimable until it is let in.
    pub fn transfer(&mut self, from: Uuid, to: Uuid, now: DateTime<Utc>) -> Claim {
        let drawn = self.places.get(&from).is_some_and(|p| p.index.is_some());
        let has = |line: &Line, buyer: Uuid| {
            line.admission(buyer, now).is_some() || line.places.contains_key(&buyer)
        };
        if !has(self, from) {
            return Claim::Kept;
        }
        if drawn {
            return Claim::TooLate;
        }
        if self.claimed.contains(&to) || has(self, to) {
            self.remove(from);
            return Claim::Kept;
        }
        self.remove(to);
        if let Some(admission) = self.admitted.remove(&from) {
            if !admission.purchased {
                self.shopping = self.shopping.saturating_sub(1);
            }
            self.record(to, admission);
        } else if let Some(mut place) = self.places.remove(&from) {
            place.last_seen = now;
            if let Some(slot) = self.prequeue.iter_mut().find(|b| **b == from) {
                *slot = to;
            }
            self.places.insert(to, place);
        }
        self.claimed.insert(to);
        Claim::Moved
    }

    /// The buyer leaves: their place, or their shopping session, ends. Returns whether they
    /// had either.
    pub fn leave(&mut self, buyer: Uuid) -> bool {
        let had = self.places.contains_key(&buyer) || self.admitted.contains_key(&buyer);
        self.remove(buyer);
        had
    }

    fn remove(&mut self, buyer: Uuid) {
        if let Some(place) = self.places.remove(&buyer) {
            match place.index {
                Some(index) => self.live.add(index, -1),
                None => self.prequeue.retain(|b| *b != buyer),
            }
        }
        if let Some(admission) = self.admitted.remove(&buyer) {
            if !admission.purchased {
                self.shopping = self.shopping.saturating_sub(1);
            }
        }
    }

    /// Rebuilds a line from what Redis kept: places with their scores, and admissions.
    pub fn restore(
        places: Vec<(Uuid, u64)>,
        admissions: Vec<(Uuid, Admission)>,
        started: bool,
        now: DateTime<Utc>,
    ) -> Line {
        let mut line = Line::new();
        let mut places = places;
        places.sort_by_key(|(_, score)| *score);
        line.next_seq = places
            .iter()
            .filter(|(_, s)| *s >= FIFO_BASE)
            .map(|(_, s)| s - FIFO_BASE + 1)
            .max()
            .unwrap_or(0);
        line.started = started;
        for (buyer, score) in places {
            line.insert(buyer, score, now);
        }
        let mut admissions: Vec<_> = admissions
            .into_iter()
            .filter(|(_, a)| a.expires_at > now)
            .collect();
        admissions.sort_by_key(|(_, a)| a.expires_at);
        for (buyer, admission) in admissions {
            line.record(buyer, admission);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn session(now: DateTime<Utc>) -> impl FnMut() -> Admission {
        move || Admission {
            jti: Uuid::new_v4(),
            admitted_at: now,
            expires_at: now + Duration::minutes(15),
            purchased: false,
        }
    }

    fn buyers(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn later_arrivals_queue_first_in_first_out_behind_the_shuffled_pre_queue() {
        let now = Utc::now();
        let mut line = Line::new();
        let early = buyers(50);
        for (i, b) in early.iter().enumerate() {
            line.join(*b, now, (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        assert_eq!(line.spot(early[0], now), Spot::PreQueue);
        line.start();
        let late = buyers(20);
        for b in &late {
            assert!(matches!(line.join(*b, now, 0), Joined::New(s) if s >= FIFO_BASE));
        }
        let order: Vec<Uuid> = line
            .admit(70, session(now))
            .into_iter()
            .map(|(b, _)| b)
            .collect();
        let mut first: Vec<Uuid> = order[..50].to_vec();
        first.sort();
        let mut expected = early.clone();
        expected.sort();
        assert_eq!(
            first, expected,
            "the pre-queue comes first, every one of them"
        );
        assert_ne!(&order[..50], &early[..], "in a shuffled order");
        assert_eq!(&order[50..], &late[..], "then later arrivals in join order");
    }

    #[test]
    fn one_place_per_buyer_and_positions_close_up() {
        let now = Utc::now();
        let mut line = Line::new();
        line.start();
        let b = buyers(5);
        for x in &b {
            line.join(*x, now, 0);
        }
        assert_eq!(line.join(b[3], now, 0), Joined::Existing);
        assert_eq!(line.waiting(), 5);
        assert_eq!(line.spot(b[3], now), Spot::Waiting { position: 4 });
        // b[1] leaves (stops polling): b[3] moves up.
        if let Some(p) = line.places.get_mut(&b[1]) {
            p.last_seen = now - Duration::hours(1);
        }
        assert_eq!(line.drop_unseen(now - Duration::minutes(1)), vec![b[1]]);
        assert_eq!(line.spot(b[3], now), Spot::Waiting { position: 3 });
        let admitted = line.admit(2, session(now));
        assert_eq!(
            admitted.iter().map(|(x, _)| *x).collect::<Vec<_>>(),
            vec![b[0], b[2]]
        );
        assert_eq!(line.spot(b[3], now), Spot::Waiting { position: 1 });
        assert!(matches!(line.spot(b[0], now), Spot::Admitted(_)));
        assert_eq!(line.join(b[0], now, 0), Joined::Existing, "still shopping");
        assert_eq!(line.shopping(), 2);
    }

    #[test]
    fn windows_close_and_purchases_stop_counting_as_shopping() {
        let now = Utc::now();
        let mut line = Line::new();
        line.start();
        let b = buyers(3);
        for x in &b {
            line.join(*x, now, 0);
        }
        line.admit(3, session(now));
        assert_eq!(line.shopping(), 3);
        line.purchased(b[0]);
        line.purchased(b[0]);
        assert_eq!(line.shopping(), 2);
        // A buyer who bought keeps their session (they may buy again within their limit).
        assert_eq!(line.sessions(now).len(), 3);
        assert!(line.leave(b[2]));
        assert_eq!(line.sessions(now).len(), 2);
        assert!(line.sessions(now + Duration::minutes(15)).is_empty());
        assert!(line.close_windows(now + Duration::minutes(14)).is_empty());
        assert_eq!(line.close_windows(now + Duration::minutes(15)).len(), 2);
        assert_eq!(line.shopping(), 0);
        assert_eq!(
            line.spot(b[1], now + Duration::minutes(16)),
            Spot::NotQueued
        );
        assert!(matches!(
            line.join(b[1], now + Duration::minutes(16), 0),
            Joined::New(_)
        ));
    }

    #[test]
    fn leaving_frees_a_place_or_a_shopping_slot() {
        let now = Utc::now();
        let mut line = Line::new();
        line.start();
        let people = buyers(3);
        for (i, b) in people.iter().enumerate() {
            line.join(*b, now, i as u64);
        }
        line.admit(1, session(now));
        assert_eq!((line.waiting(), line.shopping()), (2, 1));
        assert!(line.leave(people[0]), "the shopper leaves");
        assert_eq!(line.shopping(), 0);
        assert!(line.admission(people[0], now).is_none());
        assert!(line.leave(people[1]), "a waiting buyer leaves");
        assert_eq!(line.waiting(), 1);
        assert_eq!(line.spot(people[2], now), Spot::Waiting { position: 1 });
        assert!(!line.leave(people[1]), "twice: nothing left to leave");
    }

    #[test]
    fn releasing_everyone_empties_the_line() {
        let now = Utc::now();
        let mut line = Line::new();
        line.start();
        let b = buyers(4);
        for x in &b {
            line.join(*x, now, 0);
        }
        let mut released = line.release_all();
        released.sort();
        let mut all = b.clone();
        all.sort();
        assert_eq!(released, all);
        assert_eq!(line.waiting(), 0);
        assert!(line.admit(10, session(now)).is_empty());
        assert!(matches!(line.join(b[0], now, 0), Joined::New(_)));
        assert_eq!(line.spot(b[0], now), Spot::Waiting { position: 1 });
    }

    #[test]
    fn a_claim_moves_an_undrawn_place_once_and_never_improves_one() {
        let now = Utc::now();
        let mut line = Line::new();
        let (visitor, buyer, second, other) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        line.join(visitor, now, 0);
        line.join(second, now, 0);
        line.join(other, now, 0);
        // Before the draw: the visitor's pre-queue place becomes the buyer's.
        assert_eq!(line.transfer(visitor, buyer, now), Claim::Moved);
        assert_eq!(line.spot(visitor, now), Spot::NotQueued);
        assert!(matches!(line.spot(buyer, now), Spot::PreQueue));
        // A second identity cannot be claimed as well: it is given up.
        assert_eq!(line.transfer(second, buyer, now), Claim::Kept);
        assert_eq!(line.spot(second, now), Spot::NotQueued);
        assert_eq!(line.waiting(), 2);
        // After the draw, a waiting place cannot be claimed (that would pick the best of
        // several draws); an admission can, by a buyer with nothing else.
        line.start();
        let late = Uuid::new_v4();
        assert_eq!(line.transfer(other, late, now), Claim::TooLate);
        assert!(matches!(line.spot(other, now), Spot::Waiting { .. }));
        let admitted = line.admit(2, session(now));
        assert_eq!(admitted.len(), 2);
        assert_eq!(line.transfer(other, late, now), Claim::Moved);
        assert!(matches!(line.spot(late, now), Spot::Admitted(_)));
        // A buyer who has an admission keeps it; the visitor's is given up.
        let visitor2 = Uuid::new_v4();
        line.join(visitor2, now, 0);
        let _ = line.admit(1, session(now));
        assert_eq!(line.transfer(visitor2, buyer, now), Claim::Kept);
        assert_eq!(line.spot(visitor2, now), Spot::NotQueued);
    }

    #[test]
    fn a_restored_line_has_the_same_order() {
        let now = Utc::now();
        let mut line = Line::new();
        let mut scores = Vec::new();
        for i in 0..30u64 {
            let b = Uuid::new_v4();
            if let Joined::New(s) = line.join(b, now, i.wrapping_mul(0xD1B5_4A32_D192_ED03)) {
                scores.push((b, s));
            }
            if i == 19 {
                line.start();
            }
        }
        let admission = line.admit(3, session(now));
        let kept: Vec<(Uuid, u64)> = scores
            .iter()
            .filter(|(b, _)| !admission.iter().any(|(a, _)| a == b))
            .copied()
            .collect();
        let mut restored = Line::restore(kept, admission.clone(), true, now);
        assert_eq!(restored.shopping(), 3);
        let mut original = line.clone();
        assert_eq!(
            restored
                .admit(100, session(now))
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>(),
            original
                .admit(100, session(now))
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>()
        );
        assert!(matches!(
            restored.join(Uuid::new_v4(), now, 0),
            Joined::New(s) if s == FIFO_BASE + 10
        ));
    }

    proptest! {
        #[test]
        fn fenwick_prefix_sums_match_a_plain_list(ops in proptest::collection::vec((0usize..64, -1i64..=1, any::<bool>()), 1..200)) {
            let mut tree = Fenwick::new();
            let mut plain: Vec<i64> = Vec::new();
            for (at, delta, push) in ops {
                if push || plain.is_empty() {
                    tree.push(delta);
                    plain.push(delta);
                } else {
                    let i = at % plain.len();
                    tree.add(i, delta);
                    plain[i] += delta;
                }
                for n in 0..=plain.len() {
                    prop_assert_eq!(tree.prefix(n), plain[..n].iter().sum::<i64>());
                }
            }
        }
    }
}
