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
use crate::domain::booking::{BookingStatus, Deposit, Invoice, Terms};
use crate::domain::event::EventStatus;
use crate::domain::money::Currency;
use crate::domain::validation::text;
use crate::domain::FieldErrors;
use crate::persistence::bookings::{self as store, AddonRow, BookingRow, NewOffer, OfferRow};
use crate::persistence::{events, venues};

mod deposit;
mod invoice;

pub use deposit::*;
pub use invoice::*;

const MAX_OFFERS: usize = 50;
const MAX_CENTS: i64 = 100_000_000_000;

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositTerms {
    /// A fixed deposit.
    #[schema(minimum = 1, maximum = 100000000000_i64)]
    pub cents: Option<i64>,
    /// Or a share of one day's rate, in percent (25 = a quarter of a day's rate).
    #[schema(minimum = 0.01, maximum = 100)]
    pub percent_of_day_rate: Option<f64>,
}

/// What an add-on is.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AddonKind {
    Catering,
    AvEquipment,
    Parking,
    Other,
}

impl AddonKind {
    fn as_str(self) -> &'static str {
        match self {
            AddonKind::Catering => "CATERING",
            AddonKind::AvEquipment => "AV_EQUIPMENT",
            AddonKind::Parking => "PARKING",
            AddonKind::Other => "OTHER",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    pub kind: AddonKind,
    #[schema(format = "text", max_length = 100, example = "Buffet, per guest")]
    pub name: String,
    #[schema(minimum = 0, maximum = 100000000000_i64)]
    pub price_cents: i64,
}

/// A venue's terms: without a deposit, bookings confirm at once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsBody {
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    #[schema(minimum = 0, maximum = 100000000000_i64)]
    pub day_rate_cents: i64,
    /// A fixed sum or a share of a day's rate (an object; read by hand so that an array
    /// is refused rather than read as its fields).
    #[schema(value_type = Option<DepositTerms>)]
    pub deposit: Option<serde_json::Value>,
    /// How long a request holds the venue's time unpaid (default: the server's
    /// `BOXOFFICE_BOOKING_REQUEST_HOURS`, 48).
    #[schema(minimum = 1, maximum = 720)]
    pub request_hours: Option<i64>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub addons: Vec<OfferInput>,
}

