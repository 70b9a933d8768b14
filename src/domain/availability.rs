//! How much of an event is left to buy, as the catalog shows it. Postgres knows what is sold
//! and blocked; only the event's engine knows what is held this second. So the figures come
//! from the engine's live counts when it runs (held seats are not available), and from the
//! rows otherwise (an event nobody is buying right now has no holds worth counting).
//!
//! Called by the catalog's event detail; plain functions of what was read.

use uuid::Uuid;

use super::holds::EventCounts;
use super::venue::SectionKind;

/// One section as Postgres has it for the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionStock {
    pub section_id: Uuid,
    pub kind: SectionKind,
    pub capacity: i32,
    /// Seats sold or blocked (seated sections).
    pub sold: i64,
    pub blocked: i64,
    /// The seat price, for a seated section on sale.
    pub price_cents: Option<i64>,
}

/// One general-admission tier as Postgres has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierStock {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub quantity: i32,
    pub sold: i32,
    pub price_cents: i64,
}

/// What is left of a section: its price as the catalog shows it (the seat price, or the
/// lowest tier price of a standing section) and how many can still be bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionLeft {
    pub price_cents: Option<i64>,
    pub available: i64,
}

/// What is left of every tier, in the order given: the live count when the engine runs.
pub fn tiers_left(tiers: &[TierStock], live: Option<&EventCounts>) -> Vec<i32> {
    tiers
        .iter()
        .map(|t| {
            let counted = live.and_then(|l| find(&l.tiers, t.tier_id));
            match counted {
                Some(free) => i32::try_from(free).unwrap_or(i32::MAX),
                None => (t.quantity - t.sold).max(0),
            }
        })
        .collect()
}

/// What is left of every section, in the order given. A seated section not on sale (no
/// price) has nothing to buy; a standing one has what its tiers have.
pub fn sections_left(
    sections: &[SectionStock],
    tiers: &[TierStock],
    live: Option<&EventCounts>,
) -> Vec<SectionLeft> {
    sections
        .iter()
        .map(|s| {
            let own = || tiers.iter().filter(|t| t.section_id == s.section_id);
            let price_cents = match s.kind {
                SectionKind::Seated => s.price_cents,
                SectionKind::GeneralAdmission => own().map(|t| t.price_cents).min(),
            };
            let from_rows = match s.kind {
                SectionKind::Seated => s
                    .price_cents
                    .map_or(0, |_| i64::from(s.capacity) - s.sold - s.blocked),
                SectionKind::GeneralAdmission => {
                    own().map(|t| i64::from((t.quantity - t.sold).max(0))).sum()
                }
            };
            let counted = live.and_then(|l| find(&l.sections, s.section_id));
            SectionLeft {
                price_cents,
                available: counted.map_or(from_rows, i64::from).max(0),
            }
        })
        .collect()
}

fn find(counts: &[(Uuid, u32)], id: Uuid) -> Option<u32> {
    counts.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seated(price_cents: Option<i64>) -> SectionStock {
        SectionStock {
            section_id: Uuid::new_v4(),
            kind: SectionKind::Seated,
            capacity: 100,
            sold: 30,
            blocked: 5,
            price_cents,
        }
    }

    fn standing() -> (SectionStock, Vec<TierStock>) {
        let section = SectionStock {
            section_id: Uuid::new_v4(),
            kind: SectionKind::GeneralAdmission,
            capacity: 500,
            sold: 0,
            blocked: 0,
            price_cents: None,
        };
        let tier = |price_cents, quantity, sold| TierStock {
            tier_id: Uuid::new_v4(),
            section_id: section.section_id,
            quantity,
            sold,
            price_cents,
        };
        (section, vec![tier(4_000, 200, 50), tier(2_500, 300, 310)])
    }

    #[test]
    fn from_the_rows_a_section_has_what_is_neither_sold_nor_blocked() {
        let (ga, tiers) = standing();
        let sections = [seated(Some(9_000)), seated(None), ga];
        let left = sections_left(&sections, &tiers, None);
        assert_eq!(
            left[0],
            SectionLeft {
                price_cents: Some(9_000),
                available: 65
            }
        );
        assert_eq!(
            left[1].available, 0,
            "a section not on sale has nothing to buy"
        );
        // Tiers: 150 left and an oversold one counted as none; the lowest tier price.
        assert_eq!(
            left[2],
            SectionLeft {
                price_cents: Some(2_500),
                available: 150
            }
        );
        assert_eq!(tiers_left(&tiers, None), [150, 0]);
    }

    #[test]
    fn the_engines_live_counts_win_when_it_runs() {
        let (ga, tiers) = standing();
        let seats = seated(Some(9_000));
        let live = EventCounts {
            sections: vec![(seats.section_id, 12), (ga.section_id, 7)],
            tiers: vec![(tiers[0].tier_id, 7)],
            active_holds: 3,
            holders: 2,
        };
        let left = sections_left(&[seats, ga], &tiers, Some(&live));
        assert_eq!((left[0].available, left[1].available), (12, 7));
        // A tier the engine does not count falls back to its row.
        assert_eq!(tiers_left(&tiers, Some(&live)), [7, 0]);
    }
}
