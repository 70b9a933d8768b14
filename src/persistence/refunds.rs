//! Refunds in Postgres: what an order has to refund, a refund begun (its tickets claimed, so
//! two refunds can never both take one), completed (tickets CANCELLED with a REFUNDED
//! ledger entry, counts and statuses moved, the buyer's notice in the outbox, the seats
//! back to the on-sale's owner through its inbox — all in one transaction) or failed.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::inbox;
use crate::domain::event::EventStatus;
use crate::domain::holds::Note;
use crate::domain::orders::{OrderStatus, TicketStatus};
use crate::domain::refunds::RefundPolicy;

/// An order as a refund needs it: its money, its payment and its event's policy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefundContext {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub buyer_id: Uuid,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub refunded_cents: i64,
    pub currency: String,
    pub payment_id: Option<Uuid>,
    pub gateway_ref: Option<String>,
    pub payment_status: Option<String>,
    pub organizer_id: Uuid,
    pub start_time: DateTime<Utc>,
    pub event_status: EventStatus,
    pub refund_hours_before: Option<i32>,
    pub refund_fee_cents: i64,
    pub refund_fee_basis_points: i32,
}

impl RefundContext {
    pub fn policy(&self) -> RefundPolicy {
        RefundPolicy {
            hours_before: self.refund_hours_before.and_then(|h| u32::try_from(h).ok()),
            fee_cents: self.refund_fee_cents,
            fee_basis_points: u32::try_from(self.refund_fee_basis_points).unwrap_or(0),
        }
    }
}

/// A ticket of the order, as a refund sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderTicket {
    pub ticket_id: Uuid,
    pub status: TicketStatus,
    pub holder_id: Option<Uuid>,
    pub unit_price_cents: i64,
    /// Claimed by a refund (pending, or done).
    pub in_refund: bool,
}

/// The order and its tickets (transferred ones included), or `None`.
pub async fn context(
    pool: &PgPool,
    order_id: Uuid,
) -> anyhow::Result<Option<(RefundContext, Vec<OrderTicket>)>> {
    let order: Option<RefundContext> = sqlx::query_as(
        "SELECT o.order_id, o.event_id, o.buyer_id, o.status, o.total_cents, o.refunded_cents, o.currency, \
                o.payment_id, p.gateway_ref, p.status AS payment_status, e.organizer_id, e.start_time, \
                e.status AS event_status, e.refund_hours_before, e.refund_fee_cents, e.refund_fee_basis_points \
         FROM orders o JOIN events e USING (event_id) LEFT JOIN payments p ON p.payment_id = o.payment_id \
         WHERE o.order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(pool)
    .await
    .context("loading an order to refund")?;
    let Some(order) = order else {
        return Ok(None);
    };
    let tickets = sqlx::query_as(
        "SELECT t.ticket_id, t.status, t.holder_id, i.unit_price_cents, \
                EXISTS (SELECT 1 FROM refund_tickets r WHERE r.ticket_id = t.ticket_id) AS in_refund \
         FROM tickets t JOIN order_items i ON i.item_id = t.order_item_id WHERE t.order_id = $1 \
         ORDER BY t.issued_at, t.ticket_id",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await
    .context("loading an order's tickets to refund")?;
    Ok(Some((order, tickets)))
}

/// Who asked for a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    Organizer,
    Buyer,
    EventCancelled,
}

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Initiator::Organizer => "ORGANIZER",
            Initiator::Buyer => "BUYER",
            Initiator::EventCancelled => "EVENT_CANCELLED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewRefund {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub event_id: Uuid,
    pub amount_cents: i64,
    pub fee_cents: i64,
    pub currency: String,
    pub initiated_by: Initiator,
    pub requested_by: Option<Uuid>,
    pub reason: String,
    pub idempotency_key: Option<String>,
    pub ticket_ids: Vec<Uuid>,
    pub now: DateTime<Utc>,
}

