//! What an operator watches: `/metrics` scraped while buyers race for seats parses with
//! Prometheus's own parser and linter (`promtool check metrics`) and carries the figures
//! of every moving part; every series the Grafana dashboard and the alert rules in
//! `deploy/` use is one the server exports; the rules load in `promtool check rules` and
//! the dashboard is valid JSON with a target on every panel.
//!
//! Needs `promtool` (the distribution's `prometheus` package): `scripts/test` installs it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::*;
use crate::live::Watcher;

fn promtool() -> tokio::process::Command {
    let mut command = tokio::process::Command::new("promtool");
    command.kill_on_drop(true);
    command
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap_or_default()
}

/// `promtool check metrics`: parses the text format and lints it (names, units, help).
async fn check_metrics(text: &str) {
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running promtool (scripts/test installs it): {e}"));
    let mut stdin = child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("promtool's stdin"));
    stdin
        .write_all(text.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The metric families of a scrape, by name.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The `boxoffice_` series a PromQL expression reads, as family names.
fn used(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("boxoffice_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(family.to_owned());
        rest = &tail[end..];
    }
    names
}

#[actix_web::test]
async fn metrics_scraped_during_a_sale_parse_and_carry_what_the_dashboard_and_alerts_read() {
    let app = spawn_app_with(|s| s.queue_tick = std::time::Duration::from_millis(50)).await;
    let organizer = app.organizer().await;
    let (_, event) = app.on_sale_event(&organizer.token).await;
    let room_event = app.room_event(&organizer, ROOM).await;
    app.rooms
        .stats(room_event)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut viewer = Watcher::connect(&app, event, "").await;

    // Twelve buyers race for six seats, two for each; the winners pay (one card declined
    // first), while /metrics is scraped.
    let seats = app.seat_ids(event, 0).await;
    let buyers = app.quick_buyers(12).await;
    let sale = join_all(buyers.iter().enumerate().map(|(i, buyer)| {
        let (app, seat) = (&app, seats[i % 6]);
        async move {
            let (status, hold) = app
                .hold(&buyer.token, event, &json!({"seat_ids": [seat]}))
                .await;
            if status != StatusCode::CREATED {
                assert_error(status, &hold, StatusCode::CONFLICT, "seat_unavailable");
                return 0;
            }
            if i == 0 {
                let (status, _) = app
                    .checkout(&buyer.token, &hold["hold_id"], "declined", "tok_decline")
                    .await;
                assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
            }
            let (status, order) = app
                .checkout(&buyer.token, &hold["hold_id"], "paid", "tok_ok")
                .await;
            assert_eq!(status, StatusCode::CREATED, "{order}");
            1
        }
    }));
    let (sold, during) = tokio::join!(sale, scrape(&app));
    assert_eq!(sold.iter().sum::<i32>(), 6);
    check_metrics(&during).await;
    viewer
        .until("every seat sold is shown", |w| {
            seats[..6].iter().all(|s| w.seat(*s) == "sold")
        })
        .await;
    app.settle_captures().await;
    app.eventually("the live map counts its viewer", || async {
        let text = scrape(&app).await;
        text.lines().any(|l| {
            l.strip_prefix("boxoffice_live_viewers ")
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| n >= 1.0)
        })
    })
    .await;
    let after = scrape(&app).await;
    check_metrics(&after).await;

    // The figures of every moving part, with what this sale did.
    let room = format!(r#"event_id="{room_event}""#);
    for series in [
        r#"boxoffice_holds_total{outcome="placed"}"#,
        r#"boxoffice_holds_total{outcome="seat_unavailable"}"#,
        "boxoffice_hold_duration_seconds_bucket",
        r#"boxoffice_checkouts_total{outcome="confirmed"}"#,
        r#"boxoffice_checkouts_total{outcome="declined"}"#,
        "boxoffice_checkout_duration_seconds_bucket",
        "boxoffice_order_batch_size_bucket",
        "boxoffice_order_commit_duration_seconds_bucket",
        "boxoffice_order_writer_waiting",
        r#"boxoffice_payment_calls_total{call="authorize",outcome="ok"}"#,
        r#"boxoffice_payment_calls_total{call="authorize",outcome="declined"}"#,
        r#"boxoffice_payment_call_duration_seconds_bucket{call="capture""#,
        "boxoffice_payment_breaker_state 0",
        r#"boxoffice_captures_total{outcome="captured"}"#,
        "boxoffice_live_batches_total",
        "boxoffice_live_frames_sent_total",
        "boxoffice_live_bytes_sent_total",
        "boxoffice_live_delta_delay_seconds_bucket",
        &format!("boxoffice_room_waiting{{{room}}}"),
        &format!("boxoffice_room_admission_target_per_minute{{{room}}} 600"),
        &format!("boxoffice_room_drain_eta_seconds{{{room}}}"),
        "boxoffice_leases_held",
        "boxoffice_lease_changes_total",
        "boxoffice_process_resident_memory_bytes",
        "boxoffice_http_requests_total",
    ] {
        assert!(after.contains(series), "{series} on /metrics");
    }
    // Bounded labels: no buyer, hold, order or seat id is ever one.
    let ids: BTreeSet<String> = buyers
        .iter()
        .map(|b| b.user_id.to_string())
        .chain(seats.iter().map(|s| s.to_string()))
        .collect();
    assert!(
        ids.iter().all(|id| !after.contains(id.as_str())),
        "an id of a buyer or a seat is a label"
    );

    // What the dashboard and the alerts read, the server exports.
    let exported = families(&after);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/boxoffice-onsale.json"))
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}"));
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    assert!(panels.len() > 20, "{} panels", panels.len());
    let mut ids = BTreeSet::new();
    for panel in &panels {
        assert!(ids.insert(panel["id"].as_i64()), "panel ids are unique");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "{} has no target", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            for name in used(expr) {
                assert!(
                    exported.contains(&name),
                    "{name} (panel {}) is not exported",
                    panel["title"]
                );
            }
        }
    }
    let rules_path = root.join("deploy/prometheus/alerts.yml");
    let rules = std::fs::read_to_string(&rules_path).unwrap_or_else(|e| panic!("{e}"));
    let mut alerts = 0;
    for line in rules.lines() {
        if line.trim_start().starts_with("- alert:") {
            alerts += 1;
        }
        for name in used(line) {
            assert!(
                exported.contains(&name),
                "{name} (an alert rule) is not exported"
            );
        }
    }
    assert!(alerts >= 15, "{alerts} alerts");
    let out = promtool()
        .arg("check")
        .arg("rules")
        .arg(&rules_path)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running promtool (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every alert has its entry in the runbook.
    let runbook =
        std::fs::read_to_string(root.join("docs/alerts.md")).unwrap_or_else(|e| panic!("{e}"));
    for line in rules.lines() {
        if let Some(name) = line.trim_start().strip_prefix("- alert:") {
            let name = name.trim();
            assert!(
                runbook.contains(&format!("## {name}")),
                "{name} in docs/alerts.md"
            );
        }
    }
}
