//! Venues and their seating layouts (sections and seats).

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::venue::SectionKind;

use super::WriteError;
use crate::domain::venue::{SeatingPlan, VenueType};

/// A venue's descriptive fields, validated.
#[derive(Debug, Clone)]
pub struct VenueDetails {
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    pub venue_type: VenueType,
    pub facilities: serde_json::Value,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VenueRow {
    pub venue_id: Uuid,
    pub organizer_id: Uuid,
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    pub venue_type: String,
    pub facilities: serde_json::Value,
    pub capacity: i32,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SectionRow {
    pub section_id: Uuid,
    pub name: String,
    pub kind: SectionKind,
    pub capacity: i32,
    pub position: i32,
}

const VENUE_COLUMNS: &str =
    "venue_id, organizer_id, name, address, city, latitude, longitude, timezone, \
     venue_type, facilities, capacity, is_active, created_at, updated_at";

/// Creates a venue with its whole layout in one transaction.
#[tracing::instrument(skip(pool, details, plan), fields(sections = plan.sections.len()))]
pub async fn insert_venue(
    pool: &PgPool,
    organizer_id: Uuid,
    details: &VenueDetails,
    plan: &SeatingPlan,
) -> anyhow::Result<Uuid> {
    let venue_id = Uuid::new_v4();
    let mut tx = pool.begin().await.context("starting a venue transaction")?;
    sqlx::query(
        "INSERT INTO venues (venue_id, organizer_id, name, address, city, latitude, longitude, timezone, \
         venue_type, facilities, capacity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(venue_id)
    .bind(organizer_id)
    .bind(&details.name)
    .bind(&details.address)
    .bind(&details.city)
    .bind(details.latitude)
    .bind(details.longitude)
    .bind(&details.timezone)
    .bind(details.venue_type.as_str())
    .bind(&details.facilities)
    .bind(plan.capacity())
    .execute(&mut *tx)
    .await
    .context("inserting a venue")?;
    insert_layout(&mut tx, venue_id, plan).await?;
    tx.commit().await.context("committing a venue")?;
    Ok(venue_id)
}

/// Writes sections and seats; seats go in one `UNNEST` statement per section.
async fn insert_layout(
    tx: &mut Transaction<'_, Postgres>,
    venue_id: Uuid,
    plan: &SeatingPlan,
) -> anyhow::Result<()> {
    for (position, section) in plan.sections.iter().enumerate() {
        let section_id = Uuid::new_v4();
        sqlx::query("INSERT INTO sections (section_id, venue_id, name, kind, capacity, position) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(section_id)
            .bind(venue_id)
            .bind(&section.name)
            .bind(section.kind.as_str())
            .bind(section.capacity)
            .bind(i32::try_from(position).context("section position")?)
            .execute(&mut **tx)
            .await
            .context("inserting a section")?;
        if section.seats.is_empty() {
            continue;
        }
        let ids: Vec<Uuid> = section.seats.iter().map(|_| Uuid::new_v4()).collect();
        let rows: Vec<&str> = section.seats.iter().map(|s| s.row_label.as_str()).collect();
        let numbers: Vec<i32> = section.seats.iter().map(|s| s.seat_number).collect();
        let positions: Vec<i32> = section.seats.iter().map(|s| s.position).collect();
        let xs: Vec<f32> = section.seats.iter().map(|s| s.x).collect();
        let ys: Vec<f32> = section.seats.iter().map(|s| s.y).collect();
        let accessible: Vec<bool> = section.seats.iter().map(|s| s.accessible).collect();
        sqlx::query(
            "INSERT INTO seats (seat_id, section_id, row_label, seat_number, position, x, y, accessible) \
             SELECT id, $2, r, n, p, x, y, a \
             FROM UNNEST($1::uuid[], $3::text[], $4::int4[], $5::int4[], $6::float4[], $7::float4[], $8::bool[]) AS t(id, r, n, p, x, y, a)",
        )
        .bind(&ids)
        .bind(section_id)
        .bind(&rows)
        .bind(&numbers)
        .bind(&positions)
        .bind(&xs)
        .bind(&ys)
        .bind(&accessible)
        .execute(&mut **tx)
        .await
        .context("inserting seats")?;
    }
    Ok(())
}

#[tracing::instrument(skip(pool))]
pub async fn find_venue(pool: &PgPool, venue_id: Uuid) -> anyhow::Result<Option<VenueRow>> {
    sqlx::query_as(&format!(
        "SELECT {VENUE_COLUMNS} FROM venues WHERE venue_id = $1"
    ))
    .bind(venue_id)
    .fetch_optional(pool)
    .await
    .context("loading a venue")
}

#[tracing::instrument(skip(pool))]
pub async fn list_venues(pool: &PgPool, organizer_id: Uuid) -> anyhow::Result<Vec<VenueRow>> {
    sqlx::query_as(&format!(
        "SELECT {VENUE_COLUMNS} FROM venues WHERE organizer_id = $1 ORDER BY created_at, venue_id"
    ))
    .bind(organizer_id)
    .fetch_all(pool)
    .await
    .context("listing venues")
}

#[tracing::instrument(skip(pool))]
pub async fn sections(pool: &PgPool, venue_id: Uuid) -> anyhow::Result<Vec<SectionRow>> {
    sqlx::query_as("SELECT section_id, name, kind, capacity, position FROM sections WHERE venue_id = $1 ORDER BY position")
        .bind(venue_id)
        .fetch_all(pool)
        .await
        .context("listing sections")
}

/// Why a layout could not be replaced.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("the venue already has events")]
    InUse,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Updates a venue's details and, when given, replaces its layout. A layout may only be
/// replaced while no event uses the venue: tickets point at its seats.
#[tracing::instrument(skip(pool, details, plan))]
pub async fn update_venue(
    pool: &PgPool,
    venue_id: Uuid,
    details: &VenueDetails,
    plan: Option<&SeatingPlan>,
) -> Result<(), LayoutError> {
    let mut tx = pool.begin().await.context("starting a venue update")?;
    // Locks the venue row: event creation takes a share lock on it, so an event cannot
    // appear between the check below and the new layout.
    sqlx::query("SELECT 1 FROM venues WHERE venue_id = $1 FOR UPDATE")
        .bind(venue_id)
        .execute(&mut *tx)
        .await
        .context("locking a venue")?;
    sqlx::query(
        "UPDATE venues SET name = $2, address = $3, city = $4, latitude = $5, longitude = $6, timezone = $7, \
         venue_type = $8, facilities = $9, updated_at = now() WHERE venue_id = $1",
    )
    .bind(venue_id)
    .bind(&details.name)
    .bind(&details.address)
    .bind(&details.city)
    .bind(details.latitude)
    .bind(details.longitude)
    .bind(&details.timezone)
    .bind(details.venue_type.as_str())
    .bind(&details.facilities)
    .execute(&mut *tx)
    .await
    .context("updating a venue")?;
    if let Some(plan) = plan {
        let in_use: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE venue_id = $1)")
                .bind(venue_id)
                .fetch_one(&mut *tx)
                .await
                .context("checking whether a venue is in use")?;
        if in_use {
            return Err(LayoutError::InUse);
        }
        sqlx::query("DELETE FROM sections WHERE venue_id = $1")
            .bind(venue_id)
            .execute(&mut *tx)
            .await
            .context("removing an old layout")?;
        insert_layout(&mut tx, venue_id, plan).await?;
        sqlx::query("UPDATE venues SET capacity = $2 WHERE venue_id = $1")
            .bind(venue_id)
            .bind(plan.capacity())
            .execute(&mut *tx)
            .await
            .context("updating a venue's capacity")?;
    }
    tx.commit().await.context("committing a venue update")?;
    Ok(())
}

/// Takes a venue out of use: no new events may be created there.
#[tracing::instrument(skip(pool))]
pub async fn set_active(pool: &PgPool, venue_id: Uuid, active: bool) -> Result<(), WriteError> {
    sqlx::query("UPDATE venues SET is_active = $2, updated_at = now() WHERE venue_id = $1")
        .bind(venue_id)
        .bind(active)
        .execute(pool)
        .await
        .map_err(|e| WriteError::from_sqlx(e, "changing a venue's active flag"))?;
    Ok(())
}
