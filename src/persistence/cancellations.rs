//! A cancelled event's refunds as a job in Postgres: the event cancelled and every order
//! listed in one transaction, batches of orders claimed by workers on any node for a while
//! (`FOR UPDATE SKIP LOCKED`), each order settled once refunded (or given up on), and the
//! progress the organizer sees.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::event::EventStatus;

/// Cancels an event (from one of `from`) and starts its refunds, in one transaction: the
/// venue booking is freed, the waitlist closed, every order with tickets listed for the
/// cancellation job, and the notice written to the outbox. `None` if the event was no
/// longer in one of `from`; else how many orders are to be refunded.
pub async fn cancel_event(
    pool: &PgPool,
    event_id: Uuid,
    from: &[EventStatus],
    reason: &str,
    requested_by: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let mut tx = pool.begin().await.context("cancelling an event")?;
    let moved = sqlx::query(
        "UPDATE events SET status = 'CANCELLED', updated_at = now() WHERE event_id = $1 AND status = ANY($2)",
    )
    .bind(event_id)
    .bind(&from)
    .execute(&mut *tx)
    .await
    .context("cancelling an event")?
    .rows_affected()
        == 1;
    if !moved {
        return Ok(None);
    }
    sqlx::query("UPDATE venue_bookings SET status = 'CANCELLED', cancelled_at = now(), cancel_reason = 'EVENT_CANCELLED' WHERE event_id = $1 AND status <> 'CANCELLED'")
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .context("freeing a venue booking")?;
    super::waitlist::cancel_all(&mut *tx, event_id).await?;
    let orders = start_cancellation(&mut tx, event_id, reason, requested_by, now).await?;
    sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, created_at) VALUES ('event', $1, 'event.cancelled', $2, $3)",
    )
    .bind(event_id)
    .bind(serde_json::json!({"event_id": event_id, "reason": reason, "orders": orders}))
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("writing the cancellation notice")?;
    tx.commit().await.context("cancelling an event")?;
    Ok(Some(orders))
}

/// Why an event was cancelled (its cancellation's reason).
pub async fn cancellation_reason(pool: &PgPool, event_id: Uuid) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("SELECT reason FROM event_cancellations WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(pool)
            .await
            .context("reading a cancellation's reason")?
            .unwrap_or_else(|| "the event was cancelled".into()),
    )
}

/// Starts an event's cancellation job: one row per order with tickets to refund. Part of
/// the caller's transaction (the one that cancels the event); how many orders it has.
pub async fn start_cancellation(
    tx: &mut PgConnection,
    event_id: Uuid,
    reason: &str,
    requested_by: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let orders = sqlx::query(
        "INSERT INTO cancellation_orders (event_id, order_id) \
         SELECT $1, o.order_id FROM orders o WHERE o.event_id = $1 AND o.status IN ('CONFIRMED', 'PARTIALLY_REFUNDED') \
         ON CONFLICT DO NOTHING",
    );
    sqlx::query(
        "INSERT INTO event_cancellations (event_id, reason, requested_by, orders, started_at) \
         VALUES ($1, $2, $3, 0, $4) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(reason)
    .bind(requested_by)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("starting a cancellation")?;
    orders
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .context("listing a cancellation's orders")?;
    let count: i64 = sqlx::query_scalar(
        "UPDATE event_cancellations SET orders = (SELECT count(*) FROM cancellation_orders WHERE event_id = $1) \
         WHERE event_id = $1 RETURNING orders::int8",
    )
    .bind(event_id)
    .fetch_one(&mut *tx)
    .await
    .context("counting a cancellation's orders")?;
    Ok(count)
}

/// A cancellation's progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Progress {
    pub orders: i64,
    pub refunded: i64,
    pub failed: i64,
    pub pending: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn progress(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Option<Progress>> {
    sqlx::query_as(
        "SELECT c.orders::int8 AS orders, \
                count(*) FILTER (WHERE o.state = 'REFUNDED') AS refunded, \
                count(*) FILTER (WHERE o.state = 'FAILED') AS failed, \
                count(*) FILTER (WHERE o.state = 'PENDING') AS pending, \
                c.started_at, c.finished_at \
         FROM event_cancellations c LEFT JOIN cancellation_orders o USING (event_id) \
         WHERE c.event_id = $1 GROUP BY c.event_id",
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await
    .context("reading a cancellation's progress")
}

/// Takes up to `limit` orders of unfinished cancellations to refund, for `hold_for`: no
/// other worker takes them meanwhile, and a worker that dies lets them go when it lapses.
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    hold_for: chrono::Duration,
    limit: i64,
) -> anyhow::Result<Vec<(Uuid, Uuid, i32)>> {
    sqlx::query_as(
        "UPDATE cancellation_orders c SET claimed_until = $2, attempts = c.attempts + 1, updated_at = $1 \
         FROM (SELECT event_id, order_id FROM cancellation_orders \
               WHERE state = 'PENDING' AND (claimed_until IS NULL OR claimed_until < $1) \
               ORDER BY event_id, order_id LIMIT $3 FOR UPDATE SKIP LOCKED) x \
         WHERE c.event_id = x.event_id AND c.order_id = x.order_id \
         RETURNING c.event_id, c.order_id, c.attempts",
    )
    .bind(now)
    .bind(now + hold_for)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("claiming orders to refund")
}

/// An order of a cancellation is done: refunded (by `refund_id`, or nothing was left to
/// refund) or given up on.
pub async fn settle(
    pool: &PgPool,
    event_id: Uuid,
    order_id: Uuid,
    state: &str,
    refund_id: Option<Uuid>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE cancellation_orders SET state = $3, refund_id = COALESCE($4, refund_id), last_error = $5, \
         claimed_until = NULL, updated_at = $6 WHERE event_id = $1 AND order_id = $2",
    )
    .bind(event_id)
    .bind(order_id)
    .bind(state)
    .bind(refund_id)
    .bind(error)
    .bind(now)
    .execute(pool)
    .await
    .context("settling an order of a cancellation")?;
    sqlx::query(
        "UPDATE event_cancellations SET finished_at = $2 WHERE event_id = $1 AND finished_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM cancellation_orders WHERE event_id = $1 AND state = 'PENDING')",
    )
    .bind(event_id)
    .bind(now)
    .execute(pool)
    .await
    .context("finishing a cancellation")?;
    Ok(())
}

/// An attempt at an order of a cancellation did not go through: it is tried again after
/// `retry_at`.
pub async fn retry_later(
    pool: &PgPool,
    event_id: Uuid,
    order_id: Uuid,
    error: &str,
    retry_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE cancellation_orders SET last_error = $3, claimed_until = $4 WHERE event_id = $1 AND order_id = $2",
    )
    .bind(event_id)
    .bind(order_id)
    .bind(error)
    .bind(retry_at)
    .execute(pool)
    .await
    .context("postponing an order of a cancellation")?;
    Ok(())
}
