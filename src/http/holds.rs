//! Buyer endpoints for holds and checkout.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Buyer;
use super::catalog::visible_event;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::queue::admission_token;
use super::AppState;
use crate::domain::holds::HoldRequest;
use crate::domain::FieldErrors;
use crate::views::{HoldView, OrderView};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BestAvailableRequest {
    /// A seated section; any section on sale (dearest first) when absent.
    pub section_id: Option<Uuid>,
    /// Only sections at this price (the seat map's price levels).
    #[schema(minimum = 0)]
    pub price_cents: Option<i64>,
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub quantity: i64,
}

/// Exactly one of `seat_ids`, `best_available`, or `tier_id` with `quantity`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"best_available": {"quantity": 2}}))]
pub struct HoldBody {
    pub seat_ids: Option<Vec<Uuid>>,
    pub best_available: Option<BestAvailableRequest>,
    pub tier_id: Option<Uuid>,
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub quantity: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// The tokenized card: `tok_ok`, `tok_decline`, `tok_fail`, `tok_timeout` with the
    /// simulated processor.
    #[schema(format = "token", max_length = 200, example = "tok_ok")]
    pub payment_token: String,
}

fn count(field: &str, value: i64) -> Result<u32, ApiError> {
    u32::try_from(value)
        .ok()
        .filter(|q| *q > 0)
        .ok_or_else(|| ApiError::invalid_field(field, "must be a positive number"))
}

fn request(body: HoldBody) -> Result<HoldRequest, ApiError> {
    match (
        body.seat_ids,
        body.best_available,
        body.tier_id,
        body.quantity,
    ) {
        (Some(seat_ids), None, None, None) => Ok(HoldRequest::Seats(seat_ids)),
        (None, Some(best), None, None) => Ok(HoldRequest::BestAvailable {
            section_id: best.section_id,
            price_cents: best.price_cents,
            quantity: count("best_available.quantity", best.quantity)?,
        }),
        (None, None, Some(tier_id), Some(quantity)) => Ok(HoldRequest::Tier {
            tier_id,
            quantity: count("quantity", quantity)?,
        }),
        (None, None, Some(_), None) => Err(ApiError::invalid_field(
            "quantity",
            "a tier hold needs a quantity",
        )),
        _ => Err(ApiError::invalid(FieldErrors::single(
            "body",
            "give exactly one of seat_ids, best_available, or tier_id with quantity",
        ))),
    }
}

/// Holds seats (exact, or best available together) or GA tickets, all or nothing.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/holds", tag = "checkout", security(("bearer" = [])),
    params(("event_id" = Uuid, Path),
           ("X-Admission-Token" = Option<String>, Header, description = "required when the on-sale has a waiting room")),
    request_body = HoldBody,
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 201, body = HoldView), (status = 401, description = "unauthorized, admission_required", body = ErrorBody),
              (status = 403, description = "admission_invalid (with reason), role_not_allowed (not a buyer account)", body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, description = "rate_limited", body = ErrorBody),
              (status = 409, description = "seat_unavailable, sold_out, sale_not_open, too_many_holds", body = ErrorBody),
              (status = 422, description = "validation_failed, max_per_order_exceeded", body = ErrorBody)))]
#[tracing::instrument(skip(state, req, body))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Buyer(caller): Buyer,
    path: web::Path<Uuid>,
    body: Json<HoldBody>,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.check(&req, caller.user_id)?;
    let request = request(body.0)?;
    let hold = state
        .sale()
        .hold(*path, caller.user_id, request, admission_token(&req))
        .await?;
    Ok(HttpResponse::Created().json(hold))
}

/// The caller's hold, with its deadline.
#[utoipa::path(get, path = "/api/v1/holds/{hold_id}", tag = "checkout", security(("bearer" = [])),
    params(("hold_id" = Uuid, Path)),
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 200, body = HoldView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "hold_expired, hold_purchased", body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get(
    state: web::Data<AppState>,
    Buyer(caller): Buyer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.engine.get_hold(*path, caller.user_id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MineQuery {
    /// The event whose holds to list.
    pub event_id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct HoldList {
    /// Live holds (`HELD` or `PAYMENT_PENDING`), soonest deadline first.
    pub holds: Vec<HoldView>,
}

/// The caller's live holds in an event, with their deadlines: what a page that was
/// reloaded (or opened in another tab) shows and counts down.
#[utoipa::path(get, path = "/api/v1/me/holds", tag = "checkout", security(("bearer" = [])),
    params(MineQuery),
    responses((status = 200, body = HoldList), (status = 404, description = "no such event", body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn mine(
    state: web::Data<AppState>,
    Buyer(caller): Buyer,
    query: web::Query<MineQuery>,
) -> Result<HttpResponse, ApiError> {
    let event = visible_event(
        &state,
        super::auth::MaybeCaller(Some(caller)),
        query.event_id,
    )
    .await?;
    let holds = state
        .engine
        .buyer_holds(event.event_id, caller.user_id)
        .await?;
    Ok(HttpResponse::Ok().json(HoldList { holds }))
}

/// Lets go of a hold: its seats go back on sale at once.
#[utoipa::path(delete, path = "/api/v1/holds/{hold_id}", tag = "checkout", security(("bearer" = [])),
    params(("hold_id" = Uuid, Path)),
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "checkout_in_progress, hold_expired", body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn release(
    state: web::Data<AppState>,
    Buyer(caller): Buyer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.engine.release_hold(*path, caller.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

const MAX_KEY_LEN: usize = 200;

/// The request's `Idempotency-Key` header (1 to 200 characters), required.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<&str, ApiError> {
    req.headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| k.len() <= MAX_KEY_LEN)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::malformed(
                "an Idempotency-Key header (1 to 200 characters) is required",
                [("Idempotency-Key".to_owned(), "required".to_owned())].into(),
            )
        })
}

/// Pays for a hold: the order and its tickets, or a clear refusal. Needs an
/// `Idempotency-Key` header: a retry with the same key returns the same order and never
/// charges twice.
#[utoipa::path(post, path = "/api/v1/holds/{hold_id}/checkout", tag = "checkout", security(("bearer" = [])),
    params(("hold_id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "unique per purchase attempt (1 to 200 characters)", pattern = r"\S", max_length = 200),
           ("X-Admission-Token" = Option<String>, Header, description = "required when the on-sale has a waiting room")),
    request_body = CheckoutBody,
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry. payment_unavailable (with Retry-After, retryable): the card processor is degraded, nothing was asked, the hold is kept (and given more time once). orders_busy (with Retry-After): the order writer is saturated, nothing charged, the hold kept", body = ErrorBody), (status = 201, body = OrderView), (status = 402, description = "payment_declined", body = ErrorBody),
              (status = 401, description = "unauthorized, admission_required", body = ErrorBody),
              (status = 403, description = "admission_invalid (with reason), role_not_allowed (not a buyer account)", body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "hold_expired, checkout_in_progress, hold_purchased", body = ErrorBody),
              (status = 502, description = "payment_failed", body = ErrorBody)))]
#[tracing::instrument(skip(state, req, body))]
pub async fn checkout(
    state: web::Data<AppState>,
    Buyer(caller): Buyer,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: Json<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let token = body.0.payment_token.trim().to_owned();
    if token.is_empty() || body.0.payment_token.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            "payment_token",
            "must be 1 to 200 characters",
        ));
    }
    let order = state
        .sale()
        .checkout(*path, caller.user_id, key, &token, admission_token(&req))
        .await?;
    Ok(HttpResponse::Created().json(order))
}
