//! Time, injected: everything that reads the time of day — handlers, the hold book through
//! the event actor, the engine, the mirror's TTLs, the waiting room, tokens, the demo —
//! asks the server's one [`Clock`] for "now", so tests can move time forward (hold expiry,
//! sale windows, token lifetimes) without sleeping. `std::time::Instant` is used only for
//! intervals that no rule depends on the date of: heartbeats, frame budgets, batching
//! delays, request timings and the local side of lease renewal.
//!
//! Postgres's own `now()` is used in two places on purpose: lease expiry (one clock for
//! every node, so no node's wall clock decides who owns a sale) and the bookkeeping
//! columns of rows (`created_at`/`updated_at` defaults, which no rule reads). An order's
//! confirmation time is the server's clock, like every time a rule or a buyer sees.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The wall clock plus an offset that tests move forward.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset_ms: AtomicI64,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_when_told() {
        let clock = ManualClock::new();
        let before = clock.now();
        clock.advance(Duration::minutes(10));
        assert!(clock.now() - before >= Duration::minutes(10));
    }
}
