//! The live seat map socket. The protocol (frames, sequence rules, reconnecting) is written
//! down in `docs/live-protocol.md`.

use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::auth::MaybeCaller;
use super::catalog::visible_event;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::actors::broadcaster::hold_frame;
use crate::actors::viewer::Viewer;
use crate::domain::holds::HoldNews;

#[derive(Deserialize, IntoParams)]
pub struct LiveQuery {
    /// The number of the last snapshot or batch the client applied: it is sent what it
    /// missed since, or a fresh snapshot when that is no longer kept.
    pub since: Option<u64>,
    /// A buyer token, for the buyer's own hold news (browsers cannot set headers on a
    /// WebSocket; an `Authorization` header works too).
    pub token: Option<String>,
}

/// The event's seat map, live: a `snapshot` at once (or the batches missed since `since`),
/// then a `delta` per batch interval while seats change; with a buyer token, `hold` news
/// of the buyer's own holds. See docs/live-protocol.md.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/live", tag = "catalog",
    params(("event_id" = Uuid, Path), LiveQuery),
    responses((status = 101, description = "WebSocket"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "sale_not_open (the event is over or cancelled)", body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn live(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: MaybeCaller,
    path: web::Path<Uuid>,
    query: web::Query<LiveQuery>,
    stream: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.sale_limits.ip.check(&req)?;
    let buyer = match query.token.as_deref().map(str::trim) {
        Some(token) => Some(
            state
                .tokens
                .verify(token)
                .map_err(|_| ApiError::Unauthorized("the token is invalid or has expired".into()))?
                .sub,
        ),
        None => caller.0.map(|c| c.user_id),
    };
    let event = visible_event(&state, caller, *path).await?;
    let hub = state.engine.live_map(event.event_id).await?;
    let live = &state.settings.live;
    // The buyer's holds as they stand (where the engine runs here; a page also asks
    // `GET /me/holds`, which reaches the owner), then hold news as it happens.
    let greeting = match buyer {
        Some(buyer) => state
            .engine
            .buyer_holds(event.event_id, buyer)
            .await
            .unwrap_or_default()
            .iter()
            .map(|hold| hold_frame(&HoldNews::standing(hold)))
            .collect(),
        None => Vec::new(),
    };
    let viewer =
        Viewer::new(hub, buyer, query.since, live.viewer_queue, live.idle).with_greeting(greeting);
    ws::start(viewer, &req, stream).map_err(|e| {
        ApiError::malformed(format!("not a WebSocket upgrade: {e}"), Default::default())
    })
}
