//! boxoffice: a ticketing server for high-demand on-sales.
//!
//! Organizers set up venues, events and on-sales over REST; buyers browse the catalog, and
//! (as the on-sale engine lands) wait in a fair waiting room, watch a live seat map, hold
//! seats, pay and get tickets. See DESIGN.md beside the repository for the architecture.

pub mod actors;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod domain;
pub mod doors;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod passwords;
pub mod payments;
pub mod persistence;
pub mod pow;
pub mod queue;
pub mod refunds;
pub mod sale;
pub mod security;
pub mod startup;
pub mod telemetry;
pub mod trending;
pub mod views;
pub mod webhooks;
