//! The QueueActor: one per on-sale with a waiting room. It owns the line (see `line`), and
//! once a tick (about a second) lets the next buyers in: at the organizer's rate, never
//! more than the inventory left can serve (buyers shopping without a hold yet could take
//! `max_per_order` each), and not at all while admission is paused. While every seat is
//! held, the line waits (holds may expire or be released, and their seats go to the next in
//! line); when the event sells out (nothing free, nothing held), everyone waiting is told at
//! once and their places are released.
//!
//! Every message is handled to the end before the next, so joins, admissions and status
//! reads never race. Redis, when configured, is written behind (never waited on).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use uuid::Uuid;

use super::line::{Admission, Claim, Joined, Line, Spot};
use super::store::RoomStore;
use crate::actors::engine::Inventory;
use crate::actors::messages::EngineError;
use crate::actors::Engine;
use crate::clock::Clock;
use crate::domain::holds::HoldError;
use crate::domain::onsale::Door;
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
    /// Admissions owed but not yet given (fractions carry over between ticks).
    allowance: f64,
    last_admission_pass: Option<DateTime<Utc>>,
    last_sweep: DateTime<Utc>,
    /// A count of the inventory is on its way.
    counting: bool,
    available: Option<u64>,
    sold_out: bool,
    closed: bool,
    /// (when, how many) admitted, over the last minute.
    recent: VecDeque<(DateTime<Utc>, u64)>,
    admitted_total: u64,
    /// (second, how many) new buyers joined, over the last minute: the `auto` door's rate.
    joins: VecDeque<(i64, u64)>,
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
            allowance: 0.0,
            last_admission_pass: None,
            last_sweep: now,
            counting: false,
            available: None,
            sold_out: false,
            closed,
            recent: VecDeque::new(),
            admitted_total: 0,
            joins: VecDeque::new(),
            watchers: HashMap::new(),
        }
    }

    fn phase(&self, now: DateTime<Utc>) -> &'static str {
        if self.closed || now >= self.schedule.sale_ends_at {
            "closed"
        } else if self.sold_out {
            "sold_out"
        } else if now < self.schedule.queue_opens_at {
            "not_open"
        } else if now < self.schedule.sale_starts_at {
            "pre_queue"
        } else {
            "selling"
        }
    }

    /// Buyers per second lately, or the organizer's rate when nothing was measured yet.
    fn rate_per_second(&self, now: DateTime<Utc>) -> Option<f64> {
        if self.schedule.paused || self.schedule.admission_per_minute == 0 {
            return None;
        }
        let set = f64::from(self.schedule.admission_per_minute) / 60.0;
        let Some(&(first, _)) = self.recent.front() else {
            return Some(set);
        };
        let admitted: u64 = self.recent.iter().map(|(_, n)| n).sum();
        let span = (now - first).num_milliseconds().clamp(1_000, 60_000) as f64 / 1000.0;
        let measured = admitted as f64 / span;
        Some(if measured > 0.0 { measured } else { set })
    }

    fn admitted_last_minute(&self) -> u64 {
        self.recent.iter().map(|(_, n)| n).sum()
    }

    /// New buyers who joined over the minute before `now`.
    fn joins_last_minute(&self, now: DateTime<Utc>) -> u64 {
        let since = now.timestamp() - 60;
        self.joins
            .iter()
            .filter(|(second, _)| *second > since)
            .map(|(_, n)| n)
            .sum()
    }

    /// Counts a new buyer's join (per-second buckets, a minute of them).
    fn count_join(&mut self, now: DateTime<Utc>) {
        let second = now.timestamp();
        match self.joins.back_mut() {
            Some((at, n)) if *at == second => *n += 1,
            _ => self.joins.push_back((second, 1)),
        }
        while self.joins.front().is_some_and(|(at, _)| *at <= second - 60) {
            self.joins.pop_front();
        }
    }

    fn standing(&mut self, buyer: Uuid, now: DateTime<Utc>) -> Standing {
        match self.line.spot(buyer, now) {
            Spot::PreQueue => Standing::PreQueue {
                waiting: self.line.waiting(),
            },
            Spot::Waiting { position } => Standing::Waiting {
                position,
                eta_seconds: self
                    .rate_per_second(now)
                    .map(|rate| ((position - 1) as f64 / rate).ceil() as u64),
                waiting: self.line.waiting(),
            },
            Spot::Admitted(admission) => Standing::Admitted(admission),
            Spot::NotQueued if self.phase(now) == "closed" => Standing::Closed,
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
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now - *at > Duration::seconds(60))
        {
            self.recent.pop_front();
        }
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
        async move { engine.inventory(event_id, shoppers).await }.into_actor(self)
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if !self.prepare() || self.counting {
            return;
        }
        self.counting = true;
        ctx.spawn(self.count().map(|available, act, _| {
            act.counting = false;
            act.admit(available);
        }));
    }

    /// One admission pass, with the inventory just counted; returns how many were let in.
    fn admit(&mut self, inventory: Result<Inventory, EngineError>) -> u64 {
        let now = self.clock.now();
        // Time since the last pass (or since the sale started, for the first one).
        let since = self
            .last_admission_pass
            .unwrap_or(self.schedule.sale_starts_at);
        // (At most two ticks: a room restarted mid-sale does not owe the hours it was down.)
        let elapsed = ((now - since).num_milliseconds().max(0) as f64 / 1000.0)
            .min(2.0 * self.config.tick.as_secs_f64());
        self.last_admission_pass = Some(now);
        let Inventory {
            available,
            holders,
            promised,
            per_buyer,
        } = match inventory {
            Ok(inventory) => inventory,
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
        self.available = Some(available);
        // Sold out is final only when nothing is held either: while holds may still expire
        // or be released, the line waits for their seats instead of being sent home.
        if available == 0 && holders > 0 {
            self.allowance = 0.0;
            self.sold_out = false;
            return 0;
        }
        if available == 0 {
            self.allowance = 0.0;
            if !self.sold_out {
                self.sold_out = true;
                let released = self.line.release_all();
                tracing::info!(event_id = %self.event_id, released = released.len(), "sold out: the waiting line is released");
                if let Some(store) = &self.store {
                    store.clear_line();
                }
                self.tell_everyone(Standing::SoldOut);
            }
            return 0;
        }
        self.sold_out = false;
        if self.schedule.paused || self.schedule.admission_per_minute == 0 {
            self.allowance = 0.0;
            return 0;
        }
        let per_second = f64::from(self.schedule.admission_per_minute) / 60.0;
        // Each pass admits the time since the last one at the organizer's rate. What a pass
        // could not use (inventory held it back) is not saved up beyond a fraction, so a
        // room never lets a crowd in at once when seats come back.
        self.allowance = self.allowance.min(1.0) + per_second * elapsed;
        // Every shopper may still take their limit less what they hold (already out of
        // `available`) and bought, until their session ends; a new one, the whole limit.
        let per_buyer = u64::from(per_buyer.max(1));
        let servable = available.saturating_sub(promised).div_ceil(per_buyer);
        let n = (self.allowance.floor() as u64).min(servable);
        if n == 0 {
            return 0;
        }
        let window = self.config.window.min(self.schedule.sale_ends_at - now);
        let rng = &mut self.rng;
        let let_in = self.line.admit(n, || Admission {
            jti: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
            admitted_at: now,
            expires_at: now + window,
            purchased: false,
        });
        let count = let_in.len() as u64;
        self.allowance -= count as f64;
        if count == 0 {
            return 0;
        }
        self.admitted_total += count;
        self.recent.push_back((now, count));
        for (buyer, admission) in let_in {
            if let Some(store) = &self.store {
                store.admit(buyer, admission);
            }
            self.tell(buyer, Standing::Admitted(admission));
        }
        count
    }

    fn stats(&self, now: DateTime<Utc>) -> RoomStats {
        let rate = self.rate_per_second(now);
        RoomStats {
            phase: self.phase(now),
            waiting: self.line.waiting(),
            admitted: self.line.admitted(),
            shopping: self.line.shopping(),
            admitted_total: self.admitted_total,
            admitted_last_minute: self.admitted_last_minute(),
            admission_per_minute: self.schedule.admission_per_minute,
            measured_per_minute: if self.recent.is_empty() {
                0.0
            } else {
                rate.unwrap_or(0.0) * 60.0
            },
            paused: self.schedule.paused,
            available: self.available,
            eta_drain_seconds: rate.map(|r| (self.line.waiting() as f64 / r).ceil() as u64),
            queue_opens_at: self.schedule.queue_opens_at,
            sale_starts_at: self.schedule.sale_starts_at,
            sale_ends_at: self.schedule.sale_ends_at,
            proof_of_work: self.schedule.door.proof_of_work.as_str(),
            proof_of_work_joins_per_minute: self.schedule.door.joins_per_minute,
            joins_last_minute: self.joins_last_minute(now),
            proof_of_work_asked: self.schedule.door.asks_proof(self.joins_last_minute(now)),
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
}

/// Runs an admission pass now and answers how many were let in (operators, and tests
/// that move the clock instead of waiting for the tick).
#[derive(Message)]
#[rtype(result = "u64")]
pub struct AdmitNow;

impl Handler<AdmitNow> for QueueActor {
    type Result = ResponseActFuture<Self, u64>;

    fn handle(&mut self, _: AdmitNow, _: &mut Context<Self>) -> Self::Result {
        if !self.prepare() {
            return Box::pin(actix::fut::ready(0));
        }
        Box::pin(self.count().map(|available, act, _| act.admit(available)))
    }
}

/// Takes a place (one per buyer). `proven`: the request brought a solved proof of work,
/// which the door may ask of a buyer who has no place yet.
#[derive(Message)]
#[rtype(result = "Result<Standing, JoinRefused>")]
pub struct Join {
    pub buyer: Uuid,
    pub proven: bool,
}

impl Handler<Join> for QueueActor {
    type Result = Result<Standing, JoinRefused>;

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        match self.phase(now) {
            "not_open" => return Err(JoinRefused::NotOpenYet(self.schedule.queue_opens_at)),
            "closed" => return Ok(Standing::Closed),
            "sold_out" => return Ok(Standing::SoldOut),
            _ => {}
        }
        let is_new = !self.line.has(msg.buyer, now);
        if is_new && !msg.proven && self.schedule.door.asks_proof(self.joins_last_minute(now)) {
            return Err(JoinRefused::ProofRequired);
        }
        if let Joined::New(score) = self.line.join(msg.buyer, now, self.rng.gen()) {
            self.count_join(now);
            if let Some(store) = &self.store {
                store.join(msg.buyer, score);
            }
        }
        Ok(self.standing(msg.buyer, now))
    }
}

/// Where a buyer stands (asking keeps their place alive).
#[derive(Message)]
#[rtype(result = "Standing")]
pub struct Status {
    pub buyer: Uuid,
}

impl Handler<Status> for QueueActor {
    type Result = MessageResult<Status>;

    fn handle(&mut self, msg: Status, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        MessageResult(self.standing(msg.buyer, now))
    }
}

/// Whether `jti` is the buyer's current, open shopping session.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct CheckSession {
    pub buyer: Uuid,
    pub jti: Uuid,
}

