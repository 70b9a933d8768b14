//! A ticket's holder: their tickets, a ticket's QR code, transferring it to an e-mail
//! address, and its history (for the holder and the event's organizer).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Buyer, Caller};
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::AppState;
use crate::actors::orders::{qr_token, ticket_view};
use crate::domain::account::{Email, Role};
use crate::domain::tickets::{may_transfer, LedgerKind};
use crate::doors::SignedFor;
use crate::persistence::tickets::{self, TransferAsk, Transferred};
use crate::views::TicketView;

#[derive(Serialize, ToSchema)]
pub struct MyTicket {
    pub event_id: Uuid,
    pub event_title: String,
    pub order_id: Uuid,
    /// What the ticket's QR code says: a payload signed with the event's key, which door
    /// scanners check even offline (`qr_token` is accepted online too).
    pub signed_qr: String,
    #[serde(flatten)]
    pub ticket: TicketView,
}

#[derive(Serialize, ToSchema)]
pub struct TicketList {
    pub tickets: Vec<MyTicket>,
}

/// The caller's tickets: bought, or transferred to them (and those they transferred away,
/// as TRANSFERRED).
#[utoipa::path(get, path = "/api/v1/me/tickets", tag = "checkout", security(("bearer" = [])),
    responses((status = 200, body = TicketList), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let mut tickets = Vec::new();
    for held in tickets::held_by(&state.pool, caller.user_id).await? {
        let t = &held.ticket;
        let signed_qr = state
            .doors
            .signed_qr(&SignedFor {
                ticket_id: t.ticket_id,
                event_id: t.event_id,
                place_id: t.seat_id.or(t.tier_id).unwrap_or(t.section_id),
                start_time: held.start_time,
                end_time: held.end_time,
            })
            .await?;
        tickets.push(MyTicket {
            event_id: t.event_id,
            event_title: held.event_title.clone(),
            order_id: t.order_id,
            signed_qr,
            ticket: ticket_view(t),
        });
    }
    Ok(HttpResponse::Ok().json(TicketList { tickets }))
}

/// A ticket's QR code, as an SVG image: what the door scanner reads (the ticket's
/// `signed_qr`, which scanners check offline too). The ticket's holder only.
#[utoipa::path(get, path = "/api/v1/tickets/{ticket_id}/qr.svg", tag = "checkout", security(("bearer" = [])),
    params(("ticket_id" = Uuid, Path)),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn qr(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let owners = tickets::owners(&state.pool, *path, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket {}", *path)))?;
    if !owners.held {
        return Err(ApiError::Forbidden(
            "this ticket is held by someone else".into(),
        ));
    }
    let signed = state
        .doors
        .signed_qr(&SignedFor {
            ticket_id: owners.ticket_id,
            event_id: owners.event_id,
            place_id: owners.place_id,
            start_time: owners.start_time,
            end_time: owners.end_time,
        })
        .await?;
    let code = qrcode::QrCode::with_error_correction_level(signed.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "private, no-store"))
        .body(svg))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// Who gets the ticket: it appears in their tickets once they sign up or sign in with
    /// this address.
    #[schema(
        format = "email-address",
        example = "friend@example.com",
        max_length = 254
    )]
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct TransferView {
    /// The new ticket, with its own QR code; the old one is TRANSFERRED.
    pub ticket: TicketView,
}

/// Gives a ticket to someone else, once: the ticket turns TRANSFERRED (its QR code no
/// longer lets anyone in) and a new ticket with a new QR code is issued to the address.
#[utoipa::path(post, path = "/api/v1/tickets/{ticket_id}/transfer", tag = "checkout", security(("bearer" = [])),
    params(("ticket_id" = Uuid, Path)), request_body = TransferBody,
    responses((status = 201, body = TransferView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "transfer_not_allowed", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn transfer(
    state: web::Data<AppState>,
    Buyer(caller): Buyer,
    path: web::Path<Uuid>,
    body: Json<TransferBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.0.email).map_err(|why| ApiError::invalid_field("email", why))?;
    let own = crate::persistence::accounts::find_by_email(&state.pool, &email).await?;
    if own.is_some_and(|u| u.user_id == caller.user_id) {
        return Err(ApiError::invalid_field("email", "is your own address"));
    }
    let now = state.now();
    let (new_ticket_id, new_qr) = (Uuid::new_v4(), qr_token());
    let ask = TransferAsk {
        ticket_id: *path,
        from: caller.user_id,
        to_email: email.as_str(),
        new_ticket_id,
        new_qr: &new_qr,
        now,
    };
    match tickets::transfer(&state.pool, &ask, |t| may_transfer(t, now)).await? {
        Transferred::Done => {}
        Transferred::NotFound => return Err(ApiError::NotFound(format!("no ticket {}", *path))),
        Transferred::NotHolder => {
            return Err(ApiError::Forbidden(
                "this ticket is held by someone else".into(),
            ))
        }
        Transferred::Refused(why) => return Err(ApiError::conflict("transfer_not_allowed", why)),
    }
    let ticket = tickets::ticket(&state.pool, new_ticket_id)
        .await?
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("the transferred ticket is gone")))?;
    // This node's door sees it at once (others find out at their next scan of it).
    state
        .doors
        .refresh(ticket.event_id, &[*path, new_ticket_id])
        .await?;
    Ok(HttpResponse::Created().json(TransferView {
        ticket: ticket_view(&ticket),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    pub kind: LedgerKind,
    pub at: DateTime<Utc>,
    /// The holder before (an account id, or an e-mail address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ticket on the other side of a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ticket_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct History {
    pub entries: Vec<HistoryEntry>,
}

/// Everything that happened to a ticket, oldest first (append-only): for its holder and
/// the event's organizer.
#[utoipa::path(get, path = "/api/v1/tickets/{ticket_id}/history", tag = "checkout", security(("bearer" = [])),
    params(("ticket_id" = Uuid, Path)),
    responses((status = 200, body = History), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let owners = tickets::owners(&state.pool, *path, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket {}", *path)))?;
    let organizer = caller.role == Role::Organizer && owners.organizer_id == caller.user_id;
    if !owners.held && !organizer {
        return Err(ApiError::Forbidden(
            "only the ticket's holder and the event's organizer see its history".into(),
        ));
    }
    let entries = tickets::history(&state.pool, owners.ticket_id)
        .await?
        .into_iter()
        .map(|row| HistoryEntry {
            kind: row.kind,
            at: row.at,
            from: row.from_holder,
            to: row.to_holder,
            gate: row.gate,
            reason: row.reason,
            other_ticket_id: row.other_ticket,
        })
        .collect();
    Ok(HttpResponse::Ok().json(History { entries }))
}
