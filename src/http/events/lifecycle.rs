//! An event's lifecycle moves an organizer makes: publishing a ready draft (prices, an
//! on-sale, a confirmed venue booking) and cancelling (every order refunded by a job).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{owned, recorded};
use crate::cluster::invalidate::{self, Change};
use crate::domain::booking::BookingStatus;
use crate::domain::event::{self, EventStatus};
use crate::http::audit::{json, Trail};
use crate::http::auth::Organizer;
use crate::http::catalog::{detail, EventDetail};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::persistence::bookings;
use crate::persistence::events as store;

/// DRAFT → PUBLISHED: the event enters the catalog. It needs prices and an on-sale.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/publish", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = EventDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "not a draft, or not ready", body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn publish(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let before = json(&detail(&state, event.clone()).await?);
    let status = event.status();
    if !status.can_become(EventStatus::Published) {
        return Err(invalid_transition(status, EventStatus::Published));
    }
    let priced = !store::section_prices(&state.pool, event.event_id)
        .await?
        .is_empty()
        || !store::tiers(&state.pool, event.event_id).await?.is_empty();
    let scheduled = store::find_onsale(&state.pool, event.event_id)
        .await?
        .is_some();
    let booked = bookings::for_event(&state.pool, event.event_id)
        .await?
        .is_some_and(|b| b.status == BookingStatus::Confirmed);
    let missing =
        event::missing_for_publication(priced, scheduled, booked, event.start_time, state.now());
    if !missing.is_empty() {
        let mut error = ApiError::conflict(
            "event_not_ready",
            format!("the event needs {}", missing.join(" and ")),
        );
        if let ApiError::Conflict { details, .. } = &mut error {
            details.insert("missing".into(), serde_json::json!(missing));
        }
        return Err(error);
    }
    if !store::transition(
        &state.pool,
        event.event_id,
        &[EventStatus::Draft],
        EventStatus::Published,
    )
    .await?
    {
        return Err(ApiError::conflict(
            "invalid_transition",
            "the event changed status meanwhile; reload it",
        ));
    }
    recorded(
        &state,
        organizer,
        trail,
        event.event_id,
        "event.published",
        before,
    )
    .await
}

/// Why an event is cancelled (optional).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Told to every buyer with their refund (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500, pattern = r"\S", format = "text")]
    pub reason: Option<String>,
}

/// Any status that is not final → CANCELLED; the venue booking is freed, the waitlist
/// closed, and every order refunded through the payment gateway by a job that goes on
/// after a crash and never refunds an order twice (its progress:
/// `GET /api/v1/events/{event_id}/cancellation`). The body is optional.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/cancel", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body(content = Option<CancelBody>),
    responses((status = 200, body = EventDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 409, description = "already cancelled or completed", body = ErrorBody)))]
#[tracing::instrument(skip(state, req, body))]
pub async fn cancel(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    req: actix_web::HttpRequest,
    path: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::http::extract::require_json(&req)?;
        let body: Option<CancelBody> = crate::http::extract::parse(&body)?;
        body.and_then(|b| b.reason)
    };
    let reason = match reason {
        None => "The event was cancelled".to_owned(),
        Some(reason) => {
            crate::domain::validation::text(&reason, crate::domain::refunds::REASON_MAX)
                .map_err(|why| ApiError::invalid_field("reason", why))?
        }
    };
    let event = owned(&state, organizer, *path).await?;
    let before = json(&detail(&state, event.clone()).await?);
    let status = event.status();
    if !status.can_become(EventStatus::Cancelled) {
        return Err(invalid_transition(status, EventStatus::Cancelled));
    }
    let from = EventStatus::able_to_become(EventStatus::Cancelled);
    let cancelled = crate::persistence::cancellations::cancel_event(
        &state.pool,
        event.event_id,
        &from,
        &reason,
        organizer.user_id,
        state.now(),
    )
    .await?;
    if cancelled.is_none() {
        return Err(ApiError::conflict(
            "invalid_transition",
            "the event changed status meanwhile; reload it",
        ));
    }
    state.engine.stop_event(event.event_id);
    state.rooms.close(event.event_id);
    invalidate::announce(&state.pool, event.event_id, Change::Cancelled).await?;
    recorded(
        &state,
        organizer,
        trail,
        event.event_id,
        "event.cancelled",
        before,
    )
    .await
}

fn invalid_transition(from: EventStatus, to: EventStatus) -> ApiError {
    ApiError::conflict(
        "invalid_transition",
        format!(
            "an event that is {} cannot become {}",
            from.as_str(),
            to.as_str()
        ),
    )
}
