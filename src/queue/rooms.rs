//! The waiting rooms of this node: finds (or starts) an on-sale's QueueActor, and is what
//! the HTTP layer calls to join, read a place, check an admission token, and steer a room.
//!
//! Which on-sales have a waiting room is read from Postgres once per event and kept; a
//! changed schedule (`reread`) is read again, the line kept. Rooms run on a thread of their own, and come
//! back from Redis when the node restarts.
//!
//! A room runs on the node that owns its on-sale's lease (`cluster`), beside the event's
//! engine: starting one takes the lease, raises the epoch in Redis, and only then reads the
//! line back, so the previous owner's writes are either read or refused. A room whose lease
//! lapsed counts as not running here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use uuid::Uuid;

use super::actor::{
    AdmitNow, CheckSession, ClaimRefused, Close, Control, Handover, Join, JoinRefused, Leave,
    Purchased, QueueActor, RoomConfig, RoomNews, Schedule, Standing, Stats, Status, StopRoom,
    Transfer, Unwatch, Watch,
};
use super::admission::{AdmissionClaims, AdmissionError, AdmissionKeys};
use super::line::Line;
use super::store::QueueStore;
use crate::actors::Engine;
use crate::clock::Clock;
use crate::cluster::{ClusterError, LeaseToken};
use crate::domain::event::EventStatus;
use crate::domain::onsale::{AdmissionInput, Door};
use crate::domain::FieldErrors;
use crate::persistence::events as store;
use crate::views::{QueueView, RoomStats};

