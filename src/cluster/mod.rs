//! Several nodes, one owner per on-sale. An on-sale's actors (event, sections, waiting
//! room, the live map's source) run on the node that holds its lease row in Postgres
//! (`onsale_leases`). The lease is taken and renewed with one conditional statement on the
//! database's clock; every takeover raises its `epoch`, and every durable write of the
//! on-sale carries that epoch and is refused when it is stale (the order writer's
//! transaction, the event status, the Redis scripts of the hold mirror and the waiting
//! line). A node whose renewal did not come back in time stops acting on the on-sale by its
//! own monotonic clock, before any other node can take the lease.
//!
//! This is a plain struct shared by every worker (like the registry): routing is a read of
//! a map on each request; taking a lease is rare and serialized by an async mutex.

pub mod fence;
pub mod invalidate;
pub mod lease;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, Opts};
use sqlx::PgPool;
use uuid::Uuid;

use crate::persistence::leases;
pub use lease::{Holder, LeaseTiming, LeaseToken, Monotonic, Route};

/// What runs an on-sale on this node, told when a lease is lost (to stop the actors) and
/// asked whether a lease is still in use (to give idle ones back).
pub trait LeaseHolder: Send + Sync {
    /// The lease on `event_id` ended: stop its actors at once (without touching what
    /// Redis keeps for the next owner).
    fn lost(&self, event_id: Uuid);
    /// Whether the on-sale's actors run here.
    fn running(&self, event_id: Uuid) -> bool;
}

/// Why routing could not decide.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no such event")]
    NoSuchEvent,
    /// This node is shutting down and takes no lease.
    #[error("this node is stopping")]
    Stopping,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// (event, epoch) of a lease this node holds.
type HeldLease = (Uuid, i64);

/// A lease this node holds.
struct Held {
    token: LeaseToken,
    /// Last time a request routed here used it, by the monotonic clock.
    used_ms: u64,
}

/// How long a lease nobody uses is kept before it is given back.
const IDLE_MS: u64 = 30_000;
/// How long the owner seen in Postgres is trusted for forwarding.
const OWNER_CACHE: Duration = Duration::from_millis(500);

/// Counters of lease changes, forwarded requests and refused (fenced) writes.
#[derive(Clone)]
pub struct ClusterMetrics {
    pub leases: IntCounterVec,
    pub forwarded: IntCounterVec,
    pub fenced: IntCounterVec,
    /// Leases held now, and whether the last heartbeat or renewal failed.
    pub held: prometheus::IntGauge,
    pub renewal_failing: prometheus::IntGauge,
}

impl ClusterMetrics {
    fn new() -> anyhow::Result<ClusterMetrics> {
        let metrics = ClusterMetrics {
            leases: IntCounterVec::new(
                Opts::new(
                    "lease_changes_total",
                    "On-sale leases this node acquired, lost, lapsed or released",
                ),
                &["change"],
            )?,
            forwarded: IntCounterVec::new(
                Opts::new(
                    "forwarded_requests_total",
                    "Requests this node forwarded to an on-sale's owner, by outcome",
                ),
                &["outcome"],
            )?,
            fenced: IntCounterVec::new(
                Opts::new(
                    "fenced_writes_total",
                    "Writes refused because this node's lease epoch was stale, by store",
                ),
                &["store"],
            )?,
            held: prometheus::IntGauge::new("leases_held", "On-sale leases this node holds")?,
            renewal_failing: prometheus::IntGauge::new(
                "lease_renewal_failing",
                "1 while this node's last heartbeat or lease renewal failed (its leases may lapse)",
            )?,
        };
        // Every series exists from the start, at zero (alerts and rates see it).
        for change in ["acquired", "lost", "lapsed", "released"] {
            metrics.leases.with_label_values(&[change]);
        }
        for outcome in ["answered", "no_answer"] {
            metrics.forwarded.with_label_values(&[outcome]);
        }
        for store in ["orders", "redis_holds", "redis_queue"] {
            metrics.fenced.with_label_values(&[store]);
        }
        Ok(metrics)
    }

    /// Registers the counters with the server's registry.
    pub fn register(&self, registry: &prometheus::Registry) -> anyhow::Result<()> {
        registry.register(Box::new(self.leases.clone()))?;
        registry.register(Box::new(self.forwarded.clone()))?;
        registry.register(Box::new(self.fenced.clone()))?;
        registry.register(Box::new(self.held.clone()))?;
        registry.register(Box::new(self.renewal_failing.clone()))?;
        Ok(())
    }
}

