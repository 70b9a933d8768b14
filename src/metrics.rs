//! The figures of every moving part, for `/metrics`: holds and checkouts by outcome and
//! latency, the order writer's batches and commits, the card processor's calls and its
//! breaker, the reconciler and the capturer, the live map's fan-out, the waiting rooms per
//! on-sale. (HTTP, leases and forwarding, and the outbox have theirs beside their code.)
//!
//! They are process-wide, as Prometheus clients usually keep them: one server runs per
//! process, and the parts that count need no handle passed down to them. Each server
//! registers them in its own registry (`register`), so test servers in one process share
//! the counters; the waiting rooms' series are labelled by on-sale and removed when a
//! room stops. No label is ever a buyer, a hold or an order.

use std::sync::LazyLock;

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use uuid::Uuid;

/// Latency buckets from a millisecond to ten seconds (a processor's timeout).
const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Figures {
    pub holds: IntCounterVec,
    /// `holds{outcome="placed"}` and `checkouts{outcome="confirmed"}`, looked up once: the
    /// hot path counts without hashing a label.
    pub holds_placed: IntCounter,
    pub checkouts_confirmed: IntCounter,
    pub hold_duration: Histogram,
    pub checkouts: IntCounterVec,
    pub checkout_duration: Histogram,
    pub holds_extended: IntCounter,
    pub order_batch_size: Histogram,
    pub order_commit_duration: Histogram,
    pub order_writer_waiting: IntGauge,
    pub order_writer_refused: IntCounter,
    pub payment_calls: IntCounterVec,
    pub payment_call_duration: HistogramVec,
    pub reconciler_actions: IntCounterVec,
    pub captures: IntCounterVec,
    pub live_viewers: IntGauge,
    pub live_viewers_behind: IntGauge,
    pub live_batches: IntCounter,
    pub live_frames_sent: IntCounter,
    pub live_bytes_sent: IntCounter,
    pub live_frames_dropped: IntCounter,
    pub live_resyncs: IntCounter,
    pub live_disconnected_slow: IntCounter,
    pub live_delta_delay: Histogram,
    pub room_waiting: IntGaugeVec,
    pub room_shopping: IntGaugeVec,
    pub room_admitted: IntCounterVec,
    pub room_admission_measured: GaugeVec,
    pub room_admission_target: IntGaugeVec,
    pub room_drain_eta: IntGaugeVec,
    pub room_slowed: IntGaugeVec,
    pub started: Gauge,
    pub resident_memory: IntGauge,
}

#[allow(clippy::expect_used)] // constant names and labels: cannot fail
fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric")
}

#[allow(clippy::expect_used)] // constant names and labels: cannot fail
fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric")
}

#[allow(clippy::expect_used)] // constant names and labels: cannot fail
fn histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("a valid metric")
}

