//! `cluster`: boxoffice on several nodes behind nginx (deploy/nginx.conf.template) beside
//! one node, in one run on one machine:
//!
//! - the hot tier and the flash sale through nginx on N nodes, and on one node;
//! - what forwarding costs: holds sent straight to the on-sale's owner, then to a node that
//!   must forward them;
//! - failover: while buyers hold and pay through nginx, the owner is killed (SIGKILL)
//!   `--kills` times; each time, how long until a hold is served again, and at the end
//!   whether any order a buyer was told about is missing from Postgres.
//!
//! Every process (nodes, nginx) is started and stopped by the harness; traffic stays on
//! 127.0.0.1; the Redis keys of the run are deleted at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::report::{Report, Summary, Tally};
use crate::server::{tier_on_sale, Api};

mod deployment;
use crate::{drive, flash_sale, post_hold, Budget, Common};
use deployment::Deployment;

/// What the scenario runs.
pub struct Plan {
    pub nodes: usize,
    pub kills: usize,
    pub lease_ms: u64,
    /// The flash sale run on both deployments.
    pub flash: flash_sale::Plan,
}

/// Holds of one ticket of the tier, as fast as `clients` can, at `base`, for `time`.
async fn hold_run(
    base: &str,
    event_id: &str,
    tier_id: &str,
    tokens: &Arc<Vec<String>>,
    clients: usize,
    time: Duration,
    max_requests: u64,
) -> anyhow::Result<(Tally, Duration)> {
    let url = Arc::new(format!("{base}/api/v1/events/{event_id}/holds"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let body = Arc::new(json!({"tier_id": tier_id, "quantity": 1}));
    let tokens = Arc::new(crate::Rotation::new(tokens.to_vec()));
    Ok(drive(clients, Budget::with(time, max_requests), move |_| {
        let (client, url, tokens, body) =
            (client.clone(), url.clone(), tokens.clone(), body.clone());
        async move { post_hold(&client, &url, tokens.next(), &body).await }
    })
    .await)
}

pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    if plan.nodes < 2 {
        bail!("--nodes must be at least 2");
    }
    if common.url.is_some() {
        bail!("the cluster scenario starts its own nodes and nginx: leave out --url");
    }
    let seconds = Duration::from_secs(common.seconds);
    let mut runs = Vec::new();
    let mut extra = serde_json::Map::new();

    // One node, then N nodes behind nginx: the hot tier, then the flash sale, on each.
    let single = Deployment::start(common, plan, 1, "boxoffice_loadtest_one_node").await?;
    let (hot, one, _) = hot_and_flash(&single, common, plan, "1 node").await?;
    runs.push(hot);
    single.clean_redis().await;
    drop(single);
    let mut cluster =
        Deployment::start(common, plan, plan.nodes, "boxoffice_loadtest_nodes").await?;
    let nodes_name = format!("{} nodes", plan.nodes);
    let (hot, many, (event_id, tier_id, tokens)) =
        hot_and_flash(&cluster, common, plan, &format!("{nodes_name} (nginx)")).await?;
    runs.push(hot);
    extra.insert("flash_sale".into(), flash_figures(&one, &many, &nodes_name));

    // Forwarding: straight to the owner, then to a node that forwards.
    let pool = cluster
        .server()
        .pool()
        .await?
        .context("the deployment's database")?;
    let owner = cluster
        .owner(&pool, &event_id)
        .await?
        .context("nobody owns the hot tier")?;
    let other = (owner + 1) % plan.nodes;
    let half = seconds / 2;
    println!(
        "cluster: holds straight to the owner, then through node {} (forwarded)",
        other + 1
    );
    let run_at = |node: usize, name: &'static str| {
        let (url, event_id, tier_id, tokens) =
            (cluster.node_url(node), &event_id, &tier_id, &tokens);
        async move {
            let (tally, elapsed) = hold_run(
                &url,
                event_id,
                tier_id,
                tokens,
                common.clients,
                half,
                common.max_requests,
            )
            .await?;
            anyhow::Ok(Summary::new(name, common.clients, elapsed, &tally, None))
        }
    };
    let direct = run_at(owner, "to the owner").await?;
    let forwarded = run_at(other, "forwarded").await?;
    extra.insert(
        "forwarding_overhead_ms".into(),
        json!({"p50": forwarded.p50_ms - direct.p50_ms, "p99": forwarded.p99_ms - direct.p99_ms,
               "throughput_ratio": forwarded.successes_per_second / direct.successes_per_second.max(1e-9)}),
    );
    runs.push(direct);
    runs.push(forwarded);

    // While every node lived, no lease changed hands (each on-sale is still at epoch 1).
    let epochs: Vec<i64> = sqlx::query_scalar("SELECT epoch FROM onsale_leases ORDER BY event_id")
        .fetch_all(&pool)
        .await?;
    println!("cluster: lease epochs before the kills: {epochs:?}");
    extra.insert(
        "leases_before_kills".into(),
        json!({"epochs": epochs, "changed_hands": epochs.iter().any(|e| *e > 1)}),
    );

    // Failover: buyers keep buying through nginx while the owner is killed, again and again.
    let failover = failover(&mut cluster, &pool, plan, &event_id, &tier_id, &tokens).await?;
    extra.insert("failover".into(), failover);
    cluster.clean_redis().await;
    drop(cluster);

    let mut report = Report::new("cluster", runs);
    let ratio = |a: &str, b: &str| {
        let of = |n: &str| {
            report
                .runs
                .iter()
                .find(|r| r.system == n)
                .map(|r| r.successes_per_second)
        };
        match (of(a), of(b)) {
            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
            _ => None,
        }
    };
    extra.insert(
        "hot_tier_throughput_ratio".into(),
        json!({"nodes_over_one": ratio(&format!("{nodes_name} (nginx)"), "1 node")}),
    );
    report.extra.extend(extra);
    Ok(report)
}

