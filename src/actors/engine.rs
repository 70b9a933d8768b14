//! The engine: what the HTTP layer calls to hold, release and buy. It walks each request
//! through the actors, the payment gateway and the order writer, in the order that keeps
//! the promises: no seat sold twice (the section actors decide), no payment taken on an
//! expired hold (the event actor decides before the card is touched), no "confirmed"
//! before the order is durable (the order writer answers after the commit), and no money
//! kept without an order (a payment row exists before the card is authorized, and the
//! reconciler voids what never became an order).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::broadcaster::{Broadcaster, LiveConfig};
use super::event::{
    AbortHold, BeginCheckout, CancelCheckout, ConfirmHold, Counts, FinishCheckout, GetHold,
    ReleaseHold, ReserveHold, Reserved,
};
use super::live_bus::{Followers, LiveBus};
use super::messages::EngineError;
use super::order_writer::{OrderWriteError, OrderWriter, WriteOrder};
use super::orders::{new_order, view_of_new, view_of_row};
use super::registry::{EngineConfig, Registry};
use super::section::{ChangeSeats, HoldBest, HoldSeats};
use crate::clock::Clock;
use crate::cluster::{Cluster, LeaseToken};
use crate::domain::hold_id::event_prefix;
use crate::domain::holds::HoldError;
use crate::domain::holds::HoldRequest;
use crate::domain::orders::PaymentStatus;
use crate::domain::seat_board::SeatChange;
use crate::payments::{reconciler, AuthorizeRequest, PaymentError, PaymentGateway};
use crate::persistence::orders::{self, NewOrder, OrderRow};
use crate::persistence::payments::{self, NewPayment};
use crate::persistence::{leases, onsale, WriteError};
use crate::views::{HoldView, OrderView};

/// What an event has left on sale, and what the buyers shopping now may still take, as
/// the waiting room paces admission by them.
pub use crate::domain::holds::Demand as Inventory;
use crate::domain::holds::EventCounts;

