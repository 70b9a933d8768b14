//! The test harness of the hold book: a `Sale` drives the book as the event actor does,
//! with real seat boards standing in for the section actors (every `Seats` effect is
//! applied to its board, and placements come from the boards), and checks that the book
//! and the boards add up.

use std::ops::Range;

use chrono::TimeZone;

use super::super::*;
use crate::domain::seat_board::SeatBoard;

pub(super) const SEATED: usize = 2;
pub(super) const ROWS: u32 = 3;
pub(super) const PER_ROW: u32 = 4;
pub(super) const TIER_QUANTITY: u32 = 10;

pub(super) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 1, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

pub(super) fn rules() -> SaleRules {
    SaleRules {
        sale_starts_at: start(),
        sale_ends_at: start() + Duration::days(1),
        hold_duration: Duration::minutes(5),
        max_per_order: 4,
        max_holds_per_buyer: 2,
        max_per_buyer: 6,
        hold_warning: Duration::minutes(1),
        offer_duration: Duration::minutes(30),
    }
}

pub(super) fn rows() -> Vec<Range<u32>> {
    (0..ROWS).map(|r| r * PER_ROW..(r + 1) * PER_ROW).collect()
}

/// An on-sale with two seated sections (the second dearer), one standing section with a
/// tier, and the boards the section actors would own.
pub(super) struct Sale {
    pub(super) book: HoldBook,
    pub(super) boards: Vec<SeatBoard>,
    /// Every effect applied so far, in order.
    pub(super) log: Effects,
}

impl Sale {
    pub(super) fn new() -> Sale {
        Sale::with_status(EventStatus::OnSale)
    }

    pub(super) fn with_status(status: EventStatus) -> Sale {
        let boards: Vec<SeatBoard> = (0..SEATED)
            .map(|_| SeatBoard::new(rows(), &[], &[]))
            .collect();
        Sale::from_boards(status, boards, 0, HashMap::new(), Vec::new())
    }

    pub(super) fn from_boards(
        status: EventStatus,
        boards: Vec<SeatBoard>,
        tier_sold: u32,
        bought: HashMap<Uuid, u32>,
        saved: Vec<MirroredHold>,
    ) -> Sale {
        let ids = ids();
        let mut sections: Vec<BookSection> = boards
            .iter()
            .enumerate()
            .map(|(i, board)| BookSection {
                section_id: ids.sections[i],
                name: format!("S{i}"),
                kind: SectionKind::Seated,
                price_cents: Some(1_000 * (i as i64 + 1)),
                seats: (0..ROWS * PER_ROW)
                    .map(|p| SeatInfo {
                        seat_id: seat_id(i, p),
                        row_label: ((b'A' + (p / PER_ROW) as u8) as char).to_string(),
                        seat_number: (p % PER_ROW + 1) as i32,
                    })
                    .collect(),
                free: board.counts().available,
            })
            .collect();
        sections.push(BookSection {
            section_id: ids.floor,
            name: "Floor".into(),
            kind: SectionKind::GeneralAdmission,
            price_cents: Some(500),
            seats: Vec::new(),
            free: 0,
        });
        let tiers = vec![BookTier {
            tier_id: ids.tier,
            section_id: ids.floor,
            name: "GENERAL".into(),
            price_cents: 500,
            quantity: TIER_QUANTITY,
            sold: tier_sold,
            held: 0,
            max_per_order: 4,
            sale_starts_at: None,
            sale_ends_at: None,
        }];
        let book = HoldBook::new(ids.event, "EUR".into(), status, rules(), sections, tiers)
            .with_ended_memory(64)
            .with_bought(bought);
        let mut sale = Sale {
            book,
            boards,
            log: Effects::new(),
        };
        let effects = sale.book.restore(saved);
        sale.apply(effects);
        sale
    }

    pub(super) fn apply(&mut self, effects: Effects) {
        for effect in effects {
            if let Effect::Seats {
                section,
                hold_id,
                positions,
                change,
            } = &effect
            {
                assert!(
                    self.boards[*section].apply(*hold_id, positions, *change),
                    "{change:?} of {positions:?} did not apply"
                );
            }
            self.log.push(effect);
        }
    }

