//! Orders, their items and tickets: written in batches (one transaction for many orders,
//! the order writer's group commit), read by their buyers.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::leases;
use crate::domain::orders::{OrderStatus, TicketStatus};

/// A confirmed order ready to be written, with its items and tickets.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub buyer_id: Uuid,
    pub hold_id: Uuid,
    /// The epoch of the lease the order was sold under: the write is refused unless it is
    /// still the on-sale's (fencing).
    pub epoch: i64,
    pub payment_id: Uuid,
    pub gateway_ref: String,
    pub idempotency_key: String,
    pub currency: String,
    pub total_cents: i64,
    /// When it was paid for, by the server's clock.
    pub confirmed_at: DateTime<Utc>,
    pub items: Vec<NewItem>,
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub item_id: Uuid,
    pub section_id: Uuid,
    pub seat_id: Option<Uuid>,
    pub tier_id: Option<Uuid>,
    pub quantity: i32,
    pub unit_price_cents: i64,
    /// One ticket per unit.
    pub tickets: Vec<NewTicket>,
}

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub ticket_id: Uuid,
    pub qr_token: String,
}

/// Writes every order of the batch, its items, tickets, tier counts, payment link and
/// outbox row, in one transaction: all of them, or (on any error) none.
///
/// Fencing: the transaction first locks the leases of the batch's events (`FOR SHARE`);
/// an order whose epoch is no longer its on-sale's (or whose lease `node` no longer holds)
/// is left out and its id returned, so a paused owner that wakes up never confirms a sale.
#[tracing::instrument(skip(pool, orders), fields(orders = orders.len()))]
pub async fn write_batch(
    pool: &PgPool,
    node: &str,
    orders: &[NewOrder],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut events: Vec<Uuid> = orders.iter().map(|o| o.event_id).collect();
    events.sort_unstable();
    events.dedup();
    let current = leases::lock_current(&mut *tx, node, &events).await?;
    let (orders, fenced): (Vec<&NewOrder>, Vec<&NewOrder>) = orders
        .iter()
        .partition(|o| current.contains(&(o.event_id, o.epoch)));
    let fenced: Vec<Uuid> = fenced.iter().map(|o| o.order_id).collect();
    if orders.is_empty() {
        tx.rollback().await?;
        return Ok(fenced);
    }
    let mut o_ids = Vec::new();
    let mut o_events = Vec::new();
    let mut o_buyers = Vec::new();
    let mut o_holds = Vec::new();
    let mut o_payments = Vec::new();
    let mut o_keys = Vec::new();
    let mut o_currencies = Vec::new();
    let mut o_totals = Vec::new();
    let mut o_confirmed = Vec::new();
    let mut p_refs = Vec::new();
    let (
        mut i_ids,
        mut i_orders,
        mut i_sections,
        mut i_seats,
        mut i_tiers,
        mut i_qty,
        mut i_prices,
    ) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (
        mut t_ids,
        mut t_orders,
        mut t_items,
        mut t_events,
        mut t_sections,
        mut t_seats,
        mut t_tiers,
        mut t_tokens,
    ) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut outbox = Vec::new();
    for order in &orders {
        o_ids.push(order.order_id);
        o_events.push(order.event_id);
        o_buyers.push(order.buyer_id);
        o_holds.push(order.hold_id);
        o_payments.push(order.payment_id);
        o_keys.push(order.idempotency_key.as_str());
        o_currencies.push(order.currency.as_str());
        o_totals.push(order.total_cents);
        o_confirmed.push(order.confirmed_at);
        p_refs.push(order.gateway_ref.as_str());
        outbox.push(serde_json::json!({
            "order_id": order.order_id, "event_id": order.event_id, "buyer_id": order.buyer_id,
            "total_cents": order.total_cents, "currency": order.currency,
            "tickets": order.items.iter().map(|i| i.tickets.len()).sum::<usize>(),
        }));
        for item in &order.items {
            i_ids.push(item.item_id);
            i_orders.push(order.order_id);
            i_sections.push(item.section_id);
            i_seats.push(item.seat_id);
            i_tiers.push(item.tier_id);
            i_qty.push(item.quantity);
            i_prices.push(item.unit_price_cents);
            for ticket in &item.tickets {
                t_ids.push(ticket.ticket_id);
                t_orders.push(order.order_id);
                t_items.push(item.item_id);
                t_events.push(order.event_id);
                t_sections.push(item.section_id);
                t_seats.push(item.seat_id);
                t_tiers.push(item.tier_id);
                t_tokens.push(ticket.qr_token.as_str());
            }
        }
    }

    sqlx::query(
        "INSERT INTO orders (order_id, event_id, buyer_id, hold_id, payment_id, idempotency_key, currency, total_cents, \
         status, created_at, confirmed_at) \
         SELECT o, e, b, h, p, k, c, t, 'CONFIRMED', a, a \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::int8[], $9::timestamptz[]) \
           AS x(o, e, b, h, p, k, c, t, a)",
    )
    .bind(&o_ids)
    .bind(&o_events)
    .bind(&o_buyers)
    .bind(&o_holds)
    .bind(&o_payments)
    .bind(&o_keys)
    .bind(&o_currencies)
    .bind(&o_totals)
    .bind(&o_confirmed)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO order_items (item_id, order_id, section_id, seat_id, tier_id, quantity, unit_price_cents, subtotal_cents) \
         SELECT i, o, s, st, t, q, p, p * q \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int4[], $7::int8[]) AS x(i, o, s, st, t, q, p)",
    )
    .bind(&i_ids)
    .bind(&i_orders)
    .bind(&i_sections)
    .bind(&i_seats)
    .bind(&i_tiers)
    .bind(&i_qty)
    .bind(&i_prices)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO tickets (ticket_id, order_id, order_item_id, event_id, section_id, seat_id, tier_id, qr_token, holder_id, issued_at) \
         SELECT x.*, o.buyer_id, o.confirmed_at \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::uuid[], $8::text[]) \
           AS x(t, o, i, e, s, st, tr, q) JOIN orders o ON o.order_id = x.o",
    )
    .bind(&t_ids)
    .bind(&t_orders)
    .bind(&t_items)
    .bind(&t_events)
    .bind(&t_sections)
    .bind(&t_seats)
    .bind(&t_tiers)
    .bind(&t_tokens)
    .execute(&mut *tx)
    .await?;
    // Every ticket's life starts in the ledger, in the same transaction.
    sqlx::query(
        "INSERT INTO ticket_ledger (ticket_id, kind, at, actor_id, to_holder) \
         SELECT t.ticket_id, 'ISSUED', t.issued_at, t.holder_id, t.holder_id::text \
         FROM tickets t WHERE t.ticket_id = ANY($1)",
    )
    .bind(&t_ids)
    .execute(&mut *tx)
    .await?;
    // Tier counts: the CHECK (sold_quantity <= quantity) refuses an oversold tier.
    sqlx::query(
        "UPDATE ticket_tiers t SET sold_quantity = t.sold_quantity + x.q \
         FROM (SELECT tier, sum(q)::int4 AS q FROM UNNEST($1::uuid[], $2::int4[]) AS u(tier, q) \
               WHERE tier IS NOT NULL GROUP BY tier) x WHERE t.tier_id = x.tier",
    )
    .bind(&i_tiers)
    .bind(&i_qty)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE payments p SET order_id = x.o, status = 'AUTHORIZED', gateway_ref = x.r, updated_at = now() \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS x(pid, o, r) WHERE p.payment_id = x.pid",
    )
    .bind(&o_payments)
    .bind(&o_ids)
    .bind(&p_refs)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload) \
         SELECT 'order', o, 'order.confirmed', p FROM UNNEST($1::uuid[], $2::jsonb[]) AS x(o, p)",
    )
    .bind(&o_ids)
    .bind(&outbox)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(fenced)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub buyer_id: Uuid,
    pub hold_id: Option<Uuid>,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub event_title: String,
    pub refunded_cents: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketRow {
    pub ticket_id: Uuid,
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub section_id: Uuid,
    pub section_name: String,
    pub seat_id: Option<Uuid>,
    pub row_label: Option<String>,
    pub seat_number: Option<i32>,
    pub tier_id: Option<Uuid>,
    pub tier_name: Option<String>,
    pub qr_token: String,
    pub status: TicketStatus,
    pub unit_price_cents: i64,
}