impl Figures {
    #[allow(clippy::expect_used)] // constant names and labels: cannot fail
    fn new() -> Figures {
        // The names and labels are constants: building them cannot fail at run time.
        let holds = counter("holds_total", "Holds asked of the engine, by outcome: placed, or the refusal's code (seat_unavailable, sold_out, ...)", &["outcome"]);
        let checkouts = counter("checkouts_total", "Checkouts that asked the engine to pay, by outcome: confirmed, declined, failed, payment_unavailable, orders_busy, refused (the hold's state), error", &["outcome"]);
        Figures {
            holds_placed: holds.with_label_values(&["placed"]),
            checkouts_confirmed: checkouts.with_label_values(&["confirmed"]),
            holds,
            checkouts,
            hold_duration: histogram("hold_duration_seconds", "Time to place or refuse a hold in the engine", &SECONDS),
            checkout_duration: histogram("checkout_duration_seconds", "Time from a checkout's start to its answer (authorization and the order's commit)", &SECONDS),
            holds_extended: IntCounter::new("holds_extended_total", "Holds given more time, once, because their checkout failed while payments were degraded").expect("a valid metric"),
            order_batch_size: histogram("order_batch_size", "Orders written per transaction by the order writer", &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            order_commit_duration: histogram("order_commit_duration_seconds", "Time to write and commit one batch of orders", &SECONDS),
            order_writer_waiting: IntGauge::new("order_writer_waiting", "Orders waiting for a batch of the order writer").expect("a valid metric"),
            order_writer_refused: IntCounter::new("order_writer_refused_total", "Orders refused at once because the order writer's queue was full (answered 503 orders_busy)").expect("a valid metric"),
            payment_calls: counter("payment_calls_total", "Calls to the card processor by call (authorize, capture, void, refund) and outcome (ok, declined, failed, timeout, refused by the breaker)", &["call", "outcome"]),
            payment_call_duration: HistogramVec::new(HistogramOpts::new("payment_call_duration_seconds", "Card processor latency by call").buckets(SECONDS.to_vec()), &["call"]).expect("a valid metric"),
            reconciler_actions: counter("reconciler_actions_total", "What the payment reconciler did: voided (an authorization without an order), captured (an order's payment left uncaptured), failed", &["action"]),
            captures: counter("captures_total", "Captures behind the checkout's answer, by outcome (captured, failed: left to the reconciler)", &["outcome"]),
            live_viewers: IntGauge::new("live_viewers", "Live seat-map sockets on this node").expect("a valid metric"),
            live_viewers_behind: IntGauge::new("live_viewers_behind", "Live seat-map sockets that fell behind and are owed a snapshot").expect("a valid metric"),
            live_batches: IntCounter::new("live_batches_total", "Batches of seat changes cut by the live maps on this node").expect("a valid metric"),
            live_frames_sent: IntCounter::new("live_frames_sent_total", "Live-map frames handed to viewer sockets").expect("a valid metric"),
            live_bytes_sent: IntCounter::new("live_bytes_sent_total", "Bytes of live-map frames handed to viewer sockets").expect("a valid metric"),
            live_frames_dropped: IntCounter::new("live_frames_dropped_total", "Live-map frames a slow viewer had no room for (it is sent a snapshot later)").expect("a valid metric"),
            live_resyncs: IntCounter::new("live_resyncs_total", "Snapshots sent to viewers that had fallen behind").expect("a valid metric"),
            live_disconnected_slow: IntCounter::new("live_disconnected_slow_total", "Viewers disconnected for staying behind too long").expect("a valid metric"),
            live_delta_delay: histogram("live_delta_delay_seconds", "Time from a batch's first seat change to the batch being sent", &SECONDS),
            room_waiting: gauge("room_waiting", "Buyers waiting in an on-sale's waiting room", &["event_id"]),
            room_shopping: gauge("room_shopping", "Buyers let in and shopping now", &["event_id"]),
            room_admitted: counter("room_admitted_total", "Buyers let in from the waiting room", &["event_id"]),
            room_admission_measured: GaugeVec::new(Opts::new("room_admission_measured_per_minute", "Admissions in the last minute"), &["event_id"]).expect("a valid metric"),
            room_admission_target: gauge("room_admission_target_per_minute", "The admission rate the room paces by now (lowered while payments are degraded, 0 when paused)", &["event_id"]),
            room_drain_eta: gauge("room_drain_eta_seconds", "How long the line takes to drain at the current rate (-1 when it does not move)", &["event_id"]),
            room_slowed: gauge("room_slowed", "1 while the room admits slower because payments are degraded", &["event_id"]),
            started: Gauge::new("process_start_time_seconds", "When this server started, in seconds since the epoch").expect("a valid metric"),
            resident_memory: IntGauge::new("process_resident_memory_bytes", "Resident memory of this process (VmRSS), read at each scrape").expect("a valid metric"),
        }
    }

    /// Every series of a bounded label set exists from the start, at zero, so that rates
    /// and alerts see it before its first event.
    fn with_zeros(self) -> Figures {
        for outcome in ["placed", "seat_unavailable", "sold_out", "sale_not_open"] {
            self.holds.with_label_values(&[outcome]);
        }
        for outcome in [
            "confirmed",
            "declined",
            "failed",
            "payment_unavailable",
            "orders_busy",
            "refused",
            "unavailable",
            "error",
        ] {
            self.checkouts.with_label_values(&[outcome]);
        }
        for call in ["authorize", "capture", "void", "refund"] {
            self.payment_call_duration.with_label_values(&[call]);
            for outcome in ["ok", "declined", "failed", "timeout"] {
                self.payment_calls.with_label_values(&[call, outcome]);
            }
        }
        self.payment_calls
            .with_label_values(&["authorize", "refused"]);
        for action in ["voided", "captured", "failed"] {
            self.reconciler_actions.with_label_values(&[action]);
        }
        for outcome in ["captured", "failed"] {
            self.captures.with_label_values(&[outcome]);
        }
        self
    }

    /// Puts every figure in `registry` (one per server).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        let all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.holds.clone()),
            Box::new(self.hold_duration.clone()),
            Box::new(self.checkouts.clone()),
            Box::new(self.checkout_duration.clone()),
            Box::new(self.holds_extended.clone()),
            Box::new(self.order_batch_size.clone()),
            Box::new(self.order_commit_duration.clone()),
            Box::new(self.order_writer_waiting.clone()),
            Box::new(self.order_writer_refused.clone()),
            Box::new(self.payment_calls.clone()),
            Box::new(self.payment_call_duration.clone()),
            Box::new(self.reconciler_actions.clone()),
            Box::new(self.captures.clone()),
            Box::new(self.live_viewers.clone()),
            Box::new(self.live_viewers_behind.clone()),
            Box::new(self.live_batches.clone()),
            Box::new(self.live_frames_sent.clone()),
            Box::new(self.live_bytes_sent.clone()),
            Box::new(self.live_frames_dropped.clone()),
            Box::new(self.live_resyncs.clone()),
            Box::new(self.live_disconnected_slow.clone()),
            Box::new(self.live_delta_delay.clone()),
            Box::new(self.room_waiting.clone()),
            Box::new(self.room_shopping.clone()),
            Box::new(self.room_admitted.clone()),
            Box::new(self.room_admission_measured.clone()),
            Box::new(self.room_admission_target.clone()),
            Box::new(self.room_drain_eta.clone()),
            Box::new(self.room_slowed.clone()),
            Box::new(self.started.clone()),
            Box::new(self.resident_memory.clone()),
        ];
        if self.started.get() == 0.0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.started.set(now);
        }
        for collector in all {
            registry.register(collector)?;
        }
        Ok(())
    }

    /// What is read at each scrape rather than counted: the process's resident memory.
    pub fn sample(&self) {
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            });
        if let Some(kib) = rss_kib {
            self.resident_memory.set(kib * 1024);
        }
    }

    /// A waiting room stopped: its series go.
    pub fn forget_room(&self, event_id: Uuid) {
        let label = event_id.to_string();
        let labels = [label.as_str()];
        let _ = self.room_waiting.remove_label_values(&labels);
        let _ = self.room_shopping.remove_label_values(&labels);
        let _ = self.room_admitted.remove_label_values(&labels);
        let _ = self.room_admission_measured.remove_label_values(&labels);
        let _ = self.room_admission_target.remove_label_values(&labels);
        let _ = self.room_drain_eta.remove_label_values(&labels);
        let _ = self.room_slowed.remove_label_values(&labels);
    }
}

