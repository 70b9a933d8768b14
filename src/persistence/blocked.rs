//! Seats taken out of sale for one event (camera positions, sight-line kills, house seats):
//! blocked before the sale, released at any time — a release during the sale reaches the
//! on-sale's owner through the engine's inbox in the same transaction.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::inbox;
use crate::domain::holds::Note;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BlockedRow {
    pub seat_id: Uuid,
    pub section_id: Uuid,
    pub label: String,
    pub reason: String,
}

/// The event's blocked seats, in seat-map order.
pub async fn of_event(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Vec<BlockedRow>> {
    sqlx::query_as(
        "SELECT b.seat_id, st.section_id, s.name || ' ' || st.row_label || '-' || st.seat_number AS label, b.reason \
         FROM event_blocked_seats b JOIN seats st USING (seat_id) JOIN sections s USING (section_id) \
         WHERE b.event_id = $1 ORDER BY s.position, st.position",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("listing blocked seats")
}

/// Of `seats`, those that are not seats of the event's venue.
pub async fn foreign(pool: &PgPool, event_id: Uuid, seats: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT ask.seat FROM unnest($2::uuid[]) AS ask(seat) WHERE NOT EXISTS (\
           SELECT 1 FROM events e JOIN sections s ON s.venue_id = e.venue_id \
           JOIN seats st ON st.section_id = s.section_id WHERE e.event_id = $1 AND st.seat_id = ask.seat)",
    )
    .bind(event_id)
    .bind(seats)
    .fetch_all(pool)
    .await
    .context("checking the seats to block")
}

/// Blocks `seats` (already blocked ones keep their reason); how many were new.
pub async fn block(
    pool: &PgPool,
    event_id: Uuid,
    seats: &[Uuid],
    reason: &str,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO event_blocked_seats (event_id, seat_id, reason) SELECT $1, unnest($2::uuid[]), $3 \
         ON CONFLICT DO NOTHING",
    )
    .bind(event_id)
    .bind(seats)
    .bind(reason)
    .execute(pool)
    .await
    .context("blocking seats")?
    .rows_affected())
}

/// Puts `seats` back on sale; the seats that were blocked. With `on_sale`, the owner is
/// told in the same transaction (waitlist first).
pub async fn release(
    pool: &PgPool,
    event_id: Uuid,
    seats: &[Uuid],
    on_sale: bool,
    _now: DateTime<Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    let mut tx = pool.begin().await.context("releasing blocked seats")?;
    let released: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM event_blocked_seats WHERE event_id = $1 AND seat_id = ANY($2) RETURNING seat_id",
    )
    .bind(event_id)
    .bind(seats)
    .fetch_all(&mut *tx)
    .await
    .context("releasing blocked seats")?;
    if on_sale && !released.is_empty() {
        let note = Note::Unblocked {
            seats: released.clone(),
        };
        inbox::post(&mut tx, event_id, &note).await?;
    }
    tx.commit().await.context("releasing blocked seats")?;
    Ok(released)
}
