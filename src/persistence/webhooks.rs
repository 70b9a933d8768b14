//! Webhook subscriptions, their deliveries, and the outbox rows the relay claims.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub webhook_id: Uuid,
    pub organizer_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

const WEBHOOK_COLUMNS: &str =
    "webhook_id, organizer_id, url, events, secret, created_at, disabled_at, disabled_reason";

pub async fn create(pool: &PgPool, hook: &WebhookRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO webhooks (webhook_id, organizer_id, url, events, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hook.webhook_id)
    .bind(hook.organizer_id)
    .bind(&hook.url)
    .bind(&hook.events)
    .bind(&hook.secret)
    .bind(hook.created_at)
    .execute(pool)
    .await
    .context("creating a webhook")?;
    Ok(())
}

pub async fn of_organizer(pool: &PgPool, organizer_id: Uuid) -> anyhow::Result<Vec<WebhookRow>> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE organizer_id = $1 ORDER BY created_at, webhook_id"
    ))
    .bind(organizer_id)
    .fetch_all(pool)
    .await
    .context("listing webhooks")
}

pub async fn find(pool: &PgPool, webhook_id: Uuid) -> anyhow::Result<Option<WebhookRow>> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = $1"
    ))
    .bind(webhook_id)
    .fetch_optional(pool)
    .await
    .context("loading a webhook")
}

pub async fn delete(pool: &PgPool, webhook_id: Uuid) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM webhooks WHERE webhook_id = $1")
        .bind(webhook_id)
        .execute(pool)
        .await
        .context("deleting a webhook")?;
    Ok(())
}

/// An outbox row the relay has claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    /// Until when this relay has it: also the claim's identity (see [`renew_claim`]).
    pub claimed_until: DateTime<Utc>,
}

/// Claims up to `limit` due outbox rows for `hold_for`: no other relay takes them
/// meanwhile, and a relay that dies lets them go when the claim lapses.
pub async fn claim_outbox(
    pool: &PgPool,
    now: DateTime<Utc>,
    hold_for: Duration,
    limit: i64,
) -> anyhow::Result<Vec<OutboxRow>> {
    sqlx::query_as(
        "UPDATE outbox o SET claimed_until = $2 FROM (\
           SELECT id FROM outbox WHERE processed_at IS NULL AND dead_at IS NULL AND available_at <= $1 \
           AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) x \
         WHERE o.id = x.id RETURNING o.id, o.kind, o.payload, o.created_at, o.attempts, o.claimed_until",
    )
    .bind(now)
    .bind(now + hold_for)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("claiming outbox rows")
}

/// Extends this relay's claim of `row` to `until` just before it is sent, so a row that
/// waited in a batch still has a whole claim for its send; `false` when the claim lapsed and
/// another relay has it (or it is done): then it is not sent here.
pub async fn renew_claim(
    pool: &PgPool,
    row: &mut OutboxRow,
    until: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let renewed = sqlx::query(
        "UPDATE outbox SET claimed_until = $3 WHERE id = $1 AND claimed_until = $2 \
         AND processed_at IS NULL AND dead_at IS NULL",
    )
    .bind(row.id)
    .bind(row.claimed_until)
    .bind(until)
    .execute(pool)
    .await
    .context("renewing an outbox claim")?
    .rows_affected()
        == 1;
    if renewed {
        row.claimed_until = until;
    }
    Ok(renewed)
}

