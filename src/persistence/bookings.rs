//! Venue bookings in Postgres: a venue's terms and add-on offers, bookings with their
//! add-ons and deposits, lapsing requests, the venue's calendar. Overlaps are the
//! exclusion constraint's to refuse (`events::VENUE_BOOKING_CONSTRAINT`), whatever the
//! concurrency; a request that lapsed is cancelled before the time is taken again.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::WriteError;
use crate::domain::booking::{BookingPlan, BookingStatus, Deposit, Terms};

/// One add-on a venue offers.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OfferRow {
    pub offer_id: Uuid,
    pub kind: String,
    pub name: String,
    pub price_cents: i64,
}

/// An add-on offer to store.
pub struct NewOffer {
    pub kind: String,
    pub name: String,
    pub price_cents: i64,
}

#[derive(sqlx::FromRow)]
struct TermsRow {
    currency: String,
    day_rate_cents: i64,
    deposit_cents: Option<i64>,
    deposit_basis_points: Option<i32>,
    request_hours: i32,
}

/// The venue's terms (none set: [`Terms::none`]) and its add-on offers.
pub async fn terms(pool: &PgPool, venue_id: Uuid) -> anyhow::Result<(Terms, Vec<OfferRow>)> {
    let row: Option<TermsRow> = sqlx::query_as(
        "SELECT currency, day_rate_cents, deposit_cents, deposit_basis_points, request_hours \
         FROM venue_terms WHERE venue_id = $1",
    )
    .bind(venue_id)
    .fetch_optional(pool)
    .await
    .context("reading a venue's terms")?;
    let terms = row.map_or_else(Terms::none, |r| Terms {
        currency: r.currency,
        day_rate_cents: r.day_rate_cents,
        deposit: match (r.deposit_cents, r.deposit_basis_points) {
            (Some(cents), _) => Deposit::Fixed { cents },
            (None, Some(basis_points)) => Deposit::ShareOfDayRate { basis_points },
            (None, None) => Deposit::None,
        },
        request_hours: r.request_hours,
    });
    let offers = sqlx::query_as(
        "SELECT offer_id, kind, name, price_cents FROM venue_addon_offers WHERE venue_id = $1 ORDER BY position",
    )
    .bind(venue_id)
    .fetch_all(pool)
    .await
    .context("reading a venue's add-ons")?;
    Ok((terms, offers))
}

/// Replaces the venue's terms and offers (bookings keep what they agreed to).
pub async fn put_terms(
    pool: &PgPool,
    venue_id: Uuid,
    terms: &Terms,
    offers: &[NewOffer],
) -> anyhow::Result<()> {
    let (cents, share) = match terms.deposit {
        Deposit::None => (None, None),
        Deposit::Fixed { cents } => (Some(cents), None),
        Deposit::ShareOfDayRate { basis_points } => (None, Some(basis_points)),
    };
    let mut tx = pool.begin().await.context("starting a terms change")?;
    sqlx::query(
        "INSERT INTO venue_terms (venue_id, currency, day_rate_cents, deposit_cents, deposit_basis_points, request_hours) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (venue_id) DO UPDATE SET currency = $2, day_rate_cents = $3, \
         deposit_cents = $4, deposit_basis_points = $5, request_hours = $6, updated_at = now()",
    )
    .bind(venue_id)
    .bind(&terms.currency)
    .bind(terms.day_rate_cents)
    .bind(cents)
    .bind(share)
    .bind(terms.request_hours)
    .execute(&mut *tx)
    .await
    .context("writing a venue's terms")?;
    sqlx::query("DELETE FROM venue_addon_offers WHERE venue_id = $1")
        .bind(venue_id)
        .execute(&mut *tx)
        .await
        .context("clearing a venue's add-ons")?;
    for (position, offer) in offers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO venue_addon_offers (offer_id, venue_id, kind, name, price_cents, position) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4())
        .bind(venue_id)
        .bind(&offer.kind)
        .bind(&offer.name)
        .bind(offer.price_cents)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await
        .context("writing a venue's add-on")?;
    }
    tx.commit().await.context("committing a terms change")
}

/// A booking with its event's organizer and title.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BookingRow {
    pub booking_id: Uuid,
    pub venue_id: Uuid,
    pub event_id: Uuid,
    pub organizer_id: Uuid,
    pub title: String,
    pub status: BookingStatus,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub setup_hours_before: i32,
    pub teardown_hours_after: i32,
    pub blocked_from: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
    pub currency: String,
    pub day_rate_cents: i64,
    pub deposit_cents: i64,
    pub requested_until: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// What was paid of the deposit (its captured payment).
    pub deposit_paid_cents: i64,
}

