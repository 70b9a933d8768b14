//! The `loadtest` command: one subcommand per scenario (see the library's documentation).

use anyhow::Context;
use clap::{Parser, Subcommand};

use boxoffice_loadtest::{
    cancellation, checkout, cluster, doors, flash_sale, hot, search, signups, viewers,
    waiting_room, Common,
};

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
    /// Simulated browsers go through a whole on-sale: waiting room, live seat map, holds
    /// (best available or a popular block), payment with shares that decline, abandon or
    /// release; the invariants are checked at the end and a broken one fails the run.
    FlashSale {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        plan: flash_sale::Plan,
    },
    /// Several nodes behind nginx beside one node: the hot tier and a flash sale on both,
    /// the cost of a forwarded request, and failover with the owner killed `--kills` times
    /// while buyers pay (orders lost must be 0). Starts its own nodes and nginx.
    Cluster {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 5)]
        kills: usize,
        #[arg(long, default_value_t = 3_000)]
        lease_ms: u64,
        /// Browsers of the flash sale run on both deployments.
        #[arg(long, default_value_t = 4_000)]
        browsers: usize,
        #[arg(long, default_value_t = 20)]
        rows: i32,
        #[arg(long, default_value_t = 100)]
        seats_per_row: i32,
    },
    /// The doors open: `--tickets` sold tickets, `--gates` scanners as fast as they can,
    /// each ticket shown twice at two gates; scans a second, latency, exactly one ADMIT
    /// per ticket (answers and Postgres), and the offline bundle's size and time.
    Doors {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        plan: doors::Plan,
    },
    /// A sold event is cancelled: `--orders` paid orders refunded through a processor that
    /// takes `--gateway-ms`; refunds a second and the total time, each order refunded
    /// exactly once. Baseline: the same server refunding one at a time.
    Cancellation {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        plan: cancellation::Plan,
    },
    /// Finding events in a big catalog (`--events` in `--venues`): words, typos, prefixes,
    /// a category in a city, dates, distance, prices, tickets left, trending, mixed at
    /// `--clients`; latency by kind. Baseline: the same mix the unindexed way.
    Search {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        plan: search::Plan,
    },
    /// A burst of `--count` sign-ups at `--clients` at once, and the server's memory after
    /// it; beside it the same burst with password hashing unbounded (as before).
    Signups {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        plan: signups::Plan,
    },
    /// Buyers hold one general-admission tier as fast as they can (quantity 1 each).
    HotTier(Common),
    /// Buyers hold one ticket of one tier and pay at once, as fast as they can: durable
    /// orders a second (synchronous commit on), Postgres commits a second, WAL an order.
    HotCheckout(Common),
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (report, out) = match cli.scenario {
        Scenario::FlashSale { common, plan } => {
            (flash_sale::run(&common, &plan).await?, common.out.clone())
        }
        Scenario::Cluster {
            common,
            nodes,
            kills,
            lease_ms,
            browsers,
            rows,
            seats_per_row,
        } => {
            let plan = cluster::Plan {
                nodes,
                kills,
                lease_ms,
                flash: flash_sale::Plan {
                    browsers,
                    sections: 1,
                    rows,
                    seats_per_row,
                    admission_per_minute: 60_000,
                    lead_seconds: 5,
                    popular_share: 0.3,
                    decline_share: 0.05,
                    abandon_share: 0.05,
                    release_share: 0.05,
                    hold_minutes: 1,
                    admission_window_minutes: 2,
                    slow_payments_at: 0,
                    slow_payments_for: 30,
                    slow_payments_ms: 2_000,
                    no_breaker: false,
                },
            };
            (cluster::run(&common, &plan).await?, common.out.clone())
        }
        Scenario::Doors { common, plan } => (doors::run(&common, &plan).await?, common.out.clone()),
        Scenario::Search { common, plan } => {
            (search::run(&common, &plan).await?, common.out.clone())
        }
        Scenario::Cancellation { common, plan } => {
            (cancellation::run(&common, &plan).await?, common.out.clone())
        }
        Scenario::Signups { common, plan } => {
            (signups::run(&common, &plan).await?, common.out.clone())
        }
        Scenario::HotTier(common) => (hot::hot_tier(&common).await?, common.out.clone()),
        Scenario::HotCheckout(common) => {
            (checkout::hot_checkout(&common).await?, common.out.clone())
        }
        Scenario::HotSection {
            common,
            rows,
            seats_per_row,
        } => (
            hot::hot_section(&common, rows, seats_per_row).await?,
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
    let page = format!("{}.html", out.trim_end_matches(".json"));
    std::fs::write(&page, boxoffice_loadtest::html::page(&report))
        .with_context(|| format!("writing {page}"))?;
    println!("report written to {out} and {page}");
    Ok(())
}
