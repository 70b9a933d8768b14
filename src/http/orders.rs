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