const BOOKING_COLUMNS: &str = "b.booking_id, b.venue_id, b.event_id, e.organizer_id, e.title, b.status, \
    b.start_time, b.end_time, b.setup_hours_before, b.teardown_hours_after, b.blocked_from, b.blocked_until, \
    b.currency, b.day_rate_cents, b.deposit_cents, b.requested_until, b.confirmed_at, b.cancelled_at, b.cancel_reason, \
    COALESCE((SELECT d.amount_cents FROM booking_deposits d WHERE d.booking_id = b.booking_id AND d.status = 'CAPTURED'), 0) AS deposit_paid_cents";

pub async fn find(pool: &PgPool, booking_id: Uuid) -> anyhow::Result<Option<BookingRow>> {
    sqlx::query_as(&format!(
        "SELECT {BOOKING_COLUMNS} FROM venue_bookings b JOIN events e USING (event_id) WHERE b.booking_id = $1"
    ))
    .bind(booking_id)
    .fetch_optional(pool)
    .await
    .context("reading a booking")
}

pub async fn for_event(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Option<BookingRow>> {
    sqlx::query_as(&format!(
        "SELECT {BOOKING_COLUMNS} FROM venue_bookings b JOIN events e USING (event_id) WHERE b.event_id = $1"
    ))
    .bind(event_id)
    .fetch_optional(pool)
    .await
    .context("reading an event's booking")
}

/// Live bookings of a venue whose window meets `from..to`, for its calendar.
pub async fn calendar(
    pool: &PgPool,
    venue_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<BookingRow>> {
    sqlx::query_as(&format!(
        "SELECT {BOOKING_COLUMNS} FROM venue_bookings b JOIN events e USING (event_id) \
         WHERE b.venue_id = $1 AND b.status <> 'CANCELLED' \
           AND tstzrange(b.blocked_from, b.blocked_until) && tstzrange($2, $3) \
         ORDER BY b.blocked_from LIMIT 1000"
    ))
    .bind(venue_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
    .context("reading a venue's calendar")
}

/// The first live booking of the venue overlapping `from..until`: the window to name when
/// a request loses (never whose event it is).
pub async fn conflicting_window(
    pool: &PgPool,
    venue_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    sqlx::query_as(
        "SELECT blocked_from, blocked_until FROM venue_bookings WHERE venue_id = $1 AND status <> 'CANCELLED' \
         AND tstzrange(blocked_from, blocked_until) && tstzrange($2, $3) ORDER BY blocked_from LIMIT 1",
    )
    .bind(venue_id)
    .bind(from)
    .bind(until)
    .fetch_optional(pool)
    .await
    .context("finding a conflicting booking")
}

/// Cancels the venue's requests that lapsed unpaid by `now` (all venues' when `venue_id`
/// is none), except one whose deposit is being paid right now. Answers how many.
pub async fn lapse(
    executor: impl sqlx::PgExecutor<'_>,
    venue_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE venue_bookings b SET status = 'CANCELLED', cancelled_at = $2, cancel_reason = 'LAPSED' \
         WHERE b.status = 'REQUESTED' AND b.requested_until <= $2 AND ($1::uuid IS NULL OR b.venue_id = $1) \
           AND NOT EXISTS (SELECT 1 FROM booking_deposits d WHERE d.booking_id = b.booking_id AND d.status = 'PENDING')",
    )
    .bind(venue_id)
    .bind(now)
    .execute(executor)
    .await
    .context("lapsing unpaid booking requests")?;
    Ok(done.rows_affected())
}

/// Writes the booking of a new event as `plan` says, its lapsed neighbours cancelled first.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    event_id: Uuid,
    venue_id: Uuid,
    window: Window,
    plan: &BookingPlan,
) -> Result<(), WriteError> {
    lapse(&mut **tx, Some(venue_id), plan.at).await?;
    sqlx::query(
        "INSERT INTO venue_bookings (booking_id, venue_id, event_id, start_time, end_time, setup_hours_before, \
         teardown_hours_after, blocked_from, blocked_until, status, currency, day_rate_cents, deposit_cents, \
         requested_until, confirmed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, CASE WHEN $10 = 'CONFIRMED' THEN $15 END)",
    )
    .bind(Uuid::new_v4())
    .bind(venue_id)
    .bind(event_id)
    .bind(window.start)
    .bind(window.end)
    .bind(window.setup_hours)
    .bind(window.teardown_hours)
    .bind(window.blocked_from())
    .bind(window.blocked_until())
    .bind(plan.status.as_str())
    .bind(&plan.currency)
    .bind(plan.day_rate_cents)
    .bind(plan.deposit_cents)
    .bind(plan.requested_until)
    .bind(plan.at)
    .execute(&mut **tx)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "booking a venue"))?;
    Ok(())
}

