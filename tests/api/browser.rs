//! The web pages in a real browser: headless Chromium driven by Playwright (`e2e/run.mjs`)
//! against a server of the test's own. A buyer goes from the event list through the
//! waiting room to a seat, is declined once, pays and sees tickets with QR codes; two
//! browsers watch one seat be held and released; a visitor waits in the line without an
//! account, is let in, signs up from the page's link and holds with the claimed admission;
//! a buyer reloads the page holding a seat
//! and gets the hold and its countdown back (and in a second tab); an organizer creates a venue, an event
//! and its on-sale through the pages alone. Then the database is checked for what the
//! pages claimed. Screenshots (phone and desktop) go to `target/web-screenshots`.
//!
//! Needs Node.js with `e2e/node_modules` and Chromium at `/usr/bin/chromium` (or
//! `CHROMIUM`): `scripts/test` installs them.

use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{event_body, spawn_app_with, standard_pricing, uuid};

#[actix_web::test]
async fn buyers_and_organizers_get_through_the_pages_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir() && Path::new(&chromium).exists(),
        "the browser tests need Node.js, `npm ci --prefix e2e` and Chromium at {chromium}: run scripts/test"
    );
    let app = spawn_app_with(|s| {
        s.queue_tick = StdDuration::from_millis(200);
        // The organizer subscribes a webhook to a closed port on loopback.
        s.webhook_allow_private = true;
    })
    .await;
    let organizer = app.organizer().await;

    // An event whose waiting room is open and whose sale starts in a few seconds.
    let venue = app.standard_venue(&organizer.token).await;
    let title = "Moonlight Room Night";
    let (status, created) = app
        .create_event(&organizer.token, &event_body(venue.venue_id, title, 9))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let room_event = uuid(&created["event_id"]);
    let (status, body) = app
        .set_pricing(&organizer.token, room_event, &standard_pricing(&venue))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The sale starts in an hour; the pages' script brings it forward once the buyer is in
    // the line (however long the browser took to get there).
    let now = Utc::now();
    let onsale = json!({"sale_starts_at": now + Duration::hours(1), "sale_ends_at": now + Duration::days(9),
                        "hold_minutes": 8, "max_per_order": 4,
                        "waiting_room": {"queue_opens_at": now - Duration::minutes(5), "admission_per_minute": 600,
                                         "proof_of_work": "always"}});
    let (status, body) = app.set_onsale(&organizer.token, room_event, &onsale).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.publish(&organizer.token, room_event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // And one on sale without a waiting room.
    let (_, open_event) = app.on_sale_event(&organizer.token).await;

    let shots = root.join("target/web-screenshots");
    let run = tokio::process::Command::new("node")
        .arg(root.join("e2e/run.mjs"))
        .env("BASE_URL", &app.address)
        .env("ROOM_EVENT", title)
        .env("ROOM_EVENT_ID", room_event.to_string())
        .env("ROOM_ONSALE", onsale.to_string())
        .env("ORGANIZER_TOKEN", &organizer.token)
        .env("OPEN_EVENT", open_event.to_string())
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(StdDuration::from_secs(240), run)
        .await
        .unwrap_or_else(|_| panic!("the browser tests took over 4 minutes"))
        .unwrap_or_else(|e| panic!("running node: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}"
    );
    let results: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no results from the browser tests:\n{stdout}\n{stderr}"));

    // What the buyer's page showed is what Postgres holds: one confirmed order, one valid
    // ticket for the seat they chose, its payment captured.
    let seat = uuid(&results["buyer"]["seat_id"]);
    app.settle_captures().await;
    let (orders, tickets, captured): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'CONFIRMED'), \
                (SELECT count(*) FROM tickets WHERE event_id = $1 AND seat_id = $2), \
                (SELECT count(*) FROM payments WHERE event_id = $1 AND status = 'CAPTURED')",
    )
    .bind(room_event)
    .bind(seat)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((orders, tickets, captured), (1, 1, 1), "{results}");

    // The seat held and released in one browser is free again, and nothing was sold.
    let states = app.seat_states(open_event).await;
    assert_eq!(
        states[&uuid(&results["live"]["seat_id"])],
        "available",
        "{results}"
    );

    // The seat held, reloaded and released from a second tab is free again.
    assert_eq!(
        states[&uuid(&results["reload"]["seat_id"])],
        "available",
        "{results}"
    );

    // The buyer's cancelled order is refunded and its seat for sale again.
    let (refunded, live): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders o JOIN tickets t USING (order_id) WHERE t.seat_id = $1 AND o.status = 'REFUNDED'), \
                (SELECT count(*) FROM tickets WHERE seat_id = $1 AND status IN ('VALID', 'USED'))",
    )
    .bind(uuid(&results["cancelled"]["seat_id"]))
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((refunded, live), (1, 0), "{results}");

    // The organizer's event exists, published, with its prices and a waiting room whose
    // door checks browsers when many arrive.
    let (published, rooms, priced): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE e.status <> 'DRAFT'), \
                count(*) FILTER (WHERE o.queue_opens_at IS NOT NULL AND o.proof_of_work = 'auto'), \
                count(*) FILTER (WHERE EXISTS (SELECT 1 FROM section_prices p WHERE p.event_id = e.event_id) \
                                  AND EXISTS (SELECT 1 FROM ticket_tiers t WHERE t.event_id = e.event_id) \
                                  AND e.refund_hours_before = 72) \
         FROM events e JOIN onsales o ON o.event_id = e.event_id WHERE e.title = $1",
    )
    .bind(results["organizer"]["title"].as_str().unwrap_or_default())
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((published, rooms, priced), (1, 1, 1), "{results}");
    for page in [
        "events",
        "event",
        "waiting-room",
        "hold",
        "tickets",
        "orders",
        "cancelled",
        "organizer",
        "dashboard",
    ] {
        for width in ["desktop", "phone"] {
            assert!(
                shots.join(format!("{page}-{width}.png")).is_file(),
                "{page}-{width}.png"
            );
        }
    }
}
