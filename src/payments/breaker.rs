//! The circuit breaker around the card processor: a plain state machine (`Breaker`, no
//! clock of its own, driven by the instants it is given) and the gateway that consults it
//! (`Guarded`).
//!
//! Closed, it lets every authorization through and remembers the last `window` of
//! outcomes; when at least `min_calls` of them are in and `failure_percent` of those failed,
//! timed out or took longer than `slow_call`, it opens. Open, it refuses new
//! authorizations at once (the checkout answers `payment_unavailable`, retryable, and the
//! hold is kept) for `open_for`; then it lets `probes` authorizations through (half-open):
//! all good and it closes, one bad and it opens again. Captures, voids and refunds always
//! go through: they finish what was already authorized.
//!
//! While it is not closed the node's payments are *degraded*: the waiting rooms slow their
//! admission (`queue::actor`), so buyers are not let in to find they cannot pay.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGauge, Opts};

use super::{Authorization, AuthorizeRequest, PaymentError, PaymentGateway};
use crate::metrics::figures;

/// `BOXOFFICE_BREAKER*` and what degraded payments change elsewhere.
#[derive(Debug, Clone)]
pub struct DegradeSettings {
    /// `BOXOFFICE_BREAKER` (true): whether the breaker guards the processor at all.
    pub enabled: bool,
    /// `BOXOFFICE_BREAKER_WINDOW_MS` (10,000): how far back outcomes count.
    pub window: Duration,
    /// `BOXOFFICE_BREAKER_MIN_CALLS` (10): outcomes needed before the breaker may open.
    pub min_calls: u32,
    /// `BOXOFFICE_BREAKER_FAILURE_PERCENT` (50): the share of bad outcomes that opens it.
    pub failure_percent: u32,
    /// `BOXOFFICE_BREAKER_SLOW_MS` (half the payment timeout, 5,000): an authorization
    /// slower than this counts as bad.
    pub slow_call: Duration,
    /// `BOXOFFICE_BREAKER_OPEN_MS` (5,000): how long it stays open before probing.
    pub open_for: Duration,
    /// `BOXOFFICE_BREAKER_PROBES` (3): good probes that close it again.
    pub probes: u32,
    /// `BOXOFFICE_DEGRADED_ADMISSION_PERCENT` (10): the share of their admission rate the
    /// waiting rooms keep while payments are degraded.
    pub admission_percent: u32,
    /// `BOXOFFICE_DEGRADED_HOLD_EXTENSION_SECONDS` (120; 0 = never): how much longer a hold
    /// lasts, once, when its checkout failed because payments were degraded.
    pub hold_extension: Duration,
}

impl Default for DegradeSettings {
    fn default() -> Self {
        DegradeSettings {
            enabled: true,
            window: Duration::from_secs(10),
            min_calls: 10,
            failure_percent: 50,
            slow_call: Duration::from_secs(5),
            open_for: Duration::from_secs(5),
            probes: 3,
            admission_percent: 10,
            hold_extension: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, passed: u32 },
}

impl State {
    /// The `payment_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::HalfOpen { .. } => 1,
            State::Open { .. } => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen { .. } => "half_open",
            State::Open { .. } => "open",
        }
    }
}

/// How an authorization went, as far as the processor's health goes. A declined card is
/// the processor working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered(Duration),
    Failed,
}

pub struct Breaker {
    settings: DegradeSettings,
    state: State,
    /// (when, bad) of the outcomes within the window, oldest first (closed only).
    outcomes: VecDeque<(Instant, bool)>,
}

impl Breaker {
    pub fn new(settings: DegradeSettings) -> Breaker {
        Breaker {
            settings,
            state: State::Closed,
            outcomes: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a new authorization may go to the processor now; if not, how long until it
    /// is worth asking again. A yes in half-open takes one of the probes.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    in_flight: 1,
                    passed: 0,
                };
                Ok(())
            }
            State::HalfOpen { in_flight, passed } => {
                if in_flight + passed < self.settings.probes {
                    self.state = State::HalfOpen {
                        in_flight: in_flight + 1,
                        passed,
                    };
                    Ok(())
                } else {
                    Err(Duration::from_secs(1))
                }
            }
        }
    }

    /// Whether an authorization would be refused now (without taking a probe).
    pub fn refuses(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }

    /// An admitted authorization ended.
    pub fn record(&mut self, now: Instant, outcome: Outcome) {
        let bad = match outcome {
            Outcome::Answered(took) => took > self.settings.slow_call,
            Outcome::Failed => true,
        };
        match self.state {
            State::Closed => {
                self.outcomes.push_back((now, bad));
                while self
                    .outcomes
                    .front()
                    .is_some_and(|(at, _)| now.duration_since(*at) > self.settings.window)
                {
                    self.outcomes.pop_front();
                }
                let calls = self.outcomes.len() as u64;
                let failed = self.outcomes.iter().filter(|(_, bad)| *bad).count() as u64;
                if calls >= u64::from(self.settings.min_calls)
                    && failed * 100 >= calls * u64::from(self.settings.failure_percent)
                {
                    self.open(now);
                }
            }
            State::HalfOpen { .. } if bad => self.open(now),
            State::HalfOpen { in_flight, passed } => {
                let passed = passed + 1;
                if passed >= self.settings.probes {
                    self.state = State::Closed;
                    self.outcomes.clear();
                } else {
                    self.state = State::HalfOpen {
                        in_flight: in_flight.saturating_sub(1),
                        passed,
                    };
                }
            }
            // Calls let through before it opened: their news is old.
            State::Open { .. } => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open {
            until: now + self.settings.open_for,
        };
        self.outcomes.clear();
    }
}

