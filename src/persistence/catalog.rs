//! Public reads: the event list with its filters, an event's sections with their counts, and
//! the seat map.
//!
//! Availability here is what Postgres knows: capacity less live tickets and blocked seats.
//! Seats held in the on-sale actors are not in Postgres; the live seat map carries them.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::venue::SectionKind;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SectionAvailabilityRow {
    pub section_id: Uuid,
    pub name: String,
    pub kind: SectionKind,
    pub capacity: i32,
    pub price_cents: Option<i64>,
    pub sold: i64,
    pub blocked: i64,
}

/// Every section of the event's venue, with its price and what Postgres counts as gone.
#[tracing::instrument(skip(pool))]
pub async fn section_availability(
    pool: impl sqlx::PgExecutor<'_>,
    event_id: Uuid,
) -> anyhow::Result<Vec<SectionAvailabilityRow>> {
    sqlx::query_as(
        "SELECT s.section_id, s.name, s.kind, s.capacity, sp.price_cents, \
           (SELECT count(*) FROM tickets t WHERE t.event_id = e.event_id AND t.section_id = s.section_id \
              AND t.status IN ('VALID', 'USED'))::bigint AS sold, \
           (SELECT count(*) FROM event_blocked_seats b JOIN seats st USING (seat_id) \
              WHERE b.event_id = e.event_id AND st.section_id = s.section_id)::bigint AS blocked \
         FROM events e JOIN sections s ON s.venue_id = e.venue_id \
         LEFT JOIN section_prices sp ON sp.event_id = e.event_id AND sp.section_id = s.section_id \
         WHERE e.event_id = $1 ORDER BY s.position",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("counting section availability")
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeatRow {
    pub seat_id: Uuid,
    pub section_id: Uuid,
    pub row_label: String,
    pub seat_number: i32,
    pub x: f32,
    pub y: f32,
    pub sold: bool,
    pub blocked: bool,
}

/// Every seat of the event's venue in seat-map order (section, then position).
#[tracing::instrument(skip(pool))]
pub async fn seats(
    pool: impl sqlx::PgExecutor<'_>,
    event_id: Uuid,
) -> anyhow::Result<Vec<SeatRow>> {
    sqlx::query_as(
        "SELECT st.seat_id, st.section_id, st.row_label, st.seat_number, st.x, st.y, \
           (t.ticket_id IS NOT NULL) AS sold, (b.seat_id IS NOT NULL) AS blocked \
         FROM events e JOIN sections s ON s.venue_id = e.venue_id JOIN seats st ON st.section_id = s.section_id \
         LEFT JOIN tickets t ON t.event_id = e.event_id AND t.seat_id = st.seat_id AND t.status IN ('VALID', 'USED') \
         LEFT JOIN event_blocked_seats b ON b.event_id = e.event_id AND b.seat_id = st.seat_id \
         WHERE e.event_id = $1 ORDER BY s.position, st.position",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("loading the seat map")
}

/// Seats of the event that are not for sale as Postgres knows it: `(seat, sold)` for
/// every live ticket's seat (`true`) and every seat the organizer blocked (`false`).
#[tracing::instrument(skip(pool))]
pub async fn taken_seats(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Vec<(Uuid, bool)>> {
    sqlx::query_as(
        "SELECT t.seat_id, true FROM tickets t \
         WHERE t.event_id = $1 AND t.seat_id IS NOT NULL AND t.status IN ('VALID', 'USED') \
         UNION ALL SELECT b.seat_id, false FROM event_blocked_seats b WHERE b.event_id = $1",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("reading the sold and blocked seats")
}
