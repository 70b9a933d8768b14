//! Buyer endpoints for orders and tickets. An order is shown to its buyer only.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::actors::orders::{read_order, read_orders_of};
use crate::views::{OrderView, TicketView};

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderView>,
}

#[derive(Serialize, ToSchema)]
pub struct MyTicket {
    pub event_id: Uuid,
    pub event_title: String,
    pub order_id: Uuid,
    #[serde(flatten)]
    pub ticket: TicketView,
}

#[derive(Serialize, ToSchema)]
pub struct TicketList {
    pub tickets: Vec<MyTicket>,
}

/// One of the caller's orders, with its tickets.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "checkout", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let order = read_order(&state.pool, *path)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no order {}", *path)))?;
    if order.buyer_id != caller.user_id {
        return Err(ApiError::Forbidden(
            "this order belongs to another buyer".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(order))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/me/orders", tag = "checkout", security(("bearer" = [])),
    responses((status = 200, body = OrderList), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(OrderList {
        orders: read_orders_of(&state.pool, caller.user_id).await?,
    }))
}

/// The caller's tickets across orders.
#[utoipa::path(get, path = "/api/v1/me/tickets", tag = "checkout", security(("bearer" = [])),
    responses((status = 200, body = TicketList), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn my_tickets(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let tickets = read_orders_of(&state.pool, caller.user_id)
        .await?
        .into_iter()
        .flat_map(|order| {
            let (event_id, event_title, order_id) =
                (order.event_id, order.event_title.clone(), order.order_id);
            order.tickets.into_iter().map(move |ticket| MyTicket {
                event_id,
                event_title: event_title.clone(),
                order_id,
                ticket,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(TicketList { tickets }))
}

/// A ticket's QR code, as an SVG image: what the door scanner reads (the ticket's
/// `qr_token`). The ticket's buyer only.
#[utoipa::path(get, path = "/api/v1/tickets/{ticket_id}/qr.svg", tag = "checkout", security(("bearer" = [])),
    params(("ticket_id" = Uuid, Path)),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn qr(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (buyer_id, token) = crate::persistence::orders::ticket_code(&state.pool, *path)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket {}", *path)))?;
    if buyer_id != caller.user_id {
        return Err(ApiError::Forbidden(
            "this ticket belongs to another buyer".into(),
        ));
    }
    let code = qrcode::QrCode::with_error_correction_level(token.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("QR code of a ticket: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "private, max-age=86400"))
        .body(svg))
}
