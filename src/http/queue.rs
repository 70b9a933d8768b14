//! Waiting-room endpoints: visitors, join, status (polled or pushed over a WebSocket),
//! claiming a visitor's place after signing in, and the organizer's controls.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{Buyer, Organizer};
use super::error::{ApiError, ErrorBody};
use super::events::owned;
use super::extract::Json;
use super::AppState;
use crate::domain::frames::{FrameBudget, Verdict};
use crate::domain::onsale::ProofOfWork as ProofOfWorkMode;
use crate::persistence::events as store;
use crate::persistence::onsale;
use crate::pow::{ChallengeView, Purpose};
use crate::queue::actor::RoomNews;
use crate::queue::QueueError;
use crate::views::{QueueView, RoomStats};

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
    req.headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "a buyer or visitor token is required (POST /api/v1/visitors gives one)".into(),
            )
        })?
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
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
    path: web::Path<Uuid>,
    body: Json<AdmissionControls>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let controls = body.0;
    let mut errors = crate::domain::FieldErrors::new();
    let rate = controls.admission_per_minute.and_then(|rate| {
        let valid = i32::try_from(rate)
            .ok()
            .filter(|r| (1..=crate::domain::onsale::MAX_ADMISSION_PER_MINUTE as i32).contains(r));
        errors.check(
            valid.is_some(),
            "admission_per_minute",
            format!(
                "must be between 1 and {}",
                crate::domain::onsale::MAX_ADMISSION_PER_MINUTE
            ),
        );
        valid
    });
    let door_changes =
        controls.proof_of_work.is_some() || controls.proof_of_work_joins_per_minute.is_some();
    if !state.rooms.has_room(event.event_id).await? {
        return Err(QueueError::NoWaitingRoom.into());
    }
    let door = match door_changes {
        true => {
            let current = store::find_onsale(&state.pool, event.event_id)
                .await?
                .map(|o| o.door())
                .unwrap_or_default();
            Some(current.changed(
                controls.proof_of_work.as_deref(),
                controls.proof_of_work_joins_per_minute,
                "",
                &mut errors,
            ))
        }
        false => None,
    };
    errors.finish(()).map_err(ApiError::invalid)?;
    onsale::set_admission(&state.pool, event.event_id, controls.paused, rate, door).await?;
    let stats = state
        .rooms
        .control(
            event.event_id,
            controls.paused,
            rate.map(|r| r.unsigned_abs()),
            door,
        )
        .await?;
    Ok(HttpResponse::Ok().json(stats))
}

#[derive(Deserialize, IntoParams)]
pub struct LiveQuery {
    /// The buyer or visitor token (browsers cannot set headers on a WebSocket).
    pub token: String,
}

