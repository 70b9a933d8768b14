//! `hot-checkout`: buyers hold one ticket of one general-admission tier and pay for it at
//! once (`tok_ok`), as fast as they can: complete, durable orders a second on the hottest
//! inventory there is. Postgres runs with `synchronous_commit` on (its default; checked).
//! The seed design beside it: its `SELECT … FOR UPDATE` reserve, then its confirm (the
//! order CONFIRMED and its ticket written), each a transaction. Both report orders a
//! second, latency of a whole purchase, Postgres commits a second and WAL bytes an order,
//! and both are checked against Postgres afterwards (every answered order there, once).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::baseline::{Baseline, Confirmed};
use crate::report::{Report, Summary};
use crate::server::{self, Api};
use crate::{drive, start, Budget, Common, Rotation, ROTATING_BUYERS};

const QUANTITY: i64 = 200_000;

/// Commits and WAL position of a database, to take the difference over a run.
struct Mark {
    commits: i64,
    wal: i64,
    at: Instant,
}

async fn mark(pool: &PgPool) -> anyhow::Result<Mark> {
    let (commits, wal): (i64, i64) = sqlx::query_as(
        "SELECT xact_commit::int8, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 \
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .context("reading commits and WAL")?;
    Ok(Mark {
        commits,
        wal,
        at: Instant::now(),
    })
}

/// Commits a second and WAL bytes an order between two marks.
fn durability(before: &Mark, after: &Mark, orders: u64) -> serde_json::Value {
    let seconds = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
    json!({
        "postgres_commits_per_second": ((after.commits - before.commits) as f64 / seconds).round(),
        "wal_bytes_per_order": if orders == 0 { 0.0 } else { ((after.wal - before.wal) as f64 / orders as f64).round() },
    })
}

pub async fn hot_checkout(common: &Common) -> anyhow::Result<Report> {
    let server = start(common).await?;
    let pool = server
        .pool()
        .await?
        .context("hot-checkout checks the orders in the server's database: it needs it")?;
    let synchronous: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&pool)
        .await?;
    if synchronous != "on" {
        bail!("synchronous_commit is {synchronous}: this scenario measures durable orders");
    }
    let api = Api::new(&server.url);
    let (event_id, tier_id) = server::tier_on_sale(&api, QUANTITY).await?;
    let tokens = Arc::new(Rotation::new(server.buyers(&api, ROTATING_BUYERS).await?));
    let base = Arc::new(server.url.clone());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .build()?;
    let hold = Arc::new(json!({"tier_id": tier_id, "quantity": 1}));
    let holds = Arc::new(format!("{}/api/v1/events/{event_id}/holds", server.url));
    println!(
        "hot-checkout: boxoffice, {} clients, {} s",
        common.clients, common.seconds
    );
    let before = mark(&pool).await?;
    let (tally, elapsed) = drive(common.clients, Budget::new(common), move |_| {
        let (client, base, tokens, hold, holds) = (
            client.clone(),
            base.clone(),
            tokens.clone(),
            hold.clone(),
            holds.clone(),
        );
        async move {
            let token = tokens.next();
            let held = match client
                .post(holds.as_str())
                .bearer_auth(token)
                .json(&*hold)
                .send()
                .await
            {
                Ok(response) if response.status().as_u16() == 201 => {
                    response.json::<serde_json::Value>().await.ok()
                }
                Ok(response) => return (format!("hold {}", response.status().as_u16()), false),
                Err(error) => return (format!("hold {}", crate::failure(&error)), false),
            };
            let Some(hold_id) = held.as_ref().and_then(|h| h["hold_id"].as_str()) else {
                return ("hold unreadable".to_owned(), false);
            };
            let paid = client
                .post(format!("{base}/api/v1/holds/{hold_id}/checkout"))
                .bearer_auth(token)
                .header("Idempotency-Key", Uuid::new_v4().to_string())
                .json(&json!({"payment_token": "tok_ok"}))
                .send()
                .await;
            match paid {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    if status == 201 {
                        ("ordered".to_owned(), true)
                    } else {
                        (format!("checkout {status}"), false)
                    }
                }
                Err(error) => (format!("checkout {}", crate::failure(&error)), false),
            }
        }
    })
    .await;
    let after = mark(&pool).await?;
    let ordered = tally.successes;
    let (orders, tickets): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE event_id = $1::uuid AND status = 'CONFIRMED'), \
                (SELECT count(*) FROM tickets WHERE event_id = $1::uuid AND status = 'VALID')",
    )
    .bind(&event_id)
    .fetch_one(&pool)
    .await?;
    if orders != ordered as i64 || tickets != ordered as i64 {
        bail!("boxoffice answered {ordered} orders; Postgres has {orders} confirmed with {tickets} tickets");
    }
    let mut report = Report::new(
        "hot-checkout",
        vec![Summary::new(
            "boxoffice",
            common.clients,
            elapsed,
            &tally,
            server.peak_rss_mib(),
        )],
    );
    report
        .extra
        .insert("boxoffice".into(), durability(&before, &after, ordered));
    drop(server);

    if !common.skip_baseline {
        let baseline = Arc::new(Baseline::for_run(common).await?);
        let tier = baseline.add_tier(QUANTITY as i32).await?;
        println!(
            "hot-checkout: seed design, {} clients, {} s",
            common.clients, common.seconds
        );
        let before = mark(baseline.pool()).await?;
        let b = baseline.clone();
        let (tally, elapsed) = drive(common.clients, Budget::new(common), move |_| {
            let b = b.clone();
            async move {
                let order = match b.hold_tier_order(tier, Uuid::new_v4(), 1).await {
                    Ok(Some(order)) => order,
                    Ok(None) => return ("sold_out".to_owned(), false),
                    Err(_) => return ("hold error".to_owned(), false),
                };
                match b.confirm_order(order, "tok_ok").await {
                    Ok(Confirmed::Paid) => ("ordered".to_owned(), true),
                    Ok(other) => (format!("{other:?}"), false),
                    Err(_) => ("confirm error".to_owned(), false),
                }
            }
        })
        .await;
        let after = mark(baseline.pool()).await?;
        let (paid, tickets): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM orders WHERE status = 'CONFIRMED'), (SELECT count(*) FROM tickets)",
        )
        .fetch_one(baseline.pool())
        .await?;
        if paid != tally.successes as i64 || tickets != paid {
            bail!(
                "the seed design answered {} orders; it has {paid} with {tickets} tickets",
                tally.successes
            );
        }
        report.extra.insert(
            "seed-design".into(),
            durability(&before, &after, tally.successes),
        );
        report.runs.push(Summary::new(
            "seed-design",
            common.clients,
            elapsed,
            &tally,
            None,
        ));
    }
    Ok(report)
}
