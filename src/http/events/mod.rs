//! Organizer endpoints for events: create, update, price, schedule, publish, cancel.

use crate::cluster::invalidate::{self, Change};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{json, Did, Trail};
use super::auth::Organizer;
use super::catalog::{detail, EventDetail, OnSaleView};
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::names::PerformerName;
use super::AppState;
use crate::domain::event::Category;
use crate::domain::event::{self, EventDetails, EventInput, EventStatus};
use crate::domain::money::Currency;
use crate::domain::onsale::ProofOfWork as ProofOfWorkMode;
use crate::domain::onsale::{OnSaleInput, OnSaleSchedule, WaitingRoomInput};
use crate::domain::pricing::{Pricing, SectionPriceInput, TierInput, VenueSection};
use crate::domain::FieldErrors;
use crate::persistence::events::{
    self as store, BookingMargins, EventRow, VENUE_BOOKING_CONSTRAINT,
};
use crate::persistence::{bookings, venues, WriteError};

mod lifecycle;

pub use lifecycle::*;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "venue_id": "8a9a9135-45b2-4bb3-8f0a-3269ee0ce853", "title": "Moonlight Room Night",
    "description": "An evening of songs.", "category": "CONCERT", "performers": ["The Moonlights"],
    "start_time": "2027-06-01T19:30:00Z", "end_time": "2027-06-01T22:30:00Z"
}))]
pub struct CreateEventRequest {
    pub venue_id: Uuid,
    #[schema(format = "text", max_length = 200, example = "Moonlight Room Night")]
    pub title: String,
    #[serde(default)]
    #[schema(format = "free-text", max_length = 10000)]
    pub description: String,
    /// CONCERT, CONFERENCE, SPORTS, FESTIVAL, THEATER, COMEDY or OTHER (any case).
    #[schema(value_type = Category)]
    pub category: String,
    #[serde(default)]
    #[schema(max_items = 50, inline, value_type = Vec<PerformerName>)]
    pub performers: Vec<String>,
    pub doors_open: Option<DateTime<Utc>>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 99)]
    pub age_restriction: Option<i64>,
    #[schema(format = "image-url", max_length = 2000)]
    pub cover_image_url: Option<String>,
    /// ISO 4217; default USD. Also settable with the prices.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: Option<String>,
    /// Hours the venue is booked before the start (setup) and after the end (teardown).
    #[schema(minimum = 0, maximum = 168)]
    pub setup_hours: Option<i64>,
    #[schema(minimum = 0, maximum = 168)]
    pub teardown_hours: Option<i64>,
}