pub struct Cluster {
    node_id: String,
    url: String,
    /// A pool of its own, so that renewals never queue behind a busy order writer.
    pool: PgPool,
    timing: LeaseTiming,
    clock: Monotonic,
    held: RwLock<HashMap<Uuid, Held>>,
    owners: RwLock<HashMap<Uuid, (Holder, Instant)>>,
    taking: tokio::sync::Mutex<()>,
    holder: OnceLock<Arc<dyn LeaseHolder>>,
    /// Set at shutdown: no lease is taken from then on.
    stopping: std::sync::atomic::AtomicBool,
    /// Set on SIGTERM: the node still serves, but says it is not ready (a load balancer
    /// moves traffic away before it stops).
    draining: std::sync::atomic::AtomicBool,
    /// The last heartbeat or lease renewal failed: the leases held may lapse.
    renewal_failing: std::sync::atomic::AtomicBool,
    pub metrics: ClusterMetrics,
}

impl Cluster {
    pub fn new(
        pool: PgPool,
        node_id: String,
        url: String,
        timing: LeaseTiming,
    ) -> anyhow::Result<Cluster> {
        Ok(Cluster {
            node_id,
            url,
            pool,
            timing,
            clock: Monotonic::new(),
            held: RwLock::new(HashMap::new()),
            owners: RwLock::new(HashMap::new()),
            taking: tokio::sync::Mutex::new(()),
            holder: OnceLock::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            draining: std::sync::atomic::AtomicBool::new(false),
            renewal_failing: std::sync::atomic::AtomicBool::new(false),
            metrics: ClusterMetrics::new()?,
        })
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// Names what runs the on-sales here (once, at start-up).
    pub fn set_holder(&self, holder: Arc<dyn LeaseHolder>) {
        let _ = self.holder.set(holder);
    }

    /// This node's valid token for the event, if it holds the lease.
    pub fn token(&self, event_id: Uuid) -> Option<LeaseToken> {
        let held = self
            .held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.get(&event_id)
            .map(|h| h.token.clone())
            .filter(LeaseToken::valid)
    }

    fn touch(&self, event_id: Uuid) {
        let now = self.clock.now_ms();
        let mut held = self
            .held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = held.get_mut(&event_id) {
            h.used_ms = now;
        }
    }

    /// Where requests for the event's on-sale are served: here (taking the lease when
    /// nobody holds it) or at the owner.
    pub async fn route(&self, event_id: Uuid) -> Result<Route, ClusterError> {
        if let Some(token) = self.token(event_id) {
            self.touch(event_id);
            return Ok(Route::Local(token));
        }
        if let Some(Holder::Other { node_id, url }) = self.cached_owner(event_id) {
            return Ok(Route::Forward { node_id, url });
        }
        match self.holder_in_db(event_id).await? {
            Holder::Other { node_id, url } => Ok(Route::Forward { node_id, url }),
            Holder::Free | Holder::Me => self.take(event_id).await,
        }
    }

    /// For reads: the id and internal URL of the node that owns the on-sale when it is
    /// another node; `None` when it is this node or nobody (no lease is taken).
    pub async fn route_read(
        &self,
        event_id: Uuid,
    ) -> Result<Option<(String, String)>, ClusterError> {
        if self.token(event_id).is_some() {
            return Ok(None);
        }
        let holder = match self.cached_owner(event_id) {
            Some(holder) => holder,
            None => self.holder_in_db(event_id).await?,
        };
        Ok(match holder {
            Holder::Other { node_id, url } => Some((node_id, url)),
            Holder::Me | Holder::Free => None,
        })
    }

    /// Whether `node` still holds a live lease on the event, by Postgres (not the cache).
    pub async fn is_live_owner(&self, event_id: Uuid, node: &str) -> anyhow::Result<bool> {
        let row = leases::find(&self.pool, event_id).await?;
        Ok(row.is_some_and(|r| r.live && r.node_id == node))
    }

    /// This node's token for the event, taking the lease if nobody holds it; `None` when
    /// another node owns the on-sale.
    pub async fn ensure(&self, event_id: Uuid) -> Result<Option<LeaseToken>, ClusterError> {
        match self.route(event_id).await? {
            Route::Local(token) => Ok(Some(token)),
            Route::Forward { .. } => Ok(None),
        }
    }

    /// The node that owns the event now, as far as this node can tell (`None`: nobody).
    pub async fn owner(&self, event_id: Uuid) -> Result<Option<String>, ClusterError> {
        if self.token(event_id).is_some() {
            return Ok(Some(self.node_id.clone()));
        }
        let holder = match self.cached_owner(event_id) {
            Some(holder) => holder,
            None => self.holder_in_db(event_id).await?,
        };
        Ok(match holder {
            Holder::Other { node_id, .. } => Some(node_id),
            Holder::Me | Holder::Free => None,
        })
    }

    fn cached_owner(&self, event_id: Uuid) -> Option<Holder> {
        let owners = self
            .owners
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        owners
            .get(&event_id)
            .filter(|(_, at)| at.elapsed() < OWNER_CACHE)
            .map(|(h, _)| h.clone())
    }

    /// Forgets who owns the event (its owner did not answer).
    pub fn forget_owner(&self, event_id: Uuid) {
        self.owners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&event_id);
    }

