//! The event page's seat map on a phone, in a real browser (`e2e/phonemap.mjs`): an event
//! of 10,000 seats whose seats are held and released all the time by buyers here, while
//! headless Chromium at phone size (and at a quarter of the CPU) draws the map, zooms into
//! a section by a tap, chooses a seat by a tap, pinches, filters by price and wheelchair
//! spaces. The first render and the longest main-thread task while deltas arrive are
//! printed with the screenshots (`target/web-screenshots/phone-map-*.png`); they are
//! figures for the README, not assertions.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{event_body, open_onsale_body, spawn_app_with, string, uuid};

/// 10,000 seats in eight sections (wheelchair spaces at the ends of the lower back rows)
/// and a standing floor.
fn arena() -> Value {
    let access = json!(["T-1", "T-2", "T-3", "T-4", "T-47", "T-48", "T-49", "T-50"]);
    let lower = |name: &str| json!({"name": name, "kind": "seated", "rows": 20, "seats_per_row": 50, "accessible_seats": access});
    let upper = |name: &str, x: f64| json!({"name": name, "kind": "seated", "rows": 25, "seats_per_row": 60, "origin": {"x": x, "y": 30.0}});
    json!({
        "name": "Phone Arena", "address": "1 Loopback Way", "city": "Lyon", "latitude": 45.76, "longitude": 4.83,
        "timezone": "Europe/Paris", "venue_type": "ARENA",
        "facilities": {"parking": true, "catering": true, "av_equipment": true},
        "layout": {"sections": [lower("101"), lower("102"), lower("103"), lower("104"),
            upper("201", 0.0), upper("202", 64.0), upper("203", 128.0), upper("204", 192.0),
            {"name": "Floor", "kind": "general_admission", "capacity": 2000}]}
    })
}

#[actix_web::test]
async fn a_phone_draws_and_uses_the_live_map_of_ten_thousand_seats() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir() && Path::new(&chromium).exists(),
        "the browser tests need Node.js, `npm ci --prefix e2e` and Chromium at {chromium}: run scripts/test"
    );
    // The buyers below hold and release as fast as they can: no rate limit in their way.
    let app = Arc::new(
        spawn_app_with(|s| {
            s.ip_rate_per_minute = 100_000_000;
            s.buyer_rate_per_minute = 100_000_000;
        })
        .await,
    );
    let organizer = app.organizer().await;
    let (status, venue) = app.create_venue(&organizer.token, &arena()).await;
    assert_eq!(status, StatusCode::CREATED, "{venue}");
    let section = |name: &str| {
        venue["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .map(|s| uuid(&s["section_id"]))
            .unwrap_or_else(|| panic!("no section {name}: {venue}"))
    };
    let (status, created) = app
        .create_event(
            &organizer.token,
            &event_body(uuid(&venue["venue_id"]), "Phone Night", 9),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event_id = uuid(&created["event_id"]);
    let price = |names: &[&str], cents: i64| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"section_id": section(n), "price_cents": cents}))
            .collect()
    };
    let mut sections = price(&["101", "104"], 15_000);
    sections.extend(price(&["102", "103"], 12_000));
    sections.extend(price(&["201", "202", "203", "204"], 8_000));
    let pricing = json!({"currency": "EUR", "sections": sections, "tiers": [
        {"section_id": section("Floor"), "name": "STANDING", "price_cents": 5000, "quantity": 2000, "max_per_order": 6}]});
    let (status, body) = app.set_pricing(&organizer.token, event_id, &pricing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &open_onsale_body(9))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Buyers hold the best two seats (in 101, the dearest) and let them go, over and over,
    // until the browser is done: deltas arrive all the time, zoomed in or not.
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut churn = Vec::new();
    for _ in 0..4 {
        let buyer = app.buyer().await;
        let (app, stop, changes, refused) =
            (app.clone(), stop.clone(), changes.clone(), refused.clone());
        churn.push(tokio::spawn(async move {
            // A refusal is kept (and fails the test below) without stopping the deltas.
            let refuse = |what: String| {
                refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(what)
            };
            while !stop.load(Ordering::Relaxed) {
                let (status, hold) = app
                    .hold(
                        &buyer.token,
                        event_id,
                        &json!({"best_available": {"quantity": 2}}),
                    )
                    .await;
                if status != StatusCode::CREATED {
                    refuse(format!("hold: {status} {hold}"));
                    tokio::time::sleep(StdDuration::from_millis(100)).await;
                    continue;
                }
                let path = format!("/api/v1/holds/{}", string(&hold["hold_id"]));
                let (status, body) = app.delete(&path, Some(&buyer.token)).await;
                if status != StatusCode::NO_CONTENT {
                    refuse(format!("release: {status} {body}"));
                }
                changes.fetch_add(4, Ordering::Relaxed);
            }
        }));
    }

    let shots = root.join("target/web-screenshots");
    let run = tokio::process::Command::new("node")
        .arg(root.join("e2e/phonemap.mjs"))
        .env("BASE_URL", &app.address)
        .env("EVENT_ID", event_id.to_string())
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(StdDuration::from_secs(180), run).await;
    stop.store(true, Ordering::Relaxed);
    for task in churn {
        task.await.unwrap_or_else(|e| panic!("a buyer's task: {e}"));
    }
    let output = output
        .unwrap_or_else(|_| panic!("the phone map took over 3 minutes"))
        .unwrap_or_else(|e| panic!("running node: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let refused = refused
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert!(
        output.status.success(),
        "phone map failed:\n{stdout}\n{stderr}\nrefused: {refused:?}"
    );
    let results: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no results from the phone map:\n{stdout}\n{stderr}"));
    println!(
        "phone map ({} seat changes made): {results:#}",
        changes.load(Ordering::Relaxed)
    );
    assert_eq!(
        results["runs"].as_array().map(Vec::len),
        Some(2),
        "{results}"
    );
    assert!(refused.is_empty(), "holds or releases refused: {refused:?}");

    // Every hold was let go: nothing is left held, nothing was sold.
    let (status, map) = app
        .get(&format!("/api/v1/events/{event_id}/seatmap"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let taken = map["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["rows"].as_array().into_iter().flatten())
        .flat_map(|r| r["seats"].as_array().into_iter().flatten())
        .filter(|seat| seat["state"] != "available")
        .count();
    assert_eq!(taken, 0, "seats left held or sold after the buyers let go");
}
