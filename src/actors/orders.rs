//! The shapes of an order: the one a checkout writes (built from the hold it pays for),
//! and the view a buyer is shown, fresh from a checkout or read back from Postgres. Plain
//! functions and reads; the engine calls them for checkouts, the order handlers to read
//! orders back (without going through the engine).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::orders::{OrderStatus, TicketStatus};
use crate::persistence::orders::{self, NewItem, NewOrder, NewTicket, OrderRow, TicketRow};
use crate::views::{HoldView, OrderView, TicketView};

/// A new ticket's QR token: 128 random bits.
pub fn qr_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub fn new_order(
    hold: &HoldView,
    epoch: i64,
    idempotency_key: &str,
    payment_id: Uuid,
    gateway_ref: &str,
    now: DateTime<Utc>,
) -> NewOrder {
    let mut items: Vec<NewItem> = hold
        .seats
        .iter()
        .map(|s| NewItem {
            item_id: Uuid::new_v4(),
            section_id: s.section_id,
            seat_id: Some(s.seat_id),
            tier_id: None,
            quantity: 1,
            unit_price_cents: s.price_cents,
            tickets: vec![NewTicket {
                ticket_id: Uuid::new_v4(),
                qr_token: qr_token(),
            }],
        })
        .collect();
    if let Some(tier) = &hold.tier {
        items.push(NewItem {
            item_id: Uuid::new_v4(),
            section_id: tier.section_id,
            seat_id: None,
            tier_id: Some(tier.tier_id),
            quantity: i32::try_from(tier.quantity).unwrap_or(i32::MAX),
            unit_price_cents: tier.price_cents,
            tickets: (0..tier.quantity)
                .map(|_| NewTicket {
                    ticket_id: Uuid::new_v4(),
                    qr_token: qr_token(),
                })
                .collect(),
        });
    }
    NewOrder {
        order_id: Uuid::new_v4(),
        event_id: hold.event_id,
        buyer_id: hold.buyer_id,
        hold_id: hold.hold_id,
        epoch,
        payment_id,
        gateway_ref: gateway_ref.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        currency: hold.currency.clone(),
        total_cents: hold.total_cents,
        // To the microsecond, as Postgres keeps it: the answer and a later read agree.
        confirmed_at: chrono::SubsecRound::trunc_subsecs(now, 6),
        items,
    }
}

/// The order just written, as its buyer sees it.
pub fn view_of_new(order: &NewOrder, hold: &HoldView) -> OrderView {
    let mut tickets = Vec::new();
    for item in &order.items {
        let label = match (item.seat_id, &hold.tier) {
            (Some(seat_id), _) => hold
                .seats
                .iter()
                .find(|s| s.seat_id == seat_id)
                .map(|s| s.label.clone()),
            (None, Some(tier)) => Some(tier.name.clone()),
            (None, None) => None,
        }
        .unwrap_or_default();
        // As a read of the order lists them (`tickets_of_orders`): a tier's tickets by id.
        let mut item_tickets: Vec<&NewTicket> = item.tickets.iter().collect();
        item_tickets.sort_by_key(|t| t.ticket_id);
        for ticket in item_tickets {
            tickets.push(TicketView {
                ticket_id: ticket.ticket_id,
                section_id: item.section_id,
                seat_id: item.seat_id,
                tier_id: item.tier_id,
                label: label.clone(),
                price_cents: item.unit_price_cents,
                qr_token: ticket.qr_token.clone(),
                status: TicketStatus::Valid,
            });
        }
    }
    OrderView {
        order_id: order.order_id,
        event_id: order.event_id,
        event_title: String::new(),
        hold_id: Some(order.hold_id),
        status: OrderStatus::Confirmed,
        total_cents: order.total_cents,
        refunded_cents: 0,
        currency: order.currency.clone(),
        created_at: order.confirmed_at,
        confirmed_at: Some(order.confirmed_at),
        tickets,
        buyer_id: order.buyer_id,
    }
}

/// A stored ticket as its holder sees it.
pub fn ticket_view(t: &TicketRow) -> TicketView {
    TicketView {
        ticket_id: t.ticket_id,
        section_id: t.section_id,
        seat_id: t.seat_id,
        tier_id: t.tier_id,
        label: t.label(),
        price_cents: t.unit_price_cents,
        qr_token: t.qr_token.clone(),
        status: t.status,
    }
}

pub fn view_of_row(order: OrderRow, tickets: &[TicketRow]) -> OrderView {
    OrderView {
        tickets: tickets
            .iter()
            .filter(|t| t.order_id == order.order_id)
            .map(ticket_view)
            .collect(),
        order_id: order.order_id,
        event_id: order.event_id,
        event_title: order.event_title,
        hold_id: order.hold_id,
        status: order.status,
        total_cents: order.total_cents,
        refunded_cents: order.refunded_cents,
        currency: order.currency.trim().to_owned(),
        created_at: order.created_at,
        confirmed_at: order.confirmed_at,
        buyer_id: order.buyer_id,
    }
}

/// An order with its tickets, from Postgres.
pub async fn read_order(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Option<OrderView>> {
    match orders::find_order(pool, order_id).await? {
        Some(order) => Ok(Some(with_tickets(pool, order).await?)),
        None => Ok(None),
    }
}

/// A buyer's orders, newest first, with their tickets.
pub async fn read_orders_of(pool: &PgPool, buyer_id: Uuid) -> anyhow::Result<Vec<OrderView>> {
    let rows = orders::orders_of_buyer(pool, buyer_id).await?;
    let ids: Vec<Uuid> = rows.iter().map(|o| o.order_id).collect();
    let tickets = orders::tickets_of_orders(pool, &ids).await?;
    Ok(rows.into_iter().map(|o| view_of_row(o, &tickets)).collect())
}

/// An order row as its buyer sees it, its tickets read.
pub async fn with_tickets(pool: &PgPool, order: OrderRow) -> anyhow::Result<OrderView> {
    let tickets = orders::tickets_of_orders(pool, &[order.order_id]).await?;
    Ok(view_of_row(order, &tickets))
}