/// How beginning a refund went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    Started,
    /// A refund with this idempotency key exists: this one.
    Again(Uuid),
    /// A ticket is no longer live, or another refund has it.
    Busy,
}

/// Claims the tickets for a new PENDING refund, under the order's lock.
pub async fn begin(pool: &PgPool, refund: &NewRefund) -> anyhow::Result<Begun> {
    let mut tx = pool.begin().await.context("beginning a refund")?;
    sqlx::query("SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE")
        .bind(refund.order_id)
        .execute(&mut *tx)
        .await
        .context("locking an order to refund")?;
    if let Some(key) = &refund.idempotency_key {
        let again: Option<Uuid> = sqlx::query_scalar(
            "SELECT refund_id FROM refunds WHERE order_id = $1 AND idempotency_key = $2",
        )
        .bind(refund.order_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .context("looking for a refund by key")?;
        if let Some(refund_id) = again {
            return Ok(Begun::Again(refund_id));
        }
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets t WHERE t.ticket_id = ANY($1) AND t.order_id = $2 \
         AND t.status IN ('VALID', 'USED') \
         AND NOT EXISTS (SELECT 1 FROM refund_tickets r WHERE r.ticket_id = t.ticket_id)",
    )
    .bind(&refund.ticket_ids)
    .bind(refund.order_id)
    .fetch_one(&mut *tx)
    .await
    .context("checking the tickets to refund")?;
    if live != refund.ticket_ids.len() as i64 {
        return Ok(Begun::Busy);
    }
    sqlx::query(
        "INSERT INTO refunds (refund_id, order_id, payment_id, event_id, amount_cents, fee_cents, currency, status, \
                              initiated_by, requested_by, reason, idempotency_key, ticket_ids, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING', $8, $9, $10, $11, $12, $13)",
    )
    .bind(refund.refund_id)
    .bind(refund.order_id)
    .bind(refund.payment_id)
    .bind(refund.event_id)
    .bind(refund.amount_cents)
    .bind(refund.fee_cents)
    .bind(&refund.currency)
    .bind(refund.initiated_by.as_str())
    .bind(refund.requested_by)
    .bind(&refund.reason)
    .bind(&refund.idempotency_key)
    .bind(&refund.ticket_ids)
    .bind(refund.now)
    .execute(&mut *tx)
    .await
    .context("writing a refund")?;
    sqlx::query("INSERT INTO refund_tickets (ticket_id, refund_id) SELECT unnest($1::uuid[]), $2")
        .bind(&refund.ticket_ids)
        .bind(refund.refund_id)
        .execute(&mut *tx)
        .await
        .context("claiming the tickets of a refund")?;
    tx.commit().await.context("beginning a refund")?;
    Ok(Begun::Started)
}

/// A refund as the gateway is asked for it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefundRow {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub payment_id: Uuid,
    pub gateway_ref: Option<String>,
    pub payment_status: String,
    pub amount_cents: i64,
    pub fee_cents: i64,
    pub status: String,
    pub reason: String,
    pub requested_by: Option<Uuid>,
    pub last_error: Option<String>,
}

const REFUND_COLUMNS: &str = "r.refund_id, r.order_id, r.event_id, r.payment_id, p.gateway_ref, \
     p.status AS payment_status, r.amount_cents, r.fee_cents, r.status, r.reason, r.requested_by, r.last_error";

pub async fn find(pool: &PgPool, refund_id: Uuid) -> anyhow::Result<Option<RefundRow>> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds r JOIN payments p USING (payment_id) WHERE r.refund_id = $1"
    ))
    .bind(refund_id)
    .fetch_optional(pool)
    .await
    .context("loading a refund")
}

/// Refunds still PENDING since before `before` (the gateway's answer was lost, or the
/// server stopped while asking), oldest first.
pub async fn stale_pending(
    pool: &PgPool,
    before: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<RefundRow>> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds r JOIN payments p USING (payment_id) \
         WHERE r.status = 'PENDING' AND r.created_at < $1 ORDER BY r.created_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("finding pending refunds")
}

