//! Events: what is on, where and when, and the status an event moves through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text_enum::text_enum;
use super::validation::{optional_text, text, FieldErrors};

/// What kind of event it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Concert,
    Conference,
    Sports,
    Festival,
    Theater,
    Comedy,
    Other,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Concert,
        Category::Conference,
        Category::Sports,
        Category::Festival,
        Category::Theater,
        Category::Comedy,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Concert => "CONCERT",
            Category::Conference => "CONFERENCE",
            Category::Sports => "SPORTS",
            Category::Festival => "FESTIVAL",
            Category::Theater => "THEATER",
            Category::Comedy => "COMEDY",
            Category::Other => "OTHER",
        }
    }

    /// Accepts the upper-case name, in any case.
    pub fn parse(value: &str) -> Result<Self, String> {
        let upper = value.trim().to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == upper)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            })
    }
}

/// Where an event is in its life. Moves only along [`EventStatus::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Being set up; visible to its organizer only.
    Draft,
    /// In the catalog; its on-sale has not opened yet.
    Published,
    /// Tickets are being sold.
    OnSale,
    /// Nothing left to sell (may go back on sale when tickets come back).
    SoldOut,
    Cancelled,
    Completed,
}

text_enum!(EventStatus, "event status" {
    Draft => "DRAFT",
    Published => "PUBLISHED",
    OnSale => "ON_SALE",
    SoldOut => "SOLD_OUT",
    Cancelled => "CANCELLED",
    Completed => "COMPLETED",
});

impl EventStatus {
    /// The lifecycle: DRAFT → PUBLISHED → ON_SALE ⇄ SOLD_OUT → COMPLETED, and any status
    /// that is not final → CANCELLED.
    pub fn can_become(self, next: EventStatus) -> bool {
        use EventStatus::*;
        matches!(
            (self, next),
            (Draft, Published)
                | (Published, OnSale)
                | (OnSale, SoldOut)
                | (SoldOut, OnSale)
                | (Published | OnSale | SoldOut, Completed)
                | (Draft | Published | OnSale | SoldOut, Cancelled)
        )
    }

    /// Every status, in the lifecycle's order.
    pub const ALL: [EventStatus; 6] = [
        EventStatus::Draft,
        EventStatus::Published,
        EventStatus::OnSale,
        EventStatus::SoldOut,
        EventStatus::Cancelled,
        EventStatus::Completed,
    ];

    /// The statuses that may become `next` (what a compare-and-set moves from).
    pub fn able_to_become(next: EventStatus) -> Vec<EventStatus> {
        EventStatus::ALL
            .into_iter()
            .filter(|s| s.can_become(next))
            .collect()
    }

    /// Cancelled and completed events take no more changes.
    pub fn is_final(self) -> bool {
        matches!(self, EventStatus::Cancelled | EventStatus::Completed)
    }

    /// Visible to the public in the catalog.
    pub fn is_listed(self) -> bool {
        !matches!(self, EventStatus::Draft)
    }
}

/// An event's descriptive fields, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetails {
    pub title: String,
    pub description: String,
    pub category: Category,
    pub performers: Vec<String>,
    pub doors_open: Option<DateTime<Utc>>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub age_restriction: Option<i16>,
    pub cover_image_url: Option<String>,
}

/// The raw fields, before validation.
pub struct EventInput<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub category: &'a str,
    pub performers: &'a [String],
    pub doors_open: Option<DateTime<Utc>>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub age_restriction: Option<i64>,
    pub cover_image_url: Option<&'a str>,
}

pub const MAX_PERFORMERS: usize = 50;

impl EventDetails {
    pub fn parse(input: EventInput<'_>) -> Result<EventDetails, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = errors.take("title", text(input.title, 200));
        let description = errors.take("description", optional_text(input.description, 10_000));
        let category = errors.take("category", Category::parse(input.category));
        if input.performers.len() > MAX_PERFORMERS {
            errors.add("performers", format!("at most {MAX_PERFORMERS} performers"));
        }
        let mut performers = Vec::with_capacity(input.performers.len());
        for (i, name) in input.performers.iter().enumerate() {
            if let Some(name) = errors.take(&format!("performers[{i}]"), text(name, 200)) {
                performers.push(name);
            }
        }
        errors.check(
            input.end_time > input.start_time,
            "end_time",
            "must be after start_time",
        );
        if let Some(doors) = input.doors_open {
            errors.check(
                doors <= input.start_time,
                "doors_open",
                "must not be after start_time",
            );
        }
        let age_restriction = match input.age_restriction {
            None => None,
            Some(age) => errors.take(
                "age_restriction",
                i16::try_from(age)
                    .ok()
                    .filter(|a| (0..=99).contains(a))
                    .ok_or_else(|| "must be between 0 and 99".to_owned()),
            ),
        };
        let cover_image_url = match input.cover_image_url {
            None => None,
            Some(url) => errors.take("cover_image_url", image_url(url)),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        match (title, description, category) {
            (Some(title), Some(description), Some(category)) => Ok(EventDetails {
                title,
                description,
                category,
                performers,
                doors_open: input.doors_open,
                start_time: input.start_time,
                end_time: input.end_time,
                age_restriction,
                cover_image_url,
            }),
            _ => Err(errors),
        }
    }
}

fn image_url(value: &str) -> Result<String, String> {
    let short = value.chars().count() <= 2000;
    let value = value.trim();
    if (value.starts_with("https://") || value.starts_with("http://") || value.starts_with('/'))
        && short
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Ok(value.to_owned())
    } else {
        Err("must be an http(s) URL or a path".into())
    }
}

