//! `flash-sale`: simulated browsers go through a whole on-sale. Each one joins the waiting
//! room before the sale opens, waits for admission, opens the live seat map, chooses seats
//! (best available, or seats of a popular block to force contention), holds them, and pays
//! with the simulated card, except for the shares that are declined (and retry with a good
//! card), abandon the hold (it expires) or release it. The run ends when every browser is
//! done (bought, gave up, or found the event sold out) or the time limit passes; then the
//! invariants are checked in Postgres and through the API.
//!
//! The parts: [`browser`] is the one visit both systems' browsers make (what to choose,
//! when to retry, what to do with a hold), written against a [`browser::Shop`];
//! [`boxoffice`] is that shop over boxoffice's API and live map (the browser's copy of the
//! map in [`live_map`]), [`seed`] over the seed design's transactions; [`steps`] gathers what the browsers measured. This module
//! holds the plan, how a visit ends, and [`run`]: the sale, its invariants, and the seed
//! design's sale beside it.

mod boxoffice;
mod browser;
mod live_map;
mod seed;
mod steps;

use std::time::Instant;

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::invariants::{self, LeftHold, Verdict};
use crate::report::{Report, Summary};
use crate::server::{Api, Server};
use crate::Common;

pub use boxoffice::run_sale;
pub use seed::{seed_sale, SeedSale};
pub use steps::second_reaching;

/// The scenario's own parameters (its command-line flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Plan {
    #[arg(long, default_value_t = 20_000)]
    pub browsers: usize,
    #[arg(long, default_value_t = 4)]
    pub sections: usize,
    #[arg(long, default_value_t = 25)]
    pub rows: i32,
    #[arg(long, default_value_t = 100)]
    pub seats_per_row: i32,
    #[arg(long, default_value_t = 60_000)]
    pub admission_per_minute: u32,
    /// Seconds from set-up to the sale opening (browsers join in this time).
    #[arg(long, default_value_t = 10)]
    pub lead_seconds: u64,
    /// Share of browsers that go for the popular block rather than best available.
    #[arg(long, default_value_t = 0.3)]
    pub popular_share: f64,
    #[arg(long, default_value_t = 0.05)]
    pub decline_share: f64,
    #[arg(long, default_value_t = 0.05)]
    pub abandon_share: f64,
    #[arg(long, default_value_t = 0.05)]
    pub release_share: f64,
    #[arg(long, default_value_t = 1)]
    pub hold_minutes: u32,
    /// The shopping window of a server the harness starts (buyers who leave without
    /// buying hold back admission until theirs closes).
    #[arg(long, default_value_t = 2)]
    pub admission_window_minutes: u32,
    /// Seconds after the sale opens at which the simulated card processor slows down, on a
    /// server the harness starts (0: it never does).
    #[arg(long, default_value_t = 0)]
    pub slow_payments_at: u64,
    /// For how many seconds it stays slow.
    #[arg(long, default_value_t = 30)]
    pub slow_payments_for: u64,
    /// How long each of its calls takes meanwhile.
    #[arg(long, default_value_t = 2_000)]
    pub slow_payments_ms: u64,
    /// Starts the server without its payment breaker (`BOXOFFICE_BREAKER=false`), for the
    /// same run without it.
    #[arg(long)]
    pub no_breaker: bool,
}

/// How a browser's visit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Bought,
    Released,
    Abandoned,
    /// Told so in the line (or at the door): never let in to shop.
    SoldOut,
    /// Let in (or, without a room, at the shop), and found nothing left to hold: the
    /// buyers a room's pace should keep few.
    SoldOutAtHold,
    /// Still waiting (for admission, or to try for seats again) when the run's time ran out.
    NotAdmitted,
    /// Every hold attempt was refused (seats taken under the browser's nose).
    NoSeats,
    /// Neither card went through.
    PaymentFailed,
    /// An error answer or a lost connection.
    Error,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Bought => "bought",
            Ending::Released => "released",
            Ending::Abandoned => "abandoned",
            Ending::SoldOut => "sold_out",
            Ending::SoldOutAtHold => "sold_out_at_hold",
            Ending::NotAdmitted => "not_admitted",
            Ending::NoSeats => "no_seats",
            Ending::PaymentFailed => "payment_failed",
            Ending::Error => "error",
        }
    }
}

/// What a browser does once it has a hold, drawn from the plan's shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Pay,
    DeclinedThenPay,
    Abandon,
    Release,
}

impl Plan {
    /// Draws a browser's intent: `roll` in 0..1.
    pub fn intent(&self, roll: f64) -> Intent {
        let mut edge = self.decline_share;
        if roll < edge {
            return Intent::DeclinedThenPay;
        }
        edge += self.abandon_share;
        if roll < edge {
            return Intent::Abandon;
        }
        edge += self.release_share;
        if roll < edge {
            return Intent::Release;
        }
        Intent::Pay
    }
}

/// A finished sale, before its invariants are checked.
pub struct Sale {
    pub report: Report,
    pub event_id: String,
    /// Holds the browsers abandoned.
    pub left: Vec<LeftHold>,
    pub api: Api,
    pub server: Server,
    /// When the run's time limit ends.
    pub deadline: Instant,
    /// What the server's e-mail sent (a started server sends to this sink).
    pub inbox: crate::smtp_sink::Inbox,
}

