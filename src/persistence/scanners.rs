//! An event's door scanners and their tokens (kept as SHA-256 hashes: the token itself is
//! shown once, when the scanner is made), and the event's check-in and transfer settings.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::event::EventStatus;
use crate::domain::tickets::DoorHours;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScannerRow {
    pub scanner_id: Uuid,
    pub event_id: Uuid,
    pub name: String,
    pub gate: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip(pool, token_hash))]
pub async fn create(pool: &PgPool, scanner: &ScannerRow, token_hash: &[u8]) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO scanners (scanner_id, event_id, name, gate, token_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(scanner.scanner_id)
    .bind(scanner.event_id)
    .bind(&scanner.name)
    .bind(&scanner.gate)
    .bind(token_hash)
    .bind(scanner.created_at)
    .execute(pool)
    .await
    .context("creating a scanner")?;
    Ok(())
}

/// The scanner a token hash names, revoked or not.
#[tracing::instrument(skip(pool, token_hash))]
pub async fn by_token(pool: &PgPool, token_hash: &[u8]) -> anyhow::Result<Option<ScannerRow>> {
    sqlx::query_as(
        "SELECT scanner_id, event_id, name, gate, created_at, revoked_at FROM scanners WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .context("looking a scanner up")
}

#[tracing::instrument(skip(pool))]
pub async fn of_event(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Vec<ScannerRow>> {
    sqlx::query_as(
        "SELECT scanner_id, event_id, name, gate, created_at, revoked_at FROM scanners \
         WHERE event_id = $1 ORDER BY created_at, scanner_id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("listing scanners")
}

/// Revokes a scanner of `event_id`; whether there was one.
#[tracing::instrument(skip(pool))]
pub async fn revoke(
    pool: &PgPool,
    event_id: Uuid,
    scanner_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE scanners SET revoked_at = COALESCE(revoked_at, $3) WHERE event_id = $1 AND scanner_id = $2",
    )
    .bind(event_id)
    .bind(scanner_id)
    .bind(now)
    .execute(pool)
    .await
    .context("revoking a scanner")?;
    Ok(done.rows_affected() > 0)
}

/// When an event's door is open, as its row says.
#[tracing::instrument(skip(pool))]
pub async fn door_hours(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Option<DoorHours>> {
    type Row = (
        EventStatus,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let row: Option<Row> =
        sqlx::query_as(
            "SELECT status, end_time, checkin_opens_at, checkin_closes_at FROM events WHERE event_id = $1",
        )
        .bind(event_id)
        .fetch_optional(pool)
        .await
        .context("reading an event's door hours")?;
    Ok(
        row.map(|(status, end_time, opens_at, closes_at)| DoorHours {
            status,
            end_time,
            opens_at,
            closes_at,
        }),
    )
}

/// The organizer's door settings (each `None` left as it is; an inner `None` clears).
#[derive(Debug, Clone, Default)]
pub struct DoorSettings {
    pub checkin_opens_at: Option<Option<DateTime<Utc>>>,
    pub checkin_closes_at: Option<Option<DateTime<Utc>>>,
    pub transfers_allowed: Option<bool>,
    pub transfers_close_at: Option<Option<DateTime<Utc>>>,
}

#[tracing::instrument(skip(pool))]
pub async fn set_door(pool: &PgPool, event_id: Uuid, door: &DoorSettings) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE events SET \
           checkin_opens_at = CASE WHEN $2 THEN $3 ELSE checkin_opens_at END, \
           checkin_closes_at = CASE WHEN $4 THEN $5 ELSE checkin_closes_at END, \
           transfers_allowed = COALESCE($6, transfers_allowed), \
           transfers_close_at = CASE WHEN $7 THEN $8 ELSE transfers_close_at END, \
           updated_at = now() \
         WHERE event_id = $1",
    )
    .bind(event_id)
    .bind(door.checkin_opens_at.is_some())
    .bind(door.checkin_opens_at.flatten())
    .bind(door.checkin_closes_at.is_some())
    .bind(door.checkin_closes_at.flatten())
    .bind(door.transfers_allowed)
    .bind(door.transfers_close_at.is_some())
    .bind(door.transfers_close_at.flatten())
    .execute(pool)
    .await
    .context("saving door settings")?;
    Ok(())
}

/// The event's signing key: made the first time it is asked for (two nodes asking at once
/// agree on the one that was stored first).
#[tracing::instrument(skip(pool, fresh))]
pub async fn event_key(pool: &PgPool, event_id: Uuid, fresh: [u8; 32]) -> anyhow::Result<[u8; 32]> {
    let public = ed25519_dalek::SigningKey::from_bytes(&fresh)
        .verifying_key()
        .to_bytes();
    sqlx::query(
        "INSERT INTO event_keys (event_id, secret_key, public_key) VALUES ($1, $2, $3) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(&fresh[..])
    .bind(&public[..])
    .execute(pool)
    .await
    .context("storing an event's key")?;
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_key FROM event_keys WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(pool)
            .await
            .context("reading an event's key")?;
    stored
        .try_into()
        .map_err(|_| anyhow::anyhow!("event {event_id}'s key is not 32 bytes"))
}

/// Check-in figures of an event, for its organizer.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CheckinStats {
    /// Tickets that can be used (VALID or USED).
    pub tickets: i64,
    pub admitted: i64,
    pub per_gate: Vec<GateCount>,
    /// Admissions per gate per minute, over the last hour.
    pub per_minute: Vec<MinuteCount>,
    /// Offline scans of a ticket already let in (at another gate, or before).
    pub conflicts: i64,
    /// Scans answered INVALID or WRONG_EVENT.
    pub refused: i64,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct GateCount {
    pub gate: String,
    pub admitted: i64,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub gate: String,
    pub admitted: i64,
}

#[tracing::instrument(skip(pool))]
pub async fn checkin_stats(
    pool: &PgPool,
    event_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<CheckinStats> {
    let (tickets, admitted): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status IN ('VALID', 'USED')), count(*) FILTER (WHERE status = 'USED') \
         FROM tickets WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(pool)
    .await
    .context("counting tickets")?;
    let per_gate = sqlx::query_as(
        "SELECT gate, count(*) AS admitted FROM checkins WHERE event_id = $1 AND result = 'ADMIT' \
         GROUP BY gate ORDER BY gate",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("counting admissions per gate")?;
    let per_minute = sqlx::query_as(
        "SELECT date_trunc('minute', scanned_at) AS minute, gate, count(*) AS admitted FROM checkins \
         WHERE event_id = $1 AND result = 'ADMIT' AND scanned_at > $2 - interval '1 hour' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(event_id)
    .bind(now)
    .fetch_all(pool)
    .await
    .context("counting admissions per minute")?;
    let (conflicts, refused): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE offline AND result = 'ALREADY_ADMITTED'), \
                count(*) FILTER (WHERE result IN ('INVALID', 'WRONG_EVENT')) \
         FROM checkins WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(pool)
    .await
    .context("counting conflicts")?;
    Ok(CheckinStats {
        tickets,
        admitted,
        per_gate,
        per_minute,
        conflicts,
        refused,
    })
}
