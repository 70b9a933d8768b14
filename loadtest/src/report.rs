//! Measurements of one run: latency histograms (HDR, microseconds), counts by outcome, and
//! the table and JSON they are reported as.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest time a tally records (an hour); longer ones count as an hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// What one client saw; merged into a [`Summary`] at the end.
pub struct Tally {
    pub latency: Histogram<u64>,
    pub outcomes: BTreeMap<String, u64>,
    /// Latency of each outcome apart (2 significant figures: a few KiB each).
    pub outcome_latency: BTreeMap<String, Histogram<u64>>,
    pub successes: u64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl Tally {
    pub fn new() -> Tally {
        // 1 µs to an hour with 3 significant figures (waits in a waiting room run long).
        let latency = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .expect("1 µs to an hour at 3 figures is a valid histogram");
        Tally {
            latency,
            outcomes: BTreeMap::new(),
            outcome_latency: BTreeMap::new(),
            successes: 0,
        }
    }

    pub fn record(&mut self, took: Duration, outcome: &str, success: bool) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.latency.record(micros.min(MAX_MICROS));
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
        if !self.outcome_latency.contains_key(outcome) {
            let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 2)
                .expect("1 µs to an hour at 2 figures is a valid histogram");
            self.outcome_latency.insert(outcome.to_owned(), histogram);
        }
        if let Some(histogram) = self.outcome_latency.get_mut(outcome) {
            let _ = histogram.record(micros.min(MAX_MICROS));
        }
        if success {
            self.successes += 1;
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        let _ = self.latency.add(&other.latency);
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        for (k, h) in &other.outcome_latency {
            match self.outcome_latency.get_mut(k) {
                Some(mine) => {
                    let _ = mine.add(h);
                }
                None => {
                    self.outcome_latency.insert(k.clone(), h.clone());
                }
            }
        }
        self.successes += other.successes;
    }
}

/// One system's figures in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub system: String,
    pub clients: usize,
    pub seconds: f64,
    pub attempts: u64,
    pub successes: u64,
    pub successes_per_second: f64,
    pub attempts_per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub outcomes: BTreeMap<String, u64>,
    /// p50 and p99 (ms) of each outcome apart.
    pub outcome_latency: BTreeMap<String, OutcomeLatency>,
    pub server_peak_rss_mib: Option<f64>,
}

/// One outcome's latency.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeLatency {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Summary {
    pub fn new(
        system: &str,
        clients: usize,
        elapsed: Duration,
        tally: &Tally,
        server_peak_rss_mib: Option<f64>,
    ) -> Summary {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let attempts = tally.latency.len();
        let ms = |q: f64| tally.latency.value_at_quantile(q) as f64 / 1000.0;
        Summary {
            system: system.to_owned(),
            clients,
            seconds,
            attempts,
            successes: tally.successes,
            successes_per_second: tally.successes as f64 / seconds,
            attempts_per_second: attempts as f64 / seconds,
            p50_ms: ms(0.50),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: tally.latency.max() as f64 / 1000.0,
            outcomes: tally.outcomes.clone(),
            outcome_latency: tally
                .outcome_latency
                .iter()
                .map(|(k, h)| {
                    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
                    let latency = OutcomeLatency {
                        p50_ms: ms(0.50),
                        p99_ms: ms(0.99),
                    };
                    (k.clone(), latency)
                })
                .collect(),
            server_peak_rss_mib,
        }
    }
}

