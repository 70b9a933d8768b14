//! An event's sales as the organizer reports them, read from the orders themselves (so the
//! report is Postgres to the cent): what sold per section and tier and per day on the
//! venue's calendar, refunds, check-ins; and the orders and attendees as rows for a CSV,
//! streamed rather than loaded.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::stream::BoxStream;
use sqlx::PgPool;
use uuid::Uuid;

/// Orders that were paid, whatever happened after (refunds are reported beside them).
const SOLD: &str = "('CONFIRMED', 'PARTIALLY_REFUNDED', 'REFUNDED')";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Totals {
    pub orders: i64,
    pub gross_cents: i64,
    pub refunded_cents: i64,
    pub tickets_sold: i64,
    /// Tickets sold and not refunded (valid, used, or transferred on).
    pub tickets_live: i64,
    pub checked_in: i64,
    pub buyers: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Line {
    pub section_id: Uuid,
    pub section: String,
    pub tier_id: Option<Uuid>,
    pub tier: Option<String>,
    pub tickets: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Day {
    pub day: NaiveDate,
    pub orders: i64,
    pub tickets: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Refunds {
    pub refunds: i64,
    pub amount_cents: i64,
    pub fees_kept_cents: i64,
}

pub struct Report {
    pub totals: Totals,
    pub lines: Vec<Line>,
    pub days: Vec<Day>,
    pub refunds: Refunds,
}

pub async fn report(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Report> {
    let totals = sqlx::query_as(&format!(
        "SELECT count(*) AS orders, COALESCE(sum(o.total_cents), 0)::int8 AS gross_cents, \
                COALESCE(sum(o.refunded_cents), 0)::int8 AS refunded_cents, \
                (SELECT COALESCE(sum(i.quantity), 0)::int8 FROM order_items i JOIN orders x USING (order_id) \
                  WHERE x.event_id = $1 AND x.status IN {SOLD}) AS tickets_sold, \
                (SELECT count(*) FROM tickets t WHERE t.event_id = $1 AND t.status IN ('VALID', 'USED')) AS tickets_live, \
                (SELECT count(*) FROM tickets t WHERE t.event_id = $1 AND t.status = 'USED') AS checked_in, \
                count(DISTINCT o.buyer_id) AS buyers \
         FROM orders o WHERE o.event_id = $1 AND o.status IN {SOLD}"
    ))
    .bind(event_id)
    .fetch_one(pool)
    .await
    .context("an event's sales totals")?;
    let lines = sqlx::query_as(&format!(
        "SELECT i.section_id, s.name AS section, i.tier_id, t.name AS tier, \
                sum(i.quantity)::int8 AS tickets, sum(i.subtotal_cents)::int8 AS revenue_cents \
         FROM orders o JOIN order_items i USING (order_id) JOIN sections s ON s.section_id = i.section_id \
         LEFT JOIN ticket_tiers t ON t.tier_id = i.tier_id \
         WHERE o.event_id = $1 AND o.status IN {SOLD} \
         GROUP BY i.section_id, s.name, s.position, i.tier_id, t.name ORDER BY s.position, t.name"
    ))
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("an event's sales by section and tier")?;
    let days = sqlx::query_as(&format!(
        "SELECT (o.confirmed_at AT TIME ZONE v.timezone)::date AS day, count(DISTINCT o.order_id) AS orders, \
                sum(i.quantity)::int8 AS tickets, sum(i.subtotal_cents)::int8 AS revenue_cents \
         FROM orders o JOIN order_items i USING (order_id) JOIN events e ON e.event_id = o.event_id \
         JOIN venues v ON v.venue_id = e.venue_id \
         WHERE o.event_id = $1 AND o.status IN {SOLD} GROUP BY 1 ORDER BY 1"
    ))
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("an event's sales by day")?;
    let refunds = sqlx::query_as(
        "SELECT count(*) AS refunds, COALESCE(sum(amount_cents), 0)::int8 AS amount_cents, \
                COALESCE(sum(fee_cents), 0)::int8 AS fees_kept_cents \
         FROM refunds WHERE event_id = $1 AND status = 'SUCCEEDED'",
    )
    .bind(event_id)
    .fetch_one(pool)
    .await
    .context("an event's refunds")?;
    Ok(Report {
        totals,
        lines,
        days,
        refunds,
    })
}

/// One order, as a CSV row.
#[derive(Debug, sqlx::FromRow)]
pub struct OrderLine {
    pub order_id: Uuid,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub status: String,
    pub buyer_email: String,
    pub tickets: i64,
    pub total_cents: i64,
    pub refunded_cents: i64,
    pub currency: String,
}

/// One ticket, as a CSV row.
#[derive(Debug, sqlx::FromRow)]
pub struct AttendeeLine {
    pub ticket_id: Uuid,
    pub order_id: Uuid,
    pub status: String,
    pub section: String,
    pub place: String,
    pub holder_email: Option<String>,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub checked_in_gate: Option<String>,
}

/// The event's paid orders, one at a time as Postgres sends them.
pub fn orders(pool: &PgPool, event_id: Uuid) -> BoxStream<'_, Result<OrderLine, sqlx::Error>> {
    sqlx::query_as::<_, OrderLine>(
        "SELECT o.order_id, o.confirmed_at, o.status, u.email AS buyer_email, \
                (SELECT COALESCE(sum(i.quantity), 0)::int8 FROM order_items i WHERE i.order_id = o.order_id) AS tickets, \
                o.total_cents, o.refunded_cents, o.currency::text AS currency \
         FROM orders o JOIN users u ON u.user_id = o.buyer_id \
         WHERE o.event_id = $1 AND o.status IN ('CONFIRMED', 'PARTIALLY_REFUNDED', 'REFUNDED') \
         ORDER BY o.confirmed_at, o.order_id",
    )
    .bind(event_id)
    .fetch(pool)
}

/// The event's tickets with who holds them, one at a time as Postgres sends them.
pub fn attendees(
    pool: &PgPool,
    event_id: Uuid,
) -> BoxStream<'_, Result<AttendeeLine, sqlx::Error>> {
    sqlx::query_as::<_, AttendeeLine>(
        "SELECT t.ticket_id, t.order_id, t.status, s.name AS section, \
                COALESCE(st.row_label || '-' || st.seat_number, tt.name, '') AS place, \
                COALESCE(u.email, t.holder_email) AS holder_email, t.checked_in_at, t.checked_in_gate \
         FROM tickets t JOIN sections s ON s.section_id = t.section_id \
         LEFT JOIN seats st ON st.seat_id = t.seat_id LEFT JOIN ticket_tiers tt ON tt.tier_id = t.tier_id \
         LEFT JOIN users u ON u.user_id = t.holder_id \
         WHERE t.event_id = $1 ORDER BY t.issued_at, t.ticket_id",
    )
    .bind(event_id)
    .fetch(pool)
}
