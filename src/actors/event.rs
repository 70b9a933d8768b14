//! The event actor: one per event on sale, the one writer of its [`HoldBook`]. It passes
//! the time in, runs the sweep, and carries out the effects the book returns, in their
//! order: seat changes to the section actors, tier counts and hold news to the live map,
//! hold copies to Redis, status changes to Postgres. It never waits on another actor: a
//! seat hold is reserved here, placed in the section actors by the engine, then confirmed
//! here; the sections and the live map are told without waiting for an answer (each
//! mailbox keeps the order things were sent in).
//!
//! Status writes go through one task per actor, one after the other: each is a
//! compare-and-set from the status the book left (ON_SALE → SOLD_OUT, then SOLD_OUT →
//! ON_SALE when a seat comes back), so two written at once could land in the wrong order,
//! the second refused for its stale "from", and leave Postgres saying SOLD_OUT over a sale
//! that has seats.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::broadcaster::{Broadcaster, CloseLive, TierChanged};
use super::messages::EngineError;
use super::mirror::HoldMirror;
use super::section::{ChangeSeats, SectionActor};
use crate::clock::Clock;
use crate::cluster::LeaseToken;
use crate::domain::event::EventStatus;
use crate::domain::holds::{
    Demand, Effect, Effects, EventCounts, HoldBook, HoldRequest, MirroredHold, Note, Offer,
    OfferEnd, Reservation,
};
use crate::persistence::leases::{self, FencedOutcome};
use crate::persistence::waitlist;
use crate::views::HoldView;

/// How often deadlines are checked: a seat is never held more than this past its deadline.
/// (An interval of the runtime's monotonic timer; what is due is decided by the clock.)
const SWEEP_EVERY: StdDuration = StdDuration::from_millis(200);

pub struct EventActor {
    event_id: Uuid,
    book: HoldBook,
    /// The section actors, by section index (None for standing sections).
    sections: Vec<Option<Addr<SectionActor>>>,
    clock: Arc<dyn Clock>,
    pool: PgPool,
    mirror: Option<HoldMirror>,
    /// The event's live map, told of tier counts and of what happens to each hold.
    live: Option<Addr<Broadcaster>>,
    /// Status changes, written in order by one task (see the module's header).
    statuses: Option<mpsc::UnboundedSender<(EventStatus, EventStatus)>>,
    /// Waitlist offers made and ended, written in order by one task.
    offers: Option<mpsc::UnboundedSender<OfferWrite>>,
    /// This node's lease on the on-sale: nothing is answered once it lapsed, and every
    /// durable write carries its epoch.
    lease: LeaseToken,
}

impl EventActor {
    /// Ends the holds due by the clock and applies what that changes.
    fn sweep(&mut self) {
        let effects = self.book.sweep(self.clock.now());
        self.apply(effects);
    }

    pub fn new(
        event_id: Uuid,
        book: HoldBook,
        sections: Vec<Option<Addr<SectionActor>>>,
        clock: Arc<dyn Clock>,
        pool: PgPool,
    ) -> EventActor {
        EventActor {
            event_id,
            book,
            sections,
            clock,
            pool,
            mirror: None,
            live: None,
            statuses: None,
            offers: None,
            lease: LeaseToken::unfenced(event_id),
        }
    }

    /// Runs under this node's lease on the on-sale.
    pub fn with_lease(mut self, lease: LeaseToken) -> EventActor {
        self.lease = lease;
        self
    }

    /// Tells `live` of tier counts and hold news.
    pub fn with_live(mut self, live: Addr<Broadcaster>) -> EventActor {
        self.live = Some(live);
        self
    }

    /// Mirrors holds to Redis from now on, and takes back the holds a previous run
    /// mirrored (their seats already held on the section boards by the registry).
    pub fn with_mirror(
        mut self,
        mirror: Option<HoldMirror>,
        restored: Vec<MirroredHold>,
    ) -> EventActor {
        self.mirror = mirror;
        let effects = self.book.restore(restored);
        self.apply(effects);
        self
    }

    /// Refuses to act once this node's lease lapsed: another node may own the sale now.
    fn owned(&self) -> Result<(), EngineError> {
        if self.lease.valid() {
            Ok(())
        } else {
            Err(EngineError::OwnerUnavailable)
        }
    }