/// The hot tier and then the flash sale on one deployment; the hot tier's event, tier and
/// buyers stay for the steps that follow.
async fn hot_and_flash(
    deployment: &Deployment,
    common: &Common,
    plan: &Plan,
    name: &str,
) -> anyhow::Result<(Summary, Report, (String, String, Arc<Vec<String>>))> {
    const QUANTITY: i64 = 200_000;
    let api = Api::new(&deployment.front());
    let (event_id, tier_id) = tier_on_sale(&api, QUANTITY).await?;
    let tokens = Arc::new(
        deployment
            .server()
            .buyers(&api, crate::ROTATING_BUYERS)
            .await?,
    );
    println!(
        "cluster: hot tier on {name}, {} clients, {} s",
        common.clients, common.seconds
    );
    let (tally, elapsed) = hold_run(
        &deployment.front(),
        &event_id,
        &tier_id,
        &tokens,
        common.clients,
        Duration::from_secs(common.seconds),
        common.max_requests,
    )
    .await?;
    let hot = Summary::new(name, common.clients, elapsed, &tally, None);
    println!("cluster: flash sale on {name}");
    let flash = flash_sale::run(&deployment.common_for(common), &plan.flash).await?;
    Ok((hot, flash, (event_id, tier_id, tokens)))
}

/// The flash sale's figures on both deployments, and their ratios.
fn flash_figures(one: &Report, many: &Report, nodes_name: &str) -> Value {
    let figure = |r: &Report, key: &str| r.extra.get(key).cloned().unwrap_or(Value::Null);
    let p99 = |r: &Report, step: &str| r.runs.iter().find(|s| s.system == step).map(|s| s.p99_ms);
    let side = |r: &Report| {
        json!({
            "sold_per_second": figure(r, "sold_per_second"),
            "seconds_to_sell_90_percent": figure(r, "seconds_to_sell_90_percent"),
            "hold_p99_ms": p99(r, "hold"),
            "checkout_p99_ms": p99(r, "checkout"),
            "invariants": figure(r, "invariants"),
        })
    };
    let ratio = |key: &str| {
        let (a, b) = (figure(many, key).as_f64()?, figure(one, key).as_f64()?);
        (b > 0.0).then(|| a / b)
    };
    json!({
        "one_node": side(one),
        nodes_name: side(many),
        "time_to_sell_90_percent_nodes_over_one": ratio("seconds_to_sell_90_percent"),
    })
}

