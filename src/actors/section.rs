//! The section actor: one per seated section of an event on sale. It owns the section's
//! [`SeatBoard`] and applies each message to it whole, so two holds on the same seat are
//! decided by mailbox order, with no lock anywhere.

use actix::prelude::*;
use uuid::Uuid;

use super::broadcaster::SeatsChanged;
use crate::domain::seat_board::{Counts, Seat, SeatBoard, SeatChange};

pub struct SectionActor {
    board: SeatBoard,
    /// Where seat changes are told (the event's live map), and this section's index there.
    live: Option<(Recipient<SeatsChanged>, usize)>,
}

impl SectionActor {
    pub fn new(board: SeatBoard) -> SectionActor {
        SectionActor { board, live: None }
    }

    /// Tells `live` every change, as section number `index`.
    pub fn with_live(mut self, live: Recipient<SeatsChanged>, index: usize) -> SectionActor {
        self.live = Some((live, index));
        self
    }

    /// Tells the live map the states of these seats now.
    fn announce(&self, positions: &[u32]) {
        let Some((live, section)) = &self.live else {
            return;
        };
        let changes = positions
            .iter()
            .filter_map(|&p| self.board.state(p).map(|state| (p, state)))
            .collect();
        live.do_send(SeatsChanged {
            section: *section,
            changes,
        });
    }
}

impl Actor for SectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Senders wait when the mailbox is full: a bound keeps a burst from growing memory
        // without limit while leaving room for thousands of requests in flight.
        ctx.set_mailbox_capacity(4096);
    }
}

/// Hold exactly these seats, all or none. Err: the positions that were not available.
#[derive(Message)]
#[rtype(result = "Result<(), Vec<u32>>")]
pub struct HoldSeats {
    pub hold_id: Uuid,
    pub positions: Vec<u32>,
}

impl Handler<HoldSeats> for SectionActor {
    type Result = Result<(), Vec<u32>>;

    fn handle(&mut self, msg: HoldSeats, _: &mut Context<Self>) -> Self::Result {
        self.board.hold(msg.hold_id, &msg.positions)?;
        self.announce(&msg.positions);
        Ok(())
    }
}

/// Find and hold the best `quantity` seats together. None: not enough seats.
#[derive(Message)]
#[rtype(result = "Option<Vec<u32>>")]
pub struct HoldBest {
    pub hold_id: Uuid,
    pub quantity: u32,
}

impl Handler<HoldBest> for SectionActor {
    type Result = Option<Vec<u32>>;

    fn handle(&mut self, msg: HoldBest, _: &mut Context<Self>) -> Self::Result {
        let positions = self.board.hold_best_available(msg.hold_id, msg.quantity)?;
        self.announce(&positions);
        Some(positions)
    }
}

/// Apply `change` to the hold's seats. Returns whether every seat moved.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ChangeSeats {
    pub hold_id: Uuid,
    pub positions: Vec<u32>,
    pub change: SeatChange,
}

impl Handler<ChangeSeats> for SectionActor {
    type Result = bool;

    fn handle(&mut self, msg: ChangeSeats, _: &mut Context<Self>) -> bool {
        let (hold, positions) = (msg.hold_id, &msg.positions);
        let done = self.board.apply(hold, positions, msg.change);
        if !matches!(
            msg.change,
            SeatChange::BeginPayment | SeatChange::CancelPayment
        ) {
            // Payment starting or failing changes nothing others can see.
            self.announce(positions);
        }
        if !done {
            tracing::warn!(hold_id = %hold, change = ?msg.change, "a seat change did not apply to every seat");
        }
        done
    }
}

/// The section's seat states and counts.
#[derive(Message)]
#[rtype(result = "SectionSnapshot")]
pub struct Snapshot;

#[derive(Debug, Clone, MessageResponse)]
pub struct SectionSnapshot {
    pub states: Vec<Seat>,
    pub counts: Counts,
}

impl Handler<Snapshot> for SectionActor {
    type Result = SectionSnapshot;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> SectionSnapshot {
        SectionSnapshot {
            states: self.board.states().to_vec(),
            counts: self.board.counts(),
        }
    }
}

/// Stops the section actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSection;

impl Handler<StopSection> for SectionActor {
    type Result = ();

    fn handle(&mut self, _: StopSection, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
