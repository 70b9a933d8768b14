//! `cancellation`: an event with `--orders` paid one-ticket orders (written straight into
//! the server's database and into the simulated processor's ledger, as if sold: the sale
//! is not what is measured) is cancelled, and the server refunds every order through the
//! processor, which takes `--gateway-ms` per call. Measures refunds a second and the total
//! time, then checks that every order was refunded exactly once (in Postgres and at the
//! processor).
//!
//! The baseline is the same server refunding one order at a time
//! (`BOXOFFICE_REFUND_PARALLELISM=1`), the way a job that walks the orders in a loop would.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::report::{Report, Summary, Tally};
use crate::server::{event_on_sale, Api};
use crate::Common;

/// Paid orders, as the API would have written them (shared with the tests).
const SOLD_ORDERS: &str = include_str!("../../tests/fixtures/sold_orders.sql");

#[derive(Debug, Clone, clap::Args)]
pub struct Plan {
    #[arg(long, default_value_t = 10_000)]
    pub orders: usize,
    /// How long the simulated processor takes to answer a refund, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub gateway_ms: u64,
    /// Refunds the server asks for at once.
    #[arg(long, default_value_t = 8)]
    pub parallelism: usize,
}

pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    if plan.orders == 0 {
        bail!("--orders must be at least 1");
    }
    let mut runs = vec![once(common, plan, plan.parallelism, "boxoffice").await?];
    if !common.skip_baseline {
        runs.push(once(common, plan, 1, "serial").await?);
    }
    let ratio =
        runs[0].successes_per_second / runs.get(1).map_or(f64::NAN, |r| r.successes_per_second);
    let mut report = Report::new("cancellation", runs);
    report.extra.insert(
        "plan".into(),
        json!({"orders": plan.orders, "gateway_ms": plan.gateway_ms, "parallelism": plan.parallelism}),
    );
    if ratio.is_finite() {
        report
            .extra
            .insert("refunds_per_second_ratio".into(), json!(ratio));
    }
    Ok(report)
}

/// One server, one cancelled event, refunding `parallelism` at a time.
async fn once(
    common: &Common,
    plan: &Plan,
    parallelism: usize,
    system: &str,
) -> anyhow::Result<Summary> {
    let (gateway_ms, parallel) = (plan.gateway_ms.to_string(), parallelism.to_string());
    let env = [
        ("BOXOFFICE_PAYMENT_LATENCY_MS", gateway_ms.as_str()),
        ("BOXOFFICE_REFUND_PARALLELISM", parallel.as_str()),
    ];
    let server = crate::start_with(common, &env).await?;
    let api = Api::new(&server.url);
    let organizer = api.signup("organizer").await?;
    let sections = json!([{"name": "Floor", "kind": "general_admission", "capacity": plan.orders}]);
    let (event_id, _) = event_on_sale(&api, &organizer, sections, |venue| {
        json!({"currency": "EUR", "tiers": [{"section_id": venue["sections"][0]["section_id"], "name": "GENERAL",
               "price_cents": 5000, "quantity": plan.orders, "max_per_order": 4}]})
    })
    .await?;
    let pool = server
        .pool()
        .await?
        .context("the cancellation scenario writes the orders: it needs the server's database")?;
    let event = Uuid::parse_str(&event_id)?;
    let buyer = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (user_id, email, password_hash, name, role) VALUES ($1, $2, 'x', 'Refund Test', 'buyer')",
    )
    .bind(buyer)
    .bind(format!("refunds-{}@loadtest.invalid", buyer.simple()))
    .execute(&pool)
    .await?;
    let (section, tier): (Uuid, Uuid) =
        sqlx::query_as("SELECT section_id, tier_id FROM ticket_tiers WHERE event_id = $1")
            .bind(event)
            .fetch_one(&pool)
            .await?;
    sqlx::query(SOLD_ORDERS)
        .bind(event)
        .bind(buyer)
        .bind(section)
        .bind(tier)
        .bind(plan.orders as i32)
        .bind(5000_i64)
        .execute(&pool)
        .await
        .context("writing the sold orders")?;

    let client = reqwest::Client::new();
    let started = Instant::now();
    api.post(
        &format!("/api/v1/events/{event_id}/cancel"),
        Some(&organizer),
        &json!({"reason": "Load test"}),
    )
    .await?;
    let deadline = started + Duration::from_secs(1800);
    let progress = loop {
        let progress: Value = client
            .get(format!(
                "{}/api/v1/events/{event_id}/cancellation",
                server.url
            ))
            .bearer_auth(&organizer)
            .send()
            .await?
            .json()
            .await?;
        if progress["done"] == true {
            break progress;
        }
        if Instant::now() > deadline {
            bail!("the cancellation did not finish in 30 minutes: {progress}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();

    // How long each refund took, from its row to its completion.
    let took: Vec<(String, f64)> = sqlx::query_as(
        "SELECT status, EXTRACT(EPOCH FROM (completed_at - created_at))::float8 * 1000 FROM refunds WHERE event_id = $1",
    )
    .bind(event)
    .fetch_all(&pool)
    .await?;
    let mut tally = Tally::new();
    for (status, ms) in &took {
        tally.record(
            Duration::from_secs_f64(ms.max(0.0) / 1000.0),
            status,
            status == "SUCCEEDED",
        );
    }
    let (refunded, paid, twice, live): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'REFUNDED'), \
                (SELECT count(*) FROM simulated_refunds), \
                (SELECT count(*) FROM (SELECT authorization_id FROM simulated_refunds GROUP BY 1 HAVING count(*) > 1) x), \
                (SELECT count(*) FROM tickets WHERE event_id = $1 AND status IN ('VALID', 'USED'))",
    )
    .bind(event)
    .fetch_one(&pool)
    .await?;
    let orders = plan.orders as i64;
    let checks = json!({"orders": orders, "refunded": refunded, "processor_refunds": paid,
                        "refunded_twice": twice, "live_tickets": live, "progress": progress});
    println!(
        "cancellation ({system}): {orders} orders in {:.1} s, {:.0} refunds/s; {checks}",
        elapsed.as_secs_f64(),
        orders as f64 / elapsed.as_secs_f64()
    );
    if refunded != orders || paid != orders || twice != 0 || live != 0 {
        bail!("an order was not refunded, or refunded twice: {checks}");
    }
    Ok(Summary::new(
        system,
        parallelism,
        elapsed,
        &tally,
        server.peak_rss_mib(),
    ))
}
