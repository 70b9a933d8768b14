//! Events, their venue bookings, prices, tiers and on-sale schedules.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::WriteError;
use crate::domain::event::{EventDetails, EventStatus};
use crate::domain::onsale::OnSaleSchedule;
use crate::domain::pricing::Pricing;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub event_id: Uuid,
    pub organizer_id: Uuid,
    pub venue_id: Uuid,
    pub title: String,
    pub description: String,
    pub category: String,
    pub performers: Vec<String>,
    pub status: EventStatus,
    pub doors_open: Option<DateTime<Utc>>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub age_restriction: Option<i16>,
    pub cover_image_url: Option<String>,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub refund_hours_before: Option<i32>,
    pub refund_fee_cents: i64,
    pub refund_fee_basis_points: i32,
}

impl EventRow {
    /// The stored status (an unknown one fails the read: see `domain::text_enum`).
    pub fn status(&self) -> EventStatus {
        self.status
    }

    pub fn refund_policy(&self) -> crate::domain::refunds::RefundPolicy {
        crate::domain::refunds::RefundPolicy {
            hours_before: self.refund_hours_before.and_then(|h| u32::try_from(h).ok()),
            fee_cents: self.refund_fee_cents,
            fee_basis_points: u32::try_from(self.refund_fee_basis_points).unwrap_or(0),
        }
    }
}

/// Sets an event's refund policy.
pub async fn set_refund_policy(
    pool: &PgPool,
    event_id: Uuid,
    policy: &crate::domain::refunds::RefundPolicy,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE events SET refund_hours_before = $2, refund_fee_cents = $3, refund_fee_basis_points = $4, \
         updated_at = now() WHERE event_id = $1",
    )
    .bind(event_id)
    .bind(policy.hours_before.map(|h| h as i32))
    .bind(policy.fee_cents)
    .bind(policy.fee_basis_points as i32)
    .execute(pool)
    .await
    .context("setting a refund policy")?;
    Ok(())
}

pub const EVENT_COLUMNS: &str = "e.event_id, e.organizer_id, e.venue_id, e.title, e.description, e.category, \
     e.performers, e.status, e.doors_open, e.start_time, e.end_time, e.age_restriction, e.cover_image_url, \
     e.currency, e.created_at, e.updated_at, e.refund_hours_before, e.refund_fee_cents, e.refund_fee_basis_points";

pub use crate::domain::event::BookingMargins;

/// Constraint that refuses two overlapping bookings of one venue.
pub const VENUE_BOOKING_CONSTRAINT: &str = "venue_bookings_venue_id_tstzrange_excl";

/// Creates a draft event and books its venue as `plan` says (confirmed, or requested until
/// its deposit is paid), in one transaction. An overlapping booking
/// is a [`WriteError::Conflict`] on [`VENUE_BOOKING_CONSTRAINT`].
#[tracing::instrument(skip(pool, details))]
pub async fn insert_event(
    pool: &PgPool,
    organizer_id: Uuid,
    venue_id: Uuid,
    details: &EventDetails,
    currency: &str,
    margins: BookingMargins,
    plan: &crate::domain::booking::BookingPlan,
) -> Result<Uuid, WriteError> {
    let event_id = Uuid::new_v4();
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "starting an event"))?;
    // A share lock on the venue: a layout replacement cannot run while this event appears.
    sqlx::query("SELECT 1 FROM venues WHERE venue_id = $1 FOR SHARE")
        .bind(venue_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| WriteError::from_sqlx(e, "locking a venue"))?;
    sqlx::query(
        "INSERT INTO events (event_id, organizer_id, venue_id, title, description, category, performers, \
         doors_open, start_time, end_time, age_restriction, cover_image_url, currency) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(event_id)
    .bind(organizer_id)
    .bind(venue_id)
    .bind(&details.title)
    .bind(&details.description)
    .bind(details.category.as_str())
    .bind(&details.performers)
    .bind(details.doors_open)
    .bind(details.start_time)
    .bind(details.end_time)
    .bind(details.age_restriction)
    .bind(&details.cover_image_url)
    .bind(currency)
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "inserting an event"))?;
    let window = super::bookings::Window {
        start: details.start_time,
        end: details.end_time,
        setup_hours: margins.setup_hours,
        teardown_hours: margins.teardown_hours,
    };
    super::bookings::insert(&mut tx, event_id, venue_id, window, plan).await?;
    tx.commit()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "committing an event"))?;
    Ok(event_id)
}

#[tracing::instrument(skip(pool))]
pub async fn find_event(
    pool: impl sqlx::PgExecutor<'_>,
    event_id: Uuid,
) -> anyhow::Result<Option<EventRow>> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.event_id = $1"
    ))
    .bind(event_id)
    .fetch_optional(pool)
    .await
    .context("loading an event")
}