/// A scenario's report: boxoffice and the seed design, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub machine: String,
    pub runs: Vec<Summary>,
    /// boxoffice's successful operations per second over the seed design's.
    pub throughput_ratio: Option<f64>,
    /// boxoffice's answered requests per second (success or refusal) over the seed design's.
    pub attempts_ratio: Option<f64>,
    /// A scenario's own figures (admission rate, memory per queued buyer, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Report {
    pub fn new(scenario: &str, runs: Vec<Summary>) -> Report {
        let ratio = |rate: fn(&Summary) -> f64| {
            let of = |name: &str| runs.iter().find(|r| r.system == name).map(rate);
            match (of("boxoffice"), of("seed-design")) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            }
        };
        let throughput_ratio = ratio(|r| r.successes_per_second);
        let attempts_ratio = ratio(|r| r.attempts_per_second);
        Report {
            scenario: scenario.to_owned(),
            machine: machine(),
            runs,
            throughput_ratio,
            attempts_ratio,
            extra: BTreeMap::new(),
        }
    }

    pub fn print(&self) {
        println!("\n{} on {}", self.scenario, self.machine);
        println!(
            "{:<12} {:>7} {:>9} {:>10} {:>11} {:>11} {:>8} {:>8} {:>8} {:>9}  outcomes",
            "system",
            "clients",
            "attempts",
            "successes",
            "success/s",
            "attempt/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "rss MiB"
        );
        for r in &self.runs {
            let outcomes: Vec<String> =
                r.outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{:<12} {:>7} {:>9} {:>10} {:>11.0} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>9}  {}",
                r.system,
                r.clients,
                r.attempts,
                r.successes,
                r.successes_per_second,
                r.attempts_per_second,
                r.p50_ms,
                r.p95_ms,
                r.p99_ms,
                r.server_peak_rss_mib
                    .map_or("-".to_owned(), |m| format!("{m:.0}")),
                outcomes.join(" ")
            );
        }
        for r in self.runs.iter().filter(|r| r.outcome_latency.len() > 1) {
            let each: Vec<String> = r
                .outcome_latency
                .iter()
                .map(|(k, l)| format!("{k} {:.1}/{:.1}", l.p50_ms, l.p99_ms))
                .collect();
            println!("{} p50/p99 ms by outcome: {}", r.system, each.join(", "));
        }
        if let Some(ratio) = self.throughput_ratio {
            println!("boxoffice / seed design: {ratio:.1}× successful operations per second");
        }
        if let Some(ratio) = self.attempts_ratio {
            println!("boxoffice / seed design: {ratio:.1}× answered requests per second");
        }
        for (name, value) in &self.extra {
            let text = value.to_string();
            if text.len() <= 120 {
                println!("{name}: {text}");
            } else if let Some(fields) = value.as_object() {
                // (A scenario's per-second counts are printed as the timeline below.)
                let timeline = fields.keys().all(|k| k.parse::<u64>().is_ok());
                for (field, value) in fields.iter().filter(|_| !timeline) {
                    let text = value.to_string();
                    if text.len() <= 120 {
                        println!("{name}.{field}: {text}");
                    }
                }
            }
        }
        let timeline = Timeline::of(&self.extra);
        if !timeline.columns.is_empty() {
            timeline.print();
        }
    }
}

/// The report's per-second counts (`*_per_second` maps of second → count) side by side,
/// in buckets of a few seconds so that a run fits in about thirty lines.
#[derive(Debug, PartialEq)]
pub struct Timeline {
    pub bucket_seconds: u64,
    pub columns: Vec<String>,
    /// (first second of the bucket, per column: count per second in the bucket)
    pub rows: Vec<(u64, Vec<f64>)>,
}

impl Timeline {
    pub fn of(extra: &BTreeMap<String, serde_json::Value>) -> Timeline {
        let series: Vec<(String, BTreeMap<u64, u64>)> = extra
            .iter()
            .filter_map(|(name, value)| {
                let column = name.strip_suffix("_per_second")?;
                let counts = value
                    .as_object()?
                    .iter()
                    .filter_map(|(second, n)| Some((second.parse().ok()?, n.as_u64()?)))
                    .collect::<BTreeMap<u64, u64>>();
                Some((column.to_owned(), counts))
            })
            .collect();
        let last = series
            .iter()
            .filter_map(|(_, counts)| counts.keys().next_back())
            .max()
            .copied()
            .unwrap_or(0);
        let bucket_seconds = match (last + 1).div_ceil(30) {
            0..=1 => 1,
            n => n.div_ceil(5) * 5,
        };
        let rows = if series.is_empty() {
            Vec::new()
        } else {
            (0..=last / bucket_seconds)
                .map(|b| {
                    let from = b * bucket_seconds;
                    let rates = series
                        .iter()
                        .map(|(_, counts)| {
                            counts
                                .range(from..from + bucket_seconds)
                                .map(|(_, n)| n)
                                .sum::<u64>() as f64
                                / bucket_seconds as f64
                        })
                        .collect();
                    (from, rates)
                })
                .collect()
        };
        Timeline {
            bucket_seconds,
            columns: series.into_iter().map(|(name, _)| name).collect(),
            rows,
        }
    }