    /// Carries out the book's effects, in order.
    fn apply(&self, effects: Effects) {
        for effect in effects {
            match effect {
                Effect::Seats {
                    section,
                    hold_id,
                    positions,
                    change,
                } => {
                    if let Some(Some(addr)) = self.sections.get(section) {
                        addr.do_send(ChangeSeats {
                            hold_id,
                            positions,
                            change,
                        });
                    }
                }
                Effect::Tier { tier, counts } => {
                    if let Some(live) = &self.live {
                        live.do_send(TierChanged { tier, counts });
                    }
                }
                Effect::News(news) => {
                    if let Some(live) = &self.live {
                        live.do_send(news);
                    }
                }
                Effect::Mirror(hold) => {
                    if let Some(mirror) = &self.mirror {
                        mirror.save(self.event_id, self.lease.epoch, hold);
                    }
                }
                Effect::Unmirror(hold_id) => {
                    if let Some(mirror) = &self.mirror {
                        mirror.remove(self.event_id, self.lease.epoch, hold_id);
                    }
                }
                Effect::Status { from, to } => {
                    if let Some(statuses) = &self.statuses {
                        let _ = statuses.send((from, to));
                    }
                }
                Effect::Offered(offer) => {
                    if let Some(offers) = &self.offers {
                        let _ = offers.send(OfferWrite::Made(offer));
                    }
                }
                Effect::OfferEnded { entry_id, how } => {
                    if let Some(offers) = &self.offers {
                        let _ = offers.send(OfferWrite::Ended(entry_id, how));
                    }
                }
            }
        }
    }

    /// Starts the task that writes status changes to Postgres, one after the other.
    fn start_status_writer(&mut self) {
        let (sender, mut changes) = mpsc::unbounded_channel::<(EventStatus, EventStatus)>();
        let (pool, clock, event_id, epoch) = (
            self.pool.clone(),
            self.clock.clone(),
            self.event_id,
            self.lease.epoch,
        );
        actix::spawn(async move {
            while let Some((from, to)) = changes.recv().await {
                let change = leases::StatusChange {
                    event_id,
                    epoch,
                    from: &[from.as_str()],
                    to: to.as_str(),
                    at: clock.now(),
                };
                match leases::fenced_status(&pool, change).await {
                    Ok(FencedOutcome::Fenced) => {
                        tracing::warn!(%event_id, epoch, "a status write was refused: this node's lease epoch is stale")
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%event_id, ?error, "could not record the event's status")
                    }
                }
            }
        });
        self.statuses = Some(sender);
    }

    /// Starts the task that records waitlist offers in Postgres, in the order they were made.
    fn start_offer_writer(&mut self) {
        let (sender, mut writes) = mpsc::unbounded_channel::<OfferWrite>();
        let (pool, clock, event_id) = (self.pool.clone(), self.clock.clone(), self.event_id);
        actix::spawn(async move {
            while let Some(write) = writes.recv().await {
                let now = clock.now();
                let written = match &write {
                    OfferWrite::Made(offer) => waitlist::offered(&pool, offer, now).await,
                    OfferWrite::Ended(entry_id, how) => {
                        waitlist::offer_ended(&pool, *entry_id, how.entry_status(), now).await
                    }
                };
                if let Err(error) = written {
                    tracing::error!(%event_id, ?error, "could not record a waitlist offer");
                }
            }
        });
        self.offers = Some(sender);
    }
}

/// A waitlist offer to record.
enum OfferWrite {
    Made(Offer),
    Ended(Uuid, OfferEnd),
}

impl Actor for EventActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        self.start_status_writer();
        self.start_offer_writer();
        ctx.run_interval(SWEEP_EVERY, |act, _| act.sweep());
        // The live map starts from Postgres; restored holds may have taken tickets since.
        self.apply(self.book.tier_effects());
        let status = self.book.update_status(self.clock.now());
        self.apply(status.into_iter().collect());
    }
}

/// A seat hold's placement, for the engine to carry out in the section actors.
pub enum Reserved {
    /// A tier hold: done already.
    Done(HoldView),
    /// Hold these positions in these sections, all of them.
    Exact { hold_id: Uuid, steps: Vec<SeatStep> },
    /// Hold `quantity` seats together in the first of these sections that has them.
    Best {
        hold_id: Uuid,
        quantity: u32,
        candidates: Vec<(usize, Addr<SectionActor>)>,
    },
}

pub struct SeatStep {
    pub section: usize,
    pub addr: Addr<SectionActor>,
    pub positions: Vec<u32>,
    pub seat_ids: Vec<Uuid>,
}

