//! The broadcaster: one per event per node, between the actors that change seats and the
//! viewers' sockets.
//!
//! On the node that runs the event's on-sale engine it is the *source*: section and event
//! actors tell it every seat and tier change, it cuts them into one numbered batch per
//! interval, keeps the last batches in a ring for viewers that reconnect, and sends each
//! batch, encoded once, to every viewer. With Redis configured it also publishes each batch
//! (and the snapshot it leads to) for the other nodes. On any other node it is a
//! *follower*: it relays the source's batches from Redis to its own viewers, with the same
//! sequence numbers.
//!
//! A viewer is sent frames with `try_send` into its bounded mailbox. One that cannot keep
//! up misses batches and is sent a fresh snapshot as soon as it has room again; one that
//! stays behind too long is disconnected. So a viewer that never reads costs a bounded
//! amount of memory whatever happens on the map.
//!
//! This module holds what both roles share: the viewers and how frames reach them, the
//! ring they catch up from, and the messages; `source` and `follower` hold each role's
//! own work.

use bytestring::ByteString;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

mod follower;
mod source;

use super::live_bus::LiveBus;
use crate::domain::holds::{HoldEvent, HoldNews};
use crate::domain::live_map::{Delta, LiveMap, Snapshot};
use crate::domain::live_ring::Ring;
use crate::domain::seat_board::Seat;
use crate::metrics::figures;

/// Settings of the live seat map.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// How often a batch of changes is cut and sent.
    pub batch: Duration,
    /// How many batches are kept for viewers that reconnect.
    pub ring: usize,
    /// How many frames may wait for one viewer before it counts as behind.
    pub viewer_queue: usize,
    /// A viewer that has not been heard from (pong or message) for this long is closed.
    pub idle: Duration,
    /// A viewer behind for this long is disconnected.
    pub slow_limit: Duration,
    /// How long before a hold's deadline its holder is warned.
    pub hold_warning: chrono::Duration,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            batch: Duration::from_millis(100),
            ring: 600,
            viewer_queue: 32,
            idle: Duration::from_secs(30),
            slow_limit: Duration::from_secs(30),
            hold_warning: chrono::Duration::seconds(60),
        }
    }
}

/// What a viewer's socket is sent.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum Push {
    /// A JSON text frame, encoded once for every viewer.
    Frame(ByteString),
    /// Close the socket, with this reason.
    Close(&'static str),
}

/// Seats of one section changed (sent by its section actor after each change).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SeatsChanged {
    pub section: usize,
    pub changes: Vec<(u32, Seat)>,
}

/// A GA tier's counts changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TierChanged {
    pub tier: usize,
    pub counts: crate::domain::live_map::TierCounts,
}