/// The processor behind a breaker, every call timed on `/metrics`.
pub struct Guarded {
    inner: Arc<dyn PaymentGateway>,
    breaker: Option<Mutex<Breaker>>,
    /// This server's breaker on `/metrics`: its state, and its changes by state entered.
    state_gauge: IntGauge,
    transitions: IntCounterVec,
}

impl Guarded {
    pub fn new(
        inner: Arc<dyn PaymentGateway>,
        settings: &DegradeSettings,
    ) -> anyhow::Result<Guarded> {
        let breaker = settings
            .enabled
            .then(|| Mutex::new(Breaker::new(settings.clone())));
        let guarded = Guarded {
            inner,
            breaker,
            state_gauge: IntGauge::new(
                "payment_breaker_state",
                "The card processor's circuit breaker: 0 closed, 1 half-open (probing), 2 open",
            )?,
            transitions: IntCounterVec::new(
                Opts::new(
                    "payment_breaker_transitions_total",
                    "Changes of the card processor's breaker, by the state entered",
                ),
                &["to"],
            )?,
        };
        for state in ["open", "half_open", "closed"] {
            guarded.transitions.with_label_values(&[state]);
        }
        Ok(guarded)
    }

    fn breaker(&self) -> Option<std::sync::MutexGuard<'_, Breaker>> {
        // Every change under the lock is one field write: a panic cannot leave it torn.
        self.breaker
            .as_ref()
            .map(|b| b.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Changes the state through `change`, counting a transition on `/metrics`.
    fn with_breaker<T>(&self, change: impl FnOnce(&mut Breaker) -> T) -> Option<T> {
        let mut breaker = self.breaker()?;
        let before = breaker.state();
        let out = change(&mut breaker);
        let after = breaker.state();
        if std::mem::discriminant(&before) != std::mem::discriminant(&after) {
            self.state_gauge.set(after.gauge());
            self.transitions.with_label_values(&[after.name()]).inc();
            match after {
                State::Open { .. } => tracing::warn!("payments degraded: the breaker opened"),
                State::Closed => tracing::info!("payments recovered: the breaker closed"),
                State::HalfOpen { .. } => {}
            }
        }
        Some(out)
    }

    async fn timed<T>(
        &self,
        call: &'static str,
        work: impl std::future::Future<Output = Result<T, PaymentError>>,
    ) -> Result<T, PaymentError> {
        let started = Instant::now();
        let result = work.await;
        let f = figures();
        f.payment_call_duration
            .with_label_values(&[call])
            .observe(started.elapsed().as_secs_f64());
        f.payment_calls
            .with_label_values(&[call, outcome_label(&result)])
            .inc();
        result
    }
}

fn outcome_label<T>(result: &Result<T, PaymentError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(PaymentError::Declined { .. }) => "declined",
        Err(PaymentError::Failed(_)) => "failed",
        Err(PaymentError::Timeout) => "timeout",
        Err(PaymentError::Unavailable { .. }) => "refused",
    }
}

/// Records an admitted authorization's end, also when its caller gives up on it (a
/// timeout drops the future): a call that never answered is a failure.
struct Pending<'a> {
    gateway: &'a Guarded,
    started: Instant,
    done: bool,
}

impl Pending<'_> {
    fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.gateway
            .with_breaker(|b| b.record(Instant::now(), outcome));
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.gateway
                .with_breaker(|b| b.record(Instant::now(), Outcome::Failed));
        }
    }
}

#[async_trait]
impl PaymentGateway for Guarded {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn use_database(&self, pool: &sqlx::PgPool) {
        self.inner.use_database(pool);
    }

    fn simulate_latency(&self, latency: Duration) -> Option<Duration> {
        self.inner.simulate_latency(latency)
    }

    fn unavailable(&self) -> Option<Duration> {
        self.breaker()?.refuses(Instant::now())
    }

    fn degraded(&self) -> bool {
        self.breaker().is_some_and(|b| b.state() != State::Closed)
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.state_gauge.clone()),
            Box::new(self.transitions.clone()),
        ]
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, PaymentError> {
        if let Some(Err(retry_after)) = self.with_breaker(|b| b.admit(Instant::now())) {
            figures()
                .payment_calls
                .with_label_values(&["authorize", "refused"])
                .inc();
            return Err(PaymentError::Unavailable { retry_after });
        }
        let pending = Pending {
            gateway: self,
            started: Instant::now(),
            done: false,
        };
        let result = self.timed("authorize", self.inner.authorize(request)).await;
        let outcome = match &result {
            Ok(_) | Err(PaymentError::Declined { .. }) => {
                Outcome::Answered(pending.started.elapsed())
            }
            Err(_) => Outcome::Failed,
        };
        pending.finish(outcome);
        result
    }

    async fn capture(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<(), PaymentError> {
        self.timed(
            "capture",
            self.inner.capture(authorization_id, idempotency_key),
        )
        .await
    }

    async fn void(&self, authorize_idempotency_key: &str) -> Result<(), PaymentError> {
        self.timed("void", self.inner.void(authorize_idempotency_key))
            .await
    }

    async fn refund(
        &self,
        authorization_id: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<(), PaymentError> {
        self.timed(
            "refund",
            self.inner
                .refund(authorization_id, amount_cents, idempotency_key),
        )
        .await
    }
}

#[cfg(test)]
mod tests;