    async fn holder_in_db(&self, event_id: Uuid) -> Result<Holder, ClusterError> {
        let row = leases::find(&self.pool, event_id).await?;
        let holder = Holder::of(
            &self.node_id,
            row.as_ref()
                .map(|r| (r.node_id.as_str(), r.node_url.as_str(), r.live)),
        );
        let mut owners = self
            .owners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if owners.len() > 10_000 {
            owners.retain(|_, (_, at)| at.elapsed() < OWNER_CACHE);
        }
        owners.insert(event_id, (holder.clone(), Instant::now()));
        Ok(holder)
    }

    /// Takes the lease if it is free (or lapsed); otherwise routes to whoever took it.
    async fn take(&self, event_id: Uuid) -> Result<Route, ClusterError> {
        let _taking = self.taking.lock().await;
        if let Some(token) = self.token(event_id) {
            return Ok(Route::Local(token));
        }
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ClusterError::Stopping);
        }
        let sent = self.clock.now_ms();
        let taken = leases::acquire(
            &self.pool,
            event_id,
            &self.node_id,
            &self.url,
            self.timing.ttl_ms(),
        )
        .await;
        let epoch = match taken {
            Ok(epoch) => epoch,
            Err(error) if is_foreign_key_violation(&error) => {
                return Err(ClusterError::NoSuchEvent)
            }
            Err(error) => return Err(error.into()),
        };
        let Some(epoch) = epoch else {
            return match self.holder_in_db(event_id).await? {
                Holder::Other { node_id, url } => Ok(Route::Forward { node_id, url }),
                // It lapsed between the two statements: the caller retries.
                Holder::Me | Holder::Free => Err(ClusterError::Unexpected(anyhow::anyhow!(
                    "the lease of {event_id} changed hands while being taken"
                ))),
            };
        };
        let token = LeaseToken::new(event_id, epoch, self.timing.deadline_ms(sent), self.clock);
        let old = self
            .held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                event_id,
                Held {
                    token: token.clone(),
                    used_ms: sent,
                },
            );
        if let Some(old) = old {
            // An older token of ours (lapsed): whatever it started must be stopped first.
            old.token.revoke();
            if let Some(holder) = self.holder.get() {
                holder.lost(event_id);
            }
        }
        self.forget_owner(event_id);
        self.metrics.leases.with_label_values(&["acquired"]).inc();
        tracing::info!(%event_id, epoch, node = %self.node_id, "took the on-sale's lease");
        Ok(Route::Local(token))
    }

    /// One pass of the lease keeper: renews what this node holds (when due), stops what
    /// lapsed or was lost, gives back what nobody uses. Called every 100 ms.
    async fn keep(&self, last_renewal: &mut Option<u64>) {
        let now = self.clock.now_ms();
        self.drop_lapsed(now);
        self.metrics.held.set(self.held().len() as i64);
        self.metrics.renewal_failing.set(i64::from(
            self.renewal_failing
                .load(std::sync::atomic::Ordering::Acquire),
        ));
        let due = last_renewal
            .is_none_or(|at| now.saturating_sub(at) >= self.timing.renew_every.as_millis() as u64);
        if !due {
            return;
        }
        *last_renewal = Some(now);
        let beat = leases::heartbeat(&self.pool, &self.node_id, &self.url).await;
        self.renewal_failing
            .store(beat.is_err(), std::sync::atomic::Ordering::Release);
        if let Err(error) = beat {
            tracing::warn!(%error, "could not record this node's heartbeat");
        }
        let (keep, idle) = self.split_idle(now);
        if !idle.is_empty() {
            self.give_back(&idle).await;
        }
        if keep.is_empty() {
            return;
        }
        match leases::renew(&self.pool, &self.node_id, &keep, self.timing.ttl_ms()).await {
            Ok(renewed) => {
                let deadline = self.timing.deadline_ms(now);
                let mut lost = Vec::new();
                {
                    let held = self
                        .held
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (event_id, epoch) in &keep {
                        match held.get(event_id) {
                            Some(h) if h.token.epoch == *epoch && renewed.contains(event_id) => {
                                h.token.extend(deadline)
                            }
                            Some(h) if h.token.epoch == *epoch => lost.push(*event_id),
                            _ => {}
                        }
                    }
                }
                for event_id in lost {
                    self.end(event_id, "lost");
                }
            }
            Err(error) => {
                self.renewal_failing
                    .store(true, std::sync::atomic::Ordering::Release);
                tracing::warn!(%error, "could not renew on-sale leases; they lapse unless the next try works")
            }
        }
    }

    /// Leases in use (to renew) and leases idle for long (to give back).
    fn split_idle(&self, now: u64) -> (Vec<HeldLease>, Vec<HeldLease>) {
        let held = self
            .held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let holder = self.holder.get();
        let (mut keep, mut idle) = (Vec::new(), Vec::new());
        for (event_id, h) in held.iter() {
            let in_use = now.saturating_sub(h.used_ms) < IDLE_MS
                || holder.is_some_and(|x| x.running(*event_id));
            if in_use {
                keep.push((*event_id, h.token.epoch));
            } else {
                idle.push((*event_id, h.token.epoch));
            }
        }
        (keep, idle)
    }

    async fn give_back(&self, idle: &[(Uuid, i64)]) {
        for (event_id, _) in idle {
            self.end(*event_id, "released");
        }
        if let Err(error) = leases::release(&self.pool, &self.node_id, idle).await {
            tracing::warn!(%error, "could not give idle leases back; they lapse by themselves");
        }
    }

    /// Stops acting on leases whose local deadline passed.
    fn drop_lapsed(&self, now: u64) {
        let lapsed: Vec<Uuid> = {
            let held = self
                .held
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            held.iter()
                .filter(|(_, h)| !h.token.valid())
                .map(|(e, _)| *e)
                .collect()
        };
        for event_id in lapsed {
            tracing::warn!(%event_id, now, "an on-sale lease lapsed before it was renewed: stopping its actors");
            self.end(event_id, "lapsed");
        }
    }

    /// Ends a lease here: revokes the token, stops the actors, counts it.
    fn end(&self, event_id: Uuid, change: &'static str) {
        let removed = self
            .held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&event_id);
        if let Some(held) = removed {
            held.token.revoke();
            self.metrics.leases.with_label_values(&[change]).inc();
            if change != "released" {
                tracing::warn!(%event_id, epoch = held.token.epoch, change, "this node no longer owns the on-sale");
            } else {
                tracing::info!(%event_id, epoch = held.token.epoch, "gave an idle on-sale lease back");
            }
            if let Some(holder) = self.holder.get() {
                holder.lost(event_id);
            }
        }
    }

    /// A durable write was refused for a stale epoch: the lease is gone, stop at once.
    pub fn fenced(&self, event_id: Uuid, store: &'static str) {
        self.metrics.fenced.with_label_values(&[store]).inc();
        tracing::warn!(%event_id, store, "a write was refused: this node's lease epoch is stale");
        self.end(event_id, "lost");
    }

    /// Runs the lease keeper until the actix system stops.
    pub fn spawn_keeper(self: &Arc<Self>) {
        let cluster = self.clone();
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = None;
            loop {
                tick.tick().await;
                cluster.keep(&mut last).await;
            }
        });
    }

    /// Gives every lease back and says this node stopped (clean shutdown), so other nodes
    /// take over at once instead of waiting for the leases to lapse.
    pub async fn shut_down(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let _taking = self.taking.lock().await;
        let held: Vec<(Uuid, i64)> = {
            let held = self
                .held
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            held.iter().map(|(e, h)| (*e, h.token.epoch)).collect()
        };
        for (event_id, _) in &held {
            self.end(*event_id, "released");
        }
        if let Err(error) = leases::release(&self.pool, &self.node_id, &held).await {
            tracing::warn!(%error, "could not give leases back at shutdown");
        }
        if let Err(error) = leases::stopped(&self.pool, &self.node_id).await {
            tracing::warn!(%error, "could not record this node's stop");
        }
    }

    /// From now on the node says it is not ready (SIGTERM: it drains before it stops).
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Why this node should not be sent traffic now, if it should not: draining or
    /// stopping, or its leases failing to renew (they would lapse under the buyers).
    pub fn unready(&self) -> Option<&'static str> {
        use std::sync::atomic::Ordering::Acquire;
        if self.draining.load(Acquire) || self.stopping.load(Acquire) {
            Some("draining")
        } else if self.renewal_failing.load(Acquire) {
            Some("leases_failing")
        } else {
            None
        }
    }

    /// Leases this node holds, with their epochs and milliseconds left.
    pub fn held(&self) -> Vec<(Uuid, i64, u64)> {
        let held = self
            .held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.iter()
            .map(|(e, h)| (*e, h.token.epoch, h.token.left_ms()))
            .collect()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn is_foreign_key_violation(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<sqlx::Error>()
        .and_then(|e| match e {
            sqlx::Error::Database(db) => db.code(),
            _ => None,
        })
        .is_some_and(|code| code == "23503")
}
