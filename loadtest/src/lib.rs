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
//! ./target/release/loadtest flash-sale    # 20,000 browsers, 10,000 seats, invariants checked
//! ./target/release/loadtest cluster       # 3 nodes behind nginx beside 1: throughput, forwarding, failover
//! ./target/release/loadtest doors         # 50,000 tickets, 20 gates, each ticket shown twice: one ADMIT each
//! ./target/release/loadtest search        # 100,000 events in 2,000 venues: search, filters, distance, trending
//! ```
//! Traffic goes to 127.0.0.1 only, unless `--url` names another server.

pub mod baseline;
pub mod cancellation;
pub mod checkout;
pub mod cluster;
pub mod doors;
pub mod flash_sale;
pub mod hot;
pub mod html;
pub mod invariants;
pub mod raw_socket;
pub mod report;
pub mod search;
pub mod server;
pub mod signups;
pub mod smtp_sink;
pub mod viewers;
pub mod waiting_room;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use report::Tally;
use server::{Api, Server};

#[derive(Args, Clone)]
pub struct Common {
    /// Concurrent clients (one tokio task each).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Time limit of each system's run, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Request limit of each system's run.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_requests: u64,
    /// A running server to test; by default the harness starts `--server-bin`.
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long, default_value = "target/release/boxoffice")]
    pub server_bin: String,
    /// The Postgres server (an admin database on it) for the started server and the seed design.
    #[arg(
        long,
        env = "LOADTEST_DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// Where the JSON report goes.
    #[arg(long)]
    pub out: Option<String>,
    /// Measure boxoffice only.
    #[arg(long)]
    pub skip_baseline: bool,
    /// With `--url`: the server's own database, for the invariant checks and for buyer
    /// accounts made without sign-ups.
    #[arg(long, env = "LOADTEST_SERVER_DATABASE_URL")]
    pub server_database_url: Option<String>,
    /// With `--url`: the server's `BOXOFFICE_JWT_SECRET`, to sign those buyers' tokens.
    #[arg(long, env = "LOADTEST_SERVER_JWT_SECRET")]
    pub server_jwt_secret: Option<String>,
}

/// The server under test: the one `--url` names, or one started with the default settings.
pub async fn start(common: &Common) -> anyhow::Result<Server> {
    start_with(common, &[]).await
}

/// The server under test; one the harness starts gets `env` on top of its settings.
pub async fn start_with(common: &Common, env: &[(&str, &str)]) -> anyhow::Result<Server> {
    match &common.url {
        Some(url) => Ok(Server::at(
            url,
            common.server_database_url.clone(),
            common.server_jwt_secret.clone(),
        )),
        None => {
            Server::start(
                &common.server_bin,
                &common.database_url,
                "boxoffice_loadtest",
                env,
            )
            .await
        }
    }
}

/// Limits shared by a run's clients.
pub struct Budget {
    deadline: Instant,
    requests: AtomicU64,
    max_requests: u64,
    done: AtomicBool,
}

impl Budget {
    pub fn new(common: &Common) -> Arc<Budget> {
        Budget::with(Duration::from_secs(common.seconds), common.max_requests)
    }

    pub fn with(time: Duration, max_requests: u64) -> Arc<Budget> {
        Arc::new(Budget {
            deadline: Instant::now() + time,
            requests: AtomicU64::new(0),
            max_requests,
            done: AtomicBool::new(false),
        })
    }

    /// Ends the run: clients stop after their request in flight.
    pub fn stop(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Takes one request from the budget; false when time, count or the goal ran out.
    pub fn take(&self) -> bool {
        !self.done.load(Ordering::Relaxed)
            && Instant::now() < self.deadline
            && self.requests.fetch_add(1, Ordering::Relaxed) < self.max_requests
    }
}

/// Runs `clients` copies of `op` until the budget runs out; op returns (outcome, success).
pub async fn drive<F, Fut>(clients: usize, budget: Arc<Budget>, op: F) -> (Tally, Duration)
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

/// Buyer tokens handed out in turn: each on-sale limits the tickets one buyer may have
/// (`max_per_buyer`), so a scenario that holds as fast as it can spreads its holds over
/// many buyers rather than one per client.
pub struct Rotation {
    tokens: Vec<String>,
    next: AtomicU64,
}

/// Buyers a hot scenario rotates through (a thousand tickets each at most).
pub const ROTATING_BUYERS: usize = 1_000;

impl Rotation {
    pub fn new(tokens: Vec<String>) -> Rotation {
        Rotation {
            tokens,
            next: AtomicU64::new(0),
        }
    }

    /// The next buyer's token.
    pub fn next(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        self.tokens
            .get(i % self.tokens.len().max(1))
            .map_or("", String::as_str)
    }
}

pub async fn buyers(api: &Api, n: usize) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(api.signup("buyer").await?);
    }
    Ok(tokens)
}

pub async fn post_hold(
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
        Err(error) => (failure(&error).to_owned(), false),
    }
}

/// How a request that got no answer failed, as reports count it.
pub fn failure(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else {
        "connection_error"
    }
}
