//! Public catalog: an event's details with prices and counts, and the seat map (the list
//! and search are in `discovery`).

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::MaybeCaller;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::domain::availability::{self, SectionStock, TierStock};
use crate::domain::event::EventStatus;
use crate::domain::venue::SectionKind;
use crate::persistence::catalog as store;
use crate::persistence::events::{self, EventRow, OnSaleRow};
use crate::persistence::venues;

#[derive(Serialize, ToSchema)]
pub struct VenueInfo {
    pub venue_id: Uuid,
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    pub venue_type: String,
}

#[derive(Serialize, ToSchema)]
pub struct WaitingRoomView {
    pub queue_opens_at: DateTime<Utc>,
    pub admission_per_minute: i32,
    pub admission_paused: bool,
    /// `off`, `always` or `auto` (while more than `proof_of_work_joins_per_minute` join).
    pub proof_of_work: &'static str,
    pub proof_of_work_joins_per_minute: i32,
}

#[derive(Serialize, ToSchema)]
pub struct OnSaleView {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_minutes: i32,
    pub max_per_order: i32,
    /// Tickets one buyer may have for the event, across orders and holds.
    pub max_per_buyer: i32,
    pub waiting_room: Option<WaitingRoomView>,
    /// How long a waitlist offer stays its buyer's.
    pub waitlist_offer_minutes: i32,
}