impl TicketRow {
    pub fn label(&self) -> String {
        crate::domain::venue::ticket_label(
            &self.section_name,
            self.row_label.as_deref(),
            self.seat_number,
            self.tier_name.as_deref(),
        )
    }
}

const ORDER_COLUMNS: &str =
    "o.order_id, o.event_id, o.buyer_id, o.hold_id, o.status, o.total_cents, o.currency, \
     o.created_at, o.confirmed_at, e.title AS event_title, o.refunded_cents";

pub const TICKET_QUERY: &str = "SELECT t.ticket_id, t.order_id, t.event_id, t.section_id, s.name AS section_name, t.seat_id, \
     st.row_label, st.seat_number, t.tier_id, tt.name AS tier_name, t.qr_token, t.status, i.unit_price_cents \
     FROM tickets t JOIN sections s ON s.section_id = t.section_id JOIN order_items i ON i.item_id = t.order_item_id \
     LEFT JOIN seats st ON st.seat_id = t.seat_id LEFT JOIN ticket_tiers tt ON tt.tier_id = t.tier_id";

#[tracing::instrument(skip(pool))]
pub async fn find_order(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Option<OrderRow>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders o JOIN events e USING (event_id) WHERE o.order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(pool)
    .await
    .context("loading an order")
}

