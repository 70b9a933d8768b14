//! Finds the event actor of an event, starting it (and its section actors) from Postgres
//! the first time the event is asked for. Also keeps which event each live hold belongs
//! to, so `/holds/{id}` finds its actor.
//!
//! An event's actors run only on the node that holds its lease (`cluster`): starting one
//! takes the lease first, raises the epoch in Redis, and only then reads the on-sale back
//! from Postgres and Redis, so every write of the previous owner is either read back or
//! refused. An event whose lease lapsed is treated as not running here.
//!
//! A plain struct rather than an actor: lookups are reads of a map that every request
//! makes, and must not queue behind one mailbox. Starting an event is rare and is done
//! under an async mutex so that two requests never start the same event twice.

mod rows;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use actix::prelude::*;
use chrono::Duration;
use sqlx::PgPool;
use uuid::Uuid;

use super::broadcaster::{Broadcaster, LiveConfig};
use super::event::EventActor;
use super::live_bus::LiveBus;
use super::messages::EngineError;
use super::mirror::HoldMirror;
use super::section::SectionActor;
use crate::clock::Clock;
use crate::cluster::{Cluster, ClusterError, LeaseToken};
use crate::domain::holds::HoldError;
use crate::domain::holds::{
    self, group_by, BookSection, BookTier, HoldBook, MirroredHold, SaleRules,
};
use crate::domain::live_map::{LiveMap, SectionStart, TierCounts, TierStart};
use crate::domain::seat_board::SeatBoard;
use crate::domain::venue::SectionKind;
use crate::persistence::onsale;
use crate::persistence::orders;

/// Settings of the engine that are not per event.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub max_holds_per_buyer: u32,
    /// Threads that run the on-sale actors.
    pub threads: usize,
    /// The live seat map's settings.
    pub live: LiveConfig,
    /// `BOXOFFICE_ORDER_QUEUE`: orders that may wait for the order writer before new ones
    /// are refused (503 `orders_busy`).
    pub order_queue: usize,
    /// How much longer a hold lasts, once, after its checkout failed because payments were
    /// degraded (zero: never).
    pub degraded_hold_extension: std::time::Duration,
}

/// An event's running actors.
#[derive(Clone)]
struct Running {
    event: Addr<EventActor>,
    live: Addr<Broadcaster>,
    lease: LeaseToken,
}

pub struct Registry {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    arbiters: Mutex<Vec<Arbiter>>,
    handles: Vec<ArbiterHandle>,
    next: AtomicUsize,
    events: RwLock<HashMap<Uuid, Running>>,
    starting: tokio::sync::Mutex<()>,
    holds: RwLock<HashMap<Uuid, Uuid>>,
    mirror: Option<HoldMirror>,
    bus: Option<LiveBus>,
    cluster: Arc<Cluster>,
}

impl Registry {
    /// Starts the engine's threads. Must be called inside an actix system.
    pub fn new(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        mirror: Option<HoldMirror>,
        bus: Option<LiveBus>,
        cluster: Arc<Cluster>,
    ) -> Registry {
        let arbiters: Vec<Arbiter> = (0..config.threads.max(1)).map(|_| Arbiter::new()).collect();
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        Registry {
            pool,
            clock,
            config,
            arbiters: Mutex::new(arbiters),
            handles,
            next: AtomicUsize::new(0),
            events: RwLock::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
            holds: RwLock::new(HashMap::new()),
            mirror,
            bus,
            cluster,
        }
    }