impl Message for HoldNews {
    type Result = ();
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Frame<'a> {
    Snapshot(&'a Snapshot),
    Delta(&'a Delta),
    Hold {
        hold_id: Uuid,
        status: HoldEvent,
        expires_at: DateTime<Utc>,
        #[serde(skip_serializing_if = "Option::is_none")]
        order_id: Option<Uuid>,
    },
}

/// The `hold` frame telling a buyer where one of their holds stands.
pub fn hold_frame(news: &HoldNews) -> ByteString {
    encode(&Frame::Hold {
        hold_id: news.hold_id,
        status: news.status,
        expires_at: news.expires_at,
        order_id: news.order_id,
    })
}

fn encode(frame: &Frame<'_>) -> ByteString {
    match serde_json::to_string(frame) {
        Ok(text) => text.into(),
        Err(error) => {
            tracing::error!(%error, "could not encode a live-map frame");
            ByteString::from_static("{}")
        }
    }
}

/// A viewer joins: it is answered with the frames that bring it up to date (the batches it
/// missed since `since`, or a snapshot and what followed it).
#[derive(Message)]
#[rtype(result = "Joined")]
pub struct Join {
    pub viewer: Recipient<Push>,
    pub buyer: Option<Uuid>,
    pub since: Option<u64>,
}

#[derive(MessageResponse)]
pub enum Joined {
    Frames { id: u64, frames: Vec<ByteString> },
    Closed(&'static str),
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub id: u64,
}

/// A viewer asks for a fresh snapshot (it thinks it missed something).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync {
    pub id: u64,
}

/// The event is over or cancelled: viewers are told and the broadcaster stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseLive(pub &'static str);

/// Live figures of one broadcaster.
#[derive(Message)]
#[rtype(result = "LiveStats")]
pub struct GetStats;

#[derive(Debug, Clone, Default, Serialize, MessageResponse)]
pub struct LiveStats {
    pub seq: u64,
    pub viewers: usize,
    pub behind: usize,
    pub batches: u64,
    pub frames_dropped: u64,
    pub resyncs: u64,
    pub disconnected_slow: u64,
}

struct Viewer {
    recipient: Recipient<Push>,
    buyer: Option<Uuid>,
    /// Since when the viewer has been missing batches (it is owed a snapshot).
    behind_since: Option<Instant>,
}

enum Feed {
    /// This node runs the event's engine: the map is here.
    Source(LiveMap),
    /// Another node does: batches come from Redis.
    Follower {
        /// The node whose batches are followed (from the last snapshot read).
        node: Option<String>,
        fetching: bool,
        /// When the last viewer left (followers stop once idle for a while).
        idle_since: Option<Instant>,
    },
}

pub struct Broadcaster {
    event_id: Uuid,
    config: LiveConfig,
    feed: Feed,
    bus: Option<LiveBus>,
    /// The last batches, oldest first, numbered without a gap.
    ring: Ring<ByteString>,
    /// The snapshot frame and its number.
    snapshot: Option<(u64, ByteString)>,
    viewers: HashMap<u64, Viewer>,
    buyers: HashMap<Uuid, Vec<u64>>,
    next_id: u64,
    closed: Option<&'static str>,
    stats: LiveStats,
    /// Whether a source stored its first snapshot in Redis yet.
    snapshot_stored: bool,
    /// Viewers and viewers behind as last added to `/metrics` (the node-wide gauges are
    /// moved by each broadcaster's change since).
    reported: (i64, i64),
    /// When the first change since the last batch came (for the delta-delay histogram).
    pub(super) changed_since: Option<Instant>,
}

/// A follower with no viewer for this long stops.
const FOLLOWER_IDLE: Duration = Duration::from_secs(60);
/// A follower reads a fresh snapshot once its own is this many batches old.
const SNAPSHOT_REFRESH: u64 = 50;

impl Broadcaster {
    /// The source of an event's live map, this node running its engine.
    pub fn source(
        event_id: Uuid,
        map: LiveMap,
        config: LiveConfig,
        bus: Option<LiveBus>,
    ) -> Broadcaster {
        Self::with_feed(event_id, Feed::Source(map), config, bus)
    }

    /// A relay of the batches another node publishes.
    pub fn follower(event_id: Uuid, config: LiveConfig, bus: LiveBus) -> Broadcaster {
        let feed = Feed::Follower {
            node: None,
            fetching: false,
            idle_since: None,
        };
        Self::with_feed(event_id, feed, config, Some(bus))
    }

    fn with_feed(
        event_id: Uuid,
        feed: Feed,
        config: LiveConfig,
        bus: Option<LiveBus>,
    ) -> Broadcaster {
        let ring = Ring::new(config.ring);
        Broadcaster {
            event_id,
            ring,
            config,
            feed,
            bus,
            snapshot: None,
            viewers: HashMap::new(),
            buyers: HashMap::new(),
            next_id: 0,
            closed: None,
            stats: LiveStats::default(),
            snapshot_stored: false,
            reported: (0, 0),
            changed_since: None,
        }
    }

    /// The number of the newest state this node knows.
    fn seq(&self) -> u64 {
        match &self.feed {
            Feed::Source(map) => map.seq(),
            Feed::Follower { .. } => {
                let ring = self.ring.newest();
                let snapshot = self.snapshot.as_ref().map(|(seq, _)| *seq);
                ring.max(snapshot).unwrap_or(0)
            }
        }
    }

    /// What brings a viewer that last saw `since` up to date: what it missed when the ring
    /// still has it all, otherwise a snapshot and the batches after it. Empty when there is
    /// nothing to send yet (a follower still reading its snapshot).
    fn catch_up(&mut self, since: Option<u64>) -> Vec<ByteString> {
        if let Some(frames) = self.ring.missed(since, self.seq()) {
            return frames;
        }
        match self.source_snapshot() {
            Some((at, snapshot)) => self.ring.from_snapshot(at, snapshot),
            None => Vec::new(),
        }
    }

    fn remember(&mut self, seq: u64, frame: ByteString) {
        self.ring.push(seq, frame);
    }

    /// Sends a batch to every viewer that keeps up; the others are owed a snapshot.
    fn fan_out(&mut self, frame: &ByteString) {
        let now = Instant::now();
        let mut gone = Vec::new();
        let (mut sent, mut dropped) = (0u64, 0u64);
        for (id, viewer) in &mut self.viewers {
            if viewer.behind_since.is_some() {
                continue;
            }
            match viewer.recipient.try_send(Push::Frame(frame.clone())) {
                Ok(()) => sent += 1,
                Err(SendError::Full(_)) => {
                    viewer.behind_since = Some(now);
                    self.stats.frames_dropped += 1;
                    dropped += 1;
                }
                Err(SendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            self.remove(id);
        }
        let f = figures();
        f.live_frames_sent.inc_by(sent);
        f.live_bytes_sent.inc_by(sent * frame.len() as u64);
        f.live_frames_dropped.inc_by(dropped);
    }

    /// Moves the node's viewer gauges by this broadcaster's change since the last report.
    fn report(&mut self) {
        let viewers = self.viewers.len() as i64;
        let behind = self
            .viewers
            .values()
            .filter(|v| v.behind_since.is_some())
            .count() as i64;
        let f = figures();
        f.live_viewers.add(viewers - self.reported.0);
        f.live_viewers_behind.add(behind - self.reported.1);
        self.reported = (viewers, behind);
    }

    /// Viewers owed a snapshot get one when they have room; those behind too long go.
    fn tend_behind(&mut self) {
        let behind: Vec<u64> = self
            .viewers
            .iter()
            .filter(|(_, v)| v.behind_since.is_some())
            .map(|(id, _)| *id)
            .collect();
        if behind.is_empty() {
            return;
        }
        let frames = self.catch_up(None);
        if frames.is_empty() {
            return;
        }
        let now = Instant::now();
        for id in behind {
            let Some(viewer) = self.viewers.get_mut(&id) else {
                continue;
            };
            let since = viewer.behind_since.unwrap_or(now);
            let mut sent = true;
            for frame in &frames {
                match viewer.recipient.try_send(Push::Frame(frame.clone())) {
                    Ok(()) => {}
                    Err(SendError::Full(_)) => {
                        sent = false;
                        break;
                    }
                    Err(SendError::Closed(_)) => {
                        self.remove(id);
                        sent = false;
                        break;
                    }
                }
            }
            let Some(viewer) = self.viewers.get_mut(&id) else {
                continue;
            };
            if sent {
                viewer.behind_since = None;
                self.stats.resyncs += 1;
                figures().live_resyncs.inc();
            } else if now.duration_since(since) > self.config.slow_limit {
                viewer.recipient.do_send(Push::Close("too_slow"));
                self.remove(id);
                self.stats.disconnected_slow += 1;
                figures().live_disconnected_slow.inc();
            }
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(viewer) = self.viewers.remove(&id) else {
            return;
        };
        if let Some(buyer) = viewer.buyer {
            if let Some(ids) = self.buyers.get_mut(&buyer) {
                ids.retain(|v| *v != id);
                if ids.is_empty() {
                    self.buyers.remove(&buyer);
                }
            }
        }
        if self.viewers.is_empty() {
            if let Feed::Follower { idle_since, .. } = &mut self.feed {
                *idle_since = Some(Instant::now());
            }
        }
    }

    /// Sends a frame to the sockets of one buyer on this node.
    fn tell_buyer(&self, buyer: Uuid, frame: &ByteString) {
        for id in self.buyers.get(&buyer).into_iter().flatten() {
            if let Some(viewer) = self.viewers.get(id) {
                // Hold news is rare and must not be lost to a full queue.
                viewer.recipient.do_send(Push::Frame(frame.clone()));
            }
        }
    }

    /// The source's beat: cut and send a batch, tend slow viewers, renew the claim.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if let Feed::Source(map) = &mut self.feed {
            if let Some(delta) = map.cut() {
                self.send_batch(&delta);
            }
            self.store_first_snapshot();
        }
        self.tend_behind();
        self.report();
        if let Feed::Follower {
            idle_since: Some(since),
            ..
        } = &self.feed
        {
            if self.viewers.is_empty() && since.elapsed() > FOLLOWER_IDLE {
                ctx.stop();
            }
        }
    }
}

impl Actor for Broadcaster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(65_536);
        ctx.run_interval(self.config.batch, |act, ctx| act.tick(ctx));
        self.fetch_snapshot(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        for viewer in self.viewers.values() {
            viewer
                .recipient
                .do_send(Push::Close(self.closed.unwrap_or("restarting")));
        }
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // Its viewers are gone with it.
        self.viewers.clear();
        self.report();
    }
}

impl Handler<Join> for Broadcaster {
    type Result = Joined;

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) -> Joined {
        if let Some(reason) = self.closed {
            return Joined::Closed(reason);
        }
        let id = self.next_id;
        self.next_id += 1;
        let frames = self.catch_up(msg.since);
        // A follower that has no snapshot yet owes the viewer one.
        let owed = frames.is_empty() && msg.since.is_none_or(|s| s != self.seq());
        self.viewers.insert(
            id,
            Viewer {
                recipient: msg.viewer,
                buyer: msg.buyer,
                behind_since: owed.then(Instant::now),
            },
        );
        if let Some(buyer) = msg.buyer {
            self.buyers.entry(buyer).or_default().push(id);
        }
        if let Feed::Follower { idle_since, .. } = &mut self.feed {
            *idle_since = None;
        }
        Joined::Frames { id, frames }
    }
}

impl Handler<Leave> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        self.remove(msg.id);
    }
}

impl Handler<Resync> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Resync, _: &mut Context<Self>) {
        if let Some(viewer) = self.viewers.get_mut(&msg.id) {
            viewer.behind_since.get_or_insert_with(Instant::now);
        }
        self.tend_behind();
    }
}

impl Handler<CloseLive> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: CloseLive, ctx: &mut Context<Self>) {
        self.closed = Some(msg.0);
        ctx.stop();
    }
}

impl Handler<GetStats> for Broadcaster {
    type Result = LiveStats;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> LiveStats {
        LiveStats {
            seq: self.seq(),
            viewers: self.viewers.len(),
            behind: self
                .viewers
                .values()
                .filter(|v| v.behind_since.is_some())
                .count(),
            ..self.stats.clone()
        }
    }
}