/// The confirmed order a buyer's checkout with this key produced, if any.
#[tracing::instrument(skip(pool, idempotency_key))]
pub async fn find_by_key(
    pool: &PgPool,
    buyer_id: Uuid,
    idempotency_key: &str,
) -> anyhow::Result<Option<OrderRow>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders o JOIN events e USING (event_id) WHERE o.buyer_id = $1 AND o.idempotency_key = $2"
    ))
    .bind(buyer_id)
    .bind(idempotency_key)
    .fetch_optional(pool)
    .await
    .context("loading an order by key")
}

/// Which of these holds became an order.
#[tracing::instrument(skip_all, fields(holds = holds.len()))]
pub async fn holds_with_orders(
    pool: &PgPool,
    holds: &[Uuid],
) -> anyhow::Result<std::collections::HashSet<Uuid>> {
    let found: Vec<Uuid> = sqlx::query_scalar(
        "SELECT hold_id FROM orders WHERE hold_id = ANY($1) AND hold_id IS NOT NULL AND status IN ('CONFIRMED', 'PARTIALLY_REFUNDED', 'REFUNDED')",
    )
    .bind(holds)
    .fetch_all(pool)
    .await
    .context("finding the orders of restored holds")?;
    Ok(found.into_iter().collect())
}

/// The confirmed order of a hold, if any.
#[tracing::instrument(skip(pool))]
pub async fn find_by_hold(pool: &PgPool, hold_id: Uuid) -> anyhow::Result<Option<OrderRow>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders o JOIN events e USING (event_id) WHERE o.hold_id = $1 AND o.status IN ('CONFIRMED', 'PARTIALLY_REFUNDED', 'REFUNDED')"
    ))
    .bind(hold_id)
    .fetch_optional(pool)
    .await
    .context("loading an order by hold")
}

#[tracing::instrument(skip(pool))]
pub async fn orders_of_buyer(pool: &PgPool, buyer_id: Uuid) -> anyhow::Result<Vec<OrderRow>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders o JOIN events e USING (event_id) WHERE o.buyer_id = $1 \
         ORDER BY o.created_at DESC, o.order_id LIMIT 500"
    ))
    .bind(buyer_id)
    .fetch_all(pool)
    .await
    .context("listing a buyer's orders")
}

#[tracing::instrument(skip(pool))]
pub async fn tickets_of_orders(
    pool: &PgPool,
    order_ids: &[Uuid],
) -> anyhow::Result<Vec<TicketRow>> {
    sqlx::query_as(&format!(
        "{TICKET_QUERY} WHERE t.order_id = ANY($1) AND t.transferred_from IS NULL ORDER BY s.position, st.position, t.ticket_id"
    ))
    .bind(order_ids)
    .fetch_all(pool)
    .await
    .context("loading tickets")
}

/// A ticket's buyer and QR token.
#[tracing::instrument(skip(pool))]
pub async fn ticket_code(pool: &PgPool, ticket_id: Uuid) -> anyhow::Result<Option<(Uuid, String)>> {
    sqlx::query_as(
        "SELECT o.buyer_id, t.qr_token FROM tickets t JOIN orders o ON o.order_id = t.order_id WHERE t.ticket_id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(pool)
    .await
    .context("loading a ticket's code")
}
