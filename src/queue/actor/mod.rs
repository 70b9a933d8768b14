//! The QueueActor: one per on-sale with a waiting room. It owns the line (see `line`), and
//! once a tick (about a second) lets the next buyers in: at the organizer's rate, never
//! more than the inventory left can serve (buyers shopping without a hold yet could take
//! `max_per_order` each), and not at all while admission is paused. While every seat is
//! held, the line waits (holds may expire or be released, and their seats go to the next in
//! line); when the event sells out (nothing free, nothing held), everyone waiting is told at
//! once and their places are released.
//!
//! The actor keeps the line (`line::Line`) and the pace (`pace::Pace`, how many a pass
//! may let in), both plain data, and does what they decide: it counts the inventory with
//! the event's engine, admits, tells the sockets, and writes the room to Redis. Every
//! message is handled to the end before the next, so joins, admissions and status reads
//! never race. Redis, when configured, is written behind (never waited on).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use uuid::Uuid;

mod messages;

pub use messages::*;

use super::line::{Admission, Line, Spot};
use super::pace::{Pace, Pass, Rate};
use super::store::RoomStore;
use crate::actors::engine::Inventory;
use crate::actors::messages::EngineError;
use crate::actors::Engine;
use crate::clock::Clock;
use crate::domain::holds::HoldError;
use crate::domain::onsale::Door;
use crate::metrics::figures;
use crate::views::RoomStats;

/// The organizer's schedule and controls for one waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub queue_opens_at: DateTime<Utc>,
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub max_per_order: u32,
    pub admission_per_minute: u32,
    pub paused: bool,
    /// Whether a new join must bring a proof of work.
    pub door: Door,
}

/// Settings shared by every waiting room.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// How long an admitted buyer may shop.
    pub window: Duration,
    /// A place nobody asked about (poll or socket) for this long is dropped.
    pub abandon_after: Duration,
    /// How often admission runs.
    pub tick: std::time::Duration,
    /// The share of its admission rate a room keeps while payments are degraded.
    pub degraded_admission_percent: u32,
}

/// Where a buyer stands, as the room tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Before the sale: the place is drawn when it starts.
    PreQueue {
        waiting: u64,
    },
    Waiting {
        position: u64,
        eta_seconds: Option<u64>,
        waiting: u64,
    },
    Admitted(Admission),
    SoldOut,
    Closed,
    NotQueued,
}

/// What a room's socket watchers are told the moment it happens.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct RoomNews {
    pub standing: Standing,
    pub sale_starts_at: DateTime<Utc>,
}

type Watchers = HashMap<Uuid, Vec<(u64, Recipient<RoomNews>)>>;

/// What a stopped room hands to the room that replaces it on this node: its line, and
/// the sockets waiting to hear from it.
pub struct Handover {
    line: Line,
    watchers: Watchers,
}

/// The sockets a stopped room handed over.
pub struct Sockets(Watchers);

impl Handover {
    pub fn split(self) -> (Line, Sockets) {
        (self.line, Sockets(self.watchers))
    }
}

/// Where the room is in its sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotOpen,
    PreQueue,
    Selling,
    SoldOut,
    Closed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::NotOpen => "not_open",
            Phase::PreQueue => "pre_queue",
            Phase::Selling => "selling",
            Phase::SoldOut => "sold_out",
            Phase::Closed => "closed",
        }
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    NotOpenYet(DateTime<Utc>),
    /// The door asks a proof of work of a new buyer, and none came.
    ProofRequired,
}

pub struct QueueActor {
    event_id: Uuid,
    schedule: Schedule,
    config: RoomConfig,
    line: Line,
    rng: StdRng,
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    store: Option<RoomStore>,
    pace: Pace,
    last_sweep: DateTime<Utc>,
    /// A count of the inventory is on its way.
    counting: bool,
    available: Option<u64>,
    sold_out: bool,
    closed: bool,
    watchers: Watchers,
}