/// Kills the owner `plan.kills` times while buyers hold and pay through nginx; measures how
/// long holds go unserved after each kill, and checks that every order a buyer was told
/// about is confirmed in Postgres.
async fn failover(
    cluster: &mut Deployment,
    pool: &sqlx::PgPool,
    plan: &Plan,
    event_id: &str,
    tier_id: &str,
    tokens: &Arc<Vec<String>>,
) -> anyhow::Result<Value> {
    let front = cluster.front();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let confirmed: Arc<Mutex<Vec<String>>> = Arc::default();
    let statuses: Arc<Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
    let buyers: Vec<_> = (0..16)
        .map(|i| {
            let (client, front, stop, confirmed, statuses, token) = (
                client.clone(),
                front.clone(),
                stop.clone(),
                confirmed.clone(),
                statuses.clone(),
                tokens[i % tokens.len()].clone(),
            );
            let (event_id, tier_id) = (event_id.to_owned(), tier_id.to_owned());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let outcome = buy(
                        &client,
                        &front,
                        &event_id,
                        &tier_id,
                        &token,
                        &format!("{i}-{n}"),
                    )
                    .await;
                    let key = match &outcome {
                        Ok(order) => {
                            if let Ok(mut c) = confirmed.lock() {
                                c.push(order.clone());
                            }
                            "confirmed".to_owned()
                        }
                        Err(status) => status.clone(),
                    };
                    if let Ok(mut s) = statuses.lock() {
                        *s.entry(key.clone()).or_default() += 1;
                    }
                    if key != "confirmed" {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();

    let mut times = Vec::new();
    let prober = tokens[0].clone();
    let body = json!({"tier_id": tier_id, "quantity": 1});
    for kill in 0..plan.kills {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let owner = cluster
            .owner(pool, event_id)
            .await?
            .context("nobody owns the on-sale")?;
        if let Some(node) = cluster.nodes[owner].as_mut() {
            node.kill();
        }
        let killed = Instant::now();
        let served = loop {
            let answer = client
                .post(format!("{front}/api/v1/events/{event_id}/holds"))
                .bearer_auth(&prober)
                .json(&body)
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().as_u16() == 201) {
                break killed.elapsed();
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("no hold was served for a minute after kill {}", kill + 1);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        println!(
            "cluster: kill {}: holds served again after {:.2} s",
            kill + 1,
            served.as_secs_f64()
        );
        times.push(served.as_secs_f64());
        cluster.restarts += 1;
        let node = cluster.spawn(owner).await?;
        cluster.nodes[owner] = Some(node);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for buyer in buyers {
        let _ = buyer.await;
    }

    let told: Vec<String> = confirmed.lock().map(|c| c.clone()).unwrap_or_default();
    let ids: Vec<Uuid> = told
        .iter()
        .filter_map(|o| Uuid::parse_str(o).ok())
        .collect();
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE order_id = ANY($1) AND status = 'CONFIRMED'",
    )
    .bind(&ids)
    .fetch_one(pool)
    .await?;
    let lost = told.len() as i64 - found;
    let sold: i64 =
        sqlx::query_scalar("SELECT sold_quantity::int8 FROM ticket_tiers WHERE tier_id = $1::uuid")
            .bind(tier_id)
            .fetch_one(pool)
            .await?;
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE event_id = $1::uuid")
        .bind(event_id)
        .fetch_one(pool)
        .await?;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied();
    let figures = json!({
        "kills": plan.kills,
        "lease_ms": plan.lease_ms,
        "seconds_until_served": times,
        "p50_seconds": median,
        "max_seconds": sorted.last(),
        "orders_confirmed_to_buyers": told.len(),
        "orders_lost": lost,
        "tier_sold_equals_tickets": sold == tickets,
        "buyer_outcomes": statuses.lock().map(|s| s.clone()).unwrap_or_default(),
    });
    println!("cluster: failover {figures}");
    if lost != 0 || sold != tickets {
        bail!("orders lost or counts off after the kills: {figures}");
    }
    Ok(figures)
}

/// Holds one ticket and pays for it; the order id, or what refused (a status code).
async fn buy(
    client: &reqwest::Client,
    front: &str,
    event_id: &str,
    tier_id: &str,
    token: &str,
    key: &str,
) -> Result<String, String> {
    let status_of = |e: reqwest::Error| crate::failure(&e).to_owned();
    let response = client
        .post(format!("{front}/api/v1/events/{event_id}/holds"))
        .bearer_auth(token)
        .json(&json!({"tier_id": tier_id, "quantity": 1}))
        .send()
        .await
        .map_err(status_of)?;
    if response.status().as_u16() != 201 {
        return Err(format!("hold {}", response.status().as_u16()));
    }
    let hold: Value = response.json().await.map_err(status_of)?;
    let hold_id = hold["hold_id"].as_str().unwrap_or_default();
    // A checkout that got 503 is retried with the same key: the same order or none.
    for _ in 0..50 {
        let response = client
            .post(format!("{front}/api/v1/holds/{hold_id}/checkout"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"payment_token": "tok_ok"}))
            .send()
            .await
            .map_err(status_of)?;
        match response.status().as_u16() {
            201 => {
                let order: Value = response.json().await.map_err(status_of)?;
                return order["order_id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "no order id".to_owned());
            }
            503 => tokio::time::sleep(Duration::from_millis(200)).await,
            other => {
                let body: Value = response.json().await.unwrap_or_default();
                let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
                return Err(format!("checkout {other} {code}"));
            }
        }
    }
    Err("checkout 503".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flash_sale_figures_compare_the_two_deployments() {
        let mut one = Report::new("flash-sale", Vec::new());
        one.extra
            .insert("seconds_to_sell_90_percent".into(), json!(10.0));
        let mut many = Report::new("flash-sale", Vec::new());
        many.extra
            .insert("seconds_to_sell_90_percent".into(), json!(15.0));
        let figures = flash_figures(&one, &many, "3 nodes");
        assert_eq!(
            figures["time_to_sell_90_percent_nodes_over_one"],
            json!(1.5)
        );
        assert_eq!(
            figures["3 nodes"]["seconds_to_sell_90_percent"],
            json!(15.0)
        );
        assert_eq!(figures["one_node"]["hold_p99_ms"], Value::Null);
    }
}