/// The payment was only authorized when the refund began; it is captured now.
pub async fn captured(pool: &PgPool, payment_id: Uuid) -> anyhow::Result<()> {
    sqlx::query("UPDATE payments SET status = 'CAPTURED', updated_at = now() WHERE payment_id = $1 AND status = 'AUTHORIZED'")
        .bind(payment_id)
        .execute(pool)
        .await
        .context("recording a capture")?;
    Ok(())
}

/// A PENDING refund as its completion reads it: order, event, payment, amount, tickets,
/// reason, who asked, and who began it.
type PendingRow = (
    Uuid,
    Uuid,
    Uuid,
    i64,
    Vec<Uuid>,
    String,
    Option<Uuid>,
    String,
);
/// A ticket a refund cancelled: its id, seat, tier and holder.
type CancelledRow = (Uuid, Option<Uuid>, Option<Uuid>, Option<String>);

/// The gateway paid: the refund's tickets are cancelled, the order and payment say so,
/// and the buyer and the on-sale's owner hear of it. `None` if it was completed already;
/// else whether the on-sale's owner has a note to take (seats came back to a sale).
pub async fn complete(
    pool: &PgPool,
    refund_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<bool>> {
    let mut tx = pool.begin().await.context("completing a refund")?;
    let refund: Option<PendingRow> =
        sqlx::query_as(
            "SELECT order_id, event_id, payment_id, amount_cents, ticket_ids, reason, requested_by, initiated_by \
             FROM refunds WHERE refund_id = $1 AND status = 'PENDING' FOR UPDATE",
        )
        .bind(refund_id)
        .fetch_optional(&mut *tx)
        .await
        .context("locking a refund")?;
    let Some((order_id, event_id, payment_id, amount, ticket_ids, reason, actor, initiated)) =
        refund
    else {
        return Ok(None);
    };
    let (buyer_id, currency, event_status): (Uuid, String, EventStatus) = sqlx::query_as(
        "SELECT o.buyer_id, o.currency, e.status FROM orders o JOIN events e USING (event_id) \
         WHERE o.order_id = $1 FOR UPDATE OF o",
    )
    .bind(order_id)
    .fetch_one(&mut *tx)
    .await
    .context("locking a refunded order")?;
    let cancelled: Vec<CancelledRow> = sqlx::query_as(
        "UPDATE tickets SET status = 'CANCELLED' WHERE ticket_id = ANY($1) AND status IN ('VALID', 'USED') \
         RETURNING ticket_id, seat_id, tier_id, COALESCE(holder_id::text, holder_email)",
    )
    .bind(&ticket_ids)
    .fetch_all(&mut *tx)
    .await
    .context("cancelling refunded tickets")?;
    let (ids, holders): (Vec<Uuid>, Vec<Option<String>>) = cancelled
        .iter()
        .map(|(id, _, _, h)| (*id, h.clone()))
        .unzip();
    sqlx::query(
        "INSERT INTO ticket_ledger (ticket_id, kind, at, actor_id, from_holder, reason) \
         SELECT t, 'REFUNDED', $3, $4, h, $5 FROM UNNEST($1::uuid[], $2::text[]) AS x(t, h)",
    )
    .bind(&ids)
    .bind(&holders)
    .bind(now)
    .bind(actor)
    .bind(&reason)
    .execute(&mut *tx)
    .await
    .context("writing the refund to the ticket ledger")?;
    let tiers: Vec<(Uuid, u32)> = crate::domain::holds::group_by(
        cancelled
            .iter()
            .filter_map(|(_, _, tier, _)| tier.map(|t| (t, ()))),
    )
    .into_iter()
    .map(|(tier, n)| (tier, n.len() as u32))
    .collect();
    for (tier, n) in &tiers {
        sqlx::query("UPDATE ticket_tiers SET sold_quantity = greatest(sold_quantity - $2, 0) WHERE tier_id = $1")
            .bind(tier)
            .bind(*n as i32)
            .execute(&mut *tx)
            .await
            .context("giving tier tickets back")?;
    }
    let status: String = sqlx::query_scalar(
        "UPDATE orders o SET refunded_cents = least(o.total_cents, o.refunded_cents + $2), \
           status = CASE WHEN EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.order_id AND t.status IN ('VALID', 'USED')) \
                    THEN 'PARTIALLY_REFUNDED' ELSE 'REFUNDED' END \
         WHERE o.order_id = $1 RETURNING o.status",
    )
    .bind(order_id)
    .bind(amount)
    .fetch_one(&mut *tx)
    .await
    .context("recording a refund on its order")?;
    sqlx::query("UPDATE payments SET status = $2, updated_at = now() WHERE payment_id = $1")
        .bind(payment_id)
        .bind(&status)
        .execute(&mut *tx)
        .await
        .context("recording a refund on its payment")?;
    sqlx::query("UPDATE refunds SET status = 'SUCCEEDED', completed_at = $2, attempts = attempts + 1 WHERE refund_id = $1")
        .bind(refund_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("completing a refund")?;
    let payload = serde_json::json!({
        "order_id": order_id,
        "event_id": event_id,
        "refund_id": refund_id,
        "buyer_id": buyer_id,
        "amount_cents": amount,
        "currency": currency.trim(),
        "ticket_ids": ids,
        "order_status": status,
        "reason": reason,
        "initiated_by": initiated,
    });
    sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, created_at) VALUES ('order', $1, 'order.refunded', $2, $3)",
    )
    .bind(order_id)
    .bind(payload)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("writing the refund notice")?;
    let seats: Vec<Uuid> = cancelled
        .iter()
        .filter_map(|(_, seat, _, _)| *seat)
        .collect();
    let on_sale = matches!(
        event_status,
        EventStatus::Published | EventStatus::OnSale | EventStatus::SoldOut
    );
    let noted = on_sale && (!seats.is_empty() || !tiers.is_empty());
    if noted {
        let note = Note::Returned {
            buyer_id,
            seats,
            tiers,
        };
        inbox::post(&mut tx, event_id, &note).await?;
    }
    tx.commit().await.context("completing a refund")?;
    Ok(Some(noted))
}