pub struct Engine {
    pool: sqlx::PgPool,
    registry: Registry,
    /// With Redis: the live maps this node relays for events whose engine runs elsewhere.
    bus: Option<LiveBus>,
    followers: Followers,
    live_config: LiveConfig,
    writer: Addr<OrderWriter>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    payment_timeout: Duration,
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
            OrderWriter::new(writer_pool, node)
        });
        Engine {
            pool,
            registry,
            bus,
            followers,
            live_config,
            writer,
            gateway,
            clock,
            payment_timeout,
            cluster,
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Who owns which on-sale.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Holds seats or tickets for a buyer, all or nothing; the hold lasts the on-sale's
    /// hold time, or until `not_after` if that comes first (the buyer's shopping window).
    #[tracing::instrument(skip(self))]
    pub async fn place_hold(
        &self,
        event_id: Uuid,
        buyer_id: Uuid,
        request: HoldRequest,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<HoldView, EngineError> {
        let (event, lease) = self.registry.get_owned(event_id).await?;
        let reserve = ReserveHold {
            buyer_id,
            request,
            not_after,
        };
        let view = match event.send(reserve).await?? {
            Reserved::Done(view) => view,
            Reserved::Exact { hold_id, steps } => {
                let mut placed = Vec::with_capacity(steps.len());
                let mut failure = None;
                for step in steps {
                    let positions = step.positions.clone();
                    match step
                        .addr
                        .send(HoldSeats {
                            hold_id,
                            positions: positions.clone(),
                        })
                        .await
                    {
                        Ok(Ok(())) => placed.push((step.section, step.addr, positions)),
                        Ok(Err(taken)) => {
                            let ids = step
                                .positions
                                .iter()
                                .zip(&step.seat_ids)
                                .filter(|(p, _)| taken.contains(p))
                                .map(|(_, id)| *id)
                                .collect();
                            failure = Some(EngineError::Hold(HoldError::SeatUnavailable(ids)));
                            break;
                        }
                        Err(e) => {
                            failure = Some(e.into());
                            break;
                        }
                    }
                }
                if let Some(error) = failure {
                    for (_, addr, positions) in placed {
                        addr.do_send(ChangeSeats {
                            hold_id,
                            positions,
                            change: SeatChange::Release,
                        });
                    }
                    event.do_send(AbortHold { hold_id });
                    return Err(error);
                }
                let placed = placed
                    .into_iter()
                    .map(|(section, _, positions)| (section, positions))
                    .collect();
                event.send(ConfirmHold { hold_id, placed }).await??
            }
            Reserved::Best {
                hold_id,
                quantity,
                candidates,
            } => {
                let mut found = None;
                for (section, addr) in candidates {
                    match addr.send(HoldBest { hold_id, quantity }).await {
                        Ok(Some(positions)) => {
                            found = Some((section, positions));
                            break;
                        }
                        Ok(None) => continue,
                        Err(e) => {
                            event.do_send(AbortHold { hold_id });
                            return Err(e.into());
                        }
                    }
                }
                let Some(placed) = found else {
                    event.do_send(AbortHold { hold_id });
                    return Err(EngineError::Hold(HoldError::SoldOut));
                };
                event
                    .send(ConfirmHold {
                        hold_id,
                        placed: vec![placed],
                    })
                    .await??
            }
        };
        self.registry.remember_hold(view.hold_id, event_id);
        // A node paused mid-request must not tell a buyer "held" once another node may own
        // the sale: its actors are stopped as soon as it notices.
        if !lease.valid() {
            return Err(EngineError::OwnerUnavailable);
        }
        Ok(view)
    }

    async fn event_of(&self, hold_id: Uuid) -> Result<Addr<super::event::EventActor>, EngineError> {
        let event_id = self
            .event_of_hold(hold_id)
            .await?
            .ok_or(EngineError::Hold(HoldError::HoldNotFound))?;
        self.registry.get(event_id).await.map_err(not_found_as_hold)
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_hold(&self, hold_id: Uuid, buyer_id: Uuid) -> Result<HoldView, EngineError> {
        self.event_of(hold_id)
            .await?
            .send(GetHold { hold_id, buyer_id })
            .await?
    }

    #[tracing::instrument(skip(self))]
    pub async fn release_hold(&self, hold_id: Uuid, buyer_id: Uuid) -> Result<(), EngineError> {
        self.event_of(hold_id)
            .await?
            .send(ReleaseHold { hold_id, buyer_id })
            .await?
    }

    /// Live seat states of every seated section of an event whose engine runs.
    pub async fn seat_states(
        &self,
        event_id: Uuid,
    ) -> Option<Vec<(Uuid, Vec<crate::domain::seat_board::Seat>)>> {
        let event = self.registry.if_running(event_id)?;
        let sections = event.send(super::event::SectionAddrs).await.ok()?;
        let mut states = Vec::with_capacity(sections.len());
        for (section_id, addr) in sections {
            states.push((
                section_id,
                addr.send(super::section::Snapshot).await.ok()?.states,
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
    pub async fn inventory(
        &self,
        event_id: Uuid,
        shoppers: Vec<Uuid>,
    ) -> Result<Inventory, EngineError> {
        Ok(self
            .registry
            .get(event_id)
            .await?
            .send(super::event::MeasureDemand { shoppers })
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

    /// Live counts of an event whose engine runs (none otherwise).
    pub async fn counts(&self, event_id: Uuid) -> Option<EventCounts> {
        self.registry.if_running(event_id)?.send(Counts).await.ok()
    }

    /// Pays for a hold and turns it into an order with tickets. Retrying with the same
    /// idempotency key returns the same order and never charges twice.
    #[tracing::instrument(skip(self, idempotency_key, payment_token))]
    pub async fn checkout(
        &self,
        hold_id: Uuid,
        buyer_id: Uuid,
        idempotency_key: &str,
        payment_token: &str,
    ) -> Result<OrderView, EngineError> {
        if let Some(order) = orders::find_by_key(&self.pool, buyer_id, idempotency_key).await? {
            if order.hold_id != Some(hold_id) {
                return Err(EngineError::Hold(HoldError::Invalid(
                    crate::domain::FieldErrors::single(
                        "Idempotency-Key",
                        "this key was used for another hold",
                    ),
                )));
            }
            return self.order_view(order).await;
        }
        let purchased = || async {
            match orders::find_by_hold(&self.pool, hold_id).await? {
                Some(order) if order.buyer_id == buyer_id => Err(EngineError::Hold(
                    HoldError::AlreadyPurchased(order.order_id),
                )),
                _ => Err(EngineError::Hold(HoldError::HoldNotFound)),
            }
        };
        let Some(event_id) = self.event_of_hold(hold_id).await? else {
            return purchased().await;
        };
        let (event, lease) = self
            .registry
            .get_owned(event_id)
            .await
            .map_err(not_found_as_hold)?;
        let hold = match event.send(BeginCheckout { hold_id, buyer_id }).await? {
            Ok(hold) => hold,
            // Bought before this node ran the on-sale (a restart, a takeover).
            Err(EngineError::Hold(HoldError::HoldNotFound)) => return purchased().await,
            Err(error) => return Err(error),
        };

        match self
            .pay_and_write(&hold, &lease, idempotency_key, payment_token)
            .await
        {
            Ok((order, authorization_id, payment_id)) => {
                event.do_send(FinishCheckout {
                    hold_id,
                    order_id: order.order_id,
                });
                self.capture(&authorization_id, payment_id).await;
                Ok(view_of_new(&order, &hold, self.clock.now()))
            }
            Err(error) => {
                event.do_send(CancelCheckout { hold_id });
                Err(error)
            }
        }
    }

    /// Records the payment, authorizes it, writes the order. On failure nothing is charged
    /// (the authorization is voided) and nothing is written.
    async fn pay_and_write(
        &self,
        hold: &HoldView,
        lease: &LeaseToken,
        idempotency_key: &str,
        payment_token: &str,
    ) -> Result<(NewOrder, String, Uuid), EngineError> {
        // The epoch keeps two owners' attempts at one checkout apart at the processor: a
        // stale owner voids its own authorization, never the one the new owner used.
        let gateway_key = format!("{}:{}:{}", hold.hold_id, lease.epoch, idempotency_key);
        let payment = NewPayment {
            payment_id: Uuid::new_v4(),
            buyer_id: hold.buyer_id,
            event_id: hold.event_id,
            hold_id: hold.hold_id,
            gateway: self.gateway.name().to_owned(),
            idempotency_key: gateway_key.clone(),
            amount_cents: hold.total_cents,
            currency: hold.currency.clone(),
        };
        let payment_id = match payments::insert_pending(&self.pool, &payment).await {
            Ok(()) => payment.payment_id,
            Err(WriteError::Conflict(_)) => payments::find_by_key(&self.pool, &gateway_key)
                .await?
                .map(|p| p.payment_id)
                .ok_or_else(|| {
                    EngineError::Unexpected(anyhow::anyhow!("payment {gateway_key} vanished"))
                })?,
            Err(WriteError::Other(e)) => return Err(e.into()),
        };

        let request = AuthorizeRequest {
            payment_token: payment_token.to_owned(),
            amount_cents: hold.total_cents,
            currency: hold.currency.clone(),
            idempotency_key: gateway_key.clone(),
        };
        let outcome = tokio::time::timeout(self.payment_timeout, self.gateway.authorize(&request))
            .await
            .unwrap_or(Err(PaymentError::Timeout));
        let authorization = match outcome {
            Ok(authorization) => authorization,
            Err(PaymentError::Declined { reason }) => {
                payments::set_status(
                    &self.pool,
                    payment_id,
                    PaymentStatus::Declined,
                    None,
                    Some(&reason),
                )
                .await?;
                return Err(EngineError::PaymentDeclined(reason));
            }
            Err(error) => {
                self.void(&gateway_key, payment_id).await;
                return Err(EngineError::PaymentFailed(error.to_string()));
            }
        };

        let order = new_order(
            hold,
            lease.epoch,
            idempotency_key,
            payment_id,
            &authorization.authorization_id,
        );
        let written = self
            .writer
            .send(WriteOrder(order.clone()))
            .await
            .map_err(EngineError::from)?;
        if let Err(error) = written {
            self.void(&gateway_key, payment_id).await;
            return Err(match error {
                OrderWriteError::Refused(constraint) => {
                    tracing::error!(hold_id = %hold.hold_id, %constraint, "Postgres refused an order the actors allowed");
                    EngineError::Unexpected(anyhow::anyhow!("order refused by {constraint}"))
                }
                OrderWriteError::Failed(reason) => EngineError::Unexpected(anyhow::anyhow!(reason)),
                OrderWriteError::Fenced => {
                    self.cluster.fenced(hold.event_id, "orders");
                    EngineError::OwnerUnavailable
                }
            });
        }
        Ok((order, authorization.authorization_id, payment_id))
    }

    async fn void(&self, gateway_key: &str, payment_id: Uuid) {
        match self.gateway.void(gateway_key).await {
            Ok(()) => {
                if let Err(error) =
                    payments::set_status(&self.pool, payment_id, PaymentStatus::Voided, None, None)
                        .await
                {
                    tracing::error!(?error, %payment_id, "could not record a void; the reconciler will retry");
                }
            }
            Err(error) => {
                tracing::warn!(%error, %payment_id, "void failed; the reconciler will retry")
            }
        }
    }

    async fn capture(&self, authorization_id: &str, payment_id: Uuid) {
        match self
            .gateway
            .capture(authorization_id, &format!("capture:{payment_id}"))
            .await
        {
            Ok(()) => {
                if let Err(error) = payments::set_status(
                    &self.pool,
                    payment_id,
                    PaymentStatus::Captured,
                    None,
                    None,
                )
                .await
                {
                    tracing::error!(?error, %payment_id, "could not record a capture; the reconciler will retry");
                }
            }
            Err(error) => {
                tracing::warn!(%error, %payment_id, "capture failed; the reconciler will retry")
            }
        }
    }

    /// An order with its tickets, from Postgres.
    pub async fn order(&self, order_id: Uuid) -> Result<Option<OrderView>, EngineError> {
        match orders::find_order(&self.pool, order_id).await? {
            Some(order) => Ok(Some(self.order_view(order).await?)),
            None => Ok(None),
        }
    }

    /// A buyer's orders, newest first, with their tickets.
    pub async fn orders_of(&self, buyer_id: Uuid) -> Result<Vec<OrderView>, EngineError> {
        let rows = orders::orders_of_buyer(&self.pool, buyer_id).await?;
        let ids: Vec<Uuid> = rows.iter().map(|o| o.order_id).collect();
        let tickets = orders::tickets_of_orders(&self.pool, &ids).await?;
        Ok(rows.into_iter().map(|o| view_of_row(o, &tickets)).collect())
    }

    async fn order_view(&self, order: OrderRow) -> Result<OrderView, EngineError> {
        let tickets = orders::tickets_of_orders(&self.pool, &[order.order_id]).await?;
        Ok(view_of_row(order, &tickets))
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
        Ok(())
    }

    /// Voids authorizations older than `grace` that never became an order, and captures
    /// authorized payments whose order exists.
    pub async fn reconcile(&self, grace: chrono::Duration) -> anyhow::Result<reconciler::Report> {
        reconciler::run_once(&self.pool, self.gateway.as_ref(), self.clock.now() - grace).await
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
