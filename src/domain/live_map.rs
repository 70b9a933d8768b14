//! The live seat map of one event as viewers see it: every seat's state on the wire, the
//! seats left per section and the tickets left per GA tier, and the changes not yet sent.
//!
//! Changes arrive one by one (from the section and event actors) and go out in numbered
//! batches. The map that snapshots show is the one *as of the last batch*: a snapshot with
//! sequence number `n` followed by batches `n + 1, n + 2, …` gives exactly the state a
//! viewer that saw every batch has. Every change in a batch is the seat's state at the
//! time the batch was cut, so applying a batch twice does no harm.
//!
//! The wire form is documented in `docs/live-protocol.md`.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use super::seat_board::Seat;

/// One seat's state on the wire (payment pending shows as held: to others it is taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WireSeat {
    Available,
    Held,
    Sold,
    Blocked,
}

impl WireSeat {
    /// The one character a snapshot packs the seat into: `a`, `h`, `s` or `b`.
    pub fn code(self) -> u8 {
        match self {
            WireSeat::Available => b'a',
            WireSeat::Held => b'h',
            WireSeat::Sold => b's',
            WireSeat::Blocked => b'b',
        }
    }
}

impl From<Seat> for WireSeat {
    fn from(seat: Seat) -> WireSeat {
        match seat {
            Seat::Available => WireSeat::Available,
            Seat::Held | Seat::PaymentPending => WireSeat::Held,
            Seat::Sold => WireSeat::Sold,
            Seat::Blocked => WireSeat::Blocked,
        }
    }
}

/// A section as the live map starts it.
pub struct SectionStart {
    pub section_id: Uuid,
    /// Seat ids in seat-map order; empty for general admission.
    pub seat_ids: Vec<Uuid>,
    /// Seat states in the same order.
    pub states: Vec<Seat>,
    /// Whether the section is on sale (has a price). Seats of a section that is not are
    /// shown blocked.
    pub on_sale: bool,
}

/// A GA tier's tickets: left to buy, held by buyers, sold. (A tier's quantity is their
/// sum, less what refunds took back out of sale.)
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct TierCounts {
    pub available: u32,
    pub held: u32,
    pub sold: u32,
}

/// A GA tier as the live map starts it.
pub struct TierStart {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub counts: TierCounts,
}

struct Section {
    section_id: Uuid,
    seat_ids: Vec<Uuid>,
    seats: Vec<WireSeat>,
    available: u32,
    /// Tiers of a GA section (their counts make its `available`).
    tiers: Vec<usize>,
    /// On sale: its seats change (a section that is not stays blocked).
    on_sale: bool,
}

struct Tier {
    tier_id: Uuid,
    section: Option<usize>,
    counts: TierCounts,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SectionCount {
    pub section_id: Uuid,
    pub available: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TierCount {
    pub tier_id: Uuid,
    #[serde(flatten)]
    pub counts: TierCounts,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotSection {
    pub section_id: Uuid,
    pub available: u32,
    /// One character per seat in seat-map order (`a`, `h`, `s`, `b`); empty for GA.
    pub states: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeatChange {
    pub seat_id: Uuid,
    pub state: WireSeat,
}

/// The whole map, as of batch `seq`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: u64,
    pub sections: Vec<SnapshotSection>,
    pub tiers: Vec<TierCount>,
}

/// What changed since the previous batch: seats, and the counts of the sections and tiers
/// they are in.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Delta {
    pub seq: u64,
    pub changes: Vec<SeatChange>,
    pub sections: Vec<SectionCount>,
    pub tiers: Vec<TierCount>,
}

pub struct LiveMap {
    seq: u64,
    sections: Vec<Section>,
    tiers: Vec<Tier>,
    /// Seat changes not yet sent: (section, position) → latest state.
    pending_seats: BTreeMap<(usize, u32), WireSeat>,
    /// Tier counts not yet sent: tier → latest counts.
    pending_tiers: BTreeMap<usize, TierCounts>,
}

impl LiveMap {
    /// A map whose first batch will be numbered `seq + 1`.
    pub fn new(seq: u64, sections: Vec<SectionStart>, tiers: Vec<TierStart>) -> LiveMap {
        let mut sections: Vec<Section> = sections
            .into_iter()
            .map(|s| {
                let seats: Vec<WireSeat> = if s.on_sale {
                    s.states.iter().map(|&seat| seat.into()).collect()
                } else {
                    vec![WireSeat::Blocked; s.seat_ids.len()]
                };
                let available = seats.iter().filter(|&&s| s == WireSeat::Available).count();
                Section {
                    section_id: s.section_id,
                    seat_ids: s.seat_ids,
                    seats,
                    available: available as u32,
                    tiers: Vec::new(),
                    on_sale: s.on_sale,
                }
            })
            .collect();
        let tiers = tiers
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let section = sections.iter().position(|s| s.section_id == t.section_id);
                if let Some(s) = section {
                    sections[s].tiers.push(i);
                    sections[s].available += t.counts.available;
                }
                Tier {
                    tier_id: t.tier_id,
                    section,
                    counts: t.counts,
                }
            })
            .collect();
        LiveMap {
            seq,
            sections,
            tiers,
            pending_seats: BTreeMap::new(),
            pending_tiers: BTreeMap::new(),
        }
    }