/// The PENDING refunds of an order.
pub async fn pending_of(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Vec<RefundRow>> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds r JOIN payments p USING (payment_id) \
         WHERE r.order_id = $1 AND r.status = 'PENDING'"
    ))
    .bind(order_id)
    .fetch_all(pool)
    .await
    .context("finding an order's pending refunds")
}

/// The gateway refused: the refund failed, and its tickets are free to be refunded again.
pub async fn fail(
    pool: &PgPool,
    refund_id: Uuid,
    error: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("failing a refund")?;
    sqlx::query(
        "UPDATE refunds SET status = 'FAILED', last_error = $2, completed_at = $3, attempts = attempts + 1 \
         WHERE refund_id = $1 AND status = 'PENDING'",
    )
    .bind(refund_id)
    .bind(error)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("failing a refund")?;
    sqlx::query("DELETE FROM refund_tickets WHERE refund_id = $1")
        .bind(refund_id)
        .execute(&mut *tx)
        .await
        .context("letting go of a failed refund's tickets")?;
    tx.commit().await.context("failing a refund")?;
    Ok(())
}

/// The gateway did not answer: the refund stays PENDING, to be asked again with its key.
pub async fn attempted(pool: &PgPool, refund_id: Uuid, error: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE refunds SET attempts = attempts + 1, last_error = $2 WHERE refund_id = $1")
        .bind(refund_id)
        .bind(error)
        .execute(pool)
        .await
        .context("recording a refund attempt")?;
    Ok(())
}
