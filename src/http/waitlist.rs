//! Waitlists: a buyer joins the waitlist of a sold-out tier or section, sees their place,
//! leaves; and sees the offers made to them (exclusive holds of tickets that came back).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Buyer, Caller};
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::AppState;
use crate::domain::event::EventStatus;
use crate::domain::holds::{WaitFor, Waiter};
use crate::domain::venue::SectionKind;
use crate::domain::FieldErrors;
use crate::persistence::{events, waitlist, WriteError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    /// A general-admission tier of the event (or `section_id`, not both).
    pub tier_id: Option<Uuid>,
    /// A seated section of the event (or `tier_id`, not both).
    pub section_id: Option<Uuid>,
    /// Tickets wanted together (1 to the on-sale's per-order limit).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub entry_id: Uuid,
    /// 1 is next.
    pub position: i64,
    /// `WAITING`, or `OFFERED` (see `GET /api/v1/me/offers`).
    pub status: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Target {
    pub tier_id: Option<Uuid>,
    pub section_id: Option<Uuid>,
}

fn wants(tier_id: Option<Uuid>, section_id: Option<Uuid>) -> Result<WaitFor, ApiError> {
    match (tier_id, section_id) {
        (Some(tier), None) => Ok(WaitFor::Tier(tier)),
        (None, Some(section)) => Ok(WaitFor::Section(section)),
        _ => Err(ApiError::invalid(FieldErrors::single(
            "tier_id",
            "name exactly one of tier_id and section_id",
        ))),
    }
}

/// Joins the waitlist of a sold-out tier or seated section. When tickets of it come back
/// (a refund, a hold that ended while nobody waits in the line), the first waiter whose
/// quantity fits gets an offer: an exclusive hold for the on-sale's offer window (30
/// minutes unless the organizer says otherwise), bought like any hold. One entry per buyer
/// per tier or section.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/waitlist", tag = "checkout", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = JoinBody,
    responses((status = 201, body = EntryView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "already_waiting (joined already), not_sold_out (tickets are on sale: buy them), sale_not_open", body = ErrorBody),
              (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, description = "owner_unavailable", body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn join(
    state: web::Data<AppState>,
    Buyer(caller): Buyer,
    path: web::Path<Uuid>,
    body: Json<JoinBody>,
) -> Result<HttpResponse, ApiError> {
    let event_id = *path;
    let body = body.0;
    let wants = wants(body.tier_id, body.section_id)?;
    let event = events::find_event(&state.pool, event_id)
        .await?
        .filter(|e| e.status() != EventStatus::Draft)
        .ok_or_else(|| ApiError::NotFound("no such event".into()))?;
    if !matches!(
        event.status(),
        EventStatus::Published | EventStatus::OnSale | EventStatus::SoldOut
    ) {
        return Err(ApiError::conflict(
            "sale_not_open",
            format!("the event is {}", event.status().as_str()),
        ));
    }
    let onsale = events::find_onsale(&state.pool, event_id)
        .await?
        .ok_or_else(|| ApiError::conflict("sale_not_open", "the event has no on-sale"))?;
    let max = i64::from(onsale.max_per_order);
    if !(1..=max).contains(&body.quantity) {
        return Err(ApiError::invalid_field(
            "quantity",
            format!("must be from 1 to {max}"),
        ));
    }
    if let WaitFor::Section(id) = wants {
        // Standing sections are waited for by their tiers.
        let seated = crate::persistence::catalog::section_availability(&state.pool, event_id)
            .await?
            .iter()
            .any(|s| {
                s.section_id == id && s.kind == SectionKind::Seated && s.price_cents.is_some()
            });
        if !seated {
            return Err(ApiError::invalid_field(
                "section_id",
                "not a seated section on sale in this event (wait for a tier of a standing one)",
            ));
        }
    }
    let counts = state.engine.live_counts(event_id).await?;
    let free = match wants {
        WaitFor::Tier(id) => counts.tiers.iter().find(|(t, _)| *t == id).map(|(_, n)| *n),
        WaitFor::Section(id) => counts
            .sections
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, n)| *n),
    };
    match free {
        None => {
            let field = match wants {
                WaitFor::Tier(_) => "tier_id",
                WaitFor::Section(_) => "section_id",
            };
            return Err(ApiError::invalid_field(
                field,
                "not a tier or seated section on sale in this event",
            ));
        }
        Some(n) if n > 0 => {
            return Err(ApiError::conflict(
                "not_sold_out",
                format!("{n} tickets are on sale: hold them instead"),
            ))
        }
        Some(_) => {}
    }
    let waiter = Waiter {
        entry_id: Uuid::new_v4(),
        buyer_id: caller.user_id,
        wants,
        quantity: u32::try_from(body.quantity).unwrap_or(1),
    };
    let position = match waitlist::join(&state.pool, event_id, &waiter, state.now()).await {
        Ok(position) => position,
        Err(WriteError::Conflict(_)) => {
            return Err(ApiError::conflict(
                "already_waiting",
                "you are on this waitlist already",
            ))
        }
        Err(WriteError::Other(error)) => return Err(error.into()),
    };
    state.engine.notify_inbox(event_id).await;
    Ok(HttpResponse::Created().json(EntryView {
        entry_id: waiter.entry_id,
        position,
        status: "WAITING".into(),
    }))
}

/// The caller's place on the waitlist of a tier or section.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/waitlist", tag = "checkout", security(("bearer" = [])),
    params(("event_id" = Uuid, Path), Target),
    responses((status = 200, body = EntryView), (status = 401, body = ErrorBody),
              (status = 404, description = "not on this waitlist", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn place(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<Target>,
) -> Result<HttpResponse, ApiError> {
    let wants = wants(query.tier_id, query.section_id)?;
    let (entry_id, status, position) = waitlist::mine(&state.pool, *path, caller.user_id, wants)
        .await?
        .ok_or_else(|| ApiError::NotFound("you are not on this waitlist".into()))?;
    Ok(HttpResponse::Ok().json(EntryView {
        entry_id,
        position,
        status,
    }))
}

/// Leaves the waitlist of a tier or section (declining an offer, which then passes on).
#[utoipa::path(delete, path = "/api/v1/events/{event_id}/waitlist", tag = "checkout", security(("bearer" = [])),
    params(("event_id" = Uuid, Path), Target),
    responses((status = 204), (status = 401, body = ErrorBody),
              (status = 404, description = "not on this waitlist", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn leave(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<Target>,
) -> Result<HttpResponse, ApiError> {
    let wants = wants(query.tier_id, query.section_id)?;
    waitlist::leave(&state.pool, *path, caller.user_id, wants, state.now())
        .await?
        .ok_or_else(|| ApiError::NotFound("you are not on this waitlist".into()))?;
    state.engine.notify_inbox(*path).await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    pub offer_id: Uuid,
    pub event_id: Uuid,
    /// Check out with `POST /api/v1/holds/{hold_id}/checkout` (no admission token needed).
    pub hold_id: Uuid,
    pub quantity: i64,
    pub tier_id: Option<Uuid>,
    pub section_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferList {
    pub offers: Vec<OfferView>,
}

/// The caller's open waitlist offers, soonest to end first.
#[utoipa::path(get, path = "/api/v1/me/offers", tag = "checkout", security(("bearer" = [])),
    responses((status = 200, body = OfferList), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn offers(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let offers = waitlist::offers_of(&state.pool, caller.user_id, state.now())
        .await?
        .into_iter()
        .map(|o| OfferView {
            offer_id: o.entry_id,
            event_id: o.event_id,
            hold_id: o.hold_id,
            quantity: i64::from(o.quantity),
            tier_id: o.tier_id,
            section_id: o.section_id,
            expires_at: o.offer_expires_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(OfferList { offers }))
}
