//! Seats the organizer takes out of sale for one event, and puts back: blocking is for
//! before the sale (the engine reads the seats again); a release may come at any time, and
//! during the sale the seats go to the waitlist first, then on sale, through the engine.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{json, Did, Trail};
use super::auth::Organizer;
use super::error::{ApiError, ErrorBody};
use super::events::owned;
use super::extract::Json;
use super::AppState;
use crate::cluster::invalidate::{self, Change};
use crate::domain::event::{self, EventStatus};
use crate::domain::validation::optional_text;
use crate::persistence::{blocked, events};

/// Most seats one request may name.
const MAX_SEATS: usize = 1_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// Seats of the event's venue (1 to 1,000, each once).
    #[schema(min_items = 1, max_items = 1000)]
    pub seat_ids: Vec<Uuid>,
    /// Why (for the organizer's own records; at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// Blocked seats to put on sale (1 to 1,000, each once).
    #[schema(min_items = 1, max_items = 1000)]
    pub seat_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedSeat {
    pub seat_id: Uuid,
    pub section_id: Uuid,
    pub label: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedList {
    pub seats: Vec<BlockedSeat>,
}

fn seats(ids: &[Uuid]) -> Result<(), ApiError> {
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    if ids.is_empty() || ids.len() > MAX_SEATS || unique.len() != ids.len() {
        return Err(ApiError::invalid_field(
            "seat_ids",
            "must name 1 to 1000 seats, each once",
        ));
    }
    Ok(())
}

async fn list(state: &AppState, event_id: Uuid) -> Result<BlockedList, ApiError> {
    let seats = blocked::of_event(&state.pool, event_id)
        .await?
        .into_iter()
        .map(|b| BlockedSeat {
            seat_id: b.seat_id,
            section_id: b.section_id,
            label: b.label,
            reason: b.reason,
        })
        .collect();
    Ok(BlockedList { seats })
}

/// The event's blocked seats.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/blocked-seats", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = BlockedList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    Ok(HttpResponse::Ok().json(list(&state, event.event_id).await?))
}

/// Takes seats out of sale for this event, before its sale starts.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/blocked-seats", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = BlockBody,
    responses((status = 200, body = BlockedList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "sale_started, event_closed", body = ErrorBody),
              (status = 400, body = ErrorBody), (status = 422, description = "a seat that is not the venue's", body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn block(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<BlockBody>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let before = json(&list(&state, event.event_id).await?);
    let body = body.0;
    seats(&body.seat_ids)?;
    let reason =
        optional_text(&body.reason, 200).map_err(|why| ApiError::invalid_field("reason", why))?;
    if event.status().is_final() {
        return Err(ApiError::conflict(
            "event_closed",
            "the event is over or cancelled",
        ));
    }
    let starts = events::find_onsale(&state.pool, event.event_id)
        .await?
        .map(|o| o.sale_starts_at);
    if event::selling_started(event.status(), starts, state.now()) {
        return Err(ApiError::conflict(
            "sale_started",
            "seats can be blocked only before the sale starts (they may be released at any time)",
        ));
    }
    let foreign = blocked::foreign(&state.pool, event.event_id, &body.seat_ids).await?;
    if let Some(seat) = foreign.first() {
        return Err(ApiError::invalid_field(
            "seat_ids",
            format!("{seat} is not a seat of the event's venue"),
        ));
    }
    blocked::block(&state.pool, event.event_id, &body.seat_ids, &reason).await?;
    // An engine started early (for the seat map) reads the seats again.
    invalidate::announce(&state.pool, event.event_id, Change::Settings).await?;
    let after = list(&state, event.event_id).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(event.event_id, "blocked_seats", None, "seats.blocked")
                .changed(before, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
}

/// Puts blocked seats on sale: during the sale, the first buyers on the section's waitlist
/// are offered them before anyone else may take them.
#[utoipa::path(delete, path = "/api/v1/events/{event_id}/blocked-seats", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = ReleaseBody,
    responses((status = 200, body = BlockedList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "event_closed", body = ErrorBody),
              (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn release(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<ReleaseBody>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let before = json(&list(&state, event.event_id).await?);
    seats(&body.0.seat_ids)?;
    if event.status().is_final() {
        return Err(ApiError::conflict(
            "event_closed",
            "the event is over or cancelled",
        ));
    }
    let on_sale = matches!(
        event.status(),
        EventStatus::Published | EventStatus::OnSale | EventStatus::SoldOut
    );
    let released = blocked::release(
        &state.pool,
        event.event_id,
        &body.0.seat_ids,
        on_sale,
        state.now(),
    )
    .await?;
    if !released.is_empty() {
        state.engine.notify_inbox(event.event_id).await;
    }
    let after = list(&state, event.event_id).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(event.event_id, "blocked_seats", None, "seats.released")
                .changed(before, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
}
