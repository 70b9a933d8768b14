//! Holding and letting go: a hold request walked through the event actor (limits, an id,
//! where to place it), the section actors (the seats themselves) and back (the hold's
//! clock starts). Called by the HTTP hold handlers; never touches Postgres.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{not_found_as_hold, Engine};
use crate::actors::event::{AbortHold, ConfirmHold, GetHold, ReleaseHold, ReserveHold, Reserved};
use crate::actors::messages::EngineError;
use crate::actors::section::{ChangeSeats, HoldBest, HoldSeats};
use crate::domain::holds::{HoldError, HoldRequest};
use crate::domain::seat_board::SeatChange;
use crate::views::HoldView;

impl Engine {
    /// Holds seats or tickets for a buyer, all or nothing; the hold lasts the on-sale's
    /// hold time, or until `not_after` if that comes first (the buyer's shopping window).
    /// Counted and timed on `/metrics` by outcome.
    #[tracing::instrument(skip(self))]
    pub async fn place_hold(
        &self,
        event_id: Uuid,
        buyer_id: Uuid,
        request: HoldRequest,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<HoldView, EngineError> {
        let started = std::time::Instant::now();
        let held = self.hold(event_id, buyer_id, request, not_after).await;
        let f = crate::metrics::figures();
        f.hold_duration.observe(started.elapsed().as_secs_f64());
        match &held {
            Ok(_) => f.holds_placed.inc(),
            Err(error) => f
                .holds
                .with_label_values(&[crate::metrics::outcome_of(error)])
                .inc(),
        }
        held
    }

    async fn hold(
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

    async fn event_of(
        &self,
        hold_id: Uuid,
    ) -> Result<Addr<crate::actors::event::EventActor>, EngineError> {
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

    /// The buyer's live holds in an event whose engine runs here (none while it runs
    /// nowhere: holds live in a running engine, and one that starts takes back the holds
    /// it mirrored).
    #[tracing::instrument(skip(self))]
    pub async fn buyer_holds(
        &self,
        event_id: Uuid,
        buyer_id: Uuid,
    ) -> Result<Vec<HoldView>, EngineError> {
        match self.registry.if_running(event_id) {
            Some(event) => {
                event
                    .send(crate::actors::event::BuyerHolds { buyer_id })
                    .await?
            }
            None => Ok(Vec::new()),
        }
    }

    #[tracing::instrument(skip(self))]
    pub async fn release_hold(&self, hold_id: Uuid, buyer_id: Uuid) -> Result<(), EngineError> {
        self.event_of(hold_id)
            .await?
            .send(ReleaseHold { hold_id, buyer_id })
            .await?
    }
}