#[derive(Serialize, ToSchema)]
pub struct OfferView {
    pub offer_id: Uuid,
    pub kind: String,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TermsView {
    pub venue_id: Uuid,
    pub currency: String,
    pub day_rate_cents: i64,
    pub deposit: Option<DepositTerms>,
    /// What a booking made today owes before it is confirmed.
    pub deposit_due_cents: i64,
    pub request_hours: i32,
    pub addons: Vec<OfferView>,
}

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

fn parse_terms(body: &TermsBody, default_hours: i64) -> Result<(Terms, Vec<NewOffer>), ApiError> {
    let mut errors = FieldErrors::new();
    let currency = errors.take("currency", Currency::parse(&body.currency));
    errors.check(
        (0..=MAX_CENTS).contains(&body.day_rate_cents),
        "day_rate_cents",
        "must be between 0 and 100000000000",
    );
    let given: Option<DepositTerms> = match &body.deposit {
        None | Some(serde_json::Value::Null) => None,
        Some(value @ serde_json::Value::Object(_)) => match serde_json::from_value(value.clone()) {
            Ok(terms) => Some(terms),
            Err(e) => {
                errors.add("deposit", format!("not a deposit: {e}"));
                None
            }
        },
        Some(_) => {
            errors.add(
                "deposit",
                "must be an object with cents or percent_of_day_rate",
            );
            None
        }
    };
    let deposit = match given.as_ref().map(|d| (d.cents, d.percent_of_day_rate)) {
        None | Some((None, None)) => Deposit::None,
        Some((Some(cents), None)) if (1..=MAX_CENTS).contains(&cents) => Deposit::Fixed { cents },
        Some((None, Some(percent))) if percent.is_finite() && percent > 0.0 && percent <= 100.0 => {
            Deposit::ShareOfDayRate {
                basis_points: ((percent * 100.0).round() as i32).max(1),
            }
        }
        Some((Some(_), Some(_))) => {
            errors.add("deposit", "give cents or percent_of_day_rate, not both");
            Deposit::None
        }
        Some((Some(_), None)) => {
            errors.add("deposit.cents", "must be between 1 and 100000000000");
            Deposit::None
        }
        Some((None, Some(_))) => {
            errors.add(
                "deposit.percent_of_day_rate",
                "must be more than 0 and at most 100",
            );
            Deposit::None
        }
    };
    if matches!(deposit, Deposit::ShareOfDayRate { .. }) && body.day_rate_cents == 0 {
        errors.add(
            "deposit.percent_of_day_rate",
            "a share of a day rate needs a day rate",
        );
    }
    let request_hours = body.request_hours.unwrap_or(default_hours);
    errors.check(
        (1..=720).contains(&request_hours),
        "request_hours",
        "must be between 1 and 720",
    );
    errors.check(
        body.addons.len() <= MAX_OFFERS,
        "addons",
        "at most 50 add-ons",
    );
    let mut offers = Vec::new();
    for (i, offer) in body.addons.iter().enumerate().take(MAX_OFFERS) {
        let at = |field: &str| format!("addons[{i}].{field}");
        let name = errors.take(&at("name"), text(&offer.name, 100));
        errors.check(
            (0..=MAX_CENTS).contains(&offer.price_cents),
            at("price_cents"),
            "must be between 0 and 100000000000",
        );
        if let Some(name) = name {
            offers.push(NewOffer {
                kind: offer.kind.as_str().to_owned(),
                name,
                price_cents: offer.price_cents,
            });
        }
    }
    let terms = currency.map(|c| Terms {
        currency: c.as_str().to_owned(),
        day_rate_cents: body.day_rate_cents,
        deposit,
        request_hours: i32::try_from(request_hours).unwrap_or(48),
    });
    Ok((errors.finish(terms)?.unwrap_or_else(Terms::none), offers))
}

fn terms_view(venue_id: Uuid, terms: &Terms, offers: Vec<OfferRow>) -> TermsView {
    let deposit = match terms.deposit {
        Deposit::None => None,
        Deposit::Fixed { cents } => Some(DepositTerms {
            cents: Some(cents),
            percent_of_day_rate: None,
        }),
        Deposit::ShareOfDayRate { basis_points } => Some(DepositTerms {
            cents: None,
            percent_of_day_rate: Some(f64::from(basis_points) / 100.0),
        }),
    };
    TermsView {
        venue_id,
        currency: terms.currency.clone(),
        day_rate_cents: terms.day_rate_cents,
        deposit,
        deposit_due_cents: terms.deposit_due(),
        request_hours: terms.request_hours,
        addons: offers
            .into_iter()
            .map(|o| OfferView {
                offer_id: o.offer_id,
                kind: o.kind,
                name: o.name,
                price_cents: o.price_cents,
            })
            .collect(),
    }
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

/// The venue's terms for bookings and its add-ons on offer.
#[utoipa::path(get, path = "/api/v1/venues/{venue_id}/terms", tag = "back office", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)),
    responses((status = 200, body = TermsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_terms(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    own_venue(&state, organizer, *path).await?;
    let (terms, offers) = store::terms(&state.pool, *path).await?;
    Ok(HttpResponse::Ok().json(terms_view(*path, &terms, offers)))
}

/// Sets the venue's terms: the day rate, the deposit (fixed, or a share of a day's rate),
/// how long a request holds the time, the add-ons on offer. Bookings made before keep
/// their terms.
#[utoipa::path(put, path = "/api/v1/venues/{venue_id}/terms", tag = "back office", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)), request_body = TermsBody,
    responses((status = 200, body = TermsView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_terms(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<TermsBody>,
) -> Result<HttpResponse, ApiError> {
    own_venue(&state, organizer, *path).await?;
    let before = {
        let (terms, offers) = store::terms(&state.pool, *path).await?;
        json(&terms_view(*path, &terms, offers))
    };
    let (terms, offers) = parse_terms(&body.0, state.settings.booking_request_hours)?;
    store::put_terms(&state.pool, *path, &terms, &offers).await?;
    let (terms, offers) = store::terms(&state.pool, *path).await?;
    let after = terms_view(*path, &terms, offers);
    let did = Did {
        event_id: None,
        object_kind: "venue_terms",
        object_id: Some(*path),
        action: "venue.terms_set",
        before: None,
        after: None,
    };
    trail
        .record(&state, organizer.user_id, did.changed(before, json(&after)))
        .await;
    Ok(HttpResponse::Ok().json(after))
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
    let booking = own_booking(&state, organizer, booking.booking_id).await?;
    let after = view(&state, booking).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(
                after.event_id,
                "booking",
                Some(after.booking_id),
                "booking.requested",
            )
            .changed(None, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
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
    let booking = own_booking(&state, organizer, *path).await?;
    let after = view(&state, booking).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(
                after.event_id,
                "booking",
                Some(after.booking_id),
                "booking.addons_set",
            )
            .changed(None, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
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
    let booking = own_booking(&state, organizer, *path).await?;
    let after = view(&state, booking).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(
                after.event_id,
                "booking",
                Some(after.booking_id),
                "booking.cancelled",
            )
            .changed(None, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
}
