//! The engine: what the HTTP layer calls to hold, release and buy. It walks each request
//! through the actors, the payment gateway and the order writer, in the order that keeps
//! the promises: no seat sold twice (the section actors decide), no payment taken on an
//! expired hold (the event actor decides before the card is touched), no "confirmed"
//! before the order is durable (the order writer answers after the commit), and no money
//! kept without an order (a payment row exists before the card is authorized, and the
//! reconciler voids what never became an order).
//!
//! It is a façade, split by job: [`holds`] (holding and letting go), [`checkout`] (paying,
//! and the reconciler's pass), [`reads`] (live states, counts, the live map, the inventory
//! the waiting room paces by). This file starts it and routes to an event's actors.

mod checkout;
mod holds;
mod reads;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use uuid::Uuid;

use super::broadcaster::LiveConfig;
use super::event::TakeNotes;
use super::live_bus::{Followers, LiveBus};
use super::messages::EngineError;
use super::order_writer::OrderWriter;
use super::registry::{EngineConfig, Registry};
use crate::clock::Clock;
use crate::cluster::invalidate::Change;
use crate::cluster::Cluster;
use crate::domain::holds::HoldError;
use crate::payments::capturer::Capturer;
use crate::payments::PaymentGateway;
use crate::persistence::{inbox, onsale};

/// What an event has left on sale, and what the buyers shopping now may still take, as
/// the waiting room paces admission by them.
pub use crate::domain::holds::Demand as Inventory;

pub struct Engine {
    pool: sqlx::PgPool,
    registry: Registry,
    /// With Redis: the live maps this node relays for events whose engine runs elsewhere.
    bus: Option<LiveBus>,
    followers: Followers,
    live_config: LiveConfig,
    writer: Addr<OrderWriter>,
    /// Captures, behind the buyer's answer.
    captures: Capturer,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    payment_timeout: Duration,
    /// A hold whose checkout failed because payments were degraded gets this much more
    /// time, once (None: never).
    degraded_extension: Option<chrono::Duration>,
    cluster: Arc<Cluster>,
}

impl Engine {
    /// Starts the engine's threads and its order writer. Must be called inside an actix system.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: sqlx::PgPool,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
        config: EngineConfig,
        payment_timeout: Duration,
        mirror: Option<super::mirror::HoldMirror>,
        bus: Option<LiveBus>,
        cluster: Arc<Cluster>,
    ) -> Engine {
        let live_config = config.live.clone();
        let (order_queue, extension) = (config.order_queue, config.degraded_hold_extension);
        let registry = Registry::new(
            pool.clone(),
            clock.clone(),
            config,
            mirror,
            bus.clone(),
            cluster.clone(),
        );
        let followers = Followers::default();
        if let Some(bus) = &bus {
            bus.listen(followers.clone());
        }
        let (writer_pool, node) = (pool.clone(), cluster.node_id().to_owned());
        let writer = OrderWriter::start_in_arbiter(&actix::Arbiter::current(), move |_| {
            OrderWriter::new(writer_pool, node, order_queue)
        });
        let captures = Capturer::start(pool.clone(), gateway.clone());
        Engine {
            pool,
            registry,
            bus,
            followers,
            live_config,
            writer,
            captures,
            gateway,
            clock,
            payment_timeout,
            degraded_extension: chrono::Duration::from_std(extension)
                .ok()
                .filter(|d| *d > chrono::Duration::zero()),
            cluster,
        }
    }

    /// Whether card payments are degraded on this node (the processor's breaker is open
    /// or probing): the waiting rooms admit slower meanwhile.
    pub fn payments_degraded(&self) -> bool {
        self.gateway.degraded()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Who owns which on-sale.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Opens on-sales whose time has come and completes events that are over.
    pub async fn lifecycle_tick(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        for event_id in onsale::due_to_open(&self.pool, now).await? {
            match self.registry.get(event_id).await {
                Ok(_) => {}
                // Another node owns it and opens it.
                Err(EngineError::OwnerUnavailable) => {}
                Err(error) => tracing::warn!(%event_id, %error, "could not open an on-sale"),
            }
        }
        for event_id in onsale::complete_ended(&self.pool, now).await? {
            self.registry.stop(event_id, "event_closed");
        }
        // Notes whose notice was missed are taken here at the latest.
        self.catch_up_all().await;
        Ok(())
    }

    /// The event's actors (if they run here) take the notes of the engine's inbox they
    /// have not taken yet: tickets back from refunds, waitlist joins and leaves.
    pub async fn catch_up(&self, event_id: Uuid) {
        let Some(event) = self.registry.if_running(event_id) else {
            return;
        };
        let Ok(mut seq) = event.send(TakeNotes(Vec::new())).await else {
            return;
        };
        while seq < i64::MAX {
            let notes = match inbox::since(&self.pool, event_id, seq, 500).await {
                Ok(notes) if notes.is_empty() => return,
                Ok(notes) => notes,
                Err(error) => {
                    tracing::warn!(%event_id, %error, "could not read the engine's inbox");
                    return;
                }
            };
            match event.send(TakeNotes(notes)).await {
                Ok(next) if next > seq => seq = next,
                _ => return,
            }
        }
    }

    /// [`Engine::catch_up`] for every event whose actors run here.
    pub async fn catch_up_all(&self) {
        for event_id in self.registry.running_events() {
            self.catch_up(event_id).await;
        }
    }

    /// Tells every node that `event_id` has new inbox notes, and takes them here at once if
    /// its actors run here.
    pub async fn notify_inbox(&self, event_id: Uuid) {
        self.catch_up(event_id).await;
        if let Err(error) =
            crate::cluster::invalidate::announce(&self.pool, event_id, Change::Inbox).await
        {
            tracing::warn!(%event_id, %error, "could not announce engine notes");
        }
    }

    /// The payment gateway the engine pays (and refunds) through.
    pub fn gateway(&self) -> &Arc<dyn PaymentGateway> {
        &self.gateway
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Stops an event's actors (it was cancelled).
    pub fn stop_event(&self, event_id: Uuid) {
        self.registry.stop(event_id, "event_closed");
    }

    /// Stops an event's actors because this node no longer owns the on-sale (or its
    /// settings changed before the sale and it must be read again).
    pub fn stop_moved(&self, event_id: Uuid) {
        self.registry.stop(event_id, "owner_moved");
    }

    /// Whether the event's actors run on this node.
    pub fn is_running(&self, event_id: Uuid) -> bool {
        self.registry.is_running(event_id)
    }
}

/// Asked about a hold, "no such event" means no such hold.
fn not_found_as_hold(error: EngineError) -> EngineError {
    match error {
        EngineError::Hold(HoldError::EventNotFound) => EngineError::Hold(HoldError::HoldNotFound),
        other => other,
    }
}
