//! The boxoffice load-test harness. Each scenario sets up its own event through the REST
//! API, drives it from many concurrent clients for a bounded time and request count, and
//! measures the seed design (one `SELECT … FOR UPDATE` transaction per hold) with the same
//! workload and concurrency in the same run, so figures come as ratios from one machine.
//!
//! ```text
//! cargo build --release
//! ./target/release/loadtest hot-tier      # many buyers, one GA tier
//! ./target/release/loadtest hot-section   # many buyers, random seats of one section
//! ./target/release/loadtest waiting-room  # 100,000 buyers queue, then are admitted
//! ./target/release/loadtest viewers       # 10,000 live seat-map viewers, 1,000 changes/s
//! ```
//! Traffic goes to 127.0.0.1 only, unless `--url` names another server.

mod baseline;
mod raw_socket;
mod report;
mod server;
mod viewers;
mod waiting_room;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use uuid::Uuid;

use baseline::Baseline;
use report::{Report, Summary, Tally};
use server::{event_on_sale, Api, Server};

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load tests for boxoffice, with the seed design measured beside it"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Buyers hold one general-admission tier as fast as they can (quantity 1 each).
    HotTier(Common),
    /// Buyers hold 2 random seats of one section until it is all held.
    HotSection {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100)]
        rows: i32,
        #[arg(long, default_value_t = 100)]
        seats_per_row: i32,
    },
    /// Buyers join a waiting room before the sale, poll their place, and are admitted at
    /// the organizer's rate when it starts (`--seconds` is not used).
    WaitingRoom {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100_000)]
        buyers: usize,
        #[arg(long, default_value_t = 120_000)]
        admission_per_minute: u32,
        /// Seconds from set-up to the sale start (joins and status polls happen before).
        #[arg(long, default_value_t = 60)]
        lead_seconds: u64,
        /// The longest the admission phase may take.
        #[arg(long, default_value_t = 120)]
        admission_seconds: u64,
    },
    /// Viewers watch the live seat map while buyers hold and release seats at a steady
    /// rate (`--seconds` of changes); measures viewers held, memory per idle viewer and
    /// the delay from a hold's acknowledgement to its delta. `--clients` viewers connect
    /// at a time.
    Viewers {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        viewers: usize,
        #[arg(long, default_value_t = 1_000)]
        changes_per_second: u32,
        /// Viewers that parse every frame and time the deltas.
        #[arg(long, default_value_t = 100)]
        samplers: usize,
        /// Buyers making the changes.
        #[arg(long, default_value_t = 64)]
        changers: usize,
        #[arg(long, default_value_t = 100)]
        rows: i32,
        #[arg(long, default_value_t = 100)]
        seats_per_row: i32,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Concurrent clients (one tokio task each).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Time limit of each system's run, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Request limit of each system's run.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// A running server to test; by default the harness starts `--server-bin`.
    #[arg(long)]
    url: Option<String>,
    #[arg(long, default_value = "target/release/boxoffice")]
    server_bin: String,
    /// The Postgres server (an admin database on it) for the started server and the seed design.
    #[arg(
        long,
        env = "LOADTEST_DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Where the JSON report goes.
    #[arg(long)]
    out: Option<String>,
    /// Measure boxoffice only.
    #[arg(long)]
    skip_baseline: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (report, out) = match cli.scenario {
        Scenario::HotTier(common) => (hot_tier(&common).await?, common.out.clone()),
        Scenario::HotSection {
            common,
            rows,
            seats_per_row,
        } => (
            hot_section(&common, rows, seats_per_row).await?,
            common.out.clone(),
        ),
        Scenario::WaitingRoom {
            common,
            buyers,
            admission_per_minute,
            lead_seconds,
            admission_seconds,
        } => {
            let plan = waiting_room::Plan {
                buyers,
                admission_per_minute,
                lead_seconds,
                admission_seconds,
            };
            (waiting_room::run(&common, &plan).await?, common.out.clone())
        }
        Scenario::Viewers {
            common,
            viewers,
            changes_per_second,
            samplers,
            changers,
            rows,
            seats_per_row,
        } => {
            let plan = viewers::Plan {
                viewers,
                changes_per_second,
                samplers,
                rows,
                seats_per_row,
                changers: changers.max(1),
            };
            (viewers::run(&common, &plan).await?, common.out.clone())
        }
    };
    report.print();
    let out = out.unwrap_or_else(|| format!("loadtest-{}.json", report.scenario));
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {out}"))?;
    println!("report written to {out}");
    Ok(())
}

async fn start(common: &Common) -> anyhow::Result<Server> {
    match &common.url {
        Some(url) => Ok(Server::at(url)),
        None => {
            Server::start(
                &common.server_bin,
                &common.database_url,
                "boxoffice_loadtest",
                &[],
            )
            .await
        }
    }
}

