//! Plain types and rules of the ticketing domain: ids, money, accounts, venues and their
//! seating plans, events, prices and on-sale schedules.
//!
//! Nothing here knows about actix, sqlx or HTTP. Values are built through `parse`, so an
//! invalid one (a negative price, an end before its start, a seat-less section) cannot
//! exist past the edge of the system.

pub mod account;
pub mod availability;
pub mod booking;
pub mod discovery;
pub mod event;
pub mod frames;
pub mod hold_id;
pub mod holds;
pub mod live_map;
pub mod live_ring;
pub mod money;
pub mod onsale;
pub mod orders;
pub mod pricing;
pub mod refunds;
pub mod seat_board;
pub mod signed_ticket;
pub mod text_enum;
pub mod tickets;
pub mod validation;
pub mod venue;

pub use validation::FieldErrors;