impl From<OnSaleRow> for OnSaleView {
    fn from(row: OnSaleRow) -> Self {
        let waiting_room = match (row.queue_opens_at, row.admission_per_minute) {
            (Some(queue_opens_at), Some(admission_per_minute)) => Some(WaitingRoomView {
                queue_opens_at,
                admission_per_minute,
                admission_paused: row.admission_paused,
                proof_of_work: row.door().proof_of_work.as_str(),
                proof_of_work_joins_per_minute: row.proof_of_work_joins_per_minute,
            }),
            _ => None,
        };
        OnSaleView {
            max_per_buyer: row.buyer_limit(),
            sale_starts_at: row.sale_starts_at,
            sale_ends_at: row.sale_ends_at,
            hold_minutes: row.hold_minutes,
            max_per_order: row.max_per_order,
            waitlist_offer_minutes: row.waitlist_offer_minutes,
            waiting_room,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SectionView {
    pub section_id: Uuid,
    pub name: String,
    pub kind: SectionKind,
    /// The seat price of a seated section, the lowest tier price of a standing one; absent
    /// when the section is not on sale for this event.
    pub price_cents: Option<i64>,
    pub capacity: i32,
    pub available: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TierView {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub name: String,
    pub price_cents: i64,
    pub quantity: i32,
    pub available: i32,
    pub max_per_order: i32,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct EventDetail {
    pub event_id: Uuid,
    pub title: String,
    pub description: String,
    pub category: String,
    pub performers: Vec<String>,
    pub status: EventStatus,
    pub doors_open: Option<DateTime<Utc>>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub age_restriction: Option<i16>,
    pub cover_image_url: Option<String>,
    pub currency: String,
    pub venue: VenueInfo,
    pub onsale: Option<OnSaleView>,
    pub sections: Vec<SectionView>,
    pub tiers: Vec<TierView>,
    pub min_price_cents: Option<i64>,
    pub available: i64,
    /// Who may refund, until when, at what fee.
    pub refund_policy: crate::http::refunds::PolicyView,
}

/// The event as the public sees it; a draft is shown to its organizer only. Cached on each
/// node under the catalog's version (any change an organizer makes is seen by the next
/// request) for two seconds at most, with tickets left live from the engine where it runs.
#[utoipa::path(get, path = "/api/v1/events/{event_id}", tag = "catalog", params(("event_id" = Uuid, Path)),
    responses((status = 200, body = EventDetail, description = "with an ETag; send it back as If-None-Match"),
              (status = 304, description = "unchanged since the ETag given"), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, request, caller))]
pub async fn get(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: MaybeCaller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event_id = *path;
    let version = super::catalog_cache::version(&state.pool).await?;
    let parts = match state.catalog.detail(event_id, version) {
        Some(parts) => parts,
        None => {
            let event = events::find_event(&state.pool, event_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
            let parts = Arc::new(load(&state, event).await?);
            state.catalog.keep_detail(event_id, version, parts.clone());
            parts
        }
    };
    let listed = parts.event.status().is_listed();
    if !listed
        && caller
            .0
            .is_none_or(|c| c.user_id != parts.event.organizer_id)
    {
        return Err(ApiError::NotFound(format!("no event {event_id}")));
    }
    let detail = view(&state, &parts).await;
    let cache = if listed {
        "public, max-age=2"
    } else {
        "private, no-cache"
    };
    super::discovery::tagged(&request, &detail, cache)
}

/// Loads an event the caller may see: listed events for all, drafts for their organizer.
pub async fn visible_event(
    state: &AppState,
    caller: MaybeCaller,
    event_id: Uuid,
) -> Result<EventRow, ApiError> {
    let event = events::find_event(&state.pool, event_id).await?;
    let is_owner = |e: &EventRow| caller.0.is_some_and(|c| c.user_id == e.organizer_id);
    event
        .filter(|e| e.status().is_listed() || is_owner(e))
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))
}

/// Everything an event's page is made of but tickets left: read together, cached together.
pub struct DetailParts {
    event: EventRow,
    venue: venues::VenueRow,
    onsale: Option<OnSaleRow>,
    tiers: Vec<events::TierRow>,
    sections: Vec<store::SectionAvailabilityRow>,
}

/// The full view of an event: venue, on-sale, sections and tiers with their counts.
pub async fn detail(state: &AppState, event: EventRow) -> Result<EventDetail, ApiError> {
    Ok(view(state, &load(state, event).await?).await)
}

async fn load(state: &AppState, event: EventRow) -> Result<DetailParts, ApiError> {
    let venue = venues::find_venue(&state.pool, event.venue_id)
        .await?
        .ok_or_else(|| {
            ApiError::Unexpected(anyhow::anyhow!("event {} has no venue", event.event_id))
        })?;
    let onsale = events::find_onsale(&state.pool, event.event_id).await?;
    let tiers = events::tiers(&state.pool, event.event_id).await?;
    let sections = store::section_availability(&state.pool, event.event_id).await?;
    Ok(DetailParts {
        event,
        venue,
        onsale,
        tiers,
        sections,
    })
}

/// The parts with tickets left: the engine's live counts where it runs here, else what
/// Postgres counted when the parts were read.
async fn view(state: &AppState, parts: &DetailParts) -> EventDetail {
    let DetailParts {
        event,
        venue,
        onsale,
        tiers: tier_rows,
        sections: section_rows,
    } = parts;
    let onsale = onsale.clone().map(OnSaleView::from);
    let tier_stock: Vec<TierStock> = tier_rows
        .iter()
        .map(|t| TierStock {
            tier_id: t.tier_id,
            section_id: t.section_id,
            quantity: t.quantity,
            sold: t.sold_quantity,
            price_cents: t.price_cents,
        })
        .collect();
    let section_stock: Vec<SectionStock> = section_rows
        .iter()
        .map(|s| SectionStock {
            section_id: s.section_id,
            kind: s.kind,
            capacity: s.capacity,
            sold: s.sold,
            blocked: s.blocked,
            price_cents: s.price_cents,
        })
        .collect();
    let live = state.engine.counts(event.event_id).await;
    let tiers_left = availability::tiers_left(&tier_stock, live.as_ref());
    let sections_left = availability::sections_left(&section_stock, &tier_stock, live.as_ref());
    let tiers: Vec<TierView> = tier_rows
        .iter()
        .zip(tiers_left)
        .map(|(t, available)| TierView {
            tier_id: t.tier_id,
            section_id: t.section_id,
            name: t.name.clone(),
            price_cents: t.price_cents,
            quantity: t.quantity,
            available,
            max_per_order: t.max_per_order,
            sale_starts_at: t.sale_starts_at,
            sale_ends_at: t.sale_ends_at,
        })
        .collect();
    let sections: Vec<SectionView> = section_rows
        .iter()
        .zip(sections_left)
        .map(|(s, left)| SectionView {
            section_id: s.section_id,
            name: s.name.clone(),
            kind: s.kind,
            price_cents: left.price_cents,
            capacity: s.capacity,
            available: left.available,
        })
        .collect();
    let min_price_cents = sections.iter().filter_map(|s| s.price_cents).min();
    let available = sections.iter().map(|s| s.available).sum();
    let refund_policy =
        crate::http::refunds::PolicyView::of(event.refund_policy(), event.start_time);
    EventDetail {
        refund_policy,
        event_id: event.event_id,
        status: event.status(),
        title: event.title.clone(),
        description: event.description.clone(),
        category: event.category.clone(),
        performers: event.performers.clone(),
        doors_open: event.doors_open,
        start_time: event.start_time,
        end_time: event.end_time,
        age_restriction: event.age_restriction,
        cover_image_url: event.cover_image_url.clone(),
        currency: event.currency.clone(),
        venue: VenueInfo {
            venue_id: venue.venue_id,
            name: venue.name.clone(),
            address: venue.address.clone(),
            city: venue.city.clone(),
            latitude: venue.latitude,
            longitude: venue.longitude,
            timezone: venue.timezone.clone(),
            venue_type: venue.venue_type.clone(),
        },
        onsale,
        sections,
        tiers,
        min_price_cents,
        available,
    }
}
