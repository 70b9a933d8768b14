//! Buying in an on-sale, end to end: what a hold and a checkout ask of the waiting room
//! and of the on-sale engine, in which order. A hold needs an open shopping session when
//! the on-sale has a room, and cannot outlive that session; a checkout needs the session
//! too (unless the hold is the buyer's waitlist offer), and tells the room the buyer bought
//! (so they stop counting against the inventory the room paces admission by).
//!
//! Called by the hold and checkout handlers, which parse the request and shape the answer;
//! the room (`queue::WaitingRooms`) and the engine (`actors::Engine`) do the work.

use uuid::Uuid;

use crate::actors::messages::EngineError;
use crate::actors::Engine;
use crate::domain::holds::HoldRequest;
use crate::persistence::waitlist;
use crate::queue::{QueueError, WaitingRooms};
use crate::views::{HoldView, OrderView};

/// Why a hold or a checkout was refused: by the room or by the engine.
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    #[error(transparent)]
    Room(#[from] QueueError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The two services a sale goes through.
pub struct Sale<'a> {
    pub rooms: &'a WaitingRooms,
    pub engine: &'a Engine,
}

impl Sale<'_> {
    /// Holds seats for `buyer`, admitted by `admission` (the room's token) if the on-sale
    /// has a room; the hold ends when the shopping session does, if that is sooner.
    pub async fn hold(
        &self,
        event_id: Uuid,
        buyer: Uuid,
        request: HoldRequest,
        admission: Option<&str>,
    ) -> Result<HoldView, SaleError> {
        let window_ends = self
            .rooms
            .require_admission(event_id, buyer, admission)
            .await?;
        Ok(self
            .engine
            .place_hold(event_id, buyer, request, window_ends)
            .await?)
    }

    /// Pays for `hold_id` (idempotent by `key`: a retry of a completed checkout is answered
    /// its order before anything else is asked), admitted as for the hold; then the room
    /// hears that the buyer bought.
    pub async fn checkout(
        &self,
        hold_id: Uuid,
        buyer: Uuid,
        key: &str,
        payment_token: &str,
        admission: Option<&str>,
    ) -> Result<OrderView, SaleError> {
        // A retry of a checkout that went through: the same order, room or no room.
        if let Some(order) = self.engine.replay(hold_id, buyer, key).await? {
            return Ok(order);
        }
        let event_id = self.engine.event_of_hold(hold_id).await?;
        if let Some(event_id) = event_id {
            let admitted = self
                .rooms
                .require_admission(event_id, buyer, admission)
                .await;
            // A waitlist offer is bought without the room: it was offered, not queued for.
            if let Err(refusal) = admitted {
                let offered = waitlist::is_offer(self.engine.pool(), hold_id, buyer)
                    .await
                    .map_err(EngineError::Unexpected)?;
                if !offered {
                    return Err(refusal.into());
                }
            }
        }
        let order = self.engine.pay(hold_id, buyer, key, payment_token).await?;
        if let Some(event_id) = event_id {
            self.rooms.purchased(event_id, buyer);
        }
        Ok(order)
    }
}
