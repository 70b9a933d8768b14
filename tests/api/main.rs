//! Black-box tests: the real server over HTTP against a fresh, migrated Postgres database
//! per test.

mod accounts;
mod bookings;
mod browser;
mod cancellation;
mod catalog;
mod checkin;
mod checkout;
mod cluster;
mod contract;
mod crash;
mod discovery;
mod door;
mod errors;
mod events;
mod flash_sale;
mod helpers;
mod holds;
mod live;
mod mail;
mod notices;
mod operations;
mod phone_map;
mod process;
mod queue;
mod races;
mod redis;
mod refunds;
mod relay_crash;
mod reports;
mod scanner_page;
mod security;
mod transfer;
mod venues;
mod waitlist;
mod webhooks;
