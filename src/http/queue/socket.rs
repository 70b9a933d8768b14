//! The waiting buyer's socket: `GET /events/{id}/queue/live` upgrades to a WebSocket that
//! is sent the caller's place at once, every few seconds, and the moment the room lets
//! them in (it registers with the room to hear that) or the sale sells out or closes.
//! Where the room runs on another node, each push reads the place from there.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use super::identity;
use crate::domain::frames::{FrameBudget, Verdict};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::queue::actor::RoomNews;
use crate::queue::QueueError;
use crate::views::QueueView;

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
