//! `doors`: the doors open. An event with `--tickets` sold tickets (written straight into
//! the server's database, as if sold: the sale is not what is measured), `--gates` scanners
//! scanning as fast as they can, every ticket presented twice at two different gates in a
//! random order (a ticket shown again, a screenshot passed back over the fence). Measures
//! scans a second and their latency, checks that each ticket was let in exactly once (in the
//! answers and in Postgres), and times the offline bundle a scanner downloads.
//!
//! With the baseline, the same scans go straight at Postgres the naive way a seed-style
//! design would check a ticket in: one transaction per scan that reads the ticket by its
//! code `FOR UPDATE` and marks it used.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::report::{Report, Summary, Tally};
use crate::server::{event_on_sale, Api};
use crate::Common;

/// The scenario's own parameters.
#[derive(Debug, Clone, clap::Args)]
pub struct Plan {
    #[arg(long, default_value_t = 50_000)]
    pub tickets: usize,
    #[arg(long, default_value_t = 20)]
    pub gates: usize,
}

/// The codes left to present, shared by the gates.
type Queue = Arc<Mutex<Vec<(usize, String)>>>;

fn next(queue: &Queue) -> Option<(usize, String)> {
    queue.lock().unwrap_or_else(PoisonError::into_inner).pop()
}

/// Every ticket twice, at two different gates, in a random order: (gate, code) pairs.
fn presentations(codes: &[String], gates: usize) -> Vec<Vec<String>> {
    let mut rng = rand::thread_rng();
    let mut all: Vec<(usize, String)> = Vec::with_capacity(codes.len() * 2);
    for (i, code) in codes.iter().enumerate() {
        let first = i % gates;
        let second = (first + 1 + i / gates % (gates.max(2) - 1)) % gates.max(1);
        all.push((first, code.clone()));
        all.push((second, code.clone()));
    }
    all.shuffle(&mut rng);
    let mut per_gate = vec![Vec::new(); gates];
    for (gate, code) in all {
        per_gate[gate].push(code);
    }
    per_gate
}

pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    if plan.tickets == 0 || plan.gates < 2 {
        bail!("--tickets must be at least 1 and --gates at least 2");
    }
    let server = crate::start(common).await?;
    let api = Api::new(&server.url);
    let organizer = api.signup("organizer").await?;
    let sections =
        json!([{"name": "Floor", "kind": "general_admission", "capacity": plan.tickets}]);
    let (event_id, _) = event_on_sale(&api, &organizer, sections, |venue| {
        json!({"currency": "USD", "tiers": [{"section_id": venue["sections"][0]["section_id"], "name": "GENERAL",
               "price_cents": 5000, "quantity": plan.tickets, "max_per_order": 4}]})
    })
    .await?;
    let pool = server
        .pool()
        .await?
        .context("the doors scenario writes the sold tickets: it needs the server's database")?;
    let started = Instant::now();
    let codes = sell(&pool, &event_id, plan.tickets).await?;
    println!(
        "doors: {} tickets written in {:.1} s; {} gates",
        codes.len(),
        started.elapsed().as_secs_f64(),
        plan.gates
    );

    let mut tokens = Vec::new();
    for gate in 0..plan.gates {
        let made = api
            .post(
                &format!("/api/v1/events/{event_id}/scanners"),
                Some(&organizer),
                &json!({"name": format!("Scanner {gate}"), "gate": format!("Gate {gate}")}),
            )
            .await?;
        tokens.push(made["token"].as_str().unwrap_or_default().to_owned());
    }

    // The bundle a scanner downloads, before the doors open (the door loads its tickets at
    // the first scan; the bundle is read fresh).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.gates * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let t = Instant::now();
    let bundle = client
        .get(format!(
            "{}/api/v1/events/{event_id}/checkin/bundle",
            server.url
        ))
        .bearer_auth(&tokens[0])
        .send()
        .await?
        .bytes()
        .await?;
    let bundle_ms = t.elapsed().as_secs_f64() * 1000.0;
    let listed = serde_json::from_slice::<Value>(&bundle)?["tickets"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "doors: bundle of {listed} tickets, {:.1} MB, {bundle_ms:.0} ms",
        bundle.len() as f64 / 1e6
    );

    let per_gate = presentations(&codes, plan.gates);
    let url = Arc::new(format!("{}/api/v1/events/{event_id}/checkins", server.url));
    let t = Instant::now();
    let gates: Vec<_> = per_gate
        .into_iter()
        .zip(tokens)
        .map(|(codes, token)| {
            let (client, url) = (client.clone(), url.clone());
            let queue: Queue = Arc::new(Mutex::new(codes.into_iter().enumerate().collect()));
            tokio::spawn(async move {
                let mut tally = Tally::new();
                let mut admitted = Vec::new();
                while let Some((_, code)) = next(&queue) {
                    let started = Instant::now();
                    let answer = client
                        .post(url.as_str())
                        .bearer_auth(&token)
                        .json(&json!({"qr": code, "nonce": Uuid::new_v4().to_string()}))
                        .send()
                        .await;
                    let body: Value = match answer {
                        Ok(response) => response.json().await.unwrap_or(Value::Null),
                        Err(error) => json!({"result": crate::failure(&error)}),
                    };
                    let result = body["result"].as_str().unwrap_or("error").to_owned();
                    let ok = result == "ADMIT" || result == "ALREADY_ADMITTED";
                    tally.record(started.elapsed(), &result, ok);
                    if result == "ADMIT" {
                        admitted.push(code);
                    }
                }
                (tally, admitted)
            })
        })
        .collect();
    let mut tally = Tally::new();
    let mut admitted = Vec::new();
    for gate in gates {
        let (t, a) = gate.await?;
        tally.merge(&t);
        admitted.extend(a);
    }
    let elapsed = t.elapsed();
    let answered_twice = admitted.len() - {
        let mut unique = admitted.clone();
        unique.sort();
        unique.dedup();
        unique.len()
    };
    let (used, ledger): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tickets WHERE event_id = $1::uuid AND status = 'USED'), \
                (SELECT count(*) FROM ticket_ledger l JOIN tickets t USING (ticket_id) \
                 WHERE t.event_id = $1::uuid AND l.kind = 'USED')",
    )
    .bind(&event_id)
    .fetch_one(&pool)
    .await?;
    let ok = admitted.len() == codes.len()
        && answered_twice == 0
        && used == codes.len() as i64
        && ledger == used;
    let peak = server.peak_rss_mib();
    let mut report = Report::new(
        "doors",
        vec![Summary::new("boxoffice", plan.gates, elapsed, &tally, peak)],
    );
    let checks = json!({
        "tickets": codes.len(), "admits_answered": admitted.len(), "admitted_twice": answered_twice,
        "used_in_postgres": used, "used_in_ledger": ledger, "ok": ok,
    });
    println!("doors: {checks}");
    report.extra.insert("checks".into(), checks);
    report.extra.insert(
        "bundle".into(),
        json!({"tickets": listed, "bytes": bundle.len(), "ms": bundle_ms}),
    );
    if !ok {
        report.print();
        bail!("a ticket was let in twice, or not at all");
    }
    drop(server);
    if !common.skip_baseline {
        report.runs.push(naive(common, plan).await?);
    }
    Ok(report)
}