impl Handler<CheckSession> for QueueActor {
    type Result = bool;

    fn handle(&mut self, msg: CheckSession, _: &mut Context<Self>) -> bool {
        self.line
            .admission(msg.buyer, self.clock.now())
            .is_some_and(|a| a.jti == msg.jti)
    }
}

/// The buyer bought: they stop counting against the inventory left.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Purchased {
    pub buyer: Uuid,
}

impl Handler<Purchased> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Purchased, _: &mut Context<Self>) {
        self.line.purchased(msg.buyer);
        if let (Some(store), Some(admission)) = (
            &self.store,
            self.line.admission(msg.buyer, self.clock.now()),
        ) {
            store.admit(msg.buyer, admission);
        }
    }
}

/// The buyer leaves the room: their place, or their shopping session (and its token),
/// ends, so the room can let the next buyer in. Answers whether they had either.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Leave {
    pub buyer: Uuid,
}

impl Handler<Leave> for QueueActor {
    type Result = bool;

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) -> bool {
        let left = self.line.leave(msg.buyer);
        if let (true, Some(store)) = (left, &self.store) {
            store.leave(vec![msg.buyer]);
            store.forget(vec![msg.buyer]);
        }
        left
    }
}

/// Moves a visitor's place or admission to the account they signed in with (see
/// `Line::transfer` for what a claim may and may not do).
#[derive(Message)]
#[rtype(result = "Result<Standing, ClaimRefused>")]
pub struct Transfer {
    pub from: Uuid,
    pub to: Uuid,
}