/// Check a hold request against the sale and reserve a hold id for it.
#[derive(Message)]
#[rtype(result = "Result<Reserved, EngineError>")]
pub struct ReserveHold {
    pub buyer_id: Uuid,
    pub request: HoldRequest,
    /// The hold ends by then at the latest (the buyer's shopping window closes).
    pub not_after: Option<DateTime<Utc>>,
}

impl Handler<ReserveHold> for EventActor {
    type Result = Result<Reserved, EngineError>;

    fn handle(&mut self, msg: ReserveHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let now = self.clock.now();
        let (reservation, effects) =
            self.book
                .reserve(msg.buyer_id, msg.request, msg.not_after, now)?;
        self.apply(effects);
        let addr = |section: usize| self.sections.get(section).cloned().flatten();
        Ok(match reservation {
            Reservation::Held(view) => Reserved::Done(view),
            Reservation::Exact { hold_id, steps } => {
                let mut placed = Vec::with_capacity(steps.len());
                for step in steps {
                    let Some(addr) = addr(step.section) else {
                        self.book.abort(hold_id);
                        return Err(EngineError::Unavailable);
                    };
                    placed.push(SeatStep {
                        section: step.section,
                        addr,
                        positions: step.positions,
                        seat_ids: step.seat_ids,
                    });
                }
                Reserved::Exact {
                    hold_id,
                    steps: placed,
                }
            }
            Reservation::Best {
                hold_id,
                quantity,
                candidates,
            } => Reserved::Best {
                hold_id,
                quantity,
                candidates: candidates
                    .into_iter()
                    .filter_map(|i| addr(i).map(|a| (i, a)))
                    .collect(),
            },
        })
    }
}

/// The seats of a reserved hold are placed: the hold starts its clock.
#[derive(Message)]
#[rtype(result = "Result<HoldView, EngineError>")]
pub struct ConfirmHold {
    pub hold_id: Uuid,
    pub placed: Vec<(usize, Vec<u32>)>,
}

impl Handler<ConfirmHold> for EventActor {
    type Result = Result<HoldView, EngineError>;

    fn handle(&mut self, msg: ConfirmHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let (view, effects) = self
            .book
            .confirm(msg.hold_id, msg.placed, self.clock.now())?;
        self.apply(effects);
        Ok(view)
    }
}

/// A reserved hold whose seats could not be placed (the engine released what it took).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AbortHold {
    pub hold_id: Uuid,
}

impl Handler<AbortHold> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: AbortHold, _: &mut Context<Self>) {
        self.book.abort(msg.hold_id);
    }
}

/// A hold as it stands, for its buyer.
#[derive(Message)]
#[rtype(result = "Result<HoldView, EngineError>")]
pub struct GetHold {
    pub hold_id: Uuid,
    pub buyer_id: Uuid,
}

impl Handler<GetHold> for EventActor {
    type Result = Result<HoldView, EngineError>;

    fn handle(&mut self, msg: GetHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        Ok(self.book.get(msg.hold_id, msg.buyer_id)?)
    }
}

/// A buyer's live holds, soonest deadline first.
#[derive(Message)]
#[rtype(result = "Result<Vec<HoldView>, EngineError>")]
pub struct BuyerHolds {
    pub buyer_id: Uuid,
}

impl Handler<BuyerHolds> for EventActor {
    type Result = Result<Vec<HoldView>, EngineError>;

    fn handle(&mut self, msg: BuyerHolds, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        Ok(self.book.holds_of(msg.buyer_id))
    }
}

/// The buyer lets go of a hold.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct ReleaseHold {
    pub hold_id: Uuid,
    pub buyer_id: Uuid,
}

impl Handler<ReleaseHold> for EventActor {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, msg: ReleaseHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let effects = self
            .book
            .release(msg.hold_id, msg.buyer_id, self.clock.now())?;
        self.apply(effects);
        Ok(())
    }
}

/// HELD → PAYMENT_PENDING: from now on the hold cannot expire until the payment ends. A
/// hold already past its deadline expires here instead, and no payment starts.
#[derive(Message)]
#[rtype(result = "Result<HoldView, EngineError>")]
pub struct BeginCheckout {
    pub hold_id: Uuid,
    pub buyer_id: Uuid,
}

impl Handler<BeginCheckout> for EventActor {
    type Result = Result<HoldView, EngineError>;

