//! Where a seat request goes: exact seats checked and grouped by section, or the sections
//! best available may try, dearest first.

use std::collections::HashSet;

use uuid::Uuid;

use super::*;

impl HoldBook {
    pub(super) fn plan_seats(
        &self,
        hold_id: Uuid,
        seat_ids: Vec<Uuid>,
    ) -> Result<Reservation, HoldError> {
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

    pub(super) fn plan_best(
        &self,
        hold_id: Uuid,
        section_id: Option<Uuid>,
        price_cents: Option<i64>,
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
        if let Some(price) = price_cents {
            candidates.retain(|&i| self.sections[i].price_cents == Some(price));
            if candidates.is_empty() {
                return Err(HoldError::Invalid(FieldErrors::single(
                    "best_available.price_cents",
                    "no seated section on sale here at this price",
                )));
            }
        }
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
}

fn listed<'a>(ids: impl Iterator<Item = &'a Uuid>) -> String {
    ids.map(Uuid::to_string).collect::<Vec<_>>().join(", ")
}
