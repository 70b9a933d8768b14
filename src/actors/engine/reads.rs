//! What the engine answers without changing anything: live seat states and counts of an
//! event running here, its live map (run here, or followed from the owner through Redis),
//! the inventory the waiting room paces by, and which event a hold id belongs to.

use actix::prelude::*;
use uuid::Uuid;

use super::{Engine, Inventory};
use crate::actors::broadcaster::Broadcaster;
use crate::actors::event::Counts;
use crate::actors::messages::EngineError;
use crate::domain::hold_id::event_prefix;
use crate::domain::holds::EventCounts;
use crate::persistence::leases;

impl Engine {
    /// Live seat states of every seated section of an event whose engine runs.
    pub async fn seat_states(
        &self,
        event_id: Uuid,
    ) -> Option<Vec<(Uuid, Vec<crate::domain::seat_board::Seat>)>> {
        let event = self.registry.if_running(event_id)?;
        let sections = event.send(crate::actors::event::SectionAddrs).await.ok()?;
        let mut states = Vec::with_capacity(sections.len());
        for (section_id, addr) in sections {
            states.push((
                section_id,
                addr.send(crate::actors::section::Snapshot)
                    .await
                    .ok()?
                    .states,
            ));
        }
        Some(states)
    }

    /// The event's live seat map on this node: the engine's own when it runs here (or no
    /// other node runs it, in which case it starts here), otherwise a relay of the node
    /// that does.
    pub async fn live_map(&self, event_id: Uuid) -> Result<Addr<Broadcaster>, EngineError> {
        if let Some(live) = self.registry.live_if_running(event_id) {
            return Ok(live);
        }
        let owner = self.cluster.owner(event_id).await.unwrap_or_else(|error| {
            tracing::warn!(%event_id, %error, "could not read the on-sale's owner");
            None
        });
        if owner
            .as_deref()
            .is_none_or(|node| node == self.cluster.node_id())
        {
            match self.registry.live(event_id).await {
                Err(EngineError::OwnerUnavailable) => {}
                other => return other,
            }
        }
        // Another node owns the on-sale (the lease names the live map's source): relay it.
        let Some(bus) = &self.bus else {
            return Err(EngineError::OwnerUnavailable);
        };
        let (bus, config) = (bus.clone(), self.live_config.clone());
        Ok(self.followers.get_or_start(event_id, move || {
            Broadcaster::start_in_arbiter(&actix::Arbiter::current(), move |_| {
                Broadcaster::follower(event_id, config, bus)
            })
        }))
    }

    /// Seats and tickets still on sale (not held, not sold), how many buyers hold some, and
    /// what `shoppers` may still buy, starting the event's engine if it is not running.
    /// `waiting`: how many wait in the line (while any do, tickets an ended hold leaves go
    /// back on sale for them rather than to the waitlist).
    pub async fn inventory(
        &self,
        event_id: Uuid,
        shoppers: Vec<Uuid>,
        waiting: u64,
    ) -> Result<Inventory, EngineError> {
        Ok(self
            .registry
            .get(event_id)
            .await?
            .send(crate::actors::event::MeasureDemand { shoppers, waiting })
            .await?)
    }

    /// The event a hold belongs to: one this node runs, or else the event whose id the hold
    /// id starts with (a node that just took an on-sale over knows none of its holds until
    /// it has started it, which asking its actor for the hold does).
    pub async fn event_of_hold(&self, hold_id: Uuid) -> Result<Option<Uuid>, EngineError> {
        if let Some(event_id) = self.registry.event_of_hold(hold_id) {
            return Ok(Some(event_id));
        }
        Ok(leases::event_with_prefix(&self.pool, event_prefix(hold_id)).await?)
    }

    /// Ends the holds of `event_id` that are due by the clock, at once (if its engine runs
    /// here).
    pub async fn sweep_now(&self, event_id: Uuid) {
        if let Some(event) = self.registry.if_running(event_id) {
            let _ = event.send(crate::actors::event::SweepNow).await;
        }
    }

    /// Live counts of an event, its engine started if it is not running yet.
    pub async fn live_counts(&self, event_id: Uuid) -> Result<EventCounts, EngineError> {
        Ok(self.registry.get(event_id).await?.send(Counts).await?)
    }

    /// Live counts of an event whose engine runs (none otherwise).
    pub async fn counts(&self, event_id: Uuid) -> Option<EventCounts> {
        self.registry.if_running(event_id)?.send(Counts).await.ok()
    }
}