/// Why the waiting room could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no such event")]
    EventNotFound,
    #[error("this on-sale has no waiting room: hold seats directly")]
    NoWaitingRoom,
    #[error("the waiting room opens at {0}")]
    NotOpenYet(DateTime<Utc>),
    #[error("you are not in this waiting room: join it first")]
    NotInQueue,
    #[error("this on-sale has a waiting room: send the X-Admission-Token it gave you")]
    AdmissionRequired,
    #[error("the admission token was refused: {0}")]
    AdmissionInvalid(AdmissionError),
    #[error("the waiting room is not available: {0}")]
    Unavailable(#[from] MailboxError),
    #[error("the on-sale's owner is unavailable")]
    OwnerUnavailable,
    #[error("this visitor is waiting in the drawn line: claim the place once it is let in")]
    ClaimTooLate,
    #[error("joining this waiting room needs a solved proof-of-work challenge (X-Proof-Of-Work)")]
    ProofRequired,
    #[error("some fields are invalid")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Clone)]
enum Room {
    /// The on-sale has no waiting room.
    None,
    Open {
        addr: Addr<QueueActor>,
        sale_starts_at: DateTime<Utc>,
        lease: LeaseToken,
    },
}

pub struct WaitingRooms {
    pool: PgPool,
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    keys: AdmissionKeys,
    config: RoomConfig,
    store: Option<QueueStore>,
    arbiter: ArbiterHandle,
    _thread: Mutex<Arbiter>,
    rooms: RwLock<HashMap<Uuid, Room>>,
    starting: tokio::sync::Mutex<()>,
    /// Seeds each room's random draws (fixed in tests, from the OS otherwise).
    seeds: Mutex<StdRng>,
    next_watcher: std::sync::atomic::AtomicU64,
}

impl WaitingRooms {
    /// Must be called inside an actix system.
    pub fn new(
        pool: PgPool,
        engine: Arc<Engine>,
        clock: Arc<dyn Clock>,
        secret: &[u8],
        config: RoomConfig,
        store: Option<QueueStore>,
        seed: Option<u64>,
    ) -> WaitingRooms {
        let thread = Arbiter::new();
        WaitingRooms {
            pool,
            engine,
            clock,
            keys: AdmissionKeys::new(secret),
            config,
            store,
            arbiter: thread.handle(),
            _thread: Mutex::new(thread),
            rooms: RwLock::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
            seeds: Mutex::new(seed.map_or_else(StdRng::from_entropy, StdRng::seed_from_u64)),
            next_watcher: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn cached(&self, event_id: Uuid) -> Option<Room> {
        let rooms = self
            .rooms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match rooms.get(&event_id) {
            Some(Room::Open { addr, lease, .. }) if !addr.connected() || !lease.valid() => None,
            other => other.cloned(),
        }
    }

    /// The event's room, started if needed; `None` when its on-sale has no waiting room.
    async fn room(&self, event_id: Uuid) -> Result<Room, QueueError> {
        if let Some(room) = self.cached(event_id) {
            return Ok(room);
        }
        let _starting = self.starting.lock().await;
        if let Some(room) = self.cached(event_id) {
            return Ok(room);
        }
        let room = self.start(event_id, None).await?;
        self.rooms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(event_id, room.clone());
        Ok(room)
    }

    /// Starts the event's room; `kept`: the line of the room it replaces on this node,
    /// newer than anything Redis holds (and all there is without Redis).
    async fn start(&self, event_id: Uuid, kept: Option<Handover>) -> Result<Room, QueueError> {
        let event = store::find_event(&self.pool, event_id)
            .await?
            .ok_or(QueueError::EventNotFound)?;
        if event.status() == EventStatus::Draft {
            return Err(QueueError::EventNotFound);
        }
        let Some(onsale) = store::find_onsale(&self.pool, event_id).await? else {
            return Ok(Room::None);
        };
        let (Some(queue_opens_at), Some(rate)) =
            (onsale.queue_opens_at, onsale.admission_per_minute)
        else {
            return Ok(Room::None);
        };
        let schedule = Schedule {
            queue_opens_at,
            sale_starts_at: onsale.sale_starts_at,
            sale_ends_at: onsale.sale_ends_at,
            max_per_order: u32::try_from(onsale.max_per_order).unwrap_or(1).max(1),
            admission_per_minute: u32::try_from(rate).unwrap_or(0),
            paused: onsale.admission_paused,
            door: onsale.door(),
        };
        let lease = match self.engine.cluster().ensure(event_id).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Err(QueueError::OwnerUnavailable),
            Err(ClusterError::NoSuchEvent) => return Err(QueueError::EventNotFound),
            Err(ClusterError::Stopping) => return Err(QueueError::OwnerUnavailable),
            Err(ClusterError::Unexpected(error)) => return Err(error.into()),
        };
        if let Some(queues) = &self.store {
            if !queues.raise(event_id, lease.epoch).await? {
                self.engine.cluster().fenced(event_id, "redis_queue");
                return Err(QueueError::OwnerUnavailable);
            }
        }
        let now = self.clock.now();
        let (kept, sockets) = match kept.map(Handover::split) {
            Some((line, sockets)) => (Some(line), Some(sockets)),
            None => (None, None),
        };
        let line = match (kept, &self.store) {
            (Some(line), _) => line,
            (None, Some(queues)) => {
                let kept = queues.load(event_id).await?;
                Line::restore(kept.places, kept.admissions, kept.started, now)
            }
            (None, None) => Line::new(),
        };
        let expire = (schedule.sale_ends_at + Duration::days(1)).timestamp();
        if line.waiting() > 0 || line.admitted() > 0 {
            tracing::info!(%event_id, waiting = line.waiting(), admitted = line.admitted(), "waiting room restored from Redis");
        }
        let rng = {
            let mut seeds = self
                .seeds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            StdRng::seed_from_u64(seeds.gen())
        };
        let closed = matches!(
            event.status(),
            EventStatus::Cancelled | EventStatus::Completed
        );
        let (engine, clock, config) =
            (self.engine.clone(), self.clock.clone(), self.config.clone());
        let queues = self.store.clone();
        let epoch = lease.epoch;
        let addr = QueueActor::start_in_arbiter(&self.arbiter, move |_| {
            // The Redis writer runs on the room's own thread.
            let room_store = queues.map(|q| q.room(event_id, epoch, expire));
            let mut room = QueueActor::new(
                event_id, schedule, config, line, rng, engine, clock, room_store, closed,
            );
            if let Some(sockets) = sockets {
                room.adopt(sockets);
            }
            room
        });
        Ok(Room::Open {
            addr,
            sale_starts_at: schedule.sale_starts_at,
            lease,
        })
    }

    async fn open_room(
        &self,
        event_id: Uuid,
    ) -> Result<(Addr<QueueActor>, DateTime<Utc>), QueueError> {
        match self.room(event_id).await? {
            Room::Open {
                addr,
                sale_starts_at,
                ..
            } => Ok((addr, sale_starts_at)),
            Room::None => Err(QueueError::NoWaitingRoom),
        }
    }

    /// Whether the event's on-sale has a waiting room (wherever the room runs).
    pub async fn has_room(&self, event_id: Uuid) -> Result<bool, QueueError> {
        if let Some(room) = self.cached(event_id) {
            return Ok(matches!(room, Room::Open { .. }));
        }
        let event = store::find_event(&self.pool, event_id)
            .await?
            .ok_or(QueueError::EventNotFound)?;
        if event.status() == EventStatus::Draft {
            return Err(QueueError::EventNotFound);
        }
        Ok(store::find_onsale(&self.pool, event_id)
            .await?
            .is_some_and(|o| o.queue_opens_at.is_some() && o.admission_per_minute.is_some()))
    }

    /// Takes a place for `buyer` (or returns the one they have).
    /// Takes a place for `buyer`; `proven`: the request brought a solved proof of work
    /// (already redeemed), which the room's door may demand of a new buyer.
    pub async fn join(
        &self,
        event_id: Uuid,
        buyer: Uuid,
        proven: bool,
    ) -> Result<QueueView, QueueError> {
        let (addr, sale_starts_at) = self.open_room(event_id).await?;
        match addr.send(Join { buyer, proven }).await? {
            Ok(standing) => self.view(event_id, buyer, standing, sale_starts_at),
            Err(JoinRefused::NotOpenYet(at)) => Err(QueueError::NotOpenYet(at)),
            Err(JoinRefused::ProofRequired) => Err(QueueError::ProofRequired),
        }
    }

    /// Where `buyer` stands.
    pub async fn status(&self, event_id: Uuid, buyer: Uuid) -> Result<QueueView, QueueError> {
        let (addr, sale_starts_at) = self.open_room(event_id).await?;
        let standing = addr.send(Status { buyer }).await?;
        self.view(event_id, buyer, standing, sale_starts_at)
    }

    /// `buyer` leaves the room (their place, or their shopping session, ends).
    pub async fn leave(&self, event_id: Uuid, buyer: Uuid) -> Result<(), QueueError> {
        let (addr, _) = self.open_room(event_id).await?;
        if addr.send(Leave { buyer }).await? {
            Ok(())
        } else {
            Err(QueueError::NotInQueue)
        }
    }

    /// The API's view of a standing; an admission comes with its signed token.
    pub fn view(
        &self,
        event_id: Uuid,
        buyer: Uuid,
        standing: Standing,
        sale_starts_at: DateTime<Utc>,
    ) -> Result<QueueView, QueueError> {
        Ok(match standing {
            Standing::PreQueue { waiting } => QueueView {
                phase: Some("pre_queue"),
                waiting: Some(waiting),
                sale_starts_at: Some(sale_starts_at),
                ..QueueView::state("waiting")
            },
            Standing::Waiting {
                position,
                eta_seconds,
                waiting,
            } => QueueView {
                phase: Some("line"),
                position: Some(position),
                ahead: Some(position.saturating_sub(1)),
                eta_seconds,
                waiting: Some(waiting),
                ..QueueView::state("waiting")
            },
            Standing::Admitted(admission) => {
                let claims = AdmissionClaims::new(
                    buyer,
                    event_id,
                    admission.jti,
                    admission.admitted_at,
                    admission.expires_at,
                );
                QueueView {
                    admission_token: Some(self.keys.sign(&claims)?),
                    admitted_at: Some(admission.admitted_at),
                    expires_at: Some(admission.expires_at),
                    ..QueueView::state("admitted")
                }
            }
            Standing::SoldOut => QueueView::state("sold_out"),
            Standing::Closed => QueueView::state("closed"),
            Standing::NotQueued => return Err(QueueError::NotInQueue),
        })
    }

    /// For holds and checkout: `Ok(None)` when the event has no waiting room; otherwise the
    /// token must admit this buyer to this event now, and be their current session. Returns
    /// when the shopping window closes.
    pub async fn require_admission(
        &self,
        event_id: Uuid,
        buyer: Uuid,
        token: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, QueueError> {
        let Room::Open { addr, .. } = self.room(event_id).await? else {
            return Ok(None);
        };
        let token = token.ok_or(QueueError::AdmissionRequired)?;
        let claims = self
            .keys
            .verify(token, event_id, buyer, self.clock.now())
            .map_err(QueueError::AdmissionInvalid)?;
        if !addr
            .send(CheckSession {
                buyer,
                jti: claims.jti,
            })
            .await?
        {
            return Err(QueueError::AdmissionInvalid(AdmissionError::Superseded));
        }
        DateTime::from_timestamp(claims.exp, 0)
            .map(Some)
            .ok_or(QueueError::AdmissionInvalid(AdmissionError::Invalid))
    }

    /// The buyer bought: they stop counting against the inventory that is left.
    pub fn purchased(&self, event_id: Uuid, buyer: Uuid) {
        if let Some(Room::Open { addr, .. }) = self.cached(event_id) {
            addr.do_send(Purchased { buyer });
        }
    }

    /// Moves a visitor's place or admission to the buyer who signed in.
    pub async fn claim(
        &self,
        event_id: Uuid,
        visitor: Uuid,
        buyer: Uuid,
    ) -> Result<QueueView, QueueError> {
        let (addr, sale_starts_at) = self.open_room(event_id).await?;
        let standing = addr
            .send(Transfer {
                from: visitor,
                to: buyer,
            })
            .await?
            .map_err(|ClaimRefused::TooLate| QueueError::ClaimTooLate)?;
        self.view(event_id, buyer, standing, sale_starts_at)
    }

    /// Registers a socket to be told at once of an admission or the end of the sale.
    pub async fn watch(
        &self,
        event_id: Uuid,
        buyer: Uuid,
        watcher: Recipient<RoomNews>,
    ) -> Result<u64, QueueError> {
        let (addr, _) = self.open_room(event_id).await?;
        let id = self
            .next_watcher
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        addr.send(Watch { buyer, id, watcher }).await?;
        Ok(id)
    }

    pub fn unwatch(&self, event_id: Uuid, buyer: Uuid, id: u64) {
        if let Some(Room::Open { addr, .. }) = self.cached(event_id) {
            addr.do_send(Unwatch { buyer, id });
        }
    }

    /// Runs an admission pass at once; how many were let in.
    pub async fn admit_now(&self, event_id: Uuid) -> Result<u64, QueueError> {
        self.ask(event_id, AdmitNow).await
    }

    /// The room's figures.
    pub async fn stats(&self, event_id: Uuid) -> Result<RoomStats, QueueError> {
        self.ask(event_id, Stats).await
    }

    /// Sends `message` to the event's room; a room that closed between being found and
    /// being asked (its settings changed, and it is being reopened with them) is found
    /// again, once.
    async fn ask<M>(&self, event_id: Uuid, message: M) -> Result<M::Result, QueueError>
    where
        M: Message + Clone + Send + 'static,
        M::Result: Send,
        QueueActor: Handler<M>,
    {
        let (addr, _) = self.open_room(event_id).await?;
        match addr.send(message.clone()).await {
            Err(MailboxError::Closed) => {
                let (addr, _) = self.open_room(event_id).await?;
                Ok(addr.send(message).await?)
            }
            answer => Ok(answer?),
        }
    }

    /// Pauses, resumes or re-rates admission, or changes the door: checked against the
    /// limits and the door as it is, saved in Postgres (so a restarted or moved room keeps
    /// it), then told to the running room. Answers with the room's figures.
    pub async fn change_admission(
        &self,
        event_id: Uuid,
        input: &AdmissionInput,
    ) -> Result<RoomStats, QueueError> {
        if !self.has_room(event_id).await? {
            return Err(QueueError::NoWaitingRoom);
        }
        let door = match input.changes_door() {
            true => store::find_onsale(&self.pool, event_id)
                .await?
                .map(|o| o.door())
                .unwrap_or_default(),
            false => Door::default(),
        };
        let change = input.check(door).map_err(QueueError::Invalid)?;
        let rate = change.admission_per_minute.map(|r| r as i32);
        crate::persistence::onsale::set_admission(
            &self.pool,
            event_id,
            change.paused,
            rate,
            change.door,
        )
        .await?;
        let (addr, _) = self.open_room(event_id).await?;
        Ok(addr
            .send(Control {
                paused: change.paused,
                admission_per_minute: change.admission_per_minute,
                door: change.door,
            })
            .await?)
    }

    /// The on-sale's schedule changed: a room running here is stopped and started again
    /// from Postgres at once, with the line it had (places taken before the organizer
    /// moved the sale are kept, with or without Redis); a room not running here is read
    /// again when next needed.
    pub async fn reread(&self, event_id: Uuid) {
        let _starting = self.starting.lock().await;
        let removed = self
            .rooms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&event_id);
        let Some(Room::Open { addr, lease, .. }) = removed else {
            return;
        };
        let Ok(handover) = addr.send(StopRoom).await else {
            return; // it had stopped already: what it kept is in Redis, if anywhere
        };
        if !lease.valid() {
            return; // the on-sale moved to another node, whose room reads Redis
        }
        match self.start(event_id, Some(handover)).await {
            Ok(room) => {
                self.rooms
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(event_id, room);
            }
            Err(error) => {
                tracing::warn!(%event_id, %error, "could not start the waiting room again after its schedule changed");
            }
        }
    }

    /// The on-sale's lease was lost: its room stops here (the new owner reads the line
    /// back from Redis).
    pub fn forget(&self, event_id: Uuid) {
        let removed = self
            .rooms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&event_id);
        if let Some(Room::Open { addr, .. }) = removed {
            addr.do_send(StopRoom);
        }
    }

    /// Whether the event's room runs here (under a valid lease).
    pub fn is_running(&self, event_id: Uuid) -> bool {
        matches!(self.cached(event_id), Some(Room::Open { .. }))
    }

    /// Forgets every cached "this on-sale has no waiting room" (changes may have been
    /// missed); running rooms stay.
    pub fn forget_absent(&self) {
        self.rooms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, room| matches!(room, Room::Open { .. }));
    }

    /// The event was cancelled: everyone waiting is told.
    pub fn close(&self, event_id: Uuid) {
        if let Some(Room::Open { addr, .. }) = self.cached(event_id) {
            addr.do_send(Close);
        }
    }

    /// Starts the rooms whose queue is open (after a restart too), so they admit on time.
    pub async fn open_due(&self) -> anyhow::Result<()> {
        for event_id in crate::persistence::onsale::rooms_due(&self.pool, self.clock.now()).await? {
            if let Err(error) = self.room(event_id).await {
                tracing::warn!(%event_id, %error, "could not open a waiting room");
            }
        }
        Ok(())
    }
}
