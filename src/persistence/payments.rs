//! Payments: one row per authorization attempt, written before the processor is called so
//! that an authorization whose order never got written can be found and voided.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::WriteError;
use crate::domain::orders::PaymentStatus;

/// A payment about to be authorized.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub payment_id: Uuid,
    pub buyer_id: Uuid,
    pub event_id: Uuid,
    pub hold_id: Uuid,
    pub gateway: String,
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub order_id: Option<Uuid>,
    pub gateway_ref: Option<String>,
    pub idempotency_key: String,
    pub status: PaymentStatus,
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "payment_id, order_id, gateway_ref, idempotency_key, status, decline_reason, created_at";

/// Records a payment as PENDING; a key used before is a [`WriteError::Conflict`].
#[tracing::instrument(skip(pool, payment), fields(payment_id = %payment.payment_id))]
pub async fn insert_pending(pool: &PgPool, payment: &NewPayment) -> Result<(), WriteError> {
    sqlx::query(
        "INSERT INTO payments (payment_id, buyer_id, event_id, hold_id, gateway, idempotency_key, amount_cents, currency, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'PENDING')",
    )
    .bind(payment.payment_id)
    .bind(payment.buyer_id)
    .bind(payment.event_id)
    .bind(payment.hold_id)
    .bind(&payment.gateway)
    .bind(&payment.idempotency_key)
    .bind(payment.amount_cents)
    .bind(&payment.currency)
    .execute(pool)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "recording a payment"))?;
    Ok(())
}

#[tracing::instrument(skip(pool, idempotency_key))]
pub async fn find_by_key(
    pool: &PgPool,
    idempotency_key: &str,
) -> anyhow::Result<Option<PaymentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE idempotency_key = $1"
    ))
    .bind(idempotency_key)
    .fetch_optional(pool)
    .await
    .context("loading a payment")
}

/// Records the processor's answer.
#[tracing::instrument(skip(pool))]
pub async fn set_status(
    pool: &PgPool,
    payment_id: Uuid,
    status: PaymentStatus,
    gateway_ref: Option<&str>,
    decline_reason: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE payments SET status = $2, gateway_ref = COALESCE($3, gateway_ref), decline_reason = COALESCE($4, decline_reason), \
         updated_at = now() WHERE payment_id = $1",
    )
    .bind(payment_id)
    .bind(status)
    .bind(gateway_ref)
    .bind(decline_reason)
    .execute(pool)
    .await
    .context("updating a payment")?;
    Ok(())
}

/// Marks `payments` CAPTURED, those still AUTHORIZED (a refund that began meanwhile has
/// moved its payment on), in one statement.
pub async fn mark_captured(pool: &PgPool, payments: &[Uuid]) -> anyhow::Result<()> {
    if payments.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE payments SET status = 'CAPTURED', updated_at = now() \
         WHERE payment_id = ANY($1) AND status = 'AUTHORIZED'",
    )
    .bind(payments)
    .execute(pool)
    .await
    .context("recording captures")?;
    Ok(())
}

/// Payments that may hold money without an order: PENDING or AUTHORIZED, no order, older
/// than `before`. Locked (skipping rows another node is handling) until `tx` ends.
pub async fn lock_orphans(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    before: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<PaymentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE status IN ('PENDING', 'AUTHORIZED') AND order_id IS NULL \
         AND created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
    .context("finding orphaned payments")
}

/// Authorized payments whose order exists but whose capture never happened.
pub async fn lock_uncaptured(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    before: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<PaymentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE status = 'AUTHORIZED' AND order_id IS NOT NULL \
         AND updated_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
    .context("finding uncaptured payments")
}

pub async fn set_status_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    payment_id: Uuid,
    status: PaymentStatus,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE payments SET status = $2, updated_at = now() WHERE payment_id = $1")
        .bind(payment_id)
        .bind(status)
        .execute(&mut **tx)
        .await
        .context("updating a payment")?;
    Ok(())
}
