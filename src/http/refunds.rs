//! Refunds: an order refunded by its event's organizer or cancelled by its buyer inside the
//! refund policy, the policy itself, and a cancelled event's refund progress.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{json, Did, Trail};
use super::auth::{Caller, Organizer};
use super::error::{ApiError, ErrorBody};
use super::events::owned;
use super::extract::Json;
use super::AppState;
use crate::domain::refunds::{RefundPolicy, RefundPolicyBody, REASON_MAX};
use crate::domain::validation::text;
use crate::domain::FieldErrors;
use crate::persistence::{events, refunds};
use crate::refunds::{RefundAsk, RefundError, Refunded};

/// Most tickets one refund request may name.
const MAX_TICKETS: usize = 100;
const MAX_KEY_LEN: usize = 200;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Some tickets of the order (1 to 100); absent: every ticket it has left.
    #[schema(min_items = 1, max_items = 100)]
    pub ticket_ids: Option<Vec<Uuid>>,
    /// Why (1 to 500 characters): shown to the buyer and kept in each ticket's history.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S", format = "text")]
    pub reason: String,
}

/// Refunds an order, or some of its tickets, through the payment gateway. The event's
/// organizer may refund any order of it; the buyer may cancel their own tickets inside the
/// event's refund policy (less its fee). The refunded tickets turn `CANCELLED`, the order
/// `REFUNDED` or `PARTIALLY_REFUNDED`, and their seats are on sale again at once (the
/// waitlist first). Retried (the same `Idempotency-Key`, or tickets refunded already), it
/// answers the order as it stands and pays nothing more. 202 while the gateway has not
/// answered: the refund is asked again until it does.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/refund", tag = "checkout", security(("bearer" = [])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "makes a retried request answer the first one's refund (1 to 200 characters)", max_length = 200)),
    request_body = RefundBody,
    responses((status = 200, body = Refunded), (status = 202, description = "the gateway has not answered yet; the refund is retried", body = Refunded),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "refund_not_allowed (outside the refund policy, with `policy`; a used or transferred ticket), refund_in_progress", body = ErrorBody),
              (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 502, description = "refund_failed: the gateway refused; nothing was refunded", body = ErrorBody)))]
#[tracing::instrument(skip(state, req, body))]
pub async fn refund(
    state: web::Data<AppState>,
    caller: Caller,
    trail: Trail,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: Json<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = FieldErrors::new();
    let reason = errors.take("reason", text(&body.reason, REASON_MAX));
    if let Some(ids) = &body.ticket_ids {
        errors.check(
            (1..=MAX_TICKETS).contains(&ids.len()),
            "ticket_ids",
            "must name 1 to 100 tickets",
        );
    }
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value.to_str().ok().map(str::trim).unwrap_or_default();
            errors.check(
                !key.is_empty() && key.len() <= MAX_KEY_LEN,
                "Idempotency-Key",
                "must be 1 to 200 characters",
            );
            Some(key.to_owned())
        }
    };
    let reason = errors.finish(reason)?.unwrap_or_default();
    let ask = RefundAsk {
        order_id: *path,
        caller: Some(caller.user_id),
        ticket_ids: body.ticket_ids,
        reason,
        idempotency_key: key,
    };
    let order_id = *path;
    match state.refunds.refund(ask).await {
        Ok(done) => {
            let pending = done.refund.as_ref().is_some_and(|r| r.status == "PENDING");
            let status = if pending {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            if let Some(refund) = &done.refund {
                let owner = events::find_event(&state.pool, done.order.event_id)
                    .await?
                    .map(|e| e.organizer_id);
                let kind = match caller.role {
                    crate::domain::account::Role::Organizer => "ORGANIZER",
                    crate::domain::account::Role::Buyer => "BUYER",
                };
                let what = Did::on(
                    done.order.event_id,
                    "refund",
                    Some(refund.refund_id),
                    "order.refund_requested",
                )
                .changed(
                    None,
                    json(refund).map(|mut r| {
                        r["order_id"] = serde_json::json!(done.order.order_id);
                        r
                    }),
                );
                if let Some(owner) = owner {
                    trail
                        .record_for(&state, owner, caller.user_id, kind, what)
                        .await;
                }
            }
            Ok(HttpResponse::build(status).json(done))
        }
        Err(error) => Err(refusal(&state, order_id, error).await),
    }
}