/// Writes `n` sold tickets of the event's one tier (one order per 100 tickets, one buyer),
/// with their ISSUED ledger rows; their QR tokens.
async fn sell(pool: &sqlx::PgPool, event_id: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut tx = pool.begin().await?;
    let buyer = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (user_id, email, password_hash, name, role) VALUES ($1, $2, 'x', 'Door Test', 'buyer')",
    )
    .bind(buyer)
    .bind(format!("doors-{}@loadtest.invalid", buyer.simple()))
    .execute(&mut *tx)
    .await?;
    let (section_id, tier_id): (Uuid, Uuid) = sqlx::query_as(
        "SELECT section_id, tier_id FROM ticket_tiers WHERE event_id = $1::uuid LIMIT 1",
    )
    .bind(event_id)
    .fetch_one(&mut *tx)
    .await
    .context("the event's tier")?;
    let orders = n.div_ceil(100);
    sqlx::query(
        "INSERT INTO orders (order_id, event_id, buyer_id, status, total_cents, currency, confirmed_at) \
         SELECT md5('o' || g || $1)::uuid, $1::uuid, $2, 'CONFIRMED', 0, 'USD', now() FROM generate_series(1, $3) g",
    )
    .bind(event_id)
    .bind(buyer)
    .bind(orders as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO order_items (item_id, order_id, section_id, tier_id, quantity, unit_price_cents, subtotal_cents) \
         SELECT md5('i' || g || $1)::uuid, md5('o' || g || $1)::uuid, $2, $3, 100, 0, 0 FROM generate_series(1, $4) g",
    )
    .bind(event_id)
    .bind(section_id)
    .bind(tier_id)
    .bind(orders as i64)
    .execute(&mut *tx)
    .await?;
    let codes: Vec<String> = sqlx::query_scalar(
        "INSERT INTO tickets (ticket_id, order_id, order_item_id, event_id, section_id, tier_id, qr_token, holder_id) \
         SELECT gen_random_uuid(), md5('o' || (g / 100 + 1) || $1)::uuid, md5('i' || (g / 100 + 1) || $1)::uuid, \
                $1::uuid, $2, $3, md5(random()::text || g) || md5(g::text), $4 \
         FROM generate_series(0, $5 - 1) g RETURNING qr_token",
    )
    .bind(event_id)
    .bind(section_id)
    .bind(tier_id)
    .bind(buyer)
    .bind(n as i64)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO ticket_ledger (ticket_id, kind, at, to_holder) \
         SELECT ticket_id, 'ISSUED', issued_at, holder_id::text FROM tickets WHERE event_id = $1::uuid",
    )
    .bind(event_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// The same presentations straight at Postgres: a transaction per scan that reads the
/// ticket by its code `FOR UPDATE` and marks it used when it is not.
async fn naive(common: &Common, plan: &Plan) -> anyhow::Result<Summary> {
    let base = crate::baseline::Baseline::for_run(common).await?;
    let pool = base.pool().clone();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS door_tickets (qr TEXT PRIMARY KEY, used_at TIMESTAMPTZ, gate INT)",
    )
    .execute(&pool)
    .await?;
    let codes: Vec<String> = sqlx::query_scalar(
        "INSERT INTO door_tickets (qr) SELECT md5(random()::text || g) || md5(g::text) \
         FROM generate_series(1, $1) g RETURNING qr",
    )
    .bind(plan.tickets as i64)
    .fetch_all(&pool)
    .await?;
    let per_gate = presentations(&codes, plan.gates);
    println!("doors: the naive design, {} gates", plan.gates);
    let t = Instant::now();
    let gates: Vec<_> = per_gate
        .into_iter()
        .enumerate()
        .map(|(gate, codes)| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                for code in codes {
                    let started = Instant::now();
                    let outcome = async {
                        let mut tx = pool.begin().await?;
                        let used: Option<bool> = sqlx::query_scalar(
                            "SELECT used_at IS NOT NULL FROM door_tickets WHERE qr = $1 FOR UPDATE",
                        )
                        .bind(&code)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let result = match used {
                            None => "INVALID",
                            Some(true) => "ALREADY_ADMITTED",
                            Some(false) => {
                                sqlx::query("UPDATE door_tickets SET used_at = now(), gate = $2 WHERE qr = $1")
                                    .bind(&code)
                                    .bind(gate as i32)
                                    .execute(&mut *tx)
                                    .await?;
                                "ADMIT"
                            }
                        };
                        tx.commit().await?;
                        anyhow::Ok(result)
                    }
                    .await;
                    let result = outcome.unwrap_or("error");
                    tally.record(started.elapsed(), result, result != "error" && result != "INVALID");
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::new();
    for gate in gates {
        tally.merge(&gate.await?);
    }
    Ok(Summary::new(
        "naive design",
        plan.gates,
        t.elapsed(),
        &tally,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ticket_is_presented_twice_at_two_different_gates() {
        let codes: Vec<String> = (0..1_000).map(|i| format!("code-{i}")).collect();
        let per_gate = presentations(&codes, 7);
        assert_eq!(per_gate.iter().map(Vec::len).sum::<usize>(), 2_000);
        for code in &codes {
            let gates: Vec<usize> = per_gate
                .iter()
                .enumerate()
                .filter(|(_, c)| c.contains(code))
                .map(|(g, _)| g)
                .collect();
            assert_eq!(gates.len(), 2, "{code} at two different gates: {gates:?}");
        }
    }
}
