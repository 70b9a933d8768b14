//! Venue bookings as plain rules: the terms a venue sets (a day rate, a deposit that is a
//! fixed sum or a share of a day's rate, how long a request holds the time), what a
//! booking is made as under them, the days its window takes, and its invoice.

use chrono::{DateTime, Duration, Utc};

use super::text_enum::text_enum;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a booking stands. REQUESTED holds the venue's time until it is paid or lapses;
/// CONFIRMED once its deposit is paid (at once when there is none); CANCELLED frees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingStatus {
    Requested,
    Confirmed,
    Cancelled,
}

text_enum!(BookingStatus, "booking status" {
    Requested => "REQUESTED",
    Confirmed => "CONFIRMED",
    Cancelled => "CANCELLED",
});

/// The deposit a venue asks before a booking is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deposit {
    None,
    Fixed {
        cents: i64,
    },
    /// A share of one day's rate, in basis points (2,500 = 25 %).
    ShareOfDayRate {
        basis_points: i32,
    },
}

/// A venue's terms for bookings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub currency: String,
    pub day_rate_cents: i64,
    pub deposit: Deposit,
    pub request_hours: i32,
}

impl Terms {
    /// A venue that never set terms: no rent, no deposit, bookings confirmed at once.
    pub fn none() -> Terms {
        Terms {
            currency: "USD".into(),
            day_rate_cents: 0,
            deposit: Deposit::None,
            request_hours: 48,
        }
    }

    /// The deposit a booking made now owes (rounded to the cent, half up).
    pub fn deposit_due(&self) -> i64 {
        match self.deposit {
            Deposit::None => 0,
            Deposit::Fixed { cents } => cents,
            Deposit::ShareOfDayRate { basis_points } => {
                (self.day_rate_cents * i64::from(basis_points) + 5_000) / 10_000
            }
        }
    }

    /// What a booking requested at `now` is made as: confirmed at once without a deposit,
    /// else requested until the request lapses.
    pub fn plan(&self, now: DateTime<Utc>) -> BookingPlan {
        let deposit_cents = self.deposit_due();
        let (status, requested_until) = if deposit_cents == 0 {
            (BookingStatus::Confirmed, None)
        } else {
            (
                BookingStatus::Requested,
                Some(now + Duration::hours(self.request_hours.into())),
            )
        };
        BookingPlan {
            status,
            requested_until,
            currency: self.currency.clone(),
            day_rate_cents: self.day_rate_cents,
            deposit_cents,
            at: now,
        }
    }
}

/// A booking about to be written, under the terms of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingPlan {
    pub status: BookingStatus,
    pub requested_until: Option<DateTime<Utc>>,
    pub currency: String,
    pub day_rate_cents: i64,
    pub deposit_cents: i64,
    /// When it is requested (the clock's now).
    pub at: DateTime<Utc>,
}

/// The days a window takes, each begun day counted whole (a venue rents by the day).
pub fn days(from: DateTime<Utc>, until: DateTime<Utc>) -> i64 {
    let seconds = (until - from).num_seconds().max(1);
    (seconds + 86_399) / 86_400
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: i64,
    pub unit_cents: i64,
    pub amount_cents: i64,
}

/// What a booking costs and what is left to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Invoice {
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub total_cents: i64,
    pub deposit_due_cents: i64,
    pub deposit_paid_cents: i64,
    /// The total less what was paid.
    pub balance_cents: i64,
}

/// An add-on as the booking took it.
pub struct AddonLine<'a> {
    pub name: &'a str,
    pub quantity: i64,
    pub unit_cents: i64,
}

/// The invoice of a booking: the rent (day rate × days of its window, setup and teardown
/// included), each add-on, the deposit and the balance.
pub fn invoice(
    currency: &str,
    day_rate_cents: i64,
    days: i64,
    addons: &[AddonLine<'_>],
    deposit_due_cents: i64,
    deposit_paid_cents: i64,
) -> Invoice {
    let mut lines = vec![InvoiceLine {
        description: format!("Venue rent, {days} day{}", if days == 1 { "" } else { "s" }),
        quantity: days,
        unit_cents: day_rate_cents,
        amount_cents: day_rate_cents.saturating_mul(days),
    }];
    lines.extend(addons.iter().map(|a| InvoiceLine {
        description: a.name.to_owned(),
        quantity: a.quantity,
        unit_cents: a.unit_cents,
        amount_cents: a.unit_cents.saturating_mul(a.quantity),
    }));
    let total_cents = lines
        .iter()
        .fold(0_i64, |sum, l| sum.saturating_add(l.amount_cents));
    Invoice {
        currency: currency.to_owned(),
        lines,
        total_cents,
        deposit_due_cents,
        deposit_paid_cents,
        balance_cents: total_cents - deposit_paid_cents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, hour, 0, 0)
            .single()
            .unwrap_or_else(|| panic!("a time"))
    }

    #[test]
    fn a_begun_day_is_a_day() {
        assert_eq!(days(at(10), at(11)), 1);
        assert_eq!(days(at(0), at(0) + Duration::hours(24)), 1);
        assert_eq!(days(at(0), at(0) + Duration::hours(25)), 2);
    }

    #[test]
    fn deposits_are_fixed_or_a_share_of_the_day_rate_and_decide_the_status() {
        let mut terms = Terms {
            currency: "EUR".into(),
            day_rate_cents: 250_000,
            deposit: Deposit::ShareOfDayRate {
                basis_points: 2_500,
            },
            request_hours: 24,
        };
        assert_eq!(terms.deposit_due(), 62_500);
        let plan = terms.plan(at(9));
        assert_eq!(plan.status, BookingStatus::Requested);
        assert_eq!(plan.requested_until, Some(at(9) + Duration::hours(24)));
        terms.deposit = Deposit::Fixed { cents: 10_000 };
        assert_eq!(terms.deposit_due(), 10_000);
        terms.deposit = Deposit::None;
        assert_eq!(terms.plan(at(9)).status, BookingStatus::Confirmed);
        assert_eq!(Terms::none().plan(at(9)).requested_until, None);
    }

    #[test]
    fn an_invoice_adds_rent_and_add_ons_and_takes_off_what_was_paid() {
        let addons = [
            AddonLine {
                name: "Catering",
                quantity: 120,
                unit_cents: 1_500,
            },
            AddonLine {
                name: "PA system",
                quantity: 1,
                unit_cents: 40_000,
            },
        ];
        let bill = invoice("EUR", 250_000, 2, &addons, 62_500, 62_500);
        assert_eq!(bill.lines.len(), 3);
        assert_eq!(bill.lines[0].amount_cents, 500_000);
        assert_eq!(bill.total_cents, 500_000 + 180_000 + 40_000);
        assert_eq!(bill.balance_cents, bill.total_cents - 62_500);
    }
}
