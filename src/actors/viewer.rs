//! The viewer: one per live seat-map socket. It joins the event's broadcaster (which answers
//! with a snapshot or the batches missed since `since`), writes whatever the broadcaster
//! pushes, answers pings and pings back, and closes when the client falls silent.
//!
//! Its mailbox is bounded (`LiveConfig::viewer_queue`): the broadcaster never queues more
//! than that for one socket, and a socket whose client does not read stops being polled,
//! so its mailbox fills and the broadcaster treats it as behind.

use bytestring::ByteString;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;
use uuid::Uuid;

use super::broadcaster::{Broadcaster, Join, Joined, Leave, Push, Resync};
use crate::domain::frames::{FrameBudget, Verdict};

pub struct Viewer {
    hub: Addr<Broadcaster>,
    buyer: Option<Uuid>,
    since: Option<u64>,
    queue: usize,
    idle: Duration,
    id: Option<u64>,
    /// Frames written after the join's (the buyer's holds as they stood at connect).
    greeting: Vec<ByteString>,
    last_heard: Instant,
    /// `resync` frames ask for a snapshot: a few a second at most.
    frames: FrameBudget,
}

impl Viewer {
    pub fn new(
        hub: Addr<Broadcaster>,
        buyer: Option<Uuid>,
        since: Option<u64>,
        queue: usize,
        idle: Duration,
    ) -> Viewer {
        Viewer {
            hub,
            buyer,
            since,
            queue,
            idle,
            id: None,
            greeting: Vec::new(),
            last_heard: Instant::now(),
            frames: FrameBudget::new(Instant::now()),
        }
    }

    /// Writes `frames` after the join's: the buyer's holds as they stand, so a page that
    /// was reloaded gets its countdown back.
    pub fn with_greeting(mut self, frames: Vec<ByteString>) -> Viewer {
        self.greeting = frames;
        self
    }

    fn write(frame: &ByteString, ctx: &mut ws::WebsocketContext<Self>) {
        ctx.text(frame.clone());
    }

    fn close(reason: &'static str, ctx: &mut ws::WebsocketContext<Self>) {
        let code = match reason {
            "too_slow" => ws::CloseCode::Policy,
            "restarting" => ws::CloseCode::Restart,
            _ => ws::CloseCode::Normal,
        };
        ctx.close(Some(ws::CloseReason {
            code,
            description: Some(reason.to_owned()),
        }));
        ctx.stop();
    }
}

impl Actor for Viewer {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.queue.max(1));
        let join = Join {
            viewer: ctx.address().recipient(),
            buyer: self.buyer,
            since: self.since,
        };
        ctx.wait(
            self.hub
                .send(join)
                .into_actor(self)
                .map(|joined, act, ctx| match joined {
                    Ok(Joined::Frames { id, frames }) => {
                        act.id = Some(id);
                        for frame in frames.iter().chain(&std::mem::take(&mut act.greeting)) {
                            Self::write(frame, ctx);
                        }
                    }
                    Ok(Joined::Closed(reason)) => Self::close(reason, ctx),
                    Err(_) => Self::close("restarting", ctx),
                }),
        );
        let every = (self.idle / 3).max(Duration::from_millis(100));
        ctx.run_interval(every, |act, ctx| {
            if act.last_heard.elapsed() > act.idle {
                Self::close("idle", ctx);
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(id) = self.id {
            self.hub.do_send(Leave { id });
        }
    }
}

impl Handler<Push> for Viewer {
    type Result = ();

    fn handle(&mut self, push: Push, ctx: &mut Self::Context) {
        match push {
            Push::Frame(frame) => Self::write(&frame, ctx),
            Push::Close(reason) => Self::close(reason, ctx),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Viewer {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            // `{"type":"resync"}` (or any text): the client wants a fresh snapshot.
            Ok(ws::Message::Text(_)) => match self.frames.frame(Instant::now()) {
                Verdict::Serve => {
                    if let Some(id) = self.id {
                        self.hub.do_send(Resync { id });
                    }
                }
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