    fn arbiter(&self) -> &ArbiterHandle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }

    fn running(&self, event_id: Uuid) -> Option<Running> {
        let events = self
            .events
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        events
            .get(&event_id)
            .filter(|r| r.event.connected() && r.lease.valid())
            .cloned()
    }

    async fn get_running(&self, event_id: Uuid) -> Result<Running, EngineError> {
        if let Some(running) = self.running(event_id) {
            return Ok(running);
        }
        let _starting = self.starting.lock().await;
        if let Some(running) = self.running(event_id) {
            return Ok(running);
        }
        let running = self.start(event_id).await?;
        self.events
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(event_id, running.clone());
        Ok(running)
    }

    /// The event's actor, started if it is not running yet.
    pub async fn get(&self, event_id: Uuid) -> Result<Addr<EventActor>, EngineError> {
        Ok(self.get_running(event_id).await?.event)
    }

    /// The event's actor and the lease it runs under.
    pub async fn get_owned(
        &self,
        event_id: Uuid,
    ) -> Result<(Addr<EventActor>, LeaseToken), EngineError> {
        let running = self.get_running(event_id).await?;
        Ok((running.event, running.lease))
    }

    /// The event's live map on this node, its engine started if it is not running yet.
    pub async fn live(&self, event_id: Uuid) -> Result<Addr<Broadcaster>, EngineError> {
        Ok(self.get_running(event_id).await?.live)
    }

    /// Whether an event's actor is running (it is not started by asking).
    pub fn if_running(&self, event_id: Uuid) -> Option<Addr<EventActor>> {
        self.running(event_id).map(|r| r.event)
    }

    /// The live map of an event whose engine runs on this node.
    pub fn live_if_running(&self, event_id: Uuid) -> Option<Addr<Broadcaster>> {
        self.running(event_id).map(|r| r.live)
    }

    async fn start(&self, event_id: Uuid) -> Result<Running, EngineError> {
        let lease = match self.cluster.ensure(event_id).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Err(EngineError::OwnerUnavailable),
            Err(ClusterError::NoSuchEvent) => {
                return Err(EngineError::Hold(HoldError::EventNotFound))
            }
            Err(ClusterError::Stopping) => return Err(EngineError::OwnerUnavailable),
            Err(ClusterError::Unexpected(error)) => return Err(error.into()),
        };
        if let Some(mirror) = &self.mirror {
            match mirror.raise(event_id, lease.epoch).await {
                Ok(true) => {}
                Ok(false) => {
                    self.cluster.fenced(event_id, "redis_holds");
                    return Err(EngineError::OwnerUnavailable);
                }
                Err(error) => {
                    tracing::warn!(%event_id, %error, "could not raise the epoch in Redis")
                }
            }
        }
        let state = onsale::load(&self.pool, event_id)
            .await?
            .ok_or(EngineError::Hold(HoldError::EventNotFound))?;
        let status = state.event.status();
        holds::open_for_sale(status)?;
        // Build the boards, put back the holds a previous run mirrored, then start actors.
        let mut boards: Vec<Option<SeatBoard>> = state
            .sections
            .iter()
            .map(|s| {
                (s.kind == SectionKind::Seated)
                    .then(|| SeatBoard::new(rows::rows(&s.seats), &s.sold, &s.blocked))
            })
            .collect();
        let mut restored = self
            .restore(event_id, lease.epoch, &state.sections, &mut boards)
            .await;
        self.restore_offers(event_id, &state, &mut boards, &mut restored)
            .await;
        let live = self.start_live(event_id, &state, &boards, &restored);
        let (sections, addrs): (Vec<BookSection>, Vec<_>) = state
            .sections
            .into_iter()
            .zip(boards)
            .enumerate()
            .map(|(index, (s, board))| {
                let kind = s.kind;
                let (addr, free) = match board {
                    Some(board) => {
                        let free = if s.price_cents.is_some() {
                            board.counts().available
                        } else {
                            0
                        };
                        let recipient = live.clone().recipient();
                        (
                            Some(SectionActor::start_in_arbiter(self.arbiter(), move |_| {
                                SectionActor::new(board).with_live(recipient, index)
                            })),
                            free,
                        )
                    }
                    None => (None, 0),
                };
                let section = BookSection {
                    section_id: s.section_id,
                    name: s.name,
                    kind,
                    price_cents: s.price_cents,
                    seats: s.seats,
                    free,
                };
                (section, addr)
            })
            .unzip();
        let tiers = state
            .tiers
            .into_iter()
            .map(|t| BookTier {
                tier_id: t.tier_id,
                section_id: t.section_id,
                name: t.name,
                price_cents: t.price_cents,
                quantity: u32::try_from(t.quantity).unwrap_or(0),
                sold: u32::try_from(t.sold_quantity).unwrap_or(0),
                held: 0,
                max_per_order: u32::try_from(t.max_per_order).unwrap_or(1),
                sale_starts_at: t.sale_starts_at,
                sale_ends_at: t.sale_ends_at,
            })
            .collect();
        let rules = SaleRules {
            sale_starts_at: state.onsale.sale_starts_at,
            sale_ends_at: state.onsale.sale_ends_at,
            hold_duration: Duration::minutes(state.onsale.hold_minutes.into()),
            max_per_order: u32::try_from(state.onsale.max_per_order).unwrap_or(1),
            max_holds_per_buyer: self.config.max_holds_per_buyer,
            max_per_buyer: u32::try_from(state.onsale.buyer_limit()).unwrap_or(1),
            hold_warning: self.config.live.hold_warning,
            offer_duration: Duration::minutes(state.onsale.waitlist_offer_minutes.into()),
        };
        let waiters = state
            .waitlist
            .iter()
            .filter(|e| e.status == "WAITING")
            .filter_map(|e| e.waiter())
            .collect();
        let currency = state.event.currency.trim().to_owned();
        let book = HoldBook::new(event_id, currency, status, rules, sections, tiers)
            .with_bought(state.bought)
            .with_waiters(waiters, state.inbox_seq);
        let actor = EventActor::new(event_id, book, addrs, self.clock.clone(), self.pool.clone())
            .with_lease(lease.clone())
            .with_live(live.clone())
            .with_mirror(self.mirror.clone(), restored);
        tracing::info!(%event_id, epoch = lease.epoch, "starting the on-sale engine of an event");
        Ok(Running {
            event: EventActor::start_in_arbiter(self.arbiter(), move |_| actor),
            live,
            lease,
        })
    }

    /// Starts the event's live map from the boards as they are about to start (and the
    /// tiers, less what restored holds keep), numbering its batches from the current time
    /// in milliseconds so that a restarted node's numbers follow on from the last run's.
    fn start_live(
        &self,
        event_id: Uuid,
        state: &onsale::OnSaleState,
        boards: &[Option<SeatBoard>],
        restored: &[MirroredHold],
    ) -> Addr<Broadcaster> {
        let sections = state
            .sections
            .iter()
            .zip(boards)
            .map(|(s, board)| SectionStart {
                section_id: s.section_id,
                seat_ids: s.seats.iter().map(|seat| seat.seat_id).collect(),
                states: board
                    .as_ref()
                    .map(|b| b.states().to_vec())
                    .unwrap_or_default(),
                on_sale: s.price_cents.is_some() && board.is_some(),
            })
            .collect();
        let tiers = state
            .tiers
            .iter()
            .map(|t| {
                let held: u32 = restored
                    .iter()
                    .filter_map(|h| h.tier.filter(|(id, _)| *id == t.tier_id))
                    .map(|(_, quantity)| quantity)
                    .sum();
                let sold = u32::try_from(t.sold_quantity).unwrap_or(0);
                TierStart {
                    tier_id: t.tier_id,
                    section_id: t.section_id,
                    counts: TierCounts {
                        available: u32::try_from(t.quantity - t.sold_quantity)
                            .unwrap_or(0)
                            .saturating_sub(held),
                        held,
                        sold,
                    },
                }
            })
            .collect();
        let seq = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        let map = LiveMap::new(seq, sections, tiers);
        let (config, bus) = (self.config.live.clone(), self.bus.clone());
        Broadcaster::start_in_arbiter(self.arbiter(), move |_| {
            Broadcaster::source(event_id, map, config, bus)
        })
    }

    /// The unexpired holds Redis kept for this event whose seats are all still free, their
    /// seats held again on `boards`. Holds that no longer fit are dropped from Redis.
    async fn restore(
        &self,
        event_id: Uuid,
        epoch: i64,
        sections: &[onsale::SectionState],
        boards: &mut [Option<SeatBoard>],
    ) -> Vec<MirroredHold> {
        let Some(mirror) = &self.mirror else {
            return Vec::new();
        };
        let saved = match mirror.load(event_id).await {
            Ok(saved) => saved,
            Err(error) => {
                tracing::warn!(%event_id, %error, "could not read mirrored holds; starting without them");
                return Vec::new();
            }
        };
        // A hold whose order was written just before the crash may still be in the mirror:
        // its seats (or tickets) are sold, and must not count as held as well.
        let ids: Vec<Uuid> = saved.iter().map(|h| h.hold_id).collect();
        let bought = match orders::holds_with_orders(&self.pool, &ids).await {
            Ok(bought) => bought,
            Err(error) => {
                tracing::warn!(%event_id, %error, "could not check restored holds for orders; starting without them");
                return Vec::new();
            }
        };
        let now = self.clock.now();
        let mut kept = Vec::new();
        for hold in saved {
            let fits = hold.expires_at > now
                && !bought.contains(&hold.hold_id)
                && self.put_back(&hold, sections, boards);
            if fits {
                self.remember_hold(hold.hold_id, event_id);
                kept.push(hold);
            } else {
                mirror.remove(event_id, epoch, hold.hold_id);
            }
        }
        if !kept.is_empty() {
            tracing::info!(%event_id, holds = kept.len(), "restored holds from Redis");
        }
        kept
    }

    /// Takes back the waitlist offers Postgres records (those Redis did not give back
    /// already), expired ones too: the first sweep passes those on to the next waiter.
    /// An offer whose seats are no longer free ends.
    async fn restore_offers(
        &self,
        event_id: Uuid,
        state: &onsale::OnSaleState,
        boards: &mut [Option<SeatBoard>],
        restored: &mut Vec<MirroredHold>,
    ) {
        let seat_at: HashMap<Uuid, (Uuid, u32)> = state
            .sections
            .iter()
            .flat_map(|s| {
                s.seats
                    .iter()
                    .enumerate()
                    .map(move |(p, seat)| (seat.seat_id, (s.section_id, p as u32)))
            })
            .collect();
        for entry in state.waitlist.iter().filter(|e| e.status == "OFFERED") {
            let (Some(hold_id), Some(expires_at)) = (entry.hold_id, entry.offer_expires_at) else {
                continue;
            };
            if restored.iter().any(|h| h.hold_id == hold_id) {
                continue;
            }
            let seats: Vec<(Uuid, u32)> = entry
                .offer_seats
                .iter()
                .flatten()
                .filter_map(|id| seat_at.get(id).copied())
                .collect();
            let tier = entry
                .tier_id
                .map(|t| (t, u32::try_from(entry.quantity).unwrap_or(1)));
            let hold = MirroredHold {
                hold_id,
                buyer_id: entry.user_id,
                expires_at,
                seats,
                tier,
                offer: Some(entry.entry_id),
            };
            if tier.is_some() || self.put_back(&hold, &state.sections, boards) {
                self.remember_hold(hold_id, event_id);
                restored.push(hold);
            } else if let Err(error) = crate::persistence::waitlist::offer_ended(
                &self.pool,
                entry.entry_id,
                "EXPIRED",
                self.clock.now(),
            )
            .await
            {
                tracing::warn!(%event_id, %error, "could not end a waitlist offer");
            }
        }
    }

    /// Holds a mirrored hold's seats on the boards, all or none.
    fn put_back(
        &self,
        hold: &MirroredHold,
        sections: &[onsale::SectionState],
        boards: &mut [Option<SeatBoard>],
    ) -> bool {
        let on_sale = |id: &Uuid| {
            sections
                .iter()
                .position(|s| s.section_id == *id && s.price_cents.is_some())
        };
        let Some(seats) = hold
            .seats
            .iter()
            .map(|(id, position)| on_sale(id).map(|i| (i, *position)))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let by_section = group_by(seats);
        let mut placed: Vec<(usize, Vec<u32>)> = Vec::new();
        for (i, positions) in by_section {
            let ok = boards
                .get_mut(i)
                .and_then(Option::as_mut)
                .is_some_and(|b| b.hold(hold.hold_id, &positions).is_ok());
            if !ok {
                for (j, done) in placed {
                    if let Some(board) = boards.get_mut(j).and_then(Option::as_mut) {
                        board.release(hold.hold_id, &done);
                    }
                }
                return false;
            }
            placed.push((i, positions));
        }
        true
    }

    /// Notes which event a new hold belongs to.
    pub fn remember_hold(&self, hold_id: Uuid, event_id: Uuid) {
        self.holds
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(hold_id, event_id);
    }

    /// The event a hold was taken on, if this node saw it.
    pub fn event_of_hold(&self, hold_id: Uuid) -> Option<Uuid> {
        self.holds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hold_id)
            .copied()
    }

    /// The events whose actors run here.
    pub fn running_events(&self) -> Vec<Uuid> {
        self.events
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// Whether the event's actors run here (under a valid lease).
    pub fn is_running(&self, event_id: Uuid) -> bool {
        self.running(event_id).is_some()
    }

    /// Stops an event's actors, telling live viewers why (`event_closed` for cancelled or
    /// finished events, `owner_moved` when another node takes over).
    pub fn stop(&self, event_id: Uuid, reason: &'static str) {
        let removed = self
            .events
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&event_id);
        if let Some(running) = removed {
            running.event.do_send(super::event::Stop(reason));
        }
        self.holds
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, e| *e != event_id);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for arbiter in self
            .arbiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            arbiter.stop();
        }
    }
}
