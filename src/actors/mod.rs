//! The on-sale engine. Actors own live seat state and serialize every change to it:
//!
//! - [`event::EventActor`], one per event on sale: the sale window and status, GA tier
//!   counters, the table of holds and their expiry;
//! - [`section::SectionActor`], one per seated section: the seats' states, one byte each;
//! - [`order_writer::OrderWriter`], one per node: confirmed orders written to Postgres in
//!   batches (group commit);
//! - [`registry::Registry`] finds (or starts) an event's actors;
//! - [`engine::Engine`] is what HTTP handlers call: it walks a hold or a checkout through
//!   the actors, the payment gateway and the order writer. No actor ever waits on another.

pub mod engine;
pub mod event;
pub mod messages;
pub mod mirror;
pub mod order_writer;
pub mod registry;
pub mod section;

pub use engine::Engine;
pub use messages::EngineError;