    fn handle(&mut self, msg: BeginCheckout, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let now = self.clock.now();
        match self.book.begin_checkout(msg.hold_id, msg.buyer_id, now) {
            Ok((view, effects)) => {
                self.apply(effects);
                Ok(view)
            }
            Err((refusal, effects)) => {
                self.apply(effects);
                Err(refusal.into())
            }
        }
    }
}

/// The payment did not go through: PAYMENT_PENDING → HELD until the original deadline
/// (expiring at the next sweep if that has passed), or `extend` later, once per hold.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelCheckout {
    pub hold_id: Uuid,
    pub extend: Option<chrono::Duration>,
}

impl Handler<CancelCheckout> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: CancelCheckout, _: &mut Context<Self>) {
        let (effects, extended) = self.book.cancel_checkout(msg.hold_id, msg.extend);
        if extended {
            crate::metrics::figures().holds_extended.inc();
        }
        self.apply(effects);
    }
}

/// The order is durable: the hold's seats are SOLD.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishCheckout {
    pub hold_id: Uuid,
    pub order_id: Uuid,
}

impl Handler<FinishCheckout> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: FinishCheckout, _: &mut Context<Self>) {
        let effects = self
            .book
            .finish_checkout(msg.hold_id, msg.order_id, self.clock.now());
        self.apply(effects);
    }
}

/// Ends every hold that is due by the clock, now rather than at the next sweep (tests
/// that move the clock, and operators).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SweepNow;

impl Handler<SweepNow> for EventActor {
    type Result = ();

    fn handle(&mut self, _: SweepNow, _: &mut Context<Self>) {
        self.sweep();
    }
}

/// Notes from the engine's inbox (refunds, waitlist joins and leaves), each taken once.
#[derive(Message)]
#[rtype(result = "i64")]
pub struct TakeNotes(pub Vec<(i64, Note)>);

impl Handler<TakeNotes> for EventActor {
    type Result = i64;

    /// The last note taken (the one to ask for notes after).
    fn handle(&mut self, msg: TakeNotes, _: &mut Context<Self>) -> i64 {
        if self.owned().is_err() {
            // Another node runs the on-sale now, and read these itself.
            return i64::MAX;
        }
        let now = self.clock.now();
        for (seq, note) in msg.0 {
            let effects = self.book.note(seq, note, now);
            self.apply(effects);
        }
        self.book.inbox_seq()
    }
}

/// Live counts: seats free per section, tickets left per tier.
#[derive(Message)]
#[rtype(result = "EventCounts")]
pub struct Counts;

impl Handler<Counts> for EventActor {
    type Result = MessageResult<Counts>;

    fn handle(&mut self, _: Counts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.book.counts())
    }
}

/// What the waiting room paces admission by: what is left, and what the given shoppers
/// (buyers whose shopping window is open) may still buy, each their `max_per_buyer` less
/// what they hold and have bought, across orders, until their session ends.
#[derive(Message)]
#[rtype(result = "Demand")]
pub struct MeasureDemand {
    pub shoppers: Vec<Uuid>,
    /// How many wait in the waiting room's line.
    pub waiting: u64,
}

impl Handler<MeasureDemand> for EventActor {
    type Result = MessageResult<MeasureDemand>;

    fn handle(&mut self, msg: MeasureDemand, _: &mut Context<Self>) -> Self::Result {
        self.book.set_line_waiting(msg.waiting);
        MessageResult(self.book.demand(&msg.shoppers))
    }
}

/// Stops the event's actors, telling live viewers why: `event_closed` (cancelled or over)
/// or `owner_moved` (another node runs the on-sale now: reconnect).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop(pub &'static str);

impl Handler<Stop> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) {
        for addr in self.sections.iter().flatten() {
            addr.do_send(super::section::StopSection);
        }
        if let Some(live) = &self.live {
            live.do_send(CloseLive(msg.0));
        }
        ctx.stop();
    }
}

/// The event's seated sections and their actors, in seat-map order.
#[derive(Message)]
#[rtype(result = "Vec<(Uuid, Addr<SectionActor>)>")]
pub struct SectionAddrs;

impl Handler<SectionAddrs> for EventActor {
    type Result = Vec<(Uuid, Addr<SectionActor>)>;

    fn handle(&mut self, _: SectionAddrs, _: &mut Context<Self>) -> Self::Result {
        self.book
            .sections()
            .iter()
            .zip(&self.sections)
            .filter_map(|(s, addr)| addr.clone().map(|a| (s.section_id, a)))
            .collect()
    }
}
