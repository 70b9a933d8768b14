//! The on-sale engine. Actors own live seat state and serialize every change to it:
//!
//! - [`event::EventActor`], one per event on sale: the sale window and status, GA tier
//!   counters, the table of holds and their expiry;
//! - [`section::SectionActor`], one per seated section: the seats' states, one byte each;
//! - [`broadcaster::Broadcaster`], one per event per node: the live seat map, batches of
//!   seat changes sent to every [`viewer::Viewer`] socket, relayed between nodes by
//!   [`live_bus::LiveBus`];
//! - [`order_writer::OrderWriter`], one per node: confirmed orders written to Postgres in
//!   batches (group commit);
//! - [`registry::Registry`] finds (or starts) an event's actors;
//! - [`engine::Engine`] is what HTTP handlers call: it walks a hold or a checkout through
//!   the actors, the payment gateway and the order writer. No actor ever waits on another.

pub mod broadcaster;
pub mod engine;
pub mod event;
pub mod live_bus;
pub mod messages;
pub mod mirror;
pub mod order_writer;
pub mod orders;
pub mod registry;
pub mod section;
pub mod viewer;

pub use engine::Engine;
pub use messages::EngineError;
