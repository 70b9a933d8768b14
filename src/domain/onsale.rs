//! The on-sale schedule: when the waiting room opens, when the sale runs, how long a hold
//! lasts and how many tickets one order may take.

use chrono::{DateTime, Duration, Utc};

use super::validation::FieldErrors;

pub const MAX_HOLD_MINUTES: i64 = 60;
pub const MAX_PER_ORDER: i64 = 100;
pub const MAX_PER_BUYER: i64 = 1_000;
pub const MAX_ADMISSION_PER_MINUTE: i64 = 1_000_000;

/// The waiting room of an on-sale.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingRoom {
    /// When buyers may start to join the (shuffled) pre-queue.
    pub queue_opens_at: DateTime<Utc>,
    /// How many buyers are let in to shop per minute.
    pub admission_per_minute: i32,
}

/// A validated on-sale schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct OnSaleSchedule {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_minutes: i32,
    pub max_per_order: i32,
    /// Tickets one buyer may have across orders; `None`: `max_per_order`.
    pub max_per_buyer: Option<i32>,
    pub waiting_room: Option<WaitingRoom>,
}

/// The raw schedule, before validation.
pub struct OnSaleInput {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_minutes: i64,
    pub max_per_order: i64,
    pub max_per_buyer: Option<i64>,
    pub waiting_room: Option<(DateTime<Utc>, i64)>,
}

impl OnSaleSchedule {
    /// Checks the schedule against the event's end and the present moment.
    pub fn parse(
        input: OnSaleInput,
        event_ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        errors.check(
            input.sale_ends_at > input.sale_starts_at,
            "sale_ends_at",
            "must be after sale_starts_at",
        );
        errors.check(
            input.sale_ends_at > now,
            "sale_ends_at",
            "must be in the future",
        );
        errors.check(
            input.sale_ends_at <= event_ends_at,
            "sale_ends_at",
            "must not be after the event ends",
        );
        let hold_ok = (1..=MAX_HOLD_MINUTES).contains(&input.hold_minutes);
        errors.check(
            hold_ok,
            "hold_minutes",
            format!("must be between 1 and {MAX_HOLD_MINUTES}"),
        );
        let max_ok = (1..=MAX_PER_ORDER).contains(&input.max_per_order);
        errors.check(
            max_ok,
            "max_per_order",
            format!("must be between 1 and {MAX_PER_ORDER}"),
        );

        if let Some(per_buyer) = input.max_per_buyer {
            errors.check(
                (1..=MAX_PER_BUYER).contains(&per_buyer) && per_buyer >= input.max_per_order,
                "max_per_buyer",
                format!("must be between max_per_order and {MAX_PER_BUYER}"),
            );
        }
        let waiting_room = input.waiting_room.and_then(|(opens, rate)| {
            errors.check(
                opens <= input.sale_starts_at,
                "waiting_room.queue_opens_at",
                "must not be after sale_starts_at",
            );
            errors.check(
                input.sale_starts_at - opens <= Duration::days(7),
                "waiting_room.queue_opens_at",
                "must be at most 7 days before sale_starts_at",
            );
            let rate = i32::try_from(rate)
                .ok()
                .filter(|r| i64::from(*r) <= MAX_ADMISSION_PER_MINUTE && *r > 0);
            errors.check(
                rate.is_some(),
                "waiting_room.admission_per_minute",
                format!("must be between 1 and {MAX_ADMISSION_PER_MINUTE}"),
            );
            rate.map(|admission_per_minute| WaitingRoom {
                queue_opens_at: opens,
                admission_per_minute,
            })
        });

        let schedule = OnSaleSchedule {
            sale_starts_at: input.sale_starts_at,
            sale_ends_at: input.sale_ends_at,
            hold_minutes: i32::try_from(input.hold_minutes).unwrap_or(0),
            max_per_order: i32::try_from(input.max_per_order).unwrap_or(0),
            max_per_buyer: input.max_per_buyer.and_then(|n| i32::try_from(n).ok()),
            waiting_room,
        };
        errors.finish(schedule)
    }

    /// Whether buyers may hold and buy at `now`.
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        self.sale_starts_at <= now && now < self.sale_ends_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(now: DateTime<Utc>) -> OnSaleInput {
        OnSaleInput {
            sale_starts_at: now + Duration::hours(1),
            sale_ends_at: now + Duration::hours(5),
            hold_minutes: 10,
            max_per_order: 8,
            max_per_buyer: None,
            waiting_room: Some((now + Duration::minutes(30), 600)),
        }
    }

    #[test]
    fn a_buyer_limit_is_at_least_the_order_limit() {
        let now = Utc::now();
        let end = now + Duration::days(1);
        let with = |n: i64| OnSaleInput {
            max_per_buyer: Some(n),
            ..input(now)
        };
        assert!(OnSaleSchedule::parse(with(8), end, now).is_ok());
        assert!(OnSaleSchedule::parse(with(20), end, now).is_ok());
        for bad in [7, 0, 1_001] {
            let fields = OnSaleSchedule::parse(with(bad), end, now)
                .err()
                .map(|e| e.into_inner())
                .unwrap_or_default();
            assert!(fields.contains_key("max_per_buyer"), "{bad}");
        }
    }

    #[test]
    fn a_sensible_schedule_is_accepted() {
        let now = Utc::now();
        let schedule = OnSaleSchedule::parse(input(now), now + Duration::days(1), now);
        assert!(
            schedule.is_ok_and(|s| !s.is_open_at(now) && s.is_open_at(now + Duration::hours(2)))
        );
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let now = Utc::now();
        let mut bad = input(now);
        bad.sale_ends_at = bad.sale_starts_at;
        bad.hold_minutes = 0;
        bad.max_per_order = 1000;
        bad.waiting_room = Some((now + Duration::hours(2), 0));
        let errors = OnSaleSchedule::parse(bad, now + Duration::days(1), now)
            .err()
            .map(FieldErrors::into_inner)
            .unwrap_or_default();
        for field in [
            "sale_ends_at",
            "hold_minutes",
            "max_per_order",
            "waiting_room.queue_opens_at",
            "waiting_room.admission_per_minute",
        ] {
            assert!(
                errors.contains_key(field),
                "{field} missing from {errors:?}"
            );
        }
    }

    #[test]
    fn the_sale_must_end_before_the_event() {
        let now = Utc::now();
        assert!(OnSaleSchedule::parse(input(now), now + Duration::hours(2), now).is_err());
    }
}
