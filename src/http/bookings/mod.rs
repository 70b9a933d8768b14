//! Venue bookings for organizers: a venue's terms (day rate, deposit, add-ons on offer),
//! an event's booking (requested until its deposit is paid, then confirmed), its add-ons,
//! paying the deposit through the gateway (idempotent by `Idempotency-Key`), cancelling
//! and requesting again, the invoice (JSON and PDF) and the venue's calendar.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::audit::{json, Did, Trail};
use super::auth::Organizer;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::AppState;
use crate::domain::booking::{BookingStatus, Invoice};
use crate::domain::event::EventStatus;
use crate::domain::FieldErrors;
use crate::persistence::bookings::{self as store, AddonRow, BookingRow};
use crate::persistence::{events, venues};

mod deposit;
mod invoice;
mod terms;

pub use deposit::*;
pub use invoice::*;
pub use terms::*;

const MAX_OFFERS: usize = 50;
const MAX_CENTS: i64 = 100_000_000_000;

#[derive(Serialize, ToSchema)]
pub struct AddonView {
    pub addon_id: Uuid,
    pub offer_id: Option<Uuid>,
    pub kind: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub amount_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct BookingView {
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub venue_id: Uuid,
    pub title: String,
    pub status: BookingStatus,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub setup_hours_before: i32,
    pub teardown_hours_after: i32,
    /// The venue's time it takes: setup before the start to teardown after the end.
    pub blocked_from: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
    /// A request lapses then, unpaid, and the time is free again.
    pub requested_until: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// REQUESTED (by the organizer), LAPSED (unpaid in time) or EVENT_CANCELLED.
    pub cancel_reason: Option<String>,
    pub currency: String,
    pub day_rate_cents: i64,
    pub deposit_due_cents: i64,
    pub deposit_paid_cents: i64,
    pub addons: Vec<AddonView>,
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceView {
    pub booking_id: Uuid,
    pub title: String,
    pub status: BookingStatus,
    pub blocked_from: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
    #[serde(flatten)]
    pub invoice: Invoice,
}

#[derive(Serialize, ToSchema)]
pub struct Calendar {
    pub venue_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bookings: Vec<BookingView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// From (default: now).
    pub from: Option<DateTime<Utc>>,
    /// To (default: 90 days after `from`; at most 400 days after it).
    pub to: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonChoice {
    pub offer_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonsBody {
    #[schema(max_items = 50)]
    pub addons: Vec<AddonChoice>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositBody {
    /// The tokenized card (`tok_ok`, `tok_decline`… with the simulated processor).
    #[schema(format = "token", max_length = 200, example = "tok_ok")]
    pub payment_token: String,
}

/// The venue, if it is the caller's.
async fn own_venue(state: &AppState, organizer: Organizer, venue_id: Uuid) -> Result<(), ApiError> {
    match venues::find_venue(&state.pool, venue_id).await? {
        None => Err(ApiError::NotFound(format!("no venue {venue_id}"))),
        Some(v) if v.organizer_id != organizer.user_id => Err(ApiError::Forbidden(
            "this venue belongs to another organizer".into(),
        )),
        Some(_) => Ok(()),
    }
}

/// The booking, if its event is the caller's.
async fn own_booking(
    state: &AppState,
    organizer: Organizer,
    booking_id: Uuid,
) -> Result<BookingRow, ApiError> {
    let booking = store::find(&state.pool, booking_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no booking {booking_id}")))?;
    if booking.organizer_id != organizer.user_id {
        return Err(ApiError::Forbidden(
            "this booking belongs to another organizer".into(),
        ));
    }
    Ok(booking)
}

/// The booking as it is now, recorded as what `action` made it, as the answer.
async fn recorded(
    state: &AppState,
    organizer: Organizer,
    trail: Trail,
    booking_id: Uuid,
    action: &str,
) -> Result<HttpResponse, ApiError> {
    let booking = own_booking(state, organizer, booking_id).await?;
    let after = view(state, booking).await?;
    let did = Did::on(after.event_id, "booking", Some(after.booking_id), action);
    trail
        .record(state, organizer.user_id, did.changed(None, json(&after)))
        .await;
    Ok(HttpResponse::Ok().json(after))
}

async fn view(state: &AppState, booking: BookingRow) -> Result<BookingView, ApiError> {
    let addons = store::addons(&state.pool, booking.booking_id).await?;
    Ok(booking_view(booking, addons))
}

fn booking_view(b: BookingRow, addons: Vec<AddonRow>) -> BookingView {
    BookingView {
        booking_id: b.booking_id,
        event_id: b.event_id,
        venue_id: b.venue_id,
        title: b.title,
        status: b.status,
        start_time: b.start_time,
        end_time: b.end_time,
        setup_hours_before: b.setup_hours_before,
        teardown_hours_after: b.teardown_hours_after,
        blocked_from: b.blocked_from,
        blocked_until: b.blocked_until,
        requested_until: b.requested_until,
        confirmed_at: b.confirmed_at,
        cancelled_at: b.cancelled_at,
        cancel_reason: b.cancel_reason,
        currency: b.currency,
        day_rate_cents: b.day_rate_cents,
        deposit_due_cents: b.deposit_cents,
        deposit_paid_cents: b.deposit_paid_cents,
        addons: addons
            .into_iter()
            .map(|a| AddonView {
                addon_id: a.addon_id,
                offer_id: a.offer_id,
                kind: a.kind,
                name: a.description,
                quantity: a.quantity,
                unit_price_cents: a.unit_price_cents,
                amount_cents: a.unit_price_cents.saturating_mul(a.quantity.into()),
            })
            .collect(),
    }
}

/// The booking of the caller's event.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/booking", tag = "back office", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = BookingView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn event_booking(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = super::events::owned(&state, organizer, *path).await?;
    let booking = store::for_event(&state.pool, event.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no booking for event {}", event.event_id)))?;
    Ok(HttpResponse::Ok().json(view(&state, booking).await?))
}

/// Requests the venue again for a draft whose booking was cancelled or lapsed, under the
/// venue's terms of today: 409 `venue_booked` (naming the window) if the time was taken.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/booking", tag = "back office", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = BookingView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "venue_booked (with the conflicting window), booking_live (the booking is not cancelled), event_not_draft", body = ErrorBody)))]
pub async fn request_booking(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = super::events::owned(&state, organizer, *path).await?;
    if event.status() != EventStatus::Draft {
        return Err(ApiError::conflict(
            "event_not_draft",
            "only a draft's booking can be requested again",
        ));
    }
    let booking = store::for_event(&state.pool, event.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no booking for event {}", event.event_id)))?;
    let (terms, _) = store::terms(&state.pool, booking.venue_id).await?;
    let plan = terms.plan(state.now());
    match store::request_again(&state.pool, booking.booking_id, booking.venue_id, &plan).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::conflict(
                "booking_live",
                "the booking is not cancelled",
            ))
        }
        Err(error) => {
            let window = store::Window {
                start: booking.start_time,
                end: booking.end_time,
                setup_hours: booking.setup_hours_before,
                teardown_hours: booking.teardown_hours_after,
            };
            return Err(
                super::events::booking_conflict(&state, booking.venue_id, window, error).await,
            );
        }
    }
    recorded(
        &state,
        organizer,
        trail,
        booking.booking_id,
        "booking.requested",
    )
    .await
}

/// A booking of the caller's event.
#[utoipa::path(get, path = "/api/v1/bookings/{booking_id}", tag = "back office", security(("bearer" = [])),
    params(("booking_id" = Uuid, Path)),
    responses((status = 200, body = BookingView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_booking(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let booking = own_booking(&state, organizer, *path).await?;
    Ok(HttpResponse::Ok().json(view(&state, booking).await?))
}

/// Replaces the booking's add-ons with offers of its venue at today's prices.
#[utoipa::path(put, path = "/api/v1/bookings/{booking_id}/addons", tag = "back office", security(("bearer" = [])),
    params(("booking_id" = Uuid, Path)), request_body = AddonsBody,
    responses((status = 200, body = BookingView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "booking_cancelled", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_addons(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<AddonsBody>,
) -> Result<HttpResponse, ApiError> {
    let booking = own_booking(&state, organizer, *path).await?;
    let (_, offers) = store::terms(&state.pool, booking.venue_id).await?;
    let mut errors = FieldErrors::new();
    errors.check(
        body.0.addons.len() <= MAX_OFFERS,
        "addons",
        "at most 50 add-ons",
    );
    let mut chosen = Vec::new();
    for (i, choice) in body.0.addons.iter().enumerate().take(MAX_OFFERS) {
        let offer = offers.iter().find(|o| o.offer_id == choice.offer_id);
        errors.check(
            offer.is_some(),
            format!("addons[{i}].offer_id"),
            "not an add-on this venue offers",
        );
        let quantity = i32::try_from(choice.quantity)
            .ok()
            .filter(|q| (1..=10_000).contains(q));
        errors.check(
            quantity.is_some(),
            format!("addons[{i}].quantity"),
            "must be between 1 and 10000",
        );
        if let (Some(offer), Some(quantity)) = (offer, quantity) {
            chosen.push((offer.clone(), quantity));
        }
    }
    errors.finish(())?;
    if !store::replace_addons(&state.pool, booking.booking_id, &chosen).await? {
        return Err(ApiError::conflict(
            "booking_cancelled",
            "the booking is cancelled",
        ));
    }
    recorded(&state, organizer, trail, *path, "booking.addons_set").await
}

/// Cancels a draft's booking: the venue's time is free again (a paid deposit is kept, as
/// venues' terms usually say).
#[utoipa::path(post, path = "/api/v1/bookings/{booking_id}/cancel", tag = "back office", security(("bearer" = [])),
    params(("booking_id" = Uuid, Path)),
    responses((status = 200, body = BookingView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "booking_cancelled, booking_in_use (the event is published: cancel the event), deposit_in_progress", body = ErrorBody)))]
pub async fn cancel_booking(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let booking = own_booking(&state, organizer, *path).await?;
    let event = events::find_event(&state.pool, booking.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no booking {}", booking.booking_id)))?;
    if event.status() != EventStatus::Draft {
        return Err(ApiError::conflict(
            "booking_in_use",
            "the event is published: cancel the event instead",
        ));
    }
    if booking.status == BookingStatus::Cancelled {
        return Err(ApiError::conflict(
            "booking_cancelled",
            "the booking is cancelled already",
        ));
    }
    if !store::cancel(&state.pool, booking.booking_id, state.now()).await? {
        return Err(ApiError::conflict(
            "deposit_in_progress",
            "its deposit is being paid; try again in a moment",
        ));
    }
    recorded(&state, organizer, trail, *path, "booking.cancelled").await
}