/// The caller's place, pushed: a `queue` message at once, every few seconds, and the moment
/// they are let in (with the token) or the sale sells out or closes. An open socket keeps
/// the place. Messages: `{"type": "queue", ...QueueView}` and `{"type": "error", "error":
/// {code, message}}`.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/queue/live", tag = "waiting room",
    params(("event_id" = Uuid, Path), LiveQuery),
    responses((status = 101, description = "WebSocket"), (status = 401, body = ErrorBody),
              (status = 403, description = "role_not_allowed (an account that is not a buyer's)", body = ErrorBody),
              (status = 409, description = "no_waiting_room", body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn live(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    query: web::Query<LiveQuery>,
    stream: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = identity(&state, query.token.trim())?;
    state.sale_limits.check(&req, who)?;
    let event_id = *path;
    if !state.rooms.has_room(event_id).await? {
        return Err(QueueError::NoWaitingRoom.into());
    }
    let socket = QueueSocket {
        push_every: state.settings.queue_push_every,
        state: state.clone(),
        event_id,
        who,
        token: query.token.trim().to_owned(),
        remote: false,
        frames: FrameBudget::new(Instant::now()),
        watch: None,
        last_heard: Instant::now(),
    };
    ws::start(socket, &req, stream).map_err(|e| {
        ApiError::malformed(format!("not a WebSocket upgrade: {e}"), Default::default())
    })
}

const HEARTBEAT: Duration = Duration::from_secs(10);
const SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// One waiting buyer's socket.
struct QueueSocket {
    state: web::Data<AppState>,
    event_id: Uuid,
    who: Uuid,
    /// The caller's token, for asking the owner when the room runs on another node.
    token: String,
    /// The room runs on another node: the place is read from it on each push.
    remote: bool,
    /// Text frames ask for a push: a few a second at most.
    frames: FrameBudget,
    push_every: Duration,
    /// The watcher's id once registered with the room.
    watch: Option<u64>,
    last_heard: Instant,
}

#[derive(Serialize)]
struct Pushed<'a> {
    r#type: &'static str,
    #[serde(flatten)]
    view: &'a QueueView,
}

impl QueueSocket {
    fn send_result(
        &self,
        result: Result<QueueView, QueueError>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let text = match result {
            Ok(view) => serde_json::to_string(&Pushed {
                r#type: "queue",
                view: &view,
            }),
            Err(error) => serde_json::to_string(&serde_json::json!({
                "type": "error",
                "error": ApiError::from(error).body(),
            })),
        };
        match text {
            Ok(text) => ctx.text(text),
            Err(error) => tracing::error!(%error, "could not encode a queue message"),
        }
    }

    fn push(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let (state, event_id, who) = (self.state.clone(), self.event_id, self.who);
        if self.remote && state.engine.cluster().token(event_id).is_some() {
            // This node took the on-sale over: watch the room here from now on.
            self.remote = false;
            self.watch_room(ctx);
        }
        if self.remote {
            let token = self.token.clone();
            ctx.spawn(
                async move { state.forwarder.queue_status(&state, event_id, &token).await }
                    .into_actor(self)
                    .map(|text, _, ctx| ctx.text(text)),
            );
            return;
        }
        ctx.spawn(
            async move { state.rooms.status(event_id, who).await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    // The room runs on another node: ask it.
                    Err(QueueError::OwnerUnavailable) => {
                        act.remote = true;
                        act.push(ctx);
                    }
                    result => act.send_result(result, ctx),
                }),
        );
    }

    /// Registers with the room to hear of an admission at once; where the room runs on
    /// another node, reads the place from there on each push instead.
    fn watch_room(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let (state, event_id, who) = (self.state.clone(), self.event_id, self.who);
        let recipient = ctx.address().recipient::<RoomNews>();
        ctx.wait(
            async move { state.rooms.watch(event_id, who, recipient).await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(watch) => act.watch = Some(watch),
                    Err(QueueError::OwnerUnavailable) => act.remote = true,
                    Err(error) => {
                        act.send_result(Err(error), ctx);
                        ctx.stop();
                    }
                }),
        );
    }
}

impl Actor for QueueSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.watch_room(ctx);
        self.push(ctx);
        ctx.run_interval(self.push_every, |act, ctx| act.push(ctx));
        ctx.run_interval(HEARTBEAT, |act, ctx| {
            if act.last_heard.elapsed() > SILENCE_LIMIT {
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(id) = self.watch {
            self.state.rooms.unwatch(self.event_id, self.who, id);
        }
    }
}

impl Handler<RoomNews> for QueueSocket {
    type Result = ();

    fn handle(&mut self, news: RoomNews, ctx: &mut Self::Context) {
        let view =
            self.state
                .rooms
                .view(self.event_id, self.who, news.standing, news.sale_starts_at);
        self.send_result(view, ctx);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for QueueSocket {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Text(_)) => match self.frames.frame(Instant::now()) {
                Verdict::Serve => self.push(ctx),
                Verdict::Ignore => {}
                Verdict::Close => {
                    ctx.close(Some(ws::CloseReason {
                        code: ws::CloseCode::Policy,
                        description: Some("too many messages".into()),
                    }));
                    ctx.stop();
                }
            },
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}
