//! A hold paid for: HELD → PAYMENT_PENDING while the card is asked, back to HELD if it
//! says no, SOLD once the order is durable.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    news, seat_effects, Effect, Effects, Ended, HoldBook, HoldError, HoldEvent, HoldStatus, Lines,
    OfferEnd,
};
use crate::domain::seat_board::SeatChange;
use crate::views::HoldView;

impl HoldBook {
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
            self.end_hold(hold_id, Ended::Expired, now, &mut effects);
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
    /// (expiring at the next sweep if that has passed) — or `extend` later, if given and
    /// the hold was never extended before (payments were degraded: the buyer gets the time
    /// back once). Returns whether it was extended.
    pub fn cancel_checkout(
        &mut self,
        hold_id: Uuid,
        extend: Option<chrono::Duration>,
    ) -> (Effects, bool) {
        let mut effects = Effects::new();
        let Some(hold) = self.holds.get_mut(&hold_id) else {
            return (effects, false);
        };
        if hold.status != HoldStatus::PaymentPending {
            return (effects, false);
        }
        hold.status = HoldStatus::Held;
        let extended = match extend {
            Some(by) if !hold.extended && by > chrono::Duration::zero() => {
                hold.expires_at += by;
                hold.extended = true;
                true
            }
            _ => false,
        };
        self.deadlines.insert((hold.expires_at, hold_id));
        if extended && self.rules.hold_warning > chrono::Duration::zero() {
            self.warnings
                .insert((hold.expires_at - self.rules.hold_warning, hold_id));
        }
        let hold = &self.holds[&hold_id];
        if extended {
            effects.push(Effect::Mirror(self.mirrored_of(hold_id, hold)));
        }
        seat_effects(
            hold_id,
            &hold.lines,
            SeatChange::CancelPayment,
            &mut effects,
        );
        effects.push(news(hold_id, hold, HoldEvent::Held, None));
        (effects, extended)
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
        if let Some(entry_id) = hold.offer {
            effects.push(Effect::OfferEnded {
                entry_id,
                how: OfferEnd::Purchased,
            });
        }
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
}