impl Handler<Transfer> for QueueActor {
    type Result = MessageResult<Transfer>;

    fn handle(&mut self, msg: Transfer, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        let claim = self.line.transfer(msg.from, msg.to, now);
        if claim == Claim::TooLate {
            return MessageResult(Err(ClaimRefused::TooLate));
        }
        if let Some(store) = &self.store {
            store.leave(vec![msg.from]);
            store.forget(vec![msg.from]);
            if claim == Claim::Moved {
                match self.line.admission(msg.to, now) {
                    Some(admission) => store.admit(msg.to, admission),
                    None => {
                        if let Some(score) = self.line.score(msg.to) {
                            store.join(msg.to, score);
                        }
                    }
                }
            }
        }
        MessageResult(Ok(self.standing(msg.to, now)))
    }
}

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    /// The visitor waits in the drawn line: claim once let in.
    TooLate,
}

/// A socket that wants to hear at once when the buyer is let in (or the sale ends).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub buyer: Uuid,
    pub id: u64,
    pub watcher: Recipient<RoomNews>,
}

impl Handler<Watch> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) {
        self.watchers
            .entry(msg.buyer)
            .or_default()
            .push((msg.id, msg.watcher));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub buyer: Uuid,
    pub id: u64,
}

impl Handler<Unwatch> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, _: &mut Context<Self>) {
        if let Some(list) = self.watchers.get_mut(&msg.buyer) {
            list.retain(|(id, _)| *id != msg.id);
            if list.is_empty() {
                self.watchers.remove(&msg.buyer);
            }
        }
    }
}