#[tracing::instrument(skip(pool))]
pub async fn list_for_organizer(
    pool: &PgPool,
    organizer_id: Uuid,
) -> anyhow::Result<Vec<EventRow>> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.organizer_id = $1 ORDER BY e.start_time, e.event_id"
    ))
    .bind(organizer_id)
    .fetch_all(pool)
    .await
    .context("listing an organizer's events")
}

/// Rewrites an event's details and moves its venue booking with its times.
#[tracing::instrument(skip(pool, details))]
pub async fn update_event(
    pool: &PgPool,
    event_id: Uuid,
    details: &EventDetails,
) -> Result<(), WriteError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "starting an event update"))?;
    sqlx::query(
        "UPDATE events SET title = $2, description = $3, category = $4, performers = $5, doors_open = $6, \
         start_time = $7, end_time = $8, age_restriction = $9, cover_image_url = $10, updated_at = now() \
         WHERE event_id = $1",
    )
    .bind(event_id)
    .bind(&details.title)
    .bind(&details.description)
    .bind(details.category.as_str())
    .bind(&details.performers)
    .bind(details.doors_open)
    .bind(details.start_time)
    .bind(details.end_time)
    .bind(details.age_restriction)
    .bind(&details.cover_image_url)
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "updating an event"))?;
    sqlx::query(
        "UPDATE venue_bookings SET start_time = $2, end_time = $3, \
         blocked_from = $2 - make_interval(hours => setup_hours_before), \
         blocked_until = $3 + make_interval(hours => teardown_hours_after) WHERE event_id = $1",
    )
    .bind(event_id)
    .bind(details.start_time)
    .bind(details.end_time)
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "moving a venue booking"))?;
    tx.commit()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "committing an event update"))?;
    Ok(())
}