/// Limits shared by a run's clients.
struct Budget {
    deadline: Instant,
    requests: AtomicU64,
    max_requests: u64,
    done: AtomicBool,
}

impl Budget {
    fn new(common: &Common) -> Arc<Budget> {
        Budget::with(Duration::from_secs(common.seconds), common.max_requests)
    }

    fn with(time: Duration, max_requests: u64) -> Arc<Budget> {
        Arc::new(Budget {
            deadline: Instant::now() + time,
            requests: AtomicU64::new(0),
            max_requests,
            done: AtomicBool::new(false),
        })
    }

    /// Ends the run: clients stop after their request in flight.
    fn stop(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Takes one request from the budget; false when time, count or the goal ran out.
    fn take(&self) -> bool {
        !self.done.load(Ordering::Relaxed)
            && Instant::now() < self.deadline
            && self.requests.fetch_add(1, Ordering::Relaxed) < self.max_requests
    }
}

/// Runs `clients` copies of `op` until the budget runs out; op returns (outcome, success).
async fn drive<F, Fut>(clients: usize, budget: Arc<Budget>, op: F) -> (Tally, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (String, bool)> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (budget, op) = (budget.clone(), op.clone());
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while budget.take() {
                    let t = Instant::now();
                    let (outcome, success) = op(client).await;
                    tally.record(t.elapsed(), &outcome, success);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        if let Ok(tally) = task.await {
            total.merge(&tally);
        }
    }
    (total, started.elapsed())
}

async fn buyers(api: &Api, n: usize) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(api.signup("buyer").await?);
    }
    Ok(tokens)
}

