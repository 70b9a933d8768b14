//! Refunds as rules: the organizer's refund policy (may a buyer cancel now, and what does
//! it cost them), and what a refund of some tickets of an order pays back.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldErrors;

/// Most a reason may say.
pub const REASON_MAX: usize = 500;

/// The organizer's refund policy for an event. Organizers refund whenever they choose;
/// buyers may cancel their own orders only as this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefundPolicy {
    /// Buyers may cancel until this many hours before the start; `None`: never.
    pub hours_before: Option<u32>,
    /// Kept back from a buyer's refund: a fixed fee…
    pub fee_cents: i64,
    /// …plus this share of what is refunded, in basis points (1/100 of a percent).
    pub fee_basis_points: u32,
}

/// The refund policy as the API shows and takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundPolicyBody {
    /// Buyers may cancel their orders until this many hours before the event starts
    /// (0 to 8760); `null`: buyers cannot cancel (the organizer still can refund).
    #[schema(minimum = 0, maximum = 8760)]
    pub buyer_cancel_until_hours: Option<i64>,
    /// A fixed fee kept back from a buyer's cancellation, in minor units.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000000)]
    pub fee_cents: i64,
    /// A share of the refunded amount kept back, in percent (0 to 100, two decimals).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100, multiple_of = 0.01)]
    pub fee_percent: f64,
}

impl RefundPolicy {
    /// Checks a policy as sent, naming every bad field.
    pub fn parse(body: &RefundPolicyBody) -> Result<RefundPolicy, FieldErrors> {
        let mut errors = FieldErrors::new();
        let hours = match body.buyer_cancel_until_hours {
            None => None,
            Some(h) if (0..=8760).contains(&h) => Some(h as u32),
            Some(_) => {
                errors.add(
                    "buyer_cancel_until_hours",
                    "must be from 0 to 8760, or null",
                );
                None
            }
        };
        errors.check(
            (0..=100_000_000).contains(&body.fee_cents),
            "fee_cents",
            "must be from 0 to 100000000",
        );
        let basis_points = body.fee_percent * 100.0;
        // Two decimals as written: the shortest form of the number read (`4.78`, not
        // `4.779999999999999`, which is no multiple of 0.01 however close).
        let written = body.fee_percent.to_string();
        let decimals = written.split_once('.').map_or(0, |(_, d)| d.len());
        let whole =
            basis_points.is_finite() && (0.0..=10_000.0).contains(&basis_points) && decimals <= 2;
        errors.check(
            whole,
            "fee_percent",
            "must be from 0 to 100, with at most two decimals",
        );
        errors.finish(RefundPolicy {
            hours_before: hours,
            fee_cents: body.fee_cents,
            fee_basis_points: if whole {
                basis_points.round() as u32
            } else {
                0
            },
        })
    }

    pub fn body(&self) -> RefundPolicyBody {
        RefundPolicyBody {
            buyer_cancel_until_hours: self.hours_before.map(i64::from),
            fee_cents: self.fee_cents,
            fee_percent: f64::from(self.fee_basis_points) / 100.0,
        }
    }

    /// Until when a buyer may cancel, for an event starting at `start`.
    pub fn buyer_deadline(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.hours_before
            .map(|h| start - Duration::hours(i64::from(h)))
    }

    /// Whether a buyer may cancel at `now`; if not, why.
    pub fn buyer_may_cancel(&self, start: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
        match self.buyer_deadline(start) {
            None => Err("the organizer does not let buyers cancel orders for this event".into()),
            Some(deadline) if now >= deadline => Err(format!(
                "orders for this event could be cancelled until {}",
                deadline.to_rfc3339()
            )),
            Some(_) => Ok(()),
        }
    }

    /// What a buyer's cancellation of `amount` keeps back: never more than the amount.
    pub fn fee(&self, amount: i64) -> i64 {
        let share = (i128::from(amount) * i128::from(self.fee_basis_points) / 10_000) as i64;
        self.fee_cents.saturating_add(share).clamp(0, amount.max(0))
    }
}

/// What refunding tickets worth `tickets_cents` of an order pays back: the tickets' price,
/// or, when they are all the order has left, everything not yet refunded (its fees too).
pub fn refund_amount(
    total_cents: i64,
    refunded_cents: i64,
    tickets_cents: i64,
    all_left: bool,
) -> i64 {
    let left = (total_cents - refunded_cents).max(0);
    if all_left {
        left
    } else {
        tickets_cents.clamp(0, left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        hours: Option<i64>,
        fee_cents: i64,
        fee_percent: f64,
    ) -> Result<RefundPolicy, FieldErrors> {
        RefundPolicy::parse(&RefundPolicyBody {
            buyer_cancel_until_hours: hours,
            fee_cents,
            fee_percent,
        })
    }

    #[test]
    fn a_buyer_may_cancel_until_the_deadline_and_not_at_it() {
        let p = policy(Some(48), 0, 0.0).unwrap_or_default();
        let start = Utc::now() + Duration::days(10);
        assert!(p
            .buyer_may_cancel(start, start - Duration::hours(49))
            .is_ok());
        assert!(p
            .buyer_may_cancel(start, start - Duration::hours(48))
            .is_err());
        let never = RefundPolicy::default();
        assert!(never.buyer_may_cancel(start, Utc::now()).is_err());
    }

    #[test]
    fn the_fee_is_fixed_plus_a_share_and_never_more_than_the_refund() {
        let p = policy(Some(1), 150, 10.0).unwrap_or_default();
        assert_eq!(p.fee(10_000), 1_150);
        assert_eq!(p.fee(100), 100);
        assert_eq!(p.fee(0), 0);
        let half = policy(Some(1), 0, 12.5).unwrap_or_default();
        assert_eq!(half.fee(1_000), 125);
    }

    #[test]
    fn a_bad_policy_names_each_field() {
        let errors = policy(Some(-1), -5, 100.5)
            .err()
            .map(FieldErrors::into_inner)
            .unwrap_or_default();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(policy(None, 0, 0.001).is_err(), "three decimals");
        assert!(
            policy(None, 0, 4.779999999999999).is_err(),
            "close to 4.78 is not 4.78"
        );
        assert_eq!(policy(None, 0, 4.78).map(|p| p.fee_basis_points), Ok(478));
        assert_eq!(
            policy(None, 0, 100.0).map(|p| p.fee_basis_points),
            Ok(10_000)
        );
        assert!(policy(None, 0, f64::NAN).is_err());
        assert_eq!(
            policy(Some(24), 0, 2.5).map(|p| p.fee_basis_points),
            Ok(250)
        );
    }

    #[test]
    fn the_last_tickets_of_an_order_take_its_fees_with_them() {
        assert_eq!(refund_amount(10_300, 0, 5_000, false), 5_000);
        assert_eq!(refund_amount(10_300, 5_000, 5_000, true), 5_300);
        assert_eq!(refund_amount(10_300, 10_300, 5_000, false), 0);
        assert_eq!(refund_amount(1_000, 0, 5_000, false), 1_000);
    }
}