    fn print(&self) {
        println!("\nper second, by {} s:", self.bucket_seconds);
        print!("{:>8}", "from s");
        for column in &self.columns {
            print!(" {column:>10}");
        }
        println!();
        for (from, rates) in &self.rows {
            print!("{from:>8}");
            for rate in rates {
                print!(" {rate:>10.1}");
            }
            println!();
        }
    }
}

/// The machine, as the report names it: cores and model.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rates_come_from_the_recorded_latencies() {
        let mut tally = Tally::new();
        for ms in 1..=100u64 {
            tally.record(
                Duration::from_millis(ms),
                if ms % 10 == 0 { "409" } else { "201" },
                ms % 10 != 0,
            );
        }
        let summary = Summary::new("boxoffice", 4, Duration::from_secs(2), &tally, None);
        assert_eq!(summary.attempts, 100);
        assert_eq!(summary.successes, 90);
        assert!((summary.successes_per_second - 45.0).abs() < 1e-9);
        assert!((summary.p50_ms - 50.0).abs() < 0.1, "{}", summary.p50_ms);
        assert!((summary.p99_ms - 99.0).abs() < 0.1, "{}", summary.p99_ms);
        assert_eq!(summary.outcomes["409"], 10);
    }

    #[test]
    fn the_ratio_compares_successful_throughput() {
        let mut fast = Tally::new();
        let mut slow = Tally::new();
        for _ in 0..100 {
            fast.record(Duration::from_millis(1), "201", true);
        }
        for _ in 0..10 {
            slow.record(Duration::from_millis(10), "ok", true);
        }
        let runs = vec![
            Summary::new("boxoffice", 1, Duration::from_secs(1), &fast, None),
            Summary::new("seed-design", 1, Duration::from_secs(1), &slow, None),
        ];
        let report = Report::new("hot-tier", runs);
        assert_eq!(report.throughput_ratio.map(|r| r.round()), Some(10.0));
    }

    #[test]
    fn the_timeline_puts_per_second_counts_side_by_side_in_buckets() {
        let mut extra = BTreeMap::new();
        extra.insert(
            "holds_per_second".into(),
            serde_json::json!({"0": 10, "1": 20, "5": 4}),
        );
        extra.insert("sold_per_second".into(), serde_json::json!({"1": 6}));
        extra.insert("seats".into(), serde_json::json!(100));
        let timeline = Timeline::of(&extra);
        assert_eq!(timeline.columns, ["holds", "sold"]);
        assert_eq!(timeline.bucket_seconds, 1);
        assert_eq!(timeline.rows.len(), 6);
        assert_eq!(timeline.rows[1], (1, vec![20.0, 6.0]));
        assert_eq!(timeline.rows[3], (3, vec![0.0, 0.0]));

        // A long run comes in buckets: 95 s in 5-second buckets, as rates per second.
        let long: serde_json::Map<String, serde_json::Value> = (0..95u64)
            .map(|s| (s.to_string(), serde_json::json!(2)))
            .collect();
        let mut extra = BTreeMap::new();
        extra.insert("holds_per_second".into(), serde_json::Value::Object(long));
        let timeline = Timeline::of(&extra);
        assert_eq!(timeline.bucket_seconds, 5);
        assert_eq!(timeline.rows.len(), 19);
        assert!(timeline.rows.iter().all(|(_, r)| r == &vec![2.0]));
    }

    #[test]
    fn merged_tallies_add_up() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        a.record(Duration::from_millis(1), "201", true);
        b.record(Duration::from_millis(2), "409", false);
        a.merge(&b);
        assert_eq!((a.latency.len(), a.successes, a.outcomes.len()), (2, 1, 2));
    }
}