/// Hands an outbox row to the organizer's subscriptions to its kind (once each, however
/// often asked), then marks it processed: one transaction.
pub async fn fan_out(pool: &PgPool, row: &OutboxRow, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await.context("relaying an outbox row")?;
    let event_id = row
        .payload
        .get("event_id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok());
    let mut made = 0;
    if let Some(event_id) = event_id {
        let hooks: Vec<Uuid> = sqlx::query_scalar(
            "SELECT w.webhook_id FROM webhooks w JOIN events e ON e.organizer_id = w.organizer_id \
             WHERE e.event_id = $1 AND w.disabled_at IS NULL AND $2 = ANY(w.events)",
        )
        .bind(event_id)
        .bind(&row.kind)
        .fetch_all(&mut *tx)
        .await
        .context("finding the subscriptions of an outbox row")?;
        for webhook_id in hooks {
            let delivery_id = Uuid::new_v4();
            let body = serde_json::json!({
                "id": delivery_id,
                "type": row.kind,
                "created_at": row.created_at,
                "data": row.payload,
            });
            made += sqlx::query(
                "INSERT INTO webhook_deliveries (delivery_id, webhook_id, outbox_id, kind, body, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (webhook_id, outbox_id) DO NOTHING",
            )
            .bind(delivery_id)
            .bind(webhook_id)
            .bind(row.id)
            .bind(&row.kind)
            .bind(body.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("queueing a webhook delivery")?
            .rows_affected();
        }
    }
    sqlx::query("UPDATE outbox SET processed_at = $2, claimed_until = NULL WHERE id = $1")
        .bind(row.id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("marking an outbox row processed")?;
    tx.commit().await.context("relaying an outbox row")?;
    Ok(made)
}

/// An outbox row could not be relayed: tried again at `retry_at`, or dead-lettered.
pub async fn outbox_failed(
    pool: &PgPool,
    id: i64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, claimed_until = NULL, \
         available_at = COALESCE($3, available_at), dead_at = CASE WHEN $3 IS NULL THEN $4 END WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .execute(pool)
    .await
    .context("recording an outbox failure")?;
    Ok(())
}

/// A delivery as the sender needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDelivery {
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` deliveries due at `now`, of enabled subscriptions.
pub async fn claim_deliveries(
    pool: &PgPool,
    now: DateTime<Utc>,
    hold_for: Duration,
    limit: i64,
) -> anyhow::Result<Vec<DueDelivery>> {
    sqlx::query_as(
        "WITH due AS (SELECT d.delivery_id FROM webhook_deliveries d JOIN webhooks w USING (webhook_id) \
           WHERE d.status = 'PENDING' AND d.next_attempt_at <= $1 AND (d.claimed_until IS NULL OR d.claimed_until < $1) \
           AND w.disabled_at IS NULL ORDER BY d.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE webhook_deliveries d SET claimed_until = $2 FROM due, webhooks w \
         WHERE d.delivery_id = due.delivery_id AND w.webhook_id = d.webhook_id \
         RETURNING d.delivery_id, d.webhook_id, w.url, w.secret, d.body, d.attempts, d.created_at",
    )
    .bind(now)
    .bind(now + hold_for)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("claiming webhook deliveries")
}

/// What one attempt at a delivery came to.
pub enum Attempt<'a> {
    Delivered {
        status: u16,
    },
    /// Tried again at `retry_at`; `None`: given up on.
    Failed {
        status: Option<u16>,
        error: &'a str,
        retry_at: Option<DateTime<Utc>>,
    },
    /// 410 Gone: the receiver wants no more; the subscription is disabled.
    Gone,
}

pub async fn attempted(
    pool: &PgPool,
    delivery: &DueDelivery,
    attempt: Attempt<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("recording a delivery")?;
    let (status, code, error, next): (&str, Option<i32>, Option<&str>, Option<DateTime<Utc>>) =
        match attempt {
            Attempt::Delivered { status } => ("DELIVERED", Some(i32::from(status)), None, None),
            Attempt::Failed {
                status,
                error,
                retry_at: Some(at),
            } => ("PENDING", status.map(i32::from), Some(error), Some(at)),
            Attempt::Failed {
                status,
                error,
                retry_at: None,
            } => ("DEAD", status.map(i32::from), Some(error), None),
            Attempt::Gone => {
                sqlx::query("UPDATE webhooks SET disabled_at = $2, disabled_reason = 'the receiver answered 410 Gone' WHERE webhook_id = $1 AND disabled_at IS NULL")
                .bind(delivery.webhook_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("disabling a webhook")?;
                (
                    "DEAD",
                    Some(410),
                    Some("410 Gone: the subscription is disabled"),
                    None,
                )
            }
        };
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, last_status = $3, last_error = $4, attempts = attempts + 1, \
         last_attempt_at = $5, next_attempt_at = COALESCE($6, next_attempt_at), claimed_until = NULL, \
         delivered_at = CASE WHEN $2 = 'DELIVERED' THEN $5 END WHERE delivery_id = $1",
    )
    .bind(delivery.delivery_id)
    .bind(status)
    .bind(code)
    .bind(error)
    .bind(now)
    .bind(next)
    .execute(&mut *tx)
    .await
    .context("recording a delivery")?;
    tx.commit().await.context("recording a delivery")?;
    Ok(())
}

/// A delivery as its log shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub delivery_id: Uuid,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The subscription's last 100 deliveries, newest first.
pub async fn deliveries(pool: &PgPool, webhook_id: Uuid) -> anyhow::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT delivery_id, kind, status, attempts, last_status, last_error, last_attempt_at, next_attempt_at, \
         created_at, delivered_at FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, delivery_id LIMIT 100",
    )
    .bind(webhook_id)
    .fetch_all(pool)
    .await
    .context("listing deliveries")
}

/// A test delivery, due now.
pub async fn queue_test(
    pool: &PgPool,
    webhook_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<Uuid> {
    let delivery_id = Uuid::new_v4();
    let body = serde_json::json!({
        "id": delivery_id, "type": "webhook.test", "created_at": now,
        "data": {"webhook_id": webhook_id, "message": "a test delivery from boxoffice"},
    });
    sqlx::query(
        "INSERT INTO webhook_deliveries (delivery_id, webhook_id, kind, body, next_attempt_at, created_at) \
         VALUES ($1, $2, 'webhook.test', $3, $4, $4)",
    )
    .bind(delivery_id)
    .bind(webhook_id)
    .bind(body.to_string())
    .bind(now)
    .execute(pool)
    .await
    .context("queueing a test delivery")?;
    Ok(delivery_id)
}

/// Sends a delivery again (the same body and id), now; whether it is the webhook's.
pub async fn redeliver(
    pool: &PgPool,
    webhook_id: Uuid,
    delivery_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = $3, claimed_until = NULL \
         WHERE delivery_id = $2 AND webhook_id = $1",
    )
    .bind(webhook_id)
    .bind(delivery_id)
    .bind(now)
    .execute(pool)
    .await
    .context("redelivering")?
    .rows_affected()
        == 1)
}

/// A dead-lettered outbox row, for the operator.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadRow {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub dead_at: DateTime<Utc>,
}

/// How many rows wait to be relayed, and how many were dead-lettered.
pub async fn outbox_counts(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE processed_at IS NULL AND dead_at IS NULL), \
                count(*) FILTER (WHERE dead_at IS NOT NULL) FROM outbox",
    )
    .fetch_one(pool)
    .await
    .context("counting outbox rows")
}

/// The last 100 dead-lettered rows, newest first.
pub async fn dead_rows(pool: &PgPool) -> anyhow::Result<Vec<DeadRow>> {
    sqlx::query_as(
        "SELECT id, kind, payload, attempts, last_error, created_at, dead_at FROM outbox \
         WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, id DESC LIMIT 100",
    )
    .fetch_all(pool)
    .await
    .context("reading dead outbox rows")
}

/// Puts a dead-lettered row back in line with its tries counted afresh; `false` when
/// there is no such dead row.
pub async fn retry_dead(pool: &PgPool, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "UPDATE outbox SET dead_at = NULL, attempts = 0, available_at = $2, claimed_until = NULL \
         WHERE id = $1 AND dead_at IS NOT NULL",
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await
    .context("retrying a dead outbox row")?
    .rows_affected()
        == 1)
}
