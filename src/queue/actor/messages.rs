//! The messages a waiting room answers: joins, status reads, session checks, purchases,
//! leaving, claims, sockets that watch, the organizer's controls, and stopping. Each
//! handler asks the line and the pace (through the actor's helpers) and answers; none
//! waits on Redis or Postgres.

use actix::prelude::*;
use rand::Rng;
use uuid::Uuid;

use super::{Handover, JoinRefused, Phase, QueueActor, RoomNews, Standing};
use crate::domain::onsale::Door;
use crate::queue::line::{Claim, Joined};
use crate::views::RoomStats;

/// Runs an admission pass now and answers how many were let in (operators, and tests
/// that move the clock instead of waiting for the tick).
#[derive(Message, Clone, Copy)]
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
            Phase::NotOpen => return Err(JoinRefused::NotOpenYet(self.schedule.queue_opens_at)),
            Phase::Closed => return Ok(Standing::Closed),
            Phase::SoldOut => return Ok(Standing::SoldOut),
            Phase::PreQueue | Phase::Selling => {}
        }
        let is_new = !self.line.has(msg.buyer, now);
        if is_new
            && !msg.proven
            && self
                .schedule
                .door
                .asks_proof(self.pace.joins_last_minute(now))
        {
            return Err(JoinRefused::ProofRequired);
        }
        if let Joined::New(score) = self.line.join(msg.buyer, now, self.rng.gen()) {
            self.pace.count_join(now);
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
#[derive(Message, Clone, Copy)]
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
