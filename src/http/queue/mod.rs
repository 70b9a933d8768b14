//! Waiting-room endpoints: visitors, join, status (polled or pushed over a WebSocket),
//! claiming a visitor's place after signing in, and the organizer's controls.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{json, Did, Trail};
use super::auth::{Buyer, Organizer};
use super::error::{ApiError, ErrorBody};
use super::events::owned;
use super::extract::Json;
use super::AppState;
use crate::domain::onsale::{AdmissionInput, ProofOfWork as ProofOfWorkMode};
use crate::pow::{ChallengeView, Purpose};
use crate::queue::QueueError;

mod socket;

use crate::views::{QueueView, RoomStats};
pub use socket::{__path_live, live, LiveQuery};

/// Who is queueing: a signed-in account, or an anonymous visitor.
#[derive(Debug, Clone, Copy)]
pub struct QueueIdentity(pub Uuid);

fn identity(state: &AppState, token: &str) -> Result<Uuid, ApiError> {
    if let Ok(claims) = state.tokens.verify(token) {
        if claims.role != crate::domain::account::Role::Buyer {
            return Err(super::auth::role_not_allowed());
        }
        return Ok(claims.sub);
    }
    state.visitors.verify(token).map_err(|_| {
        ApiError::Unauthorized(
            "the token is invalid or has expired: sign in, or get a visitor token (POST /api/v1/visitors)".into(),
        )
    })
}

fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    super::auth::bearer_token(req)?.ok_or_else(|| {
        ApiError::Unauthorized(
            "a buyer or visitor token is required (POST /api/v1/visitors gives one)".into(),
        )
    })
}

fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("application state is missing")))
}

impl FromRequest for QueueIdentity {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            app_state(req).and_then(|state| Ok(QueueIdentity(identity(state, bearer(req)?)?))),
        )
    }
}

#[derive(Serialize, ToSchema)]
pub struct VisitorView {
    pub visitor_id: Uuid,
    /// Use as `Authorization: Bearer <token>` on the waiting-room endpoints.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// An anonymous identity for the waiting room: queue without an account, sign in when let
/// in, and claim the place (`POST /events/{id}/queue/claim`). Costs a solved proof-of-work
/// challenge (`GET /visitors/challenge`, sent back as `X-Proof-Of-Work`) unless the server
/// was started with `BOXOFFICE_VISITOR_PROOF_OF_WORK=false`.
#[utoipa::path(post, path = "/api/v1/visitors", tag = "waiting room",
    params(("X-Proof-Of-Work" = Option<String>, Header, description = "a solved challenge of GET /api/v1/visitors/challenge (ALTCHA's payload, JSON or base64)")),
    responses((status = 201, body = VisitorView),
              (status = 403, description = "proof_of_work_required (with a `challenge`), proof_of_work_invalid (with `reason`: malformed, other_purpose, expired, wrong, used)", body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, description = "unavailable: the proof could not be checked", body = ErrorBody)))]
pub async fn new_visitor(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.ip.check(&req)?;
    if state.pow.settings().visitors {
        match proof(&req) {
            Some(payload) => state.pow.redeem(payload, Purpose::Visitor).await?,
            None => {
                return Err(proof_required(
                    &state,
                    Purpose::Visitor,
                    QueueError::ProofRequired,
                ))
            }
        }
    }
    let (visitor_id, token, expires) = state.visitors.issue()?;
    Ok(HttpResponse::Created().json(VisitorView {
        visitor_id,
        token,
        expires_at: DateTime::from_timestamp(expires, 0).unwrap_or_default(),
    }))
}

/// The solved challenge a request carries, if any.
fn proof(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(crate::pow::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// 403 `proof_of_work_required`, with a fresh challenge to solve.
fn proof_required(state: &AppState, purpose: Purpose, error: QueueError) -> ApiError {
    let refusal = ApiError::from(error);
    match state.pow.challenge(purpose).map(serde_json::to_value) {
        Ok(Ok(challenge)) => refusal.with("challenge", challenge),
        Ok(Err(error)) => ApiError::Unexpected(error.into()),
        Err(error) => ApiError::Unexpected(error),
    }
}

/// A challenge to solve before minting a visitor token: find the number whose SHA-256
/// after the salt is `challenge` (ALTCHA's format), and send the payload as
/// `X-Proof-Of-Work` within `expires_at`.
#[utoipa::path(get, path = "/api/v1/visitors/challenge", tag = "waiting room",
    responses((status = 200, body = ChallengeView), (status = 429, body = ErrorBody)))]
pub async fn visitor_challenge(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.ip.check(&req)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(state.pow.challenge(Purpose::Visitor)?))
}

/// A challenge to solve before joining this event's waiting room, when its door asks for
/// one (the on-sale's `proof_of_work`; a join without it is answered 403
/// `proof_of_work_required` with a challenge too).
#[utoipa::path(get, path = "/api/v1/events/{event_id}/queue/challenge", tag = "waiting room",
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = ChallengeView), (status = 429, body = ErrorBody)))]
pub async fn join_challenge(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.ip.check(&req)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(state.pow.challenge(Purpose::Join(*path))?))
}