async fn refusal(state: &AppState, order_id: Uuid, error: RefundError) -> ApiError {
    match error {
        RefundError::NotFound => ApiError::NotFound("no such order".into()),
        RefundError::NotAllowed(why) => {
            let policy = policy_of_order(state, order_id).await;
            let error = ApiError::conflict("refund_not_allowed", why);
            match policy {
                Some(policy) => error.with(
                    "policy",
                    serde_json::to_value(policy).unwrap_or(serde_json::Value::Null),
                ),
                None => error,
            }
        }
        RefundError::Invalid(field, why) => ApiError::invalid_field(field, why),
        RefundError::InProgress => ApiError::conflict(
            "refund_in_progress",
            "a refund of these tickets is under way; try again in a moment",
        ),
        RefundError::Failed(reason) => ApiError::coded(
            StatusCode::BAD_GATEWAY,
            "refund_failed",
            "the payment gateway refused the refund; nothing was refunded",
        )
        .with("reason", reason),
        RefundError::Unexpected(error) => ApiError::Unexpected(error),
    }
}

async fn policy_of_order(state: &AppState, order_id: Uuid) -> Option<PolicyView> {
    let (order, _) = refunds::context(&state.pool, order_id).await.ok()??;
    Some(PolicyView::of(order.policy(), order.start_time))
}

/// An event's refund policy, with the time buyers may cancel until.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// Buyers may cancel until this many hours before the start (`null`: they cannot).
    pub buyer_cancel_until_hours: Option<i64>,
    /// The fixed fee kept back from a buyer's cancellation, in minor units.
    pub fee_cents: i64,
    /// The share of the refund kept back, in percent.
    pub fee_percent: f64,
    /// Buyers may cancel until then (`null`: they cannot).
    pub buyers_may_cancel_until: Option<DateTime<Utc>>,
}

impl PolicyView {
    pub fn of(policy: RefundPolicy, start: DateTime<Utc>) -> PolicyView {
        let body = policy.body();
        PolicyView {
            buyer_cancel_until_hours: body.buyer_cancel_until_hours,
            fee_cents: body.fee_cents,
            fee_percent: body.fee_percent,
            buyers_may_cancel_until: policy.buyer_deadline(start),
        }
    }
}

/// Sets the event's refund policy: until how many hours before the start buyers may
/// cancel their orders (`null`: never), and the fee kept back (cents and/or percent).
#[utoipa::path(put, path = "/api/v1/events/{event_id}/refund-policy", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = RefundPolicyBody,
    responses((status = 200, body = PolicyView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn set_policy(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<RefundPolicyBody>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let before = json(&PolicyView::of(event.refund_policy(), event.start_time));
    let policy = RefundPolicy::parse(&body.0)?;
    events::set_refund_policy(&state.pool, event.event_id, &policy).await?;
    let after = PolicyView::of(policy, event.start_time);
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(
                event.event_id,
                "refund_policy",
                None,
                "event.refund_policy_set",
            )
            .changed(before, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
}

/// The event's refund policy (public: buyers read it before they buy).
#[utoipa::path(get, path = "/api/v1/events/{event_id}/refund-policy", tag = "catalog",
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = PolicyView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get_policy(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = events::find_event(&state.pool, *path)
        .await?
        .filter(|e| e.status() != crate::domain::event::EventStatus::Draft)
        .ok_or_else(|| ApiError::NotFound("no such event".into()))?;
    Ok(HttpResponse::Ok().json(PolicyView::of(event.refund_policy(), event.start_time)))
}

/// A cancelled event's refunds, as they go.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationView {
    /// Orders to refund.
    pub orders: i64,
    pub refunded: i64,
    /// Orders the gateway refused to refund, after retries (to settle by hand).
    pub failed: i64,
    /// Every order is refunded or failed.
    pub done: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How the refunds of a cancelled event are going (the event's organizer).
#[utoipa::path(get, path = "/api/v1/events/{event_id}/cancellation", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = CancellationView), (status = 403, body = ErrorBody),
              (status = 404, description = "no such event, or it was not cancelled", body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn cancellation(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let progress = crate::persistence::cancellations::progress(&state.pool, event.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("the event was not cancelled".into()))?;
    Ok(HttpResponse::Ok().json(CancellationView {
        orders: progress.orders,
        refunded: progress.refunded,
        failed: progress.failed,
        done: progress.pending == 0,
        started_at: progress.started_at,
        finished_at: progress.finished_at,
    }))
}