impl QueueActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        event_id: Uuid,
        schedule: Schedule,
        config: RoomConfig,
        line: Line,
        rng: StdRng,
        engine: Arc<Engine>,
        clock: Arc<dyn Clock>,
        store: Option<RoomStore>,
        closed: bool,
    ) -> QueueActor {
        let now = clock.now();
        QueueActor {
            event_id,
            schedule,
            config,
            line,
            rng,
            engine,
            clock,
            store,
            pace: Pace::default(),
            last_sweep: now,
            counting: false,
            available: None,
            sold_out: false,
            closed,
            watchers: HashMap::new(),
        }
    }

    fn phase(&self, now: DateTime<Utc>) -> Phase {
        if self.closed || now >= self.schedule.sale_ends_at {
            Phase::Closed
        } else if self.sold_out {
            Phase::SoldOut
        } else if now < self.schedule.queue_opens_at {
            Phase::NotOpen
        } else if now < self.schedule.sale_starts_at {
            Phase::PreQueue
        } else {
            Phase::Selling
        }
    }

    /// The rate admission paces by: the organizer's, cut to a share of it while card
    /// payments are degraded (buyers let in now could not pay).
    fn rate(&self) -> Rate {
        let set = self.schedule.admission_per_minute;
        let admission_per_minute = if self.engine.payments_degraded() {
            (u64::from(set) * u64::from(self.config.degraded_admission_percent) / 100) as u32
        } else {
            set
        };
        Rate {
            admission_per_minute,
            paused: self.schedule.paused,
        }
    }

    /// The room's series on `/metrics`, after each admission pass.
    fn publish(&self, now: DateTime<Utc>) {
        let f = figures();
        let label = self.event_id.to_string();
        let labels = [label.as_str()];
        let rate = self.rate();
        f.room_waiting
            .with_label_values(&labels)
            .set(self.line.waiting() as i64);
        f.room_shopping
            .with_label_values(&labels)
            .set(self.line.shopping() as i64);
        f.room_admission_measured
            .with_label_values(&labels)
            .set(self.pace.measured_per_minute(rate, now));
        f.room_admission_target
            .with_label_values(&labels)
            .set(if rate.paused {
                0
            } else {
                i64::from(rate.admission_per_minute)
            });
        f.room_drain_eta.with_label_values(&labels).set(
            self.pace
                .rate_per_second(rate, now)
                .map_or(-1, |r| (self.line.waiting() as f64 / r).ceil() as i64),
        );
        f.room_slowed.with_label_values(&labels).set(i64::from(
            rate.admission_per_minute < self.schedule.admission_per_minute,
        ));
    }

    fn standing(&mut self, buyer: Uuid, now: DateTime<Utc>) -> Standing {
        match self.line.spot(buyer, now) {
            Spot::PreQueue => Standing::PreQueue {
                waiting: self.line.waiting(),
            },
            Spot::Waiting { position } => Standing::Waiting {
                position,
                eta_seconds: self.pace.eta_seconds(self.rate(), now, position),
                waiting: self.line.waiting(),
            },
            Spot::Admitted(admission) => Standing::Admitted(admission),
            Spot::NotQueued if self.phase(now) == Phase::Closed => Standing::Closed,
            Spot::NotQueued if self.sold_out => Standing::SoldOut,
            Spot::NotQueued => Standing::NotQueued,
        }
    }

    fn tell(&self, buyer: Uuid, standing: Standing) {
        if let Some(watchers) = self.watchers.get(&buyer) {
            for (_, watcher) in watchers {
                watcher.do_send(self.news(standing));
            }
        }
    }

    fn news(&self, standing: Standing) -> RoomNews {
        RoomNews {
            standing,
            sale_starts_at: self.schedule.sale_starts_at,
        }
    }

    fn tell_everyone(&self, standing: Standing) {
        for watchers in self.watchers.values() {
            for (_, watcher) in watchers {
                watcher.do_send(self.news(standing));
            }
        }
    }

    /// Takes over the sockets of the room this one replaces.
    pub fn adopt(&mut self, sockets: Sockets) {
        for (buyer, list) in sockets.0 {
            self.watchers.entry(buyer).or_default().extend(list);
        }
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let released = self.line.release_all();
        if let Some(store) = &self.store {
            store.clear_line();
            store.leave(released);
        }
        self.tell_everyone(Standing::Closed);
    }

    /// Housekeeping before an admission pass: windows close, abandoned places go, the line
    /// is ordered when the sale starts. Returns whether admission should run.
    fn prepare(&mut self) -> bool {
        let now = self.clock.now();
        if self.closed {
            return false;
        }
        if now >= self.schedule.sale_ends_at {
            self.close();
            return false;
        }
        let ended = self.line.close_windows(now);
        if let Some(store) = &self.store {
            store.forget(ended);
        }
        if now - self.last_sweep >= Duration::seconds(5) {
            self.last_sweep = now;
            let dropped = self.line.drop_unseen(now - self.config.abandon_after);
            if !dropped.is_empty() {
                tracing::debug!(event_id = %self.event_id, dropped = dropped.len(), "dropped abandoned places");
            }
            if let Some(store) = &self.store {
                store.leave(dropped);
            }
        }
        self.pace.forget_old(now);
        if now < self.schedule.sale_starts_at {
            return false;
        }
        if !self.line.started() {
            self.line.start();
            if let Some(store) = &self.store {
                store.started();
            }
        }
        true
    }

    /// The inventory left, counted by the event actor.
    fn count(&self) -> impl ActorFuture<Self, Output = Result<Inventory, EngineError>> {
        let (engine, event_id) = (self.engine.clone(), self.event_id);
        let shoppers = self.line.sessions(self.clock.now());
        let waiting = self.line.waiting();
        async move { engine.inventory(event_id, shoppers, waiting).await }.into_actor(self)
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if !self.prepare() {
            // (Before the sale too: the line grows while nobody is let in.)
            self.publish(self.clock.now());
            return;
        }
        if self.counting {
            return;
        }
        self.counting = true;
        ctx.spawn(self.count().map(|available, act, _| {
            act.counting = false;
            act.admit(available);
            act.publish(act.clock.now());
        }));
    }

    /// One admission pass, with the inventory just counted; returns how many were let in.
    fn admit(&mut self, inventory: Result<Inventory, EngineError>) -> u64 {
        let now = self.clock.now();
        let demand = match inventory {
            Ok(demand) => demand,
            Err(
                EngineError::Hold(HoldError::SaleNotOpen(_))
                | EngineError::Hold(HoldError::EventNotFound),
            ) => {
                self.close();
                return 0;
            }
            Err(error) => {
                tracing::warn!(event_id = %self.event_id, %error, "could not count the inventory; admission waits");
                return 0;
            }
        };
        self.available = Some(demand.available);
        let pass = self.pace.pass(
            self.rate(),
            demand,
            now,
            self.schedule.sale_starts_at,
            self.config.tick,
        );
        let was_sold_out = self.sold_out;
        self.sold_out = pass == Pass::SoldOut;
        let n = match pass {
            Pass::Admit(n) => n,
            Pass::SoldOut => {
                self.sell_out(was_sold_out);
                return 0;
            }
            Pass::WaitForHolds | Pass::Nobody => return 0,
        };
        let window = self.config.window.min(self.schedule.sale_ends_at - now);
        let rng = &mut self.rng;
        let let_in = self.line.admit(n, || Admission {
            jti: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
            admitted_at: now,
            expires_at: now + window,
            purchased: false,
        });
        let count = let_in.len() as u64;
        self.pace.admitted(count, now);
        figures()
            .room_admitted
            .with_label_values(&[self.event_id.to_string().as_str()])
            .inc_by(count);
        for (buyer, admission) in let_in {
            if let Some(store) = &self.store {
                store.admit(buyer, admission);
            }
            self.tell(buyer, Standing::Admitted(admission));
        }
        count
    }

    /// The sale sold out (nothing free, nothing held): everyone waiting is told at once and
    /// their places are released (the first time it is found so).
    fn sell_out(&mut self, already: bool) {
        if already {
            return;
        }
        let released = self.line.release_all();
        tracing::info!(event_id = %self.event_id, released = released.len(), "sold out: the waiting line is released");
        if let Some(store) = &self.store {
            store.clear_line();
        }
        self.tell_everyone(Standing::SoldOut);
    }

    fn stats(&self, now: DateTime<Utc>) -> RoomStats {
        let rate = self.pace.rate_per_second(self.rate(), now);
        let joins_last_minute = self.pace.joins_last_minute(now);
        RoomStats {
            phase: self.phase(now).as_str(),
            waiting: self.line.waiting(),
            admitted: self.line.admitted(),
            shopping: self.line.shopping(),
            admitted_total: self.pace.admitted_total(),
            admitted_last_minute: self.pace.admitted_last_minute(),
            admission_per_minute: self.schedule.admission_per_minute,
            measured_per_minute: self.pace.measured_per_minute(self.rate(), now),
            paused: self.schedule.paused,
            available: self.available,
            eta_drain_seconds: rate.map(|r| (self.line.waiting() as f64 / r).ceil() as u64),
            queue_opens_at: self.schedule.queue_opens_at,
            sale_starts_at: self.schedule.sale_starts_at,
            sale_ends_at: self.schedule.sale_ends_at,
            proof_of_work: self.schedule.door.proof_of_work.as_str(),
            proof_of_work_joins_per_minute: self.schedule.door.joins_per_minute,
            joins_last_minute,
            proof_of_work_asked: self.schedule.door.asks_proof(joins_last_minute),
        }
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Many waiting buyers can flood the mailbox with status reads; keep admitting.
        ctx.set_mailbox_capacity(100_000);
        let every = self.config.tick;
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
        self.tick(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        figures().forget_room(self.event_id);
    }
}