    /// The number of the last batch cut (the snapshot's).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// A seat of section `section` (its index) is now `state`. Unknown seats, and seats of
    /// sections not on sale, are ignored.
    pub fn seat_changed(&mut self, section: usize, position: u32, state: Seat) {
        let known = self
            .sections
            .get(section)
            .is_some_and(|s| s.on_sale && (position as usize) < s.seats.len());
        if !known {
            return;
        }
        self.pending_seats
            .insert((section, position), WireSeat::from(state));
    }

    /// GA tier `tier` (its index) now counts `counts`.
    pub fn tier_changed(&mut self, tier: usize, counts: TierCounts) {
        if tier < self.tiers.len() {
            self.pending_tiers.insert(tier, counts);
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending_seats.is_empty() || !self.pending_tiers.is_empty()
    }

    /// Cuts the next batch from the pending changes (none if nothing really changed).
    pub fn cut(&mut self) -> Option<Delta> {
        let mut changes = Vec::new();
        let mut touched_sections: Vec<usize> = Vec::new();
        for ((s, position), state) in std::mem::take(&mut self.pending_seats) {
            let section = &mut self.sections[s];
            let seat = &mut section.seats[position as usize];
            if *seat == state {
                continue;
            }
            if *seat == WireSeat::Available {
                section.available -= 1;
            } else if state == WireSeat::Available {
                section.available += 1;
            }
            *seat = state;
            changes.push(SeatChange {
                seat_id: section.seat_ids[position as usize],
                state,
            });
            if touched_sections.last() != Some(&s) {
                touched_sections.push(s);
            }
        }
        let mut tiers = Vec::new();
        for (t, counts) in std::mem::take(&mut self.pending_tiers) {
            let tier = &mut self.tiers[t];
            if tier.counts == counts {
                continue;
            }
            if let Some(s) = tier
                .section
                .filter(|_| tier.counts.available != counts.available)
            {
                let section = &mut self.sections[s];
                section.available =
                    section.available.saturating_sub(tier.counts.available) + counts.available;
                if !touched_sections.contains(&s) {
                    touched_sections.push(s);
                }
            }
            tier.counts = counts;
            tiers.push(TierCount {
                tier_id: tier.tier_id,
                counts,
            });
        }
        if changes.is_empty() && tiers.is_empty() {
            return None;
        }
        touched_sections.sort_unstable();
        touched_sections.dedup();
        self.seq += 1;
        Some(Delta {
            seq: self.seq,
            changes,
            sections: touched_sections
                .into_iter()
                .map(|s| SectionCount {
                    section_id: self.sections[s].section_id,
                    available: self.sections[s].available,
                })
                .collect(),
            tiers,
        })
    }

    /// The whole map as of the last batch.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            sections: self
                .sections
                .iter()
                .map(|s| SnapshotSection {
                    section_id: s.section_id,
                    available: s.available,
                    states: s.seats.iter().map(|seat| char::from(seat.code())).collect(),
                })
                .collect(),
            tiers: self
                .tiers
                .iter()
                .map(|t| TierCount {
                    tier_id: t.tier_id,
                    counts: t.counts,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn counts(available: u32, held: u32, sold: u32) -> TierCounts {
        TierCounts {
            available,
            held,
            sold,
        }
    }

    fn map() -> (LiveMap, Vec<Uuid>, Uuid, Uuid) {
        let seats: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let (seated, ga, tier) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let map = LiveMap::new(
            100,
            vec![
                SectionStart {
                    section_id: seated,
                    seat_ids: seats.clone(),
                    states: vec![Seat::Available, Seat::Sold, Seat::Available, Seat::Blocked],
                    on_sale: true,
                },
                SectionStart {
                    section_id: ga,
                    seat_ids: Vec::new(),
                    states: Vec::new(),
                    on_sale: true,
                },
            ],
            vec![TierStart {
                tier_id: tier,
                section_id: ga,
                counts: counts(50, 0, 10),
            }],
        );
        (map, seats, seated, tier)
    }

    #[test]
    fn snapshot_packs_one_character_per_seat_and_counts_tiers_into_their_section() {
        let (map, _, seated, tier) = map();
        let snapshot = map.snapshot();
        assert_eq!(snapshot.seq, 100);
        assert_eq!(snapshot.sections[0].section_id, seated);
        assert_eq!(snapshot.sections[0].states, "asab");
        assert_eq!(snapshot.sections[0].available, 2);
        assert_eq!(snapshot.sections[1].states, "");
        assert_eq!(snapshot.sections[1].available, 50);
        assert_eq!(
            snapshot.tiers,
            vec![TierCount {
                tier_id: tier,
                counts: counts(50, 0, 10)
            }]
        );
        let json = serde_json::to_value(&snapshot.tiers[0]).expect("a tier count is JSON");
        assert_eq!(
            json,
            serde_json::json!({"tier_id": tier, "available": 50, "held": 0, "sold": 10})
        );
    }

    #[test]
    fn a_batch_carries_the_latest_state_of_each_changed_seat_and_the_counts() {
        let (mut map, seats, seated, _) = map();
        assert!(map.cut().is_none(), "nothing changed, no batch");
        map.seat_changed(0, 0, Seat::Held);
        map.seat_changed(0, 2, Seat::Held);
        map.seat_changed(0, 2, Seat::Available);
        let delta = map.cut().expect("a batch");
        assert_eq!(delta.seq, 101);
        assert_eq!(
            delta.changes,
            vec![SeatChange {
                seat_id: seats[0],
                state: WireSeat::Held
            }],
            "seat 2 went and came back within the batch: no change to send"
        );
        assert_eq!(
            delta.sections,
            vec![SectionCount {
                section_id: seated,
                available: 1
            }]
        );
        assert!(map.snapshot().sections[0].states.starts_with('h'));

        map.seat_changed(0, 0, Seat::PaymentPending);
        assert!(
            map.cut().is_none(),
            "payment pending looks held from outside"
        );
        map.seat_changed(0, 0, Seat::Sold);
        let delta = map.cut().expect("a batch");
        assert_eq!(delta.seq, 102, "numbers rise by one per batch");
        assert_eq!(delta.changes[0].state, WireSeat::Sold);
        assert_eq!(delta.sections[0].available, 1);
    }

    #[test]
    fn tier_counts_ride_along_with_their_section() {
        let (mut map, _, _, tier) = map();
        map.tier_changed(0, counts(46, 4, 10));
        map.tier_changed(7, counts(1, 0, 0));
        let delta = map.cut().expect("a batch");
        assert_eq!(
            delta.tiers,
            vec![TierCount {
                tier_id: tier,
                counts: counts(46, 4, 10)
            }]
        );
        assert_eq!(delta.sections[0].available, 46);
        assert_eq!(map.snapshot().sections[1].available, 46);
        // Held tickets bought: as many left, the split changed, and that is news.
        map.tier_changed(0, counts(46, 1, 13));
        let delta = map.cut().expect("a batch: sold and held counts changed");
        assert_eq!(delta.tiers[0].counts, counts(46, 1, 13));
        assert!(
            delta.sections.is_empty(),
            "the section's count did not change"
        );
    }

    #[test]
    fn seats_of_sections_not_on_sale_stay_blocked() {
        let seat = Uuid::new_v4();
        let mut map = LiveMap::new(
            0,
            vec![SectionStart {
                section_id: Uuid::new_v4(),
                seat_ids: vec![seat],
                states: vec![Seat::Available],
                on_sale: false,
            }],
            Vec::new(),
        );
        map.seat_changed(0, 0, Seat::Held);
        map.seat_changed(0, 9, Seat::Held);
        map.seat_changed(3, 0, Seat::Held);
        assert!(map.cut().is_none());
        assert_eq!(map.snapshot().sections[0].states, "b");
        assert_eq!(map.snapshot().sections[0].available, 0);
    }
}