/// The room's figures.
#[derive(Message)]
#[rtype(result = "RoomStats")]
pub struct Stats;

impl Handler<Stats> for QueueActor {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats(self.clock.now()))
    }
}

/// The organizer pauses, resumes, changes the rate or the door.
#[derive(Message)]
#[rtype(result = "RoomStats")]
pub struct Control {
    pub paused: Option<bool>,
    pub admission_per_minute: Option<u32>,
    pub door: Option<Door>,
}

impl Handler<Control> for QueueActor {
    type Result = MessageResult<Control>;

    fn handle(&mut self, msg: Control, _: &mut Context<Self>) -> Self::Result {
        if let Some(paused) = msg.paused {
            self.schedule.paused = paused;
        }
        if let Some(rate) = msg.admission_per_minute {
            self.schedule.admission_per_minute = rate;
        }
        if let Some(door) = msg.door {
            self.schedule.door = door;
        }
        MessageResult(self.stats(self.clock.now()))
    }
}

/// The sale is over (cancelled): everyone is told, and the room stops admitting.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

impl Handler<Close> for QueueActor {
    type Result = ();

    fn handle(&mut self, _: Close, _: &mut Context<Self>) {
        self.close();
    }
}

/// Stops the actor and hands its line and sockets over (its schedule changed: the room
/// is started again from Postgres with the same line).
#[derive(Message)]
#[rtype(result = "Handover")]
pub struct StopRoom;

impl Handler<StopRoom> for QueueActor {
    type Result = MessageResult<StopRoom>;

    fn handle(&mut self, _: StopRoom, ctx: &mut Context<Self>) -> Self::Result {
        ctx.stop();
        MessageResult(Handover {
            line: std::mem::take(&mut self.line),
            watchers: std::mem::take(&mut self.watchers),
        })
    }
}
