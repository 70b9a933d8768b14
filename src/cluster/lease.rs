//! A lease as this node sees it: the epoch it was granted at and the moment, by this
//! process's monotonic clock, after which the node must stop acting on it. The rules are
//! plain functions of `now`, tested here; `Cluster` applies them.
//!
//! The local deadline is counted from the moment the renewal was *sent*, less a margin:
//! Postgres set `expires_at = now() + ttl` no earlier than that, so the node gives the
//! lease up before any other node can take it, even if the answer came late, as long as the
//! two clocks run at about the same rate (the margin covers drift).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// How long a lease lasts and how it is kept.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// The lease's length in Postgres.
    pub ttl: Duration,
    /// How often the holder renews (a third to a quarter of `ttl`).
    pub renew_every: Duration,
    /// Taken off the local deadline for clock drift and scheduling.
    pub margin: Duration,
}

impl LeaseTiming {
    /// Renews every quarter of `ttl`; a tenth of it as margin.
    pub fn from_ttl(ttl: Duration) -> LeaseTiming {
        LeaseTiming {
            ttl,
            renew_every: ttl / 4,
            margin: ttl / 10,
        }
    }

    /// The local deadline of a lease granted or renewed by a statement sent at `sent_ms`.
    pub fn deadline_ms(&self, sent_ms: u64) -> u64 {
        sent_ms + self.ttl.saturating_sub(self.margin).as_millis() as u64
    }

    pub fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Milliseconds on this process's monotonic clock (it keeps running while the process is
/// stopped, so a node that was paused sees at once that its leases lapsed).
#[derive(Debug, Clone, Copy)]
pub struct Monotonic {
    base: Instant,
}

impl Monotonic {
    pub fn new() -> Monotonic {
        Monotonic {
            base: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }
}

impl Default for Monotonic {
    fn default() -> Self {
        Monotonic::new()
    }
}

/// The right to run one on-sale, as its actors carry it: every durable write goes with
/// `epoch`, and nothing is answered once `valid()` turns false.
#[derive(Debug, Clone)]
pub struct LeaseToken {
    pub event_id: Uuid,
    pub epoch: i64,
    deadline_ms: Arc<AtomicU64>,
    clock: Monotonic,
}

impl LeaseToken {
    pub fn new(event_id: Uuid, epoch: i64, deadline_ms: u64, clock: Monotonic) -> LeaseToken {
        LeaseToken {
            event_id,
            epoch,
            deadline_ms: Arc::new(AtomicU64::new(deadline_ms)),
            clock,
        }
    }

    /// A token that never lapses, for code that runs an on-sale without a cluster (unit
    /// tests of the actors).
    pub fn unfenced(event_id: Uuid) -> LeaseToken {
        LeaseToken::new(event_id, 0, u64::MAX, Monotonic::new())
    }

    /// Whether this node may still act for the on-sale.
    pub fn valid(&self) -> bool {
        self.clock.now_ms() < self.deadline_ms.load(Ordering::Acquire)
    }

    /// Extends the local deadline (never shortens it: renewals may answer out of order).
    pub fn extend(&self, deadline_ms: u64) {
        self.deadline_ms.fetch_max(deadline_ms, Ordering::AcqRel);
    }

    /// Ends the lease at once (lost, released, or the node stops).
    pub fn revoke(&self) {
        self.deadline_ms.store(0, Ordering::Release);
    }

    /// Milliseconds left by the local clock (0 once lapsed).
    pub fn left_ms(&self) -> u64 {
        self.deadline_ms
            .load(Ordering::Acquire)
            .saturating_sub(self.clock.now_ms())
    }
}

/// Where a request for an on-sale must be served.
#[derive(Debug, Clone)]
pub enum Route {
    /// Here: this node holds the lease.
    Local(LeaseToken),
    /// At the owner's internal URL.
    Forward { node_id: String, url: String },
}

/// What the lease row says, reduced to what routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nobody, or a lease that lapsed: anyone may take it.
    Free,
    /// This node, by the database (its local token may have lapsed: then it takes again).
    Me,
    Other {
        node_id: String,
        url: String,
    },
}

impl Holder {
    pub fn of(me: &str, row_node: Option<(&str, &str, bool)>) -> Holder {
        match row_node {
            Some((node, _, true)) if node == me => Holder::Me,
            Some((node, url, true)) => Holder::Other {
                node_id: node.to_owned(),
                url: url.to_owned(),
            },
            _ => Holder::Free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_deadline_comes_before_the_database_one() {
        let timing = LeaseTiming::from_ttl(Duration::from_secs(3));
        assert_eq!(timing.renew_every, Duration::from_millis(750));
        assert_eq!(timing.deadline_ms(1_000), 1_000 + 2_700);
        assert!(timing.deadline_ms(0) < timing.ttl.as_millis() as u64);
    }

    #[test]
    fn a_token_lapses_at_its_deadline_and_renewals_never_shorten_it() {
        let clock = Monotonic::new();
        let token = LeaseToken::new(Uuid::nil(), 3, clock.now_ms() + 10_000, clock);
        assert!(token.valid());
        token.extend(0);
        assert!(
            token.valid(),
            "an older renewal's answer must not shorten the lease"
        );
        token.revoke();
        assert!(!token.valid());
        assert_eq!(token.left_ms(), 0);
        let lapsed = LeaseToken::new(Uuid::nil(), 1, 0, clock);
        assert!(!lapsed.valid());
    }

    #[test]
    fn a_clone_of_a_token_sees_its_revocation() {
        let token = LeaseToken::new(Uuid::nil(), 1, u64::MAX, Monotonic::new());
        let carried = token.clone();
        token.revoke();
        assert!(!carried.valid());
    }

    #[test]
    fn only_a_live_lease_names_a_holder() {
        assert_eq!(Holder::of("a", None), Holder::Free);
        assert_eq!(
            Holder::of("a", Some(("b", "http://b", false))),
            Holder::Free
        );
        assert_eq!(Holder::of("a", Some(("a", "http://a", true))), Holder::Me);
        assert_eq!(
            Holder::of("a", Some(("b", "http://b", true))),
            Holder::Other {
                node_id: "b".into(),
                url: "http://b".into()
            }
        );
    }
}