impl Sale {
    /// Once the relay caught up (30 s at most): the confirmations' outbox lag (commit to
    /// relay) and how fast their e-mail reached the sink.
    pub async fn outbox(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let Some(pool) = self.server.pool().await? else {
            return Ok(None);
        };
        let pending =
            "SELECT count(*) FROM outbox WHERE kind = 'order.confirmed' AND processed_at IS NULL \
                       AND payload->>'event_id' = $1";
        let until = Instant::now() + std::time::Duration::from_secs(30);
        while sqlx::query_scalar::<_, i64>(pending)
            .bind(&self.event_id)
            .fetch_one(&pool)
            .await?
            > 0
            && Instant::now() < until
        {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let (rows, p50, p99, max): (i64, Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT count(*), \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM processed_at - created_at)), \
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM processed_at - created_at)), \
                    max(EXTRACT(EPOCH FROM processed_at - created_at))::float8 \
             FROM outbox WHERE kind = 'order.confirmed' AND processed_at IS NOT NULL AND payload->>'event_id' = $1",
        )
        .bind(&self.event_id)
        .fetch_one(&pool)
        .await?;
        let seen: Vec<Instant> = self
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(at, _, _)| *at)
            .collect();
        let span = match (seen.iter().min(), seen.iter().max()) {
            (Some(first), Some(last)) => last.duration_since(*first).as_secs_f64(),
            _ => 0.0,
        };
        Ok(Some(json!({
            "confirmations_relayed": rows,
            "lag_p50_seconds": p50, "lag_p99_seconds": p99, "lag_max_seconds": max,
            "messages_at_sink": seen.len(),
            "messages_per_second": if span > 0.0 { seen.len() as f64 / span } else { 0.0 },
        })))
    }

    /// Checks the invariants (none without access to the server's database), as of the
    /// server's time `now`.
    pub async fn verify(&self, now: DateTime<Utc>) -> anyhow::Result<Option<Verdict>> {
        match self.server.pool().await? {
            Some(pool) => Ok(Some(
                invariants::check(&self.api, &pool, &self.event_id, &self.left, now).await?,
            )),
            None => Ok(None),
        }
    }
}

/// Runs the sale, waits (within the time limit) for the abandoned holds' deadlines, and
/// checks the invariants: a broken one is an error. Then, unless told not to, the same
/// browsers on the seed design, and the ratios between the two.
pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    let mut sale = run_sale(common, plan).await?;
    if let Some(last) = sale.left.iter().map(|h| h.expires_at).max() {
        let wait = (last - Utc::now() + chrono::Duration::seconds(2))
            .to_std()
            .unwrap_or_default();
        let allowed = sale.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(wait.min(allowed)).await;
    }
    match sale.verify(Utc::now()).await? {
        Some(verdict) => {
            verdict.print();
            sale.report
                .extra
                .insert("invariants".into(), json!(verdict));
            if !verdict.ok() {
                sale.report.print();
                bail!("invariants broken: {}", verdict.failures().join("; "));
            }
        }
        None => println!("invariants: not checked (no access to the server's database)"),
    }
    if let Some(figures) = sale.outbox().await? {
        println!("outbox: {figures}");
        sale.report.extra.insert("outbox".into(), figures);
    }
    let mut report = sale.report;
    drop(sale.server);
    if !common.skip_baseline {
        let seed = seed_sale(common, plan).await?;
        report.runs.extend(seed.runs);
        let ours = &report.extra;
        let faster = |key: &str| -> Option<f64> {
            let theirs = seed.figures[key].as_f64()?;
            let ours = ours.get(key)?.as_f64()?;
            (ours > 0.0).then(|| theirs / ours)
        };
        let ratios = json!({
            "hold_p99": p99_ratio(&report.runs, "hold", "seed hold"),
            "checkout_p99": p99_ratio(&report.runs, "checkout", "seed checkout"),
            "time_to_sell_90_percent": faster("seconds_to_sell_90_percent"),
        });
        report.extra.insert("seed_design".into(), seed.figures);
        report
            .extra
            .insert("seed_design_over_boxoffice".into(), ratios);
    }
    Ok(report)
}

/// p99 of `step` in the seed design over boxoffice's: how many times faster boxoffice is.
fn p99_ratio(runs: &[Summary], ours: &str, theirs: &str) -> Option<f64> {
    let of = |name: &str| runs.iter().find(|r| r.system == name).map(|r| r.p99_ms);
    match (of(ours), of(theirs)) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::Tally;

    pub(crate) fn plan() -> Plan {
        Plan {
            browsers: 1,
            sections: 1,
            rows: 1,
            seats_per_row: 1,
            admission_per_minute: 60,
            lead_seconds: 1,
            popular_share: 0.0,
            decline_share: 0.1,
            abandon_share: 0.2,
            release_share: 0.3,
            hold_minutes: 1,
            admission_window_minutes: 2,
            slow_payments_at: 0,
            slow_payments_for: 30,
            slow_payments_ms: 2_000,
            no_breaker: false,
        }
    }

    #[test]
    fn intents_follow_the_shares_in_order() {
        let plan = plan();
        assert_eq!(plan.intent(0.05), Intent::DeclinedThenPay);
        assert_eq!(plan.intent(0.15), Intent::Abandon);
        assert_eq!(plan.intent(0.45), Intent::Release);
        assert_eq!(plan.intent(0.61), Intent::Pay);
        assert_eq!(plan.intent(0.99), Intent::Pay);
    }

    #[test]
    fn the_ratio_is_the_seed_designs_p99_over_ours() {
        let mut fast = Tally::new();
        let mut slow = Tally::new();
        fast.record(Duration::from_millis(10), "201", true);
        slow.record(Duration::from_millis(250), "held", true);
        let runs = vec![
            Summary::new("hold", 1, Duration::from_secs(1), &fast, None),
            Summary::new("seed hold", 1, Duration::from_secs(1), &slow, None),
        ];
        let ratio = p99_ratio(&runs, "hold", "seed hold").unwrap_or_default();
        assert!((ratio - 25.0).abs() < 0.1, "{ratio}");
        assert_eq!(p99_ratio(&runs, "checkout", "seed checkout"), None);
    }
}
