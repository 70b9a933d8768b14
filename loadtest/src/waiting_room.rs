//! `waiting-room`: many buyers queue for one on-sale. Measures, on one node: joining
//! (throughput and latency), status polls while they wait, the server's memory with
//! everyone queued, and admission at the organizer's rate once the sale starts (admitted
//! per second from the room's own figures, and every admitted buyer fetching their token).
//!
//! Buyers are anonymous visitors (`POST /api/v1/visitors`), as most browsers in a real
//! queue are; the seed design has no waiting room, so there is no baseline run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use rand::Rng;
use serde_json::{json, Value};

use crate::report::{Report, Summary, Tally};
use crate::server::{priced_event, Api};
use crate::{Budget, Common};

/// The scenario's own parameters.
pub struct Plan {
    pub buyers: usize,
    pub admission_per_minute: u32,
    /// Seconds from the end of set-up to the sale start: joins, then status polls, happen
    /// in this pre-queue time.
    pub lead_seconds: u64,
    /// The most the admission phase may take.
    pub admission_seconds: u64,
}

/// Runs `op(i)` once for every `i` below `n` from `clients` tasks; `op` gives the outcome
/// and whether it succeeded, and may hand back a value kept at index `i`.
async fn each<F, Fut>(clients: usize, n: usize, op: F) -> (Tally, Duration, Vec<Option<String>>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (String, bool, Option<String>)> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                let mut tally = Tally::new();
                let mut kept = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    let (outcome, success, value) = op(i).await;
                    tally.record(t.elapsed(), &outcome, success);
                    kept.push((i, value));
                }
                (tally, kept)
            })
        })
        .collect();
    let mut total = Tally::new();
    let mut values = vec![None; n];
    for task in tasks {
        if let Ok((tally, kept)) = task.await {
            total.merge(&tally);
            for (i, value) in kept {
                values[i] = value;
            }
        }
    }
    (total, started.elapsed(), values)
}

/// Sends one request; (status code or error kind, success, JSON answer).
async fn call(request: reqwest::RequestBuilder) -> (String, bool, Value) {
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.json().await.unwrap_or(Value::Null);
            (status.as_u16().to_string(), status.is_success(), body)
        }
        Err(error) => (crate::failure(&error).to_owned(), false, Value::Null),
    }
}

pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    if plan.buyers == 0 || plan.buyers > 200_000 {
        bail!("--buyers must be between 1 and 200000 (the largest venue)");
    }
    // Visitor tokens without their proof of work: this scenario measures the room, not the
    // door (whose cost is `cargo bench --bench pow` and the browser's solve time).
    let server = crate::start_with(
        common,
        &[
            ("BOXOFFICE_QUEUE_ABANDON_SECONDS", "3600"),
            ("BOXOFFICE_VISITOR_PROOF_OF_WORK", "false"),
        ],
    )
    .await?;
    let api = Api::new(&server.url);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .build()?;
    let organizer = api.signup("organizer").await?;
    let capacity = plan.buyers as i64;
    let field = json!([{"name": "Field", "kind": "general_admission", "capacity": capacity}]);
    let (event_id, _, start) = priced_event(&api, &organizer, "Load Test Queue Night", field, |venue| {
        json!({"currency": "USD", "tiers": [{"section_id": venue["sections"][0]["section_id"], "name": "GENERAL",
                "price_cents": 5000, "quantity": capacity, "max_per_order": 1}]})
    })
    .await?;

    println!("waiting-room: {} visitors", plan.buyers);
    let visitors_url = Arc::new(format!("{}/api/v1/visitors", server.url));
    let (visitor_tally, visitor_time, tokens) = each(common.clients, plan.buyers, {
        let (client, url) = (client.clone(), visitors_url.clone());
        move |_| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let (outcome, ok, body) = call(client.post(url.as_str())).await;
                (outcome, ok, body["token"].as_str().map(str::to_owned))
            }
        }
    })
    .await;
    let tokens: Arc<Vec<String>> = Arc::new(tokens.into_iter().flatten().collect());
    if tokens.len() != plan.buyers {
        bail!(
            "only {} of {} visitors were created",
            tokens.len(),
            plan.buyers
        );
    }

    let sale_starts = Utc::now() + chrono::Duration::seconds(plan.lead_seconds as i64);
    api.put(
        &format!("/api/v1/events/{event_id}/onsale"),
        Some(&organizer),
        &json!({"sale_starts_at": sale_starts, "sale_ends_at": start, "hold_minutes": 10, "max_per_order": 1,
                "waiting_room": {"queue_opens_at": Utc::now() - chrono::Duration::minutes(1),
                                 "admission_per_minute": plan.admission_per_minute}}),
    )
    .await?;
    api.post(
        &format!("/api/v1/events/{event_id}/publish"),
        Some(&organizer),
        &json!({}),
    )
    .await?;
    let rss_before = server.rss_mib();

    println!("waiting-room: {} joins before the sale starts", plan.buyers);
    let queue_url = Arc::new(format!("{}/api/v1/events/{event_id}/queue", server.url));
    let (join_tally, join_time, _) = each(common.clients, plan.buyers, {
        let (client, url, tokens) = (client.clone(), queue_url.clone(), tokens.clone());
        move |i| {
            let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
            async move {
                let (outcome, ok, _) =
                    call(client.post(url.as_str()).bearer_auth(&tokens[i])).await;
                (outcome, ok, None)
            }
        }
    })
    .await;
    let rss_queued = server.rss_mib();

    let poll = {
        let (client, url, tokens) = (client.clone(), queue_url.clone(), tokens.clone());
        move |_| {
            let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
            async move {
                let i = rand::thread_rng().gen_range(0..tokens.len());
                let (outcome, ok, body) =
                    call(client.get(url.as_str()).bearer_auth(&tokens[i])).await;
                let state = body["state"].as_str().unwrap_or("error").to_owned();
                (if ok { state } else { outcome }, ok)
            }
        }
    };
    let until_start = (sale_starts - Utc::now())
        .to_std()
        .unwrap_or_default()
        .saturating_sub(Duration::from_secs(1));
    println!(
        "waiting-room: status polls for {:.0} s until the sale starts",
        until_start.as_secs_f64()
    );
    let (status_tally, status_time) = crate::drive(
        common.clients,
        Budget::with(until_start, common.max_requests),
        poll.clone(),
    )
    .await;

    // The sale starts: the room admits at the organizer's rate while buyers keep polling.
    while Utc::now() < sale_starts {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "waiting-room: admitting at {} a minute",
        plan.admission_per_minute
    );
    let stats_url = format!("{}/api/v1/events/{event_id}/queue/stats", server.url);
    let budget = Budget::with(
        Duration::from_secs(plan.admission_seconds),
        common.max_requests,
    );
    let pollers = tokio::spawn(crate::drive(common.clients, budget.clone(), poll));
    let admitting = Instant::now();
    let mut timeline: Vec<(f64, u64)> = Vec::new();
    loop {
        let (_, ok, stats) = call(client.get(&stats_url).bearer_auth(&organizer)).await;
        let admitted = stats["admitted_total"].as_u64().unwrap_or(0);
        if ok {
            timeline.push((admitting.elapsed().as_secs_f64(), admitted));
        }
        if admitted as usize >= plan.buyers
            || admitting.elapsed() >= Duration::from_secs(plan.admission_seconds)
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    budget.stop();
    let (busy_tally, busy_time) = pollers.await.context("status pollers")?;
    let admitted_total = timeline.last().map_or(0, |(_, n)| *n);
    let rss_admitted = server.rss_mib();

    println!("waiting-room: every buyer fetches their place (and token)");
    let (token_tally, token_time, _) = each(common.clients, plan.buyers, {
        let (client, url, tokens) = (client.clone(), queue_url.clone(), tokens.clone());
        move |i| {
            let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
            async move {
                let (outcome, _, body) =
                    call(client.get(url.as_str()).bearer_auth(&tokens[i])).await;
                let has_token = body["admission_token"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty());
                (
                    if has_token {
                        "admitted".to_owned()
                    } else {
                        outcome
                    },
                    has_token,
                    None,
                )
            }
        }
    })
    .await;

    let peak = server.peak_rss_mib();
    let runs = vec![
        Summary::new(
            "visitors",
            common.clients,
            visitor_time,
            &visitor_tally,
            None,
        ),
        Summary::new("join", common.clients, join_time, &join_tally, rss_queued),
        Summary::new("status", common.clients, status_time, &status_tally, None),
        Summary::new(
            "status+admit",
            common.clients,
            busy_time,
            &busy_tally,
            rss_admitted,
        ),
        Summary::new("token", common.clients, token_time, &token_tally, peak),
    ];
    let mut report = Report::new("waiting-room", runs);
    let rate = admission_rate(&timeline);
    let mut extra = BTreeMap::new();
    extra.insert("buyers".into(), json!(plan.buyers));
    extra.insert(
        "admission_per_minute_set".into(),
        json!(plan.admission_per_minute),
    );
    extra.insert("admitted_total".into(), json!(admitted_total));
    extra.insert("admitted_per_second".into(), json!(rate));
    extra.insert("admission_timeline".into(), json!(timeline));
    extra.insert("rss_mib_before_joins".into(), json!(rss_before));
    extra.insert("rss_mib_all_queued".into(), json!(rss_queued));
    if let (Some(before), Some(queued)) = (rss_before, rss_queued) {
        extra.insert(
            "bytes_per_queued_buyer".into(),
            json!(((queued - before) * 1024.0 * 1024.0 / plan.buyers as f64).round()),
        );
    }
    report.extra = extra;
    if admitted_total as usize != plan.buyers {
        println!(
            "note: {admitted_total} of {} admitted within {} s",
            plan.buyers, plan.admission_seconds
        );
    }
    if token_tally.successes != admitted_total {
        bail!(
            "{} buyers got a token but the room admitted {admitted_total}",
            token_tally.successes
        );
    }
    Ok(report)
}

/// Buyers admitted per second while the room was admitting: from the first pass that let
/// anyone in to the last, so the wait for the first tick does not count.
pub fn admission_rate(timeline: &[(f64, u64)]) -> Option<f64> {
    let first = timeline.iter().position(|(_, n)| *n > 0)?;
    let (t0, n0) = match first {
        0 => (0.0, 0),
        _ => timeline[first - 1],
    };
    let (t1, n1) = *timeline.last()?;
    let last = timeline.iter().position(|(_, n)| *n == n1)?;
    let (t_end, _) = timeline[last];
    let span = if t_end > t0 { t_end - t0 } else { t1 - t0 };
    (span > 0.0).then(|| (n1 - n0) as f64 / span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admission_rate_spans_the_passes_that_let_buyers_in() {
        // Nothing at 0 s and 1 s, then 2,000 a second until everyone is in at 5 s; the
        // trailing samples with nobody left do not dilute the rate.
        let timeline = [
            (0.0, 0),
            (1.0, 0),
            (2.0, 2000),
            (3.0, 4000),
            (4.0, 6000),
            (5.0, 8000),
            (6.0, 8000),
            (7.0, 8000),
        ];
        assert_eq!(admission_rate(&timeline), Some(2000.0));
        assert_eq!(admission_rate(&[(0.0, 0), (1.0, 0)]), None);
        assert_eq!(admission_rate(&[(0.5, 1000), (1.5, 3000)]), Some(2000.0));
    }
}
