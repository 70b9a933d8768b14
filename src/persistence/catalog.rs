//! Public reads: the event list with its filters, an event's sections with their counts, and
//! the seat map.
//!
//! Availability here is what Postgres knows: capacity less live tickets and blocked seats.
//! Seats held in the on-sale actors are not in Postgres; the live seat map carries them.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::venue::SectionKind;

use crate::domain::event::{Category, EventStatus};

/// Filters of the public event list.
#[derive(Debug, Default, Clone)]
pub struct CatalogFilter {
    /// Words matched against titles, performers and venue names.
    pub keyword: Option<String>,
    pub category: Option<Category>,
    pub city: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CatalogRow {
    pub event_id: Uuid,
    pub title: String,
    pub category: String,
    pub status: EventStatus,
    pub performers: Vec<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub currency: String,
    pub venue_id: Uuid,
    pub venue_name: String,
    pub venue_city: String,
    pub min_price_cents: Option<i64>,
    pub available: i64,
}

/// Statuses shown in the public list.
pub const LISTED: [EventStatus; 4] = [
    EventStatus::Published,
    EventStatus::OnSale,
    EventStatus::SoldOut,
    EventStatus::Completed,
];

/// One page of the public list, soonest first; `limit + 1` rows are asked for so the
/// caller knows whether a next page exists.
#[tracing::instrument(skip(pool))]
pub async fn list_events(
    pool: &PgPool,
    filter: &CatalogFilter,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<CatalogRow>> {
    let statuses: Vec<&str> = LISTED.iter().map(|s| s.as_str()).collect();
    let pattern = filter
        .keyword
        .as_deref()
        .map(|k| format!("%{}%", escape_like(k)));
    sqlx::query_as(
        "SELECT e.event_id, e.title, e.category, e.status, e.performers, e.start_time, e.end_time, e.currency, \
           v.venue_id, v.name AS venue_name, v.city AS venue_city, \
           (SELECT min(p) FROM (SELECT price_cents AS p FROM section_prices WHERE event_id = e.event_id \
                                UNION ALL SELECT price_cents FROM ticket_tiers WHERE event_id = e.event_id) prices) \
             AS min_price_cents, \
           (COALESCE((SELECT sum(s.capacity) FROM section_prices sp JOIN sections s USING (section_id) \
                      WHERE sp.event_id = e.event_id), 0) \
            - (SELECT count(*) FROM tickets t JOIN section_prices sp ON sp.event_id = t.event_id AND sp.section_id = t.section_id \
               WHERE t.event_id = e.event_id AND t.seat_id IS NOT NULL AND t.status IN ('VALID', 'USED')) \
            - (SELECT count(*) FROM event_blocked_seats b JOIN seats st USING (seat_id) \
               JOIN section_prices sp ON sp.event_id = b.event_id AND sp.section_id = st.section_id \
               WHERE b.event_id = e.event_id) \
            + COALESCE((SELECT sum(quantity - sold_quantity) FROM ticket_tiers WHERE event_id = e.event_id), 0) \
           )::bigint AS available \
         FROM events e JOIN venues v ON v.venue_id = e.venue_id \
         WHERE e.status = ANY($1) \
           AND ($2::text IS NULL OR e.category = $2) \
           AND ($3::text IS NULL OR lower(v.city) = lower($3)) \
           AND ($4::timestamptz IS NULL OR e.end_time >= $4) \
           AND ($5::timestamptz IS NULL OR e.start_time < $5) \
           AND ($6::text IS NULL OR e.title ILIKE $6 OR v.name ILIKE $6 \
                OR array_to_string(e.performers, ' ') ILIKE $6) \
         ORDER BY e.start_time, e.event_id LIMIT $7 OFFSET $8",
    )
    .bind(&statuses)
    .bind(filter.category.map(Category::as_str))
    .bind(filter.city.as_deref())
    .bind(filter.from)
    .bind(filter.to)
    .bind(pattern)
    .bind(limit + 1)
    .bind(offset)
    .fetch_all(pool)
    .await
    .context("listing the catalog")
}

/// `%`, `_` and `\` match themselves in a keyword.
fn escape_like(keyword: &str) -> String {
    keyword
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

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

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_in_keywords_match_literally() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
