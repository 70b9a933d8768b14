//! Organizer endpoints for venues and their seating layouts.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{json, Did, Trail};
use super::auth::Organizer;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::AppState;
use crate::domain::validation::{optional_text, text};
use crate::domain::venue::{self, LayoutSpec, SeatingPlan, SectionKind, VenueType};
use crate::domain::FieldErrors;
use crate::persistence::venues::{self as store, LayoutError, VenueDetails, VenueRow};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Moonlight Room", "address": "1 Side Street", "city": "Leeds",
    "latitude": 53.8, "longitude": -1.55, "timezone": "Europe/London", "venue_type": "THEATER",
    "facilities": {"parking": true},
    "layout": {"sections": [
        {"name": "Stalls", "kind": "seated", "rows": 10, "seats_per_row": 20},
        {"name": "Floor", "kind": "general_admission", "capacity": 300}
    ]}
}))]
pub struct CreateVenueRequest {
    #[schema(format = "text", max_length = 200, example = "Moonlight Room")]
    pub name: String,
    #[serde(default)]
    #[schema(format = "free-text", max_length = 500)]
    pub address: String,
    #[schema(format = "text", max_length = 100, example = "Leeds")]
    pub city: String,
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: f64,
    /// IANA name, e.g. `Europe/Paris`.
    #[schema(format = "timezone", max_length = 64, example = "Europe/London")]
    pub timezone: String,
    /// ARENA, STADIUM, CONFERENCE_CENTER, THEATER, CLUB or OUTDOOR (any case).
    #[schema(value_type = VenueType)]
    pub venue_type: String,
    /// Free-form facts such as `{"parking": true, "catering": false, "av_equipment": true}`.
    #[schema(value_type = Option<Object>)]
    pub facilities: Option<serde_json::Value>,
    pub layout: LayoutSpec,
}

/// Every field optional: what is given replaces what was there. A new `layout` is accepted
/// only while no event uses the venue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVenueRequest {
    #[schema(format = "text", max_length = 200)]
    pub name: Option<String>,
    #[schema(format = "free-text", max_length = 500)]
    pub address: Option<String>,
    #[schema(format = "text", max_length = 100)]
    pub city: Option<String>,
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: Option<f64>,
    #[schema(format = "timezone", max_length = 64)]
    pub timezone: Option<String>,
    #[schema(value_type = Option<VenueType>)]
    pub venue_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub facilities: Option<serde_json::Value>,
    pub layout: Option<LayoutSpec>,
}

#[derive(Serialize, ToSchema)]
pub struct SectionSummary {
    pub section_id: Uuid,
    pub name: String,
    pub kind: SectionKind,
    pub capacity: i32,
}

#[derive(Serialize, ToSchema)]
pub struct VenueView {
    pub venue_id: Uuid,
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    pub venue_type: String,
    #[schema(value_type = Object)]
    pub facilities: serde_json::Value,
    pub capacity: i32,
    pub is_active: bool,
    pub sections: Vec<SectionSummary>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct VenueList {
    pub venues: Vec<VenueView>,
}

const MAX_FACILITIES_BYTES: usize = 10_000;

/// Whether Postgres keeps `value` as sent and gives it back readable: no NUL in a string
/// or a key (JSONB refuses it), and numbers within ±10^15 (JSONB keeps a number's exact
/// decimal digits, and one near the edge of a double's range reads back out of range).
fn storable(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) => n.as_f64().is_some_and(|x| x.abs() <= 1e15),
        Value::String(text) => !text.contains('\0'),
        Value::Array(items) => items.iter().all(storable),
        Value::Object(map) => map.iter().all(|(k, v)| !k.contains('\0') && storable(v)),
        Value::Null | Value::Bool(_) => true,
    }
}