async fn post_hold(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> (String, bool) {
    match client.post(url).bearer_auth(token).json(body).send().await {
        Ok(response) => {
            let status = response.status();
            let _ = response.bytes().await;
            (status.as_u16().to_string(), status.as_u16() == 201)
        }
        Err(error) => (
            if error.is_timeout() {
                "timeout"
            } else {
                "connection_error"
            }
            .to_owned(),
            false,
        ),
    }
}

async fn hot_tier(common: &Common) -> anyhow::Result<Report> {
    const QUANTITY: i64 = 200_000;
    let server = start(common).await?;
    let api = Api::new(&server.url);
    let organizer = api.signup("organizer").await?;
    let sections = json!([{"name": "Floor", "kind": "general_admission", "capacity": QUANTITY}]);
    let (event_id, _) = event_on_sale(&api, &organizer, sections, |venue| {
        json!({"currency": "USD", "tiers": [{"section_id": venue["sections"][0]["section_id"], "name": "GENERAL",
               "price_cents": 5000, "quantity": QUANTITY, "max_per_order": 4}]})
    })
    .await?;
    let detail: Value = api
        .client
        .get(format!("{}/api/v1/events/{event_id}", server.url))
        .send()
        .await?
        .json()
        .await?;
    let tier_id = detail["tiers"][0]["tier_id"]
        .as_str()
        .context("no tier")?
        .to_owned();
    let tokens = Arc::new(buyers(&api, common.clients).await?);
    let url = Arc::new(format!("{}/api/v1/events/{event_id}/holds", server.url));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .build()?;
    let body = Arc::new(json!({"tier_id": tier_id, "quantity": 1}));
    println!(
        "hot-tier: boxoffice, {} clients, {} s",
        common.clients, common.seconds
    );
    let (tally, elapsed) = drive(common.clients, Budget::new(common), move |i| {
        let (client, url, tokens, body) =
            (client.clone(), url.clone(), tokens.clone(), body.clone());
        async move { post_hold(&client, &url, &tokens[i], &body).await }
    })
    .await;
    let mut runs = vec![Summary::new(
        "boxoffice",
        common.clients,
        elapsed,
        &tally,
        server.peak_rss_mib(),
    )];
    let (detail, sold_ok) =
        check_tier(&api, &server.url, &event_id, tally.successes, QUANTITY).await?;
    if !sold_ok {
        bail!("boxoffice oversold or lost holds: {detail}");
    }
    drop(server);

    if !common.skip_baseline {
        let baseline = Arc::new(
            Baseline::create(
                &common.database_url,
                "boxoffice_loadtest_seed",
                common.clients.min(64) as u32,
            )
            .await?,
        );
        let tier = baseline.add_tier(QUANTITY as i32).await?;
        println!(
            "hot-tier: seed design, {} clients, {} s",
            common.clients, common.seconds
        );
        let b = baseline.clone();
        let (tally, elapsed) = drive(common.clients, Budget::new(common), move |_| {
            let b = b.clone();
            async move {
                match b.hold_tier(tier, Uuid::new_v4(), 1).await {
                    Ok(true) => ("held".to_owned(), true),
                    Ok(false) => ("sold_out".to_owned(), false),
                    Err(_) => ("error".to_owned(), false),
                }
            }
        })
        .await;
        let (sold, available) = baseline.tier_counts(tier).await?;
        if i64::from(sold) != tally.successes as i64 || i64::from(sold + available) != QUANTITY {
            bail!("the seed design's counts do not add up: sold {sold}, available {available}");
        }
        runs.push(Summary::new(
            "seed-design",
            common.clients,
            elapsed,
            &tally,
            None,
        ));
    }
    Ok(Report::new("hot-tier", runs))
}

/// After a run: the tier's availability must equal quantity less the holds that succeeded.
async fn check_tier(
    api: &Api,
    url: &str,
    event_id: &str,
    held: u64,
    quantity: i64,
) -> anyhow::Result<(Value, bool)> {
    let detail: Value = api
        .client
        .get(format!("{url}/api/v1/events/{event_id}"))
        .send()
        .await?
        .json()
        .await?;
    let available = detail["tiers"][0]["available"].as_i64().unwrap_or(-1);
    Ok((
        detail["tiers"][0].clone(),
        available == quantity - held as i64,
    ))
}

async fn hot_section(common: &Common, rows: i32, per_row: i32) -> anyhow::Result<Report> {
    let server = start(common).await?;
    let api = Api::new(&server.url);
    let organizer = api.signup("organizer").await?;
    let (event_id, seats) = server::section_on_sale(&api, &organizer, rows, per_row).await?;
    let capacity = seats.len() as u64;
    let seats = Arc::new(seats);
    let tokens = Arc::new(buyers(&api, common.clients).await?);
    let url = Arc::new(format!("{}/api/v1/events/{event_id}/holds", server.url));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .build()?;
    println!(
        "hot-section: boxoffice, {} clients, {capacity} seats, up to {} s",
        common.clients, common.seconds
    );
    let budget = Budget::new(common);
    let held = Arc::new(AtomicU64::new(0));
    let (b, h) = (budget.clone(), held.clone());
    let (tally, elapsed) = drive(common.clients, budget, move |i| {
        let (client, url, tokens, seats, budget, held) = (
            client.clone(),
            url.clone(),
            tokens.clone(),
            seats.clone(),
            b.clone(),
            h.clone(),
        );
        async move {
            let pick: Vec<&String> = seats.choose_multiple(&mut rand::thread_rng(), 2).collect();
            let result = post_hold(&client, &url, &tokens[i], &json!({"seat_ids": pick})).await;
            if result.1 && (held.fetch_add(2, Ordering::Relaxed) + 2) * 100 >= capacity * 95 {
                budget.done.store(true, Ordering::Relaxed);
            }
            result
        }
    })
    .await;
    let mut runs = vec![Summary::new(
        "boxoffice",
        common.clients,
        elapsed,
        &tally,
        server.peak_rss_mib(),
    )];
    let map: Value = api
        .client
        .get(format!("{}/api/v1/events/{event_id}/seatmap", server.url))
        .send()
        .await?
        .json()
        .await?;
    let held_on_map = map["sections"][0]["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .flat_map(|r| r["seats"].as_array().cloned().unwrap_or_default())
                .filter(|s| s["state"] == "held")
                .count()
        })
        .unwrap_or(0) as u64;
    if held_on_map != tally.successes * 2 {
        bail!(
            "boxoffice: {} holds succeeded but {held_on_map} seats are held",
            tally.successes
        );
    }
    drop(server);

    if !common.skip_baseline {
        let baseline = Arc::new(
            Baseline::create(
                &common.database_url,
                "boxoffice_loadtest_seed",
                common.clients.min(64) as u32,
            )
            .await?,
        );
        let seats = Arc::new(baseline.add_section(rows, per_row).await?);
        println!(
            "hot-section: seed design, {} clients, up to {} s",
            common.clients, common.seconds
        );
        let budget = Budget::new(common);
        let held = Arc::new(AtomicU64::new(0));
        let (b, h) = (budget.clone(), held.clone());
        let base = baseline.clone();
        let (tally, elapsed) = drive(common.clients, budget, move |_| {
            let (base, seats, budget, held) = (base.clone(), seats.clone(), b.clone(), h.clone());
            async move {
                let pick: Vec<Uuid> = seats
                    .choose_multiple(&mut rand::thread_rng(), 2)
                    .copied()
                    .collect();
                let result = match base.hold_seats(&pick, Uuid::new_v4()).await {
                    Ok(true) => ("held".to_owned(), true),
                    Ok(false) => ("seat_unavailable".to_owned(), false),
                    Err(_) => ("error".to_owned(), false),
                };
                if result.1 && (held.fetch_add(2, Ordering::Relaxed) + 2) * 100 >= capacity * 95 {
                    budget.done.store(true, Ordering::Relaxed);
                }
                result
            }
        })
        .await;
        runs.push(Summary::new(
            "seed-design",
            common.clients,
            elapsed,
            &tally,
            None,
        ));
    }
    Ok(Report::new("hot-section", runs))
}