/// Takes a place in the event's waiting room; joining again returns the same place. Before
/// the sale starts, places are drawn at random when it starts; after, first in first out.
/// When the on-sale's door asks for it, a new place costs a solved challenge
/// (`X-Proof-Of-Work`; see `GET /events/{id}/queue/challenge`).
#[utoipa::path(post, path = "/api/v1/events/{event_id}/queue", tag = "waiting room", security(("bearer" = [])),
    params(("event_id" = Uuid, Path),
           ("X-Proof-Of-Work" = Option<String>, Header, description = "a solved challenge of GET /api/v1/events/{event_id}/queue/challenge")),
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 200, body = QueueView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 403, description = "role_not_allowed; proof_of_work_required (with a `challenge`); proof_of_work_invalid (with `reason`)", body = ErrorBody),
              (status = 409, description = "no_waiting_room, queue_not_open", body = ErrorBody),
              (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip(state, req))]
pub async fn join(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: QueueIdentity,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.check(&req, who.0)?;
    let purpose = Purpose::Join(*path);
    let proven = match proof(&req) {
        Some(payload) => {
            state.pow.redeem(payload, purpose).await?;
            true
        }
        None => false,
    };
    match state.rooms.join(*path, who.0, proven).await {
        Ok(place) => Ok(HttpResponse::Ok().json(place)),
        Err(QueueError::ProofRequired) => {
            Err(proof_required(&state, purpose, QueueError::ProofRequired))
        }
        Err(error) => Err(error.into()),
    }
}

/// The caller's place: position, number ahead and estimated wait; or the admission token
/// once let in. Polling keeps the place (one left unpolled and unwatched is dropped).
#[utoipa::path(get, path = "/api/v1/events/{event_id}/queue", tag = "waiting room", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 200, body = QueueView), (status = 401, body = ErrorBody),
              (status = 404, description = "not_found, not_in_queue", body = ErrorBody),
              (status = 409, description = "no_waiting_room", body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip(state, req))]
pub async fn status(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: QueueIdentity,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.check(&req, who.0)?;
    Ok(HttpResponse::Ok().json(state.rooms.status(*path, who.0).await?))
}

/// Leaves the waiting room: a waiting buyer gives up their place, an admitted one ends their
/// shopping session (its admission token stops working, and a hold it placed can no longer
/// be paid for), so the room can let the next buyer in. Pages call it when the buyer is
/// done or gives up.
#[utoipa::path(delete, path = "/api/v1/events/{event_id}/queue", tag = "waiting room", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 204, description = "left"), (status = 401, body = ErrorBody),
              (status = 404, description = "not_found, not_in_queue", body = ErrorBody),
              (status = 409, description = "no_waiting_room", body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip(state, req))]
pub async fn leave(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: QueueIdentity,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.check(&req, who.0)?;
    state.rooms.leave(*path, who.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// The visitor token that holds the place.
    #[schema(format = "token", example = "eyJ0eXAiOiJKV1Qi...")]
    pub visitor_token: String,
}

/// Moves a visitor's place (or admission) to the signed-in buyer, who keeps the better of
/// the two if they queued as well.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/queue/claim", tag = "waiting room", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = ClaimBody,
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 200, body = QueueView), (status = 401, body = ErrorBody),
              (status = 404, description = "not_in_queue", body = ErrorBody),
              (status = 409, description = "claim_too_late, no_waiting_room", body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip(state, req, body))]
pub async fn claim(
    state: web::Data<AppState>,
    req: HttpRequest,
    Buyer(caller): Buyer,
    path: web::Path<Uuid>,
    body: Json<ClaimBody>,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.check(&req, caller.user_id)?;
    let visitor = state
        .visitors
        .verify(body.0.visitor_token.trim())
        .map_err(|_| ApiError::invalid_field("visitor_token", "not a valid visitor token"))?;
    Ok(HttpResponse::Ok().json(state.rooms.claim(*path, visitor, caller.user_id).await?))
}

/// The admission token a hold or checkout carries, if any.
pub fn admission_token(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("x-admission-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The waiting room's figures, live.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/queue/stats", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 200, body = RoomStats), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "no_waiting_room", body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn stats(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    Ok(HttpResponse::Ok().json(state.rooms.stats(event.event_id).await?))
}

/// What to change; a field left out (or null) stays as it is, and an empty body changes
/// nothing (the room's figures come back).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmissionControls {
    pub paused: Option<bool>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub admission_per_minute: Option<i64>,
    /// `off`, `always` or `auto`: whether a new join needs a solved proof of work.
    #[schema(value_type = Option<ProofOfWorkMode>)]
    pub proof_of_work: Option<String>,
    /// For `auto`: new buyers a minute above which proofs are asked.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub proof_of_work_joins_per_minute: Option<i64>,
}

/// Pauses or resumes admission, changes its rate, or the door (proof of work), at once and
/// for the rest of the sale; answers with the room's figures.
#[utoipa::path(patch, path = "/api/v1/events/{event_id}/queue", tag = "organizer", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = AdmissionControls,
    responses((status = 503, description = "owner_unavailable (with Retry-After): the on-sale is changing nodes; retry", body = ErrorBody), (status = 200, body = RoomStats), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "no_waiting_room", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn control(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<AdmissionControls>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let AdmissionControls {
        paused,
        admission_per_minute,
        proof_of_work,
        proof_of_work_joins_per_minute,
    } = body.0;
    let input = AdmissionInput {
        paused,
        admission_per_minute,
        proof_of_work,
        proof_of_work_joins_per_minute,
    };
    let changed = state.rooms.change_admission(event.event_id, &input).await?;
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(
                event.event_id,
                "waiting_room",
                None,
                "waiting_room.controlled",
            )
            .changed(None, json(&changed)),
        )
        .await;
    Ok(HttpResponse::Ok().json(changed))
}