fn facilities(value: Option<serde_json::Value>, errors: &mut FieldErrors) -> serde_json::Value {
    match value {
        None => serde_json::json!({}),
        Some(value) if value.is_object() && !storable(&value) => {
            errors.add(
                "facilities",
                "numbers must be within ±10^15, and text must not contain NUL",
            );
            serde_json::Value::Null
        }
        Some(value @ serde_json::Value::Object(_))
            if value.to_string().len() <= MAX_FACILITIES_BYTES =>
        {
            value
        }
        Some(serde_json::Value::Object(_)) => {
            errors.add(
                "facilities",
                format!("must be at most {MAX_FACILITIES_BYTES} bytes"),
            );
            serde_json::Value::Null
        }
        Some(_) => {
            errors.add("facilities", "must be a JSON object");
            serde_json::Value::Null
        }
    }
}

/// Validates the descriptive fields shared by create and update.
fn details(
    fields: (&str, &str, &str, f64, f64, &str, &str),
    facilities_value: serde_json::Value,
    errors: &mut FieldErrors,
) -> Option<VenueDetails> {
    let (name, address, city, latitude, longitude, timezone, venue_type) = fields;
    let name = errors.take("name", text(name, 200));
    let address = errors.take("address", optional_text(address, 500));
    let city = errors.take("city", text(city, 100));
    let latitude = errors.take("latitude", venue::latitude(latitude));
    let longitude = errors.take("longitude", venue::longitude(longitude));
    let timezone = errors.take("timezone", venue::timezone(timezone));
    let venue_type = errors.take("venue_type", VenueType::parse(venue_type));
    Some(VenueDetails {
        name: name?,
        address: address?,
        city: city?,
        latitude: latitude?,
        longitude: longitude?,
        timezone: timezone?,
        venue_type: venue_type?,
        facilities: facilities_value,
    })
}