    /// Reserves and, for seats, places on the boards and confirms, as the engine does.
    pub(super) fn hold(
        &mut self,
        buyer: Uuid,
        request: HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<HoldView, HoldError> {
        let (reservation, effects) = self.book.reserve(buyer, request, None, now)?;
        self.apply(effects);
        let placed = match reservation {
            Reservation::Held(view) => return Ok(view),
            Reservation::Exact { hold_id, steps } => {
                let mut placed: Vec<(usize, Vec<u32>)> = Vec::new();
                for step in steps {
                    if let Err(taken) = self.boards[step.section].hold(hold_id, &step.positions) {
                        for (section, positions) in placed {
                            self.boards[section].release(hold_id, &positions);
                        }
                        self.book.abort(hold_id);
                        return Err(HoldError::SeatUnavailable(
                            taken.iter().map(|p| seat_id(step.section, *p)).collect(),
                        ));
                    }
                    placed.push((step.section, step.positions));
                }
                (hold_id, placed)
            }
            Reservation::Best {
                hold_id,
                quantity,
                candidates,
            } => {
                let found = candidates.into_iter().find_map(|section| {
                    self.boards[section]
                        .hold_best_available(hold_id, quantity)
                        .map(|positions| (section, positions))
                });
                let Some(found) = found else {
                    self.book.abort(hold_id);
                    return Err(HoldError::SoldOut);
                };
                (hold_id, vec![found])
            }
        };
        let (view, effects) = self.book.confirm(placed.0, placed.1, now)?;
        self.apply(effects);
        Ok(view)
    }

    pub(super) fn checkout(
        &mut self,
        hold_id: Uuid,
        buyer: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), HoldError> {
        match self.book.begin_checkout(hold_id, buyer, now) {
            Ok((_, effects)) => {
                self.apply(effects);
                Ok(())
            }
            Err((refusal, effects)) => {
                self.apply(effects);
                Err(refusal)
            }
        }
    }

    pub(super) fn pay(
        &mut self,
        hold_id: Uuid,
        buyer: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Uuid, HoldError> {
        self.checkout(hold_id, buyer, now)?;
        let order_id = Uuid::new_v4();
        let effects = self.book.finish_checkout(hold_id, order_id, now);
        self.apply(effects);
        Ok(order_id)
    }

    /// Takes an inbox note, as the event actor does.
    pub(super) fn note(&mut self, seq: i64, note: Note, now: DateTime<Utc>) {
        let effects = self.book.note(seq, note, now);
        self.apply(effects);
    }

    /// The offers made so far, in order.
    pub(super) fn offers(&self) -> Vec<Offer> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::Offered(offer) => Some(offer.clone()),
                _ => None,
            })
            .collect()
    }

    /// How the offers that ended, ended.
    pub(super) fn offer_ends(&self) -> Vec<(Uuid, OfferEnd)> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::OfferEnded { entry_id, how } => Some((*entry_id, *how)),
                _ => None,
            })
            .collect()
    }

    pub(super) fn sweep(&mut self, now: DateTime<Utc>) {
        let effects = self.book.sweep(now);
        self.apply(effects);
    }

    /// Seats and tickets: sold + held + free = capacity, the book and the boards agreeing.
    pub(super) fn assert_adds_up(&self) {
        let counts = self.book.counts();
        for (i, board) in self.boards.iter().enumerate() {
            let c = board.counts();
            assert_eq!(c.available + c.held + c.pending + c.sold, ROWS * PER_ROW);
            assert_eq!(
                counts.sections[i].1, c.available,
                "section {i}: book and board disagree"
            );
        }
        let tier = &self.book.tiers()[0];
        assert_eq!(tier.sold + tier.held + tier.available(), TIER_QUANTITY);
        assert_eq!(counts.tiers[0].1, tier.available());
    }

    pub(super) fn news(&self) -> Vec<(Uuid, HoldEvent)> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::News(n) => Some((n.hold_id, n.status)),
                _ => None,
            })
            .collect()
    }
}

pub(super) struct Ids {
    pub(super) event: Uuid,
    pub(super) sections: [Uuid; SEATED],
    pub(super) floor: Uuid,
    pub(super) tier: Uuid,
}

/// The same ids in every sale of a test, so a second book can take back the first's holds.
pub(super) fn ids() -> Ids {
    Ids {
        event: Uuid::from_u128(1),
        sections: [Uuid::from_u128(10), Uuid::from_u128(11)],
        floor: Uuid::from_u128(12),
        tier: Uuid::from_u128(13),
    }
}

pub(super) fn seat_id(section: usize, position: u32) -> Uuid {
    Uuid::from_u128(1_000 * (section as u128 + 1) + u128::from(position))
}

pub(super) fn tier(quantity: u32) -> HoldRequest {
    HoldRequest::Tier {
        tier_id: ids().tier,
        quantity,
    }
}

pub(super) fn best(quantity: u32) -> HoldRequest {
    HoldRequest::BestAvailable {
        section_id: None,
        price_cents: None,
        quantity,
    }
}

pub(super) fn open() -> DateTime<Utc> {
    start() + Duration::minutes(1)
}