/// Moves an event from one of `from` to `to`; false when its status was not one of `from`
/// (someone else moved it first). Cancelling also frees the venue booking.
#[tracing::instrument(skip(pool))]
pub async fn transition(
    pool: &PgPool,
    event_id: Uuid,
    from: &[EventStatus],
    to: EventStatus,
) -> anyhow::Result<bool> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let mut tx = pool.begin().await.context("starting a status change")?;
    let moved = sqlx::query("UPDATE events SET status = $3, updated_at = now() WHERE event_id = $1 AND status = ANY($2)")
        .bind(event_id)
        .bind(&from)
        .bind(to.as_str())
        .execute(&mut *tx)
        .await
        .context("changing an event's status")?
        .rows_affected()
        == 1;
    if moved && to == EventStatus::Cancelled {
        sqlx::query("UPDATE venue_bookings SET status = 'CANCELLED', cancelled_at = now(), cancel_reason = 'EVENT_CANCELLED' WHERE event_id = $1 AND status <> 'CANCELLED'")
            .bind(event_id)
            .execute(&mut *tx)
            .await
            .context("freeing a venue booking")?;
    }
    tx.commit().await.context("committing a status change")?;
    Ok(moved)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SectionPriceRow {
    pub section_id: Uuid,
    pub price_cents: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TierRow {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub name: String,
    pub price_cents: i64,
    pub quantity: i32,
    pub sold_quantity: i32,
    pub max_per_order: i32,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

/// Replaces the event's whole price list and currency in one transaction.
#[tracing::instrument(skip(pool, pricing))]
pub async fn replace_pricing(
    pool: &PgPool,
    event_id: Uuid,
    pricing: &Pricing,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("starting a pricing change")?;
    sqlx::query("DELETE FROM section_prices WHERE event_id = $1")
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .context("clearing section prices")?;
    sqlx::query("DELETE FROM ticket_tiers WHERE event_id = $1")
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .context("clearing tiers")?;
    for price in &pricing.sections {
        sqlx::query(
            "INSERT INTO section_prices (event_id, section_id, price_cents) VALUES ($1, $2, $3)",
        )
        .bind(event_id)
        .bind(price.section_id)
        .bind(price.price.get())
        .execute(&mut *tx)
        .await
        .context("inserting a section price")?;
    }
    for (position, tier) in pricing.tiers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO ticket_tiers (tier_id, event_id, section_id, name, price_cents, quantity, max_per_order, \
             sale_starts_at, sale_ends_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(Uuid::new_v4())
        .bind(event_id)
        .bind(tier.section_id)
        .bind(&tier.name)
        .bind(tier.price.get())
        .bind(tier.quantity)
        .bind(tier.max_per_order)
        .bind(tier.sale_starts_at)
        .bind(tier.sale_ends_at)
        .bind(i32::try_from(position).context("tier position")?)
        .execute(&mut *tx)
        .await
        .context("inserting a tier")?;
    }
    sqlx::query("UPDATE events SET currency = $2, updated_at = now() WHERE event_id = $1")
        .bind(event_id)
        .bind(pricing.currency.as_str())
        .execute(&mut *tx)
        .await
        .context("setting an event's currency")?;
    tx.commit().await.context("committing a pricing change")?;
    Ok(())
}

#[tracing::instrument(skip(pool))]
pub async fn section_prices(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Vec<SectionPriceRow>> {
    sqlx::query_as(
        "SELECT sp.section_id, sp.price_cents FROM section_prices sp JOIN sections s USING (section_id) \
         WHERE sp.event_id = $1 ORDER BY s.position",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("loading section prices")
}

#[tracing::instrument(skip(pool))]
pub async fn tiers(
    pool: impl sqlx::PgExecutor<'_>,
    event_id: Uuid,
) -> anyhow::Result<Vec<TierRow>> {
    sqlx::query_as(
        "SELECT tier_id, section_id, name, price_cents, quantity, sold_quantity, max_per_order, sale_starts_at, \
         sale_ends_at FROM ticket_tiers WHERE event_id = $1 ORDER BY position",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("loading tiers")
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OnSaleRow {
    pub queue_opens_at: Option<DateTime<Utc>>,
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_minutes: i32,
    pub max_per_order: i32,
    pub max_per_buyer: Option<i32>,
    pub admission_per_minute: Option<i32>,
    pub admission_paused: bool,
    pub proof_of_work: String,
    pub proof_of_work_joins_per_minute: i32,
    pub waitlist_offer_minutes: i32,
}

impl OnSaleRow {
    /// The waiting room's door (the default for a stored value this build does not know).
    pub fn door(&self) -> crate::domain::onsale::Door {
        crate::domain::onsale::Door {
            proof_of_work: crate::domain::onsale::ProofOfWork::parse(&self.proof_of_work)
                .unwrap_or(crate::domain::onsale::ProofOfWork::Off),
            joins_per_minute: self.proof_of_work_joins_per_minute,
        }
    }

    /// Tickets one buyer may have for the event, across orders.
    pub fn buyer_limit(&self) -> i32 {
        self.max_per_buyer.unwrap_or(self.max_per_order)
    }
}

/// Sets (or replaces) the on-sale schedule.
#[tracing::instrument(skip(pool, schedule))]
pub async fn upsert_onsale(
    pool: &PgPool,
    event_id: Uuid,
    schedule: &OnSaleSchedule,
) -> anyhow::Result<()> {
    let (queue_opens_at, admission_per_minute) = match &schedule.waiting_room {
        Some(room) => (Some(room.queue_opens_at), Some(room.admission_per_minute)),
        None => (None, None),
    };
    let door = schedule
        .waiting_room
        .as_ref()
        .map(|room| room.door)
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO onsales (event_id, queue_opens_at, sale_starts_at, sale_ends_at, hold_minutes, max_per_order, \
         admission_per_minute, max_per_buyer, proof_of_work, proof_of_work_joins_per_minute, waitlist_offer_minutes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (event_id) DO UPDATE SET queue_opens_at = $2, sale_starts_at = $3, sale_ends_at = $4, \
         hold_minutes = $5, max_per_order = $6, admission_per_minute = $7, max_per_buyer = $8, \
         proof_of_work = $9, proof_of_work_joins_per_minute = $10, waitlist_offer_minutes = $11, updated_at = now()",
    )
    .bind(event_id)
    .bind(queue_opens_at)
    .bind(schedule.sale_starts_at)
    .bind(schedule.sale_ends_at)
    .bind(schedule.hold_minutes)
    .bind(schedule.max_per_order)
    .bind(admission_per_minute)
    .bind(schedule.max_per_buyer)
    .bind(door.proof_of_work.as_str())
    .bind(door.joins_per_minute)
    .bind(schedule.waitlist_offer_minutes)
    .execute(pool)
    .await
    .context("saving an on-sale schedule")?;
    Ok(())
}

#[tracing::instrument(skip(pool))]
pub async fn find_onsale(
    pool: impl sqlx::PgExecutor<'_>,
    event_id: Uuid,
) -> anyhow::Result<Option<OnSaleRow>> {
    sqlx::query_as(
        "SELECT queue_opens_at, sale_starts_at, sale_ends_at, hold_minutes, max_per_order, max_per_buyer, \
         admission_per_minute, admission_paused, proof_of_work, proof_of_work_joins_per_minute, \
         waitlist_offer_minutes FROM onsales WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await
    .context("loading an on-sale schedule")
}