static FIGURES: LazyLock<Figures> = LazyLock::new(|| Figures::new().with_zeros());

/// The process's figures.
pub fn figures() -> &'static Figures {
    &FIGURES
}

/// A refusal's code as a bounded label.
pub fn outcome_of(error: &crate::actors::EngineError) -> &'static str {
    use crate::actors::EngineError as E;
    use crate::domain::holds::HoldError as H;
    match error {
        E::Hold(refusal) => match refusal {
            H::EventNotFound => "not_found",
            H::SaleNotOpen(_) => "sale_not_open",
            H::SeatUnavailable(_) => "seat_unavailable",
            H::SoldOut => "sold_out",
            H::MaxPerOrderExceeded(_) => "max_per_order_exceeded",
            H::BuyerLimitExceeded { .. } => "buyer_limit_exceeded",
            H::TooManyHolds(_) => "too_many_holds",
            H::Invalid(_) => "invalid",
            H::HoldNotFound => "hold_not_found",
            H::HoldExpired => "hold_expired",
            H::NotYourHold => "forbidden",
            H::CheckoutInProgress => "checkout_in_progress",
            H::AlreadyPurchased(_) => "hold_purchased",
        },
        E::PaymentDeclined(_) => "declined",
        E::PaymentFailed(_) => "failed",
        E::PaymentUnavailable(_) => "payment_unavailable",
        E::OrdersBusy => "orders_busy",
        E::Unavailable | E::OwnerUnavailable => "unavailable",
        E::Unexpected(_) => "error",
    }
}
