//! What the book answers without changing: live counts, the waiting room's demand, a
//! hold as its buyer sees it, and a hold as it is mirrored.

use uuid::Uuid;

use super::*;

impl HoldBook {
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

    /// The buyer's live holds (held or being paid for), soonest deadline first. Most
    /// callers hold nothing: they are answered without looking at the holds.
    pub fn holds_of(&self, buyer_id: Uuid) -> Vec<HoldView> {
        if self.buyers.get(&buyer_id).is_none_or(|b| b.holds == 0) {
            return Vec::new();
        }
        let mut views: Vec<HoldView> = self
            .holds
            .iter()
            .filter(|(_, hold)| hold.buyer_id == buyer_id)
            .map(|(id, hold)| self.view_of(*id, hold))
            .collect();
        views.sort_by_key(|v| (v.expires_at, v.hold_id));
        views
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

    pub(super) fn mirrored_of(&self, hold_id: Uuid, hold: &Hold) -> MirroredHold {
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
            offer: hold.offer,
        }
    }

    pub(super) fn view_of(&self, hold_id: Uuid, hold: &Hold) -> HoldView {
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
            offer_id: hold.offer,
            buyer_id: hold.buyer_id,
        }
    }
}
