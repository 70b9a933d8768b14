//! Buyer endpoints for orders and tickets. An order is shown to its buyer only.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::actors::orders::{read_order, read_orders_of};
use crate::views::OrderView;

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderView>,
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

/// How soon the same order's tickets may be sent again.
const RESEND_EVERY_MINUTES: i64 = 5;

/// Sends the order's confirmation with its tickets (QR codes and the PDF) again, to the
/// buyer's address; at most once every five minutes per order.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/resend", tag = "checkout", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)),
    responses((status = 202), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "resent_recently, order_not_live (refunded or cancelled)", body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn resend(
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
    use crate::domain::orders::OrderStatus;
    if !matches!(
        order.status,
        OrderStatus::Confirmed | OrderStatus::PartiallyRefunded
    ) {
        return Err(ApiError::conflict(
            "order_not_live",
            "the order has no tickets to send",
        ));
    }
    let now = state.now();
    let written = sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, created_at) \
         SELECT 'order', $1, 'order.resend', jsonb_build_object('order_id', $1::uuid, 'event_id', $2::uuid, 'buyer_id', $3::uuid), $4 \
         WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE aggregate_id = $1 AND kind = 'order.resend' AND created_at > $5)",
    )
    .bind(order.order_id)
    .bind(order.event_id)
    .bind(order.buyer_id)
    .bind(now)
    .bind(now - chrono::Duration::minutes(RESEND_EVERY_MINUTES))
    .execute(&state.pool)
    .await
    .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e).context("queueing a resend")))?
    .rows_affected();
    if written == 0 {
        return Err(ApiError::conflict(
            "resent_recently",
            format!("the tickets were sent less than {RESEND_EVERY_MINUTES} minutes ago"),
        ));
    }
    Ok(HttpResponse::Accepted().finish())
}