/// Every field optional: what is given replaces what was there.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventRequest {
    #[schema(format = "text", max_length = 200)]
    pub title: Option<String>,
    #[schema(format = "free-text", max_length = 10000)]
    pub description: Option<String>,
    #[schema(value_type = Option<Category>)]
    pub category: Option<String>,
    #[schema(max_items = 50, value_type = Option<Vec<PerformerName>>)]
    pub performers: Option<Vec<String>>,
    pub doors_open: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    #[schema(minimum = 0, maximum = 99)]
    pub age_restriction: Option<i64>,
    #[schema(format = "image-url", max_length = 2000)]
    pub cover_image_url: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionPriceRequest {
    pub section_id: Uuid,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price_cents: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierRequest {
    /// A general-admission section of the venue.
    pub section_id: Uuid,
    /// GENERAL, VIP, EARLY_BIRD, BACKSTAGE, or any other name.
    #[schema(format = "text", max_length = 100, example = "GENERAL")]
    pub name: String,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price_cents: i64,
    #[schema(minimum = 1, maximum = 200_000)]
    pub quantity: i64,
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: i64,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "currency": "EUR",
    "sections": [{"section_id": "3b8349de-1a94-4b37-b771-125829ffd708", "price_cents": 4500}],
    "tiers": [{"section_id": "26337201-4f97-4f7d-b96c-89be8ddba973", "name": "GENERAL",
               "price_cents": 3000, "quantity": 300, "max_per_order": 4}]
}))]
pub struct PricingRequest {
    #[serde(default)]
    pub sections: Vec<SectionPriceRequest>,
    #[serde(default)]
    pub tiers: Vec<TierRequest>,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoomRequest {
    pub queue_opens_at: DateTime<Utc>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub admission_per_minute: i64,
    /// `off` (default), `always`, or `auto`: joining the room (each new buyer's or
    /// visitor's draw) needs a solved proof-of-work challenge always, or while more than
    /// `proof_of_work_joins_per_minute` new buyers joined over the last minute.
    #[schema(value_type = Option<ProofOfWorkMode>)]
    pub proof_of_work: Option<String>,
    /// For `auto`; default 3,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub proof_of_work_joins_per_minute: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sale_starts_at": "2027-05-01T10:00:00Z", "sale_ends_at": "2027-06-01T18:00:00Z",
    "hold_minutes": 10, "max_per_order": 4, "max_per_buyer": 6,
    "waiting_room": {"queue_opens_at": "2027-05-01T09:30:00Z", "admission_per_minute": 600,
                     "proof_of_work": "auto", "proof_of_work_joins_per_minute": 3000}
}))]
pub struct OnSaleRequest {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    /// Default: the server's `BOXOFFICE_HOLD_MINUTES`.
    #[schema(minimum = 1, maximum = 60)]
    pub hold_minutes: Option<i64>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: i64,
    /// Tickets one buyer may have for the event across orders (and live holds); at least
    /// `max_per_order`. Default: `max_per_order`.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_per_buyer: Option<i64>,
    pub waiting_room: Option<WaitingRoomRequest>,
    /// How long a waitlist offer stays its buyer's, in minutes (1 to 1440; default 30).
    #[schema(minimum = 1, maximum = 1440)]
    pub waitlist_offer_minutes: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OrganizerEvents {
    pub events: Vec<EventDetail>,
}

/// Creates a draft event at one of the organizer's active venues, booking the venue.
#[utoipa::path(post, path = "/api/v1/events", tag = "organizer", security(("bearer" = [])),
    request_body = CreateEventRequest,
    responses((status = 201, body = EventDetail), (status = 403, body = ErrorBody),
              (status = 409, description = "the venue is booked then", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn create(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    body: Json<CreateEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = FieldErrors::new();
    let details = EventDetails::parse(EventInput {
        title: &body.title,
        description: &body.description,
        category: &body.category,
        performers: &body.performers,
        doors_open: body.doors_open,
        start_time: body.start_time,
        end_time: body.end_time,
        age_restriction: body.age_restriction,
        cover_image_url: body.cover_image_url.as_deref(),
    })
    .map_err(|e| {
        e.into_inner()
            .into_iter()
            .for_each(|(f, r)| errors.add(f, r))
    })
    .ok();
    event::check_start(body.start_time, state.now(), &mut errors);
    let currency = errors.take(
        "currency",
        Currency::parse(body.currency.as_deref().unwrap_or("USD")),
    );
    let margins = BookingMargins::parse(body.setup_hours, body.teardown_hours, &mut errors);
    match venues::find_venue(&state.pool, body.venue_id).await? {
        None => errors.add("venue_id", "no such venue"),
        Some(v) if v.organizer_id != organizer.user_id => {
            return Err(ApiError::Forbidden(
                "this venue belongs to another organizer".into(),
            ))
        }
        Some(v) => errors.check(v.is_active, "venue_id", "the venue is deactivated"),
    }
    let (Some(details), Some(currency)) = (details, currency) else {
        return Err(errors.into());
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let (terms, _) = bookings::terms(&state.pool, body.venue_id).await?;
    let plan = terms.plan(state.now());
    let window = bookings::Window {
        start: details.start_time,
        end: details.end_time,
        setup_hours: margins.setup_hours,
        teardown_hours: margins.teardown_hours,
    };
    let event_id = match store::insert_event(
        &state.pool,
        organizer.user_id,
        body.venue_id,
        &details,
        currency.as_str(),
        margins,
        &plan,
    )
    .await
    {
        Ok(id) => id,
        Err(error) => return Err(booking_conflict(&state, body.venue_id, window, error).await),
    };
    let event = load(&state, event_id).await?;
    let created = detail(&state, event).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            Did::event(event_id, "event.created").changed(None, json(&created)),
        )
        .await;
    Ok(HttpResponse::Created().json(created))
}

/// A booking refused by the exclusion constraint is 409 `venue_booked` naming the window
/// it lost to (not whose event it is).
pub(super) async fn booking_conflict(
    state: &AppState,
    venue_id: Uuid,
    window: bookings::Window,
    error: WriteError,
) -> ApiError {
    match error {
        WriteError::Conflict(constraint) if constraint == VENUE_BOOKING_CONSTRAINT => {
            let taken = bookings::conflicting_window(
                &state.pool,
                venue_id,
                window.blocked_from(),
                window.blocked_until(),
            )
            .await
            .ok()
            .flatten();
            let error = ApiError::conflict(
                "venue_booked",
                "the venue is already booked for an overlapping time (setup and teardown included)",
            );
            match taken {
                Some((from, until)) => error.with(
                    "conflict",
                    serde_json::json!({"from": from, "until": until}),
                ),
                None => error,
            }
        }
        WriteError::Conflict(constraint) => {
            ApiError::Unexpected(anyhow::anyhow!("unexpected conflict on {constraint}"))
        }
        WriteError::Other(e) => ApiError::Unexpected(e),
    }
}

/// The organizer's own events, drafts included.
#[utoipa::path(get, path = "/api/v1/organizer/events", tag = "organizer", security(("bearer" = [])),
    responses((status = 200, body = OrganizerEvents), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn list_own(
    state: web::Data<AppState>,
    organizer: Organizer,
) -> Result<HttpResponse, ApiError> {
    let rows = store::list_for_organizer(&state.pool, organizer.user_id).await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        events.push(detail(&state, row).await?);
    }
    Ok(HttpResponse::Ok().json(OrganizerEvents { events }))
}

/// Changes an event's details (not its venue). Closed events take no changes.
#[utoipa::path(patch, path = "/api/v1/events/{event_id}", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = UpdateEventRequest,
    responses((status = 200, body = EventDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn update(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<UpdateEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let before = json(&detail(&state, event.clone()).await?);
    refuse_if_closed(&event)?;
    let body = body.0;
    let performers = body.performers.unwrap_or_else(|| event.performers.clone());
    let details = EventDetails::parse(EventInput {
        title: body.title.as_deref().unwrap_or(&event.title),
        description: body.description.as_deref().unwrap_or(&event.description),
        category: body.category.as_deref().unwrap_or(&event.category),
        performers: &performers,
        doors_open: body.doors_open.or(event.doors_open),
        start_time: body.start_time.unwrap_or(event.start_time),
        end_time: body.end_time.unwrap_or(event.end_time),
        age_restriction: body
            .age_restriction
            .or(event.age_restriction.map(i64::from)),
        cover_image_url: body
            .cover_image_url
            .as_deref()
            .or(event.cover_image_url.as_deref()),
    })?;
    if let Err(error) = store::update_event(&state.pool, event.event_id, &details).await {
        let booking = bookings::for_event(&state.pool, event.event_id).await?;
        let window = bookings::Window {
            start: details.start_time,
            end: details.end_time,
            setup_hours: booking.as_ref().map_or(0, |b| b.setup_hours_before),
            teardown_hours: booking.as_ref().map_or(0, |b| b.teardown_hours_after),
        };
        return Err(booking_conflict(&state, event.venue_id, window, error).await);
    }
    recorded(
        &state,
        organizer,
        trail,
        event.event_id,
        "event.updated",
        before,
    )
    .await
}

/// Replaces the price list: one price per seated section, tiers for standing sections.
/// Allowed until the sale starts.
#[utoipa::path(put, path = "/api/v1/events/{event_id}/pricing", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = PricingRequest,
    responses((status = 200, body = EventDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "the sale has started", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn set_pricing(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<PricingRequest>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let before = json(&detail(&state, event.clone()).await?);
    refuse_once_selling(&state, &event).await?;
    let venue: Vec<VenueSection> = venues::sections(&state.pool, event.venue_id)
        .await?
        .into_iter()
        .map(|s| VenueSection {
            section_id: s.section_id,
            kind: s.kind,
            capacity: s.capacity,
        })
        .collect();
    let body = body.0;
    let sections: Vec<_> = body
        .sections
        .iter()
        .map(|s| SectionPriceInput {
            section_id: s.section_id,
            price_cents: s.price_cents,
        })
        .collect();
    let tiers: Vec<_> = body
        .tiers
        .into_iter()
        .map(|t| TierInput {
            section_id: t.section_id,
            name: t.name,
            price_cents: t.price_cents,
            quantity: t.quantity,
            max_per_order: t.max_per_order,
            sale_starts_at: t.sale_starts_at,
            sale_ends_at: t.sale_ends_at,
        })
        .collect();
    let pricing = Pricing::parse(&body.currency, &sections, &tiers, &venue)?;
    store::replace_pricing(&state.pool, event.event_id, &pricing).await?;
    invalidate::announce(&state.pool, event.event_id, Change::Settings).await?;
    recorded(
        &state,
        organizer,
        trail,
        event.event_id,
        "event.priced",
        before,
    )
    .await
}

/// Schedules the on-sale, with a waiting room or without. Allowed until the sale starts.
#[utoipa::path(put, path = "/api/v1/events/{event_id}/onsale", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = OnSaleRequest,
    responses((status = 200, body = OnSaleView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "the sale has started", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn set_onsale(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<OnSaleRequest>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    refuse_once_selling(&state, &event).await?;
    let before = store::find_onsale(&state.pool, event.event_id)
        .await?
        .map(OnSaleView::from)
        .and_then(|v| json(&v));
    let body = body.0;
    let schedule = OnSaleSchedule::parse(
        OnSaleInput {
            sale_starts_at: body.sale_starts_at,
            sale_ends_at: body.sale_ends_at,
            hold_minutes: body
                .hold_minutes
                .unwrap_or(state.settings.default_hold_minutes),
            max_per_order: body.max_per_order,
            max_per_buyer: body.max_per_buyer,
            waitlist_offer_minutes: body.waitlist_offer_minutes,
            waiting_room: body.waiting_room.map(|w| WaitingRoomInput {
                queue_opens_at: w.queue_opens_at,
                admission_per_minute: w.admission_per_minute,
                proof_of_work: w.proof_of_work,
                proof_of_work_joins_per_minute: w.proof_of_work_joins_per_minute,
            }),
        },
        event.end_time,
        state.now(),
    )?;
    store::upsert_onsale(&state.pool, event.event_id, &schedule).await?;
    // Every node (this one too) reads the schedule and the waiting room again.
    state.rooms.reread(event.event_id).await;
    invalidate::announce(&state.pool, event.event_id, Change::Settings).await?;
    let saved = store::find_onsale(&state.pool, event.event_id)
        .await?
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("on-sale vanished after saving")))?;
    let saved = OnSaleView::from(saved);
    trail
        .record(
            &state,
            organizer.user_id,
            Did::event(event.event_id, "event.onsale_set").changed(before, json(&saved)),
        )
        .await;
    Ok(HttpResponse::Ok().json(saved))
}

fn refuse_if_closed(event: &EventRow) -> Result<(), ApiError> {
    if event.status().is_final() {
        return Err(ApiError::conflict(
            "event_closed",
            format!("the event is {}", event.status().as_str()),
        ));
    }
    Ok(())
}

/// Prices and the schedule are fixed once buyers may buy: in a draft, or published before
/// the sale opens, they may change.
async fn refuse_once_selling(state: &AppState, event: &EventRow) -> Result<(), ApiError> {
    refuse_if_closed(event)?;
    let sale_starts_at = match event.status() {
        EventStatus::Published => store::find_onsale(&state.pool, event.event_id)
            .await?
            .map(|o| o.sale_starts_at),
        _ => None,
    };
    if event::selling_started(event.status(), sale_starts_at, state.now()) {
        return Err(ApiError::conflict(
            "sale_started",
            "prices and the on-sale cannot change once the sale has started",
        ));
    }
    Ok(())
}

async fn load(state: &AppState, event_id: Uuid) -> Result<EventRow, ApiError> {
    store::find_event(&state.pool, event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))
}

/// The event as it is now, recorded as what `action` made of `before`, as the answer.
async fn recorded(
    state: &AppState,
    organizer: Organizer,
    trail: Trail,
    event_id: Uuid,
    action: &str,
    before: Option<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let after = detail(state, load(state, event_id).await?).await?;
    trail
        .record(
            state,
            organizer.user_id,
            Did::event(event_id, action).changed(before, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
}

/// The event, if it exists and belongs to the organizer (404 and 403 otherwise).
pub async fn owned(
    state: &AppState,
    organizer: Organizer,
    event_id: Uuid,
) -> Result<EventRow, ApiError> {
    let event = load(state, event_id).await?;
    if event.organizer_id != organizer.user_id {
        return Err(ApiError::Forbidden(
            "this event belongs to another organizer".into(),
        ));
    }
    Ok(event)
}