/// What a draft still lacks before it may be published, at `now`: prices, an on-sale
/// schedule, a confirmed venue booking and a start in the future (each named as the
/// organizer fixes it).
pub fn missing_for_publication(
    priced: bool,
    scheduled: bool,
    booked: bool,
    start_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !priced {
        missing.push("prices (PUT /pricing)");
    }
    if !scheduled {
        missing.push("an on-sale schedule (PUT /onsale)");
    }
    if !booked {
        missing.push("a confirmed venue booking (pay its deposit: POST /bookings/{id}/deposit)");
    }
    if start_time <= now {
        missing.push("a start time in the future");
    }
    missing
}

/// Whether buyers may already buy, so that prices and the schedule are frozen: not in a
/// draft, nor while published before the sale opens; from then on, yes.
pub fn selling_started(
    status: EventStatus,
    sale_starts_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match status {
        EventStatus::Draft => false,
        EventStatus::Published => sale_starts_at.is_some_and(|at| at <= now),
        _ => true,
    }
}

/// A new event's start must be after `now`.
pub fn check_start(start_time: DateTime<Utc>, now: DateTime<Utc>, errors: &mut FieldErrors) {
    errors.check(start_time > now, "start_time", "must be in the future");
}

/// The hours a booking takes the venue before and after the event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookingMargins {
    pub setup_hours: i32,
    pub teardown_hours: i32,
}

impl BookingMargins {
    /// At most a week each side; none when not given.
    pub fn parse(
        setup_hours: Option<i64>,
        teardown_hours: Option<i64>,
        errors: &mut FieldErrors,
    ) -> BookingMargins {
        let mut margin = |field: &str, value: Option<i64>| {
            let hours = value.unwrap_or(0);
            errors.check(
                (0..=168).contains(&hours),
                field,
                "must be between 0 and 168 hours",
            );
            i32::try_from(hours).unwrap_or(0)
        };
        BookingMargins {
            setup_hours: margin("setup_hours", setup_hours),
            teardown_hours: margin("teardown_hours", teardown_hours),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn input(start: DateTime<Utc>, end: DateTime<Utc>) -> EventInput<'static> {
        EventInput {
            title: "Night",
            description: "",
            category: "concert",
            performers: &[],
            doors_open: None,
            start_time: start,
            end_time: end,
            age_restriction: None,
            cover_image_url: None,
        }
    }

    #[test]
    fn an_event_must_end_after_it_starts() {
        let now = Utc::now();
        assert!(EventDetails::parse(input(now, now + Duration::hours(2))).is_ok());
        let errors = EventDetails::parse(input(now, now))
            .err()
            .map(FieldErrors::into_inner)
            .unwrap_or_default();
        assert!(errors.contains_key("end_time"));
    }

    #[test]
    fn doors_open_before_the_start() {
        let now = Utc::now();
        let mut bad = input(now, now + Duration::hours(2));
        bad.doors_open = Some(now + Duration::minutes(1));
        assert!(EventDetails::parse(bad).is_err());
    }

    #[test]
    fn age_and_cover_image_are_checked() {
        let now = Utc::now();
        let mut bad = input(now, now + Duration::hours(2));
        bad.age_restriction = Some(150);
        bad.cover_image_url = Some("javascript:alert(1)");
        let errors = EventDetails::parse(bad)
            .err()
            .map(FieldErrors::into_inner)
            .unwrap_or_default();
        assert!(errors.contains_key("age_restriction") && errors.contains_key("cover_image_url"));
    }

    #[test]
    fn the_lifecycle_only_moves_forward() {
        use EventStatus::*;
        assert!(Draft.can_become(Published));
        assert!(!Draft.can_become(OnSale));
        assert!(!Cancelled.can_become(Published));
        assert!(!Completed.can_become(Cancelled));
        assert!(SoldOut.can_become(OnSale));
        assert!(OnSale.can_become(Cancelled));
        for status in [Draft, Published, OnSale, SoldOut, Cancelled, Completed] {
            assert_eq!(EventStatus::parse(status.as_str()), Ok(status));
            assert!(!status.can_become(Draft));
        }
    }

    #[test]
    fn publication_needs_prices_a_schedule_a_booking_and_a_future_start() {
        let now = Utc::now();
        assert!(
            missing_for_publication(true, true, true, now + chrono::Duration::hours(1), now)
                .is_empty()
        );
        assert_eq!(
            missing_for_publication(false, true, true, now, now),
            vec!["prices (PUT /pricing)", "a start time in the future"]
        );
        assert_eq!(
            missing_for_publication(true, true, false, now + chrono::Duration::hours(1), now),
            vec!["a confirmed venue booking (pay its deposit: POST /bookings/{id}/deposit)"]
        );
    }

    #[test]
    fn prices_freeze_when_the_sale_opens() {
        let now = Utc::now();
        let later = Some(now + chrono::Duration::minutes(1));
        assert!(!selling_started(EventStatus::Draft, Some(now), now));
        assert!(!selling_started(EventStatus::Published, later, now));
        assert!(selling_started(EventStatus::Published, Some(now), now));
        assert!(selling_started(EventStatus::SoldOut, None, now));
    }

    #[test]
    fn every_status_that_is_not_final_may_be_cancelled() {
        assert_eq!(
            EventStatus::able_to_become(EventStatus::Cancelled),
            vec![
                EventStatus::Draft,
                EventStatus::Published,
                EventStatus::OnSale,
                EventStatus::SoldOut
            ]
        );
    }

    #[test]
    fn booking_margins_are_a_week_at_most() {
        let mut errors = FieldErrors::new();
        let margins = BookingMargins::parse(Some(2), None, &mut errors);
        assert_eq!((margins.setup_hours, margins.teardown_hours), (2, 0));
        assert!(errors.is_empty());
        BookingMargins::parse(Some(169), Some(-1), &mut errors);
        assert_eq!(errors.into_inner().len(), 2);
    }
}
