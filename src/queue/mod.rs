//! The virtual waiting room: one QueueActor per on-sale that has one, a fair pre-queue
//! shuffled at the start, admission in batches at the organizer's rate (held back by the
//! inventory left), and the signed admission tokens that hold and checkout demand.

pub mod actor;
pub mod admission;
pub mod line;
pub mod pace;
pub mod rooms;
pub mod store;

pub use rooms::{QueueError, WaitingRooms};