/// An event's time at the venue, setup and teardown around it.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub setup_hours: i32,
    pub teardown_hours: i32,
}

impl Window {
    pub fn blocked_from(&self) -> DateTime<Utc> {
        self.start - chrono::Duration::hours(self.setup_hours.into())
    }

    pub fn blocked_until(&self) -> DateTime<Utc> {
        self.end + chrono::Duration::hours(self.teardown_hours.into())
    }
}

/// Requests a cancelled booking again under `plan` (its event's times as they are now).
/// False when it is not cancelled; an overlap is a conflict on the exclusion constraint.
pub async fn request_again(
    pool: &PgPool,
    booking_id: Uuid,
    venue_id: Uuid,
    plan: &BookingPlan,
) -> Result<bool, WriteError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "starting a booking request"))?;
    lapse(&mut *tx, Some(venue_id), plan.at).await?;
    let done = sqlx::query(
        "UPDATE venue_bookings SET status = $2, currency = $3, day_rate_cents = $4, deposit_cents = $5, \
         requested_until = $6, confirmed_at = CASE WHEN $2 = 'CONFIRMED' THEN $7 END, cancelled_at = NULL, \
         cancel_reason = NULL WHERE booking_id = $1 AND status = 'CANCELLED'",
    )
    .bind(booking_id)
    .bind(plan.status.as_str())
    .bind(&plan.currency)
    .bind(plan.day_rate_cents)
    .bind(plan.deposit_cents)
    .bind(plan.requested_until)
    .bind(plan.at)
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "requesting a booking again"))?;
    tx.commit()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "committing a booking request"))?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a live booking at the organizer's request; false when it was not live (or its
/// deposit is being paid this moment).
pub async fn cancel(pool: &PgPool, booking_id: Uuid, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE venue_bookings b SET status = 'CANCELLED', cancelled_at = $2, cancel_reason = 'REQUESTED' \
         WHERE b.booking_id = $1 AND b.status <> 'CANCELLED' \
           AND NOT EXISTS (SELECT 1 FROM booking_deposits d WHERE d.booking_id = b.booking_id AND d.status = 'PENDING')",
    )
    .bind(booking_id)
    .bind(now)
    .execute(pool)
    .await
    .context("cancelling a booking")?;
    Ok(done.rows_affected() == 1)
}

/// One add-on a booking takes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddonRow {
    pub addon_id: Uuid,
    pub offer_id: Option<Uuid>,
    pub kind: String,
    pub description: String,
    pub quantity: i32,
    pub unit_price_cents: i64,
}

pub async fn addons(pool: &PgPool, booking_id: Uuid) -> anyhow::Result<Vec<AddonRow>> {
    sqlx::query_as(
        "SELECT addon_id, offer_id, kind, description, quantity, unit_price_cents FROM venue_booking_addons \
         WHERE booking_id = $1 ORDER BY description, addon_id",
    )
    .bind(booking_id)
    .fetch_all(pool)
    .await
    .context("reading a booking's add-ons")
}

/// Replaces a live booking's add-ons with `chosen` (offer, quantity) at today's prices;
/// false when the booking is cancelled.
pub async fn replace_addons(
    pool: &PgPool,
    booking_id: Uuid,
    chosen: &[(OfferRow, i32)],
) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await.context("starting an add-on change")?;
    let live: Option<bool> = sqlx::query_scalar(
        "SELECT status <> 'CANCELLED' FROM venue_bookings WHERE booking_id = $1 FOR UPDATE",
    )
    .bind(booking_id)
    .fetch_optional(&mut *tx)
    .await
    .context("locking a booking")?;
    if live != Some(true) {
        return Ok(false);
    }
    sqlx::query("DELETE FROM venue_booking_addons WHERE booking_id = $1")
        .bind(booking_id)
        .execute(&mut *tx)
        .await
        .context("clearing a booking's add-ons")?;
    for (offer, quantity) in chosen {
        sqlx::query(
            "INSERT INTO venue_booking_addons (addon_id, booking_id, kind, description, cost_cents, offer_id, quantity, unit_price_cents) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::new_v4())
        .bind(booking_id)
        .bind(&offer.kind)
        .bind(&offer.name)
        .bind(offer.price_cents.saturating_mul(i64::from(*quantity)))
        .bind(offer.offer_id)
        .bind(quantity)
        .bind(offer.price_cents)
        .execute(&mut *tx)
        .await
        .context("writing a booking's add-on")?;
    }
    tx.commit().await.context("committing an add-on change")?;
    Ok(true)
}
