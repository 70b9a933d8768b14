//! `GET /events/{id}/seatmap`: the venue's seating for an event, with each seat's price and
//! state, for anyone who may see the event.
//!
//! The seating (sections, rows, seats, coordinates) comes from the layout cache: read from
//! Postgres once per event, since it never changes. Prices are read on every request (an
//! organizer may change them until the sale starts), and seat states come from the on-sale
//! engine when it runs (live: held seats are only there) or else from Postgres (sold and
//! blocked seats). The ETag is computed from those inputs before the answer is built, so a
//! client whose copy is current gets its 304 without the ~1 MB body being made at all.

use std::hash::{Hash, Hasher};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::MaybeCaller;
use super::catalog::visible_event;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::domain::seat_board::Seat;
use crate::domain::venue::SectionKind;
use crate::persistence::catalog::{self as store, SectionAvailabilityRow};
use crate::persistence::layouts::EventLayout;

/// Seat states on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Available,
    Held,
    Sold,
    Blocked,
}

#[derive(Serialize, ToSchema)]
pub struct MapSeat<'a> {
    pub seat_id: Uuid,
    pub number: i32,
    /// Row and number, e.g. `B-12`.
    pub label: &'a str,
    pub x: f32,
    pub y: f32,
    pub price_cents: Option<i64>,
    /// A wheelchair space.
    pub accessible: bool,
    /// Live while the event's on-sale engine runs; as of the last confirmed sale otherwise.
    pub state: SeatState,
}

#[derive(Serialize, ToSchema)]
pub struct MapRow<'a> {
    pub label: &'a str,
    pub seats: Vec<MapSeat<'a>>,
}

#[derive(Serialize, ToSchema)]
pub struct MapSection<'a> {
    pub section_id: Uuid,
    pub name: &'a str,
    pub kind: SectionKind,
    pub capacity: i32,
    pub price_cents: Option<i64>,
    /// Seated sections only; empty for general admission.
    pub rows: Vec<MapRow<'a>>,
}

#[derive(Serialize, ToSchema)]
pub struct SeatMap<'a> {
    pub event_id: Uuid,
    pub sections: Vec<MapSection<'a>>,
}

/// The venue's layout for this event: sections, rows and seats with coordinates, prices
/// and states. Seats are listed in seat-map order, the order of the live map's packed states.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/seatmap", tag = "catalog", params(("event_id" = Uuid, Path)),
    responses((status = 200, body = SeatMap, description = "with an ETag; send it back as If-None-Match"),
              (status = 304, description = "unchanged since the ETag given"), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(request, state, caller))]
pub async fn seatmap(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: MaybeCaller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = visible_event(&state, caller, *path).await?;
    let sections = store::section_availability(&state.pool, event.event_id).await?;
    let layout = state
        .layouts
        .get(&state.pool, event.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {}", event.event_id)))?;
    let states = seat_states(&state, event.event_id, &layout, &sections).await?;

    let tag = entity_tag(event.event_id, &sections, &states);
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| given.split(',').any(|t| t.trim() == tag));
    let mut answer = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if unchanged {
        return Ok(answer.finish());
    }
    let body = serde_json::to_vec(&SeatMap {
        event_id: event.event_id,
        sections: map_sections(&layout, &sections, &states),
    })
    .map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(answer.content_type("application/json").body(body))
}

/// Each section's seat states in seat-map order: the engine's when the on-sale runs here,
/// else what Postgres knows (sold and blocked seats). Seats of a section without a price
/// are not for sale.
async fn seat_states(
    state: &AppState,
    event_id: Uuid,
    layout: &EventLayout,
    sections: &[SectionAvailabilityRow],
) -> Result<Vec<Vec<SeatState>>, ApiError> {
    let live: std::collections::HashMap<Uuid, Vec<Seat>> = state
        .engine
        .seat_states(event_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    let taken: std::collections::HashMap<Uuid, bool> = if live.is_empty() {
        store::taken_seats(&state.pool, event_id)
            .await?
            .into_iter()
            .collect()
    } else {
        Default::default()
    };
    Ok(layout
        .sections
        .iter()
        .map(|section| {
            let priced = sections
                .iter()
                .any(|s| s.section_id == section.section_id && s.price_cents.is_some());
            let engine = live.get(&section.section_id);
            section
                .rows
                .iter()
                .flat_map(|r| &r.seats)
                .enumerate()
                .map(
                    |(position, seat)| match engine.and_then(|states| states.get(position)) {
                        _ if !priced => SeatState::Blocked,
                        Some(Seat::Held | Seat::PaymentPending) => SeatState::Held,
                        Some(Seat::Sold) => SeatState::Sold,
                        Some(Seat::Blocked) => SeatState::Blocked,
                        Some(Seat::Available) => SeatState::Available,
                        None => match taken.get(&seat.seat_id) {
                            Some(true) => SeatState::Sold,
                            Some(false) => SeatState::Blocked,
                            None => SeatState::Available,
                        },
                    },
                )
                .collect()
        })
        .collect())
}

/// A weak tag over everything the answer is made of besides the fixed seating: sections
/// with their names, capacities and prices, and every seat's state.
fn entity_tag(
    event_id: Uuid,
    sections: &[SectionAvailabilityRow],
    states: &[Vec<SeatState>],
) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    // The answer's shape: a new one here must not match tags given out for the old one.
    3u8.hash(&mut hasher);
    event_id.hash(&mut hasher);
    for section in sections {
        (section.section_id, &section.name, &section.kind).hash(&mut hasher);
        (section.capacity, section.price_cents).hash(&mut hasher);
    }
    states.hash(&mut hasher);
    let seats: usize = states.iter().map(Vec::len).sum();
    format!("W/\"{:016x}-{seats:x}\"", hasher.finish())
}

fn map_sections<'a>(
    layout: &'a EventLayout,
    sections: &'a [SectionAvailabilityRow],
    states: &[Vec<SeatState>],
) -> Vec<MapSection<'a>> {
    sections
        .iter()
        .map(|s| {
            let index = layout
                .sections
                .iter()
                .position(|l| l.section_id == s.section_id);
            let mut states = index
                .and_then(|i| states.get(i))
                .into_iter()
                .flatten()
                .copied();
            let rows = index
                .and_then(|i| layout.sections.get(i))
                .into_iter()
                .flat_map(|l| &l.rows)
                .map(|row| MapRow {
                    label: &row.label,
                    seats: row
                        .seats
                        .iter()
                        .map(|seat| MapSeat {
                            seat_id: seat.seat_id,
                            number: seat.number,
                            label: &seat.label,
                            x: seat.x,
                            y: seat.y,
                            price_cents: s.price_cents,
                            accessible: seat.accessible,
                            state: states.next().unwrap_or(SeatState::Available),
                        })
                        .collect(),
                })
                .collect();
            MapSection {
                section_id: s.section_id,
                kind: s.kind,
                name: &s.name,
                capacity: s.capacity,
                price_cents: s.price_cents,
                rows,
            }
        })
        .collect()
}
