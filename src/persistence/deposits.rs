//! A booking's deposit, paid in two steps around the payment gateway: `begin` finds or
//! writes the attempt (one row per `Idempotency-Key`) under a lock on the booking, the
//! gateway is asked with a key made from that row, and `settle` writes the outcome and
//! confirms the booking in one transaction. A retry after a crash between the two finds
//! the PENDING row and asks the gateway again with the same key, which answers as the first
//! time: a deposit is never paid twice. A retry while the first request is still asking
//! (its row touched less than `in_flight` ago) is told the payment is under way instead, so
//! one attempt is never asked twice at once. While an attempt is PENDING the booking
//! neither lapses nor can be cancelled, so a captured deposit always finds it REQUESTED.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::booking::BookingStatus;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepositRow {
    pub deposit_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub decline_reason: Option<String>,
}

/// What an attempt to pay comes to before the gateway is asked.
pub enum Start {
    /// Ask the gateway (again, for a PENDING attempt whose request was lost).
    Pay(DepositRow),
    /// This key's attempt has its outcome already: answer it again.
    Done(DepositRow),
    /// This attempt or another is being paid right now.
    InProgress,
    /// Nothing to pay: the booking is confirmed or cancelled already.
    Closed(BookingStatus),
    /// The request lapsed before it was paid.
    Lapsed,
}

pub async fn begin(
    pool: &PgPool,
    booking_id: Uuid,
    key: &str,
    gateway: &str,
    now: DateTime<Utc>,
    in_flight: chrono::Duration,
) -> anyhow::Result<Start> {
    let mut tx = pool.begin().await.context("starting a deposit")?;
    let booking: Option<(BookingStatus, i64, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT status, deposit_cents, currency, requested_until FROM venue_bookings WHERE booking_id = $1 FOR UPDATE",
    )
    .bind(booking_id)
    .fetch_optional(&mut *tx)
    .await
    .context("locking a booking")?;
    let Some((status, amount, currency, requested_until)) = booking else {
        return Ok(Start::Closed(BookingStatus::Cancelled));
    };
    type Attempt = (DepositRow, DateTime<Utc>);
    let attempts: Vec<(String, Attempt)> = sqlx::query_as::<_, DepositRowWithKey>(
        "SELECT idempotency_key, deposit_id, amount_cents, currency, status, decline_reason, updated_at \
         FROM booking_deposits WHERE booking_id = $1",
    )
    .bind(booking_id)
    .fetch_all(&mut *tx)
    .await
    .context("reading a booking's deposits")?
    .into_iter()
    .map(|r| (r.idempotency_key.clone(), (r.row(), r.updated_at)))
    .collect();
    if let Some((_, (mine, touched))) = attempts.iter().find(|(k, _)| k == key) {
        if mine.status != "PENDING" {
            return Ok(Start::Done(mine.clone()));
        }
        if *touched > now - in_flight {
            return Ok(Start::InProgress);
        }
        // Its request was lost (a crash, a dropped connection): this one asks again.
        sqlx::query("UPDATE booking_deposits SET updated_at = $2 WHERE deposit_id = $1")
            .bind(mine.deposit_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("taking over a deposit attempt")?;
        tx.commit().await.context("committing a deposit attempt")?;
        return Ok(Start::Pay(mine.clone()));
    }
    if status != BookingStatus::Requested {
        return Ok(Start::Closed(status));
    }
    if requested_until.is_some_and(|t| t <= now) {
        return Ok(Start::Lapsed);
    }
    if attempts.iter().any(|(_, (d, _))| d.status == "PENDING") {
        return Ok(Start::InProgress);
    }
    let row = DepositRow {
        deposit_id: Uuid::new_v4(),
        amount_cents: amount,
        currency,
        status: "PENDING".into(),
        decline_reason: None,
    };
    sqlx::query(
        "INSERT INTO booking_deposits (deposit_id, booking_id, idempotency_key, gateway, amount_cents, currency, status, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', $7)",
    )
    .bind(row.deposit_id)
    .bind(booking_id)
    .bind(key)
    .bind(gateway)
    .bind(row.amount_cents)
    .bind(&row.currency)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("writing a deposit attempt")?;
    tx.commit().await.context("committing a deposit attempt")?;
    Ok(Start::Pay(row))
}

#[derive(sqlx::FromRow)]
struct DepositRowWithKey {
    idempotency_key: String,
    deposit_id: Uuid,
    amount_cents: i64,
    currency: String,
    status: String,
    decline_reason: Option<String>,
    updated_at: DateTime<Utc>,
}

impl DepositRowWithKey {
    fn row(&self) -> DepositRow {
        DepositRow {
            deposit_id: self.deposit_id,
            amount_cents: self.amount_cents,
            currency: self.currency.clone(),
            status: self.status.clone(),
            decline_reason: self.decline_reason.clone(),
        }
    }
}

/// The gateway's answer to an attempt.
pub enum Outcome<'a> {
    Captured { gateway_ref: &'a str },
    Declined { reason: &'a str },
    Failed,
}

/// Writes the attempt's outcome; a captured deposit confirms the booking in the same
/// transaction.
pub async fn settle(
    pool: &PgPool,
    booking_id: Uuid,
    deposit_id: Uuid,
    outcome: Outcome<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (status, reference, reason) = match outcome {
        Outcome::Captured { gateway_ref } => ("CAPTURED", Some(gateway_ref), None),
        Outcome::Declined { reason } => ("DECLINED", None, Some(reason)),
        Outcome::Failed => ("FAILED", None, None),
    };
    let mut tx = pool.begin().await.context("starting a deposit outcome")?;
    sqlx::query(
        "UPDATE booking_deposits SET status = $2, gateway_ref = COALESCE($3, gateway_ref), decline_reason = $4, \
         updated_at = now() WHERE deposit_id = $1 AND status = 'PENDING'",
    )
    .bind(deposit_id)
    .bind(status)
    .bind(reference)
    .bind(reason)
    .execute(&mut *tx)
    .await
    .context("writing a deposit outcome")?;
    if status == "CAPTURED" {
        sqlx::query(
            "UPDATE venue_bookings SET status = 'CONFIRMED', confirmed_at = $2, requested_until = NULL, \
             deposit_payment_id = $3 WHERE booking_id = $1 AND status = 'REQUESTED'",
        )
        .bind(booking_id)
        .bind(now)
        .bind(deposit_id)
        .execute(&mut *tx)
        .await
        .context("confirming a booking")?;
    }
    tx.commit().await.context("committing a deposit outcome")
}

/// Whether an attempt is being paid (the booking may not be cancelled meanwhile).
pub async fn pending(pool: &PgPool, booking_id: Uuid) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM booking_deposits WHERE booking_id = $1 AND status = 'PENDING')",
    )
    .bind(booking_id)
    .fetch_one(pool)
    .await
    .context("looking for a deposit being paid")
}