/// Creates a venue with its seating layout.
#[utoipa::path(post, path = "/api/v1/venues", tag = "organizer", request_body = CreateVenueRequest,
    security(("bearer" = [])),
    responses((status = 201, body = VenueView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn create(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    body: Json<CreateVenueRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut errors = FieldErrors::new();
    let facilities_value = facilities(body.facilities, &mut errors);
    let details = details(
        (
            &body.name,
            &body.address,
            &body.city,
            body.latitude,
            body.longitude,
            &body.timezone,
            &body.venue_type,
        ),
        facilities_value,
        &mut errors,
    );
    let plan = SeatingPlan::parse(&body.layout, "layout").map_err(|e| {
        for (field, reason) in e.into_inner() {
            errors.add(field, reason);
        }
    });
    let (Some(details), Ok(plan)) = (details, plan) else {
        return Err(errors.into());
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let venue_id = store::insert_venue(&state.pool, organizer.user_id, &details, &plan).await?;
    let created = view(&state, venue_id).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            venue_did(venue_id, "venue.created", None, json(&created)),
        )
        .await;
    Ok(HttpResponse::Created().json(created))
}

/// A seat of a layout preview.
#[derive(Serialize, ToSchema)]
pub struct PreviewSeat {
    pub label: String,
    pub x: f32,
    pub y: f32,
    pub accessible: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewSection {
    pub name: String,
    pub kind: SectionKind,
    pub capacity: i32,
    /// Seated sections only, in seat-map order.
    pub seats: Vec<PreviewSeat>,
}

#[derive(Serialize, ToSchema)]
pub struct LayoutPreview {
    pub capacity: i32,
    pub sections: Vec<PreviewSection>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub layout: LayoutSpec,
}

/// The seat map a layout makes, without storing anything: what the layout generator
/// draws before the organizer creates the venue. Bad layouts get the same field errors as
/// `POST /venues`.
#[utoipa::path(post, path = "/api/v1/venues/preview", tag = "organizer", security(("bearer" = [])),
    request_body = PreviewRequest,
    responses((status = 200, body = LayoutPreview), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview(
    _organizer: Organizer,
    body: Json<PreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let plan = SeatingPlan::parse(&body.0.layout, "layout")?;
    // Every seat comes back with its label and place: bound what one small body can ask for.
    let seats: usize = plan.sections.iter().map(|s| s.seats.len()).sum();
    if seats > MAX_PREVIEW_SEATS {
        return Err(ApiError::invalid_field(
            "layout",
            format!(
                "a preview draws at most {MAX_PREVIEW_SEATS} seats; the venue itself may hold more"
            ),
        ));
    }
    Ok(HttpResponse::Ok().json(LayoutPreview {
        capacity: plan.capacity(),
        sections: plan
            .sections
            .into_iter()
            .map(|s| PreviewSection {
                name: s.name,
                kind: s.kind,
                capacity: s.capacity,
                seats: s
                    .seats
                    .into_iter()
                    .map(|seat| PreviewSeat {
                        label: venue::seat_label(&seat.row_label, seat.seat_number),
                        x: seat.x,
                        y: seat.y,
                        accessible: seat.accessible,
                    })
                    .collect(),
            })
            .collect(),
    }))
}

/// The most seats a preview draws (about 2 MB of answer).
const MAX_PREVIEW_SEATS: usize = 50_000;

/// The caller's venues.
#[utoipa::path(get, path = "/api/v1/venues", tag = "organizer", security(("bearer" = [])),
    responses((status = 200, body = VenueList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn list(
    state: web::Data<AppState>,
    organizer: Organizer,
) -> Result<HttpResponse, ApiError> {
    let rows = store::list_venues(&state.pool, organizer.user_id).await?;
    let mut venues = Vec::with_capacity(rows.len());
    for row in rows {
        venues.push(to_view(&state, row).await?);
    }
    Ok(HttpResponse::Ok().json(VenueList { venues }))
}

/// One of the caller's venues.
#[utoipa::path(get, path = "/api/v1/venues/{venue_id}", tag = "organizer", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)),
    responses((status = 200, body = VenueView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = owned(&state, organizer, *path).await?;
    Ok(HttpResponse::Ok().json(to_view(&state, row).await?))
}

/// Changes a venue's details, and its layout while no event uses it.
#[utoipa::path(patch, path = "/api/v1/venues/{venue_id}", tag = "organizer", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)), request_body = UpdateVenueRequest,
    responses((status = 200, body = VenueView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "layout of a venue in use", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn update(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<UpdateVenueRequest>,
) -> Result<HttpResponse, ApiError> {
    let current = owned(&state, organizer, *path).await?;
    let before = json(&view(&state, current.venue_id).await?);
    let body = body.0;
    let mut errors = FieldErrors::new();
    let facilities_value = match body.facilities {
        Some(value) => facilities(Some(value), &mut errors),
        None => current.facilities.clone(),
    };
    let details = details(
        (
            body.name.as_deref().unwrap_or(&current.name),
            body.address.as_deref().unwrap_or(&current.address),
            body.city.as_deref().unwrap_or(&current.city),
            body.latitude.unwrap_or(current.latitude),
            body.longitude.unwrap_or(current.longitude),
            body.timezone.as_deref().unwrap_or(&current.timezone),
            body.venue_type.as_deref().unwrap_or(&current.venue_type),
        ),
        facilities_value,
        &mut errors,
    );
    let plan = match &body.layout {
        Some(layout) => match SeatingPlan::parse(layout, "layout") {
            Ok(plan) => Some(plan),
            Err(e) => {
                for (field, reason) in e.into_inner() {
                    errors.add(field, reason);
                }
                None
            }
        },
        None => None,
    };
    let Some(details) = details.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    store::update_venue(&state.pool, current.venue_id, &details, plan.as_ref())
        .await
        .map_err(|e| match e {
            LayoutError::InUse => ApiError::conflict(
                "venue_in_use",
                "the layout cannot change: events already use this venue",
            ),
            LayoutError::Other(e) => ApiError::Unexpected(e),
        })?;
    let after = view(&state, current.venue_id).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            venue_did(current.venue_id, "venue.updated", before, json(&after)),
        )
        .await;
    Ok(HttpResponse::Ok().json(after))
}

/// Takes a venue out of use: existing events keep it; no new event may be created there.
#[utoipa::path(post, path = "/api/v1/venues/{venue_id}/deactivate", tag = "organizer", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)),
    responses((status = 200, body = VenueView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn deactivate(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_active(state, organizer, trail, *path, false).await
}

/// Puts a deactivated venue back in use.
#[utoipa::path(post, path = "/api/v1/venues/{venue_id}/activate", tag = "organizer", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)),
    responses((status = 200, body = VenueView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn activate(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_active(state, organizer, trail, *path, true).await
}

async fn set_active(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    venue_id: Uuid,
    active: bool,
) -> Result<HttpResponse, ApiError> {
    let venue = owned(&state, organizer, venue_id).await?;
    store::set_active(&state.pool, venue.venue_id, active)
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    let action = if active {
        "venue.activated"
    } else {
        "venue.deactivated"
    };
    let change = |on: bool| Some(serde_json::json!({ "is_active": on }));
    trail
        .record(
            &state,
            organizer.user_id,
            venue_did(venue_id, action, change(venue.is_active), change(active)),
        )
        .await;
    Ok(HttpResponse::Ok().json(view(&state, venue_id).await?))
}

fn venue_did(
    venue_id: Uuid,
    action: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Did<'_> {
    Did {
        event_id: None,
        object_kind: "venue",
        object_id: Some(venue_id),
        action,
        before,
        after,
    }
}

/// The venue, if it exists and belongs to the organizer (404 and 403 otherwise).
pub async fn owned(
    state: &AppState,
    organizer: Organizer,
    venue_id: Uuid,
) -> Result<VenueRow, ApiError> {
    let venue = store::find_venue(&state.pool, venue_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no venue {venue_id}")))?;
    if venue.organizer_id != organizer.user_id {
        return Err(ApiError::Forbidden(
            "this venue belongs to another organizer".into(),
        ));
    }
    Ok(venue)
}

async fn view(state: &AppState, venue_id: Uuid) -> Result<VenueView, ApiError> {
    let row = store::find_venue(&state.pool, venue_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no venue {venue_id}")))?;
    to_view(state, row).await
}

async fn to_view(state: &AppState, row: VenueRow) -> Result<VenueView, ApiError> {
    let sections = store::sections(&state.pool, row.venue_id)
        .await?
        .into_iter()
        .map(|s| SectionSummary {
            section_id: s.section_id,
            kind: s.kind,
            name: s.name,
            capacity: s.capacity,
        })
        .collect();
    Ok(VenueView {
        venue_id: row.venue_id,
        name: row.name,
        address: row.address,
        city: row.city,
        latitude: row.latitude,
        longitude: row.longitude,
        timezone: row.timezone,
        venue_type: row.venue_type,
        facilities: row.facilities,
        capacity: row.capacity,
        is_active: row.is_active,
        sections,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_are_kept_only_when_postgres_gives_them_back_as_sent() {
        let mut errors = FieldErrors::new();
        let good = serde_json::json!({"parking": 120, "wifi": true, "note": "lift", "nested": [1.5, {"a": null}]});
        assert_eq!(facilities(Some(good.clone()), &mut errors), good);
        assert!(errors.is_empty());
        for bad in [
            serde_json::json!({"x": -1.7976931348623157e308}),
            serde_json::json!({"x": [1e16]}),
            serde_json::json!({"x": "a\u{0}b"}),
            serde_json::json!({"a\u{0}": 1}),
        ] {
            let mut errors = FieldErrors::new();
            facilities(Some(bad.clone()), &mut errors);
            assert!(!errors.is_empty(), "{bad}");
        }
    }
}
