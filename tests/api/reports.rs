//! The organizer's sales report and exports: after a sale where buyers race, cards are
//! declined, holds are let go and an order is partly refunded, the report's numbers are
//! what the buyers were charged and what Postgres holds, to the cent; the CSV of 100,000
//! tickets streams from a server process whose memory hardly moves.

use std::time::Duration as StdDuration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cancellation::{big_floor, seed_orders};
use crate::helpers::*;
use crate::process::{free_port, ChildServer};

#[actix_web::test]
async fn the_report_is_what_buyers_paid_and_what_postgres_holds() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let tiers: Value = app.get(&format!("/api/v1/events/{event_id}"), None).await.1;
    let general = tiers["tiers"][0]["tier_id"].clone();
    let mut buyers = Vec::new();
    for _ in 0..10 {
        buyers.push(app.buyer().await);
    }
    // Ten buyers at once: seats or standing tickets; every third is declined first and
    // pays with another card; every fourth lets the hold go instead of paying.
    let outcomes = join_all(buyers.iter().enumerate().map(|(i, buyer)| {
        let app = &app;
        let general = general.clone();
        let cheap = venue.seated[1];
        async move {
            let ask = match i % 3 {
                0 => json!({"best_available": {"quantity": 2}}),
                1 => json!({"tier_id": general, "quantity": 3}),
                _ => json!({"best_available": {"quantity": 1, "section_id": cheap}}),
            };
            let (status, hold) = app.hold(&buyer.token, event_id, &ask).await;
            assert_eq!(status, StatusCode::CREATED, "{hold}");
            if i % 4 == 3 {
                let (status, _) = app
                    .delete(
                        &format!("/api/v1/holds/{}", string(&hold["hold_id"])),
                        Some(&buyer.token),
                    )
                    .await;
                assert_eq!(status, StatusCode::NO_CONTENT);
                return None;
            }
            if i % 3 == 0 {
                let (status, body) = app
                    .checkout(
                        &buyer.token,
                        &hold["hold_id"],
                        &format!("d{i}"),
                        "tok_decline",
                    )
                    .await;
                assert_error(
                    status,
                    &body,
                    StatusCode::PAYMENT_REQUIRED,
                    "payment_declined",
                );
            }
            let (status, order) = app
                .checkout(&buyer.token, &hold["hold_id"], &format!("k{i}"), "tok_ok")
                .await;
            assert_eq!(status, StatusCode::CREATED, "{order}");
            Some(order)
        }
    }))
    .await;
    let orders: Vec<Value> = outcomes.into_iter().flatten().collect();
    let charged: i64 = orders
        .iter()
        .map(|o| o["total_cents"].as_i64().unwrap_or_default())
        .sum();
    let tickets: i64 = orders
        .iter()
        .map(|o| o["tickets"].as_array().map_or(0, Vec::len) as i64)
        .sum();
    // One ticket of the first order given back by the organizer.
    let first = &orders[0];
    let (status, refunded) = app
        .refund(
            &organizer.token,
            &string(&first["order_id"]),
            None,
            &json!({"ticket_ids": [first["tickets"][0]["ticket_id"]], "reason": "Seat broken"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    let given_back = refunded["refunded_cents"].as_i64().unwrap_or_default();
    assert!(given_back > 0, "{refunded}");
    // Somebody is holding seats right now.
    let holder = app.buyer().await;
    let (status, _) = app
        .hold(
            &holder.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, report) = app
        .get(
            &format!("/api/v1/events/{event_id}/report"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let totals = &report["totals"];
    assert_eq!(totals["orders"], orders.len() as i64, "{report}");
    assert_eq!(
        totals["gross_cents"], charged,
        "what the buyers were charged: {report}"
    );
    assert_eq!(totals["tickets_sold"], tickets);
    assert_eq!(totals["refunded_cents"], given_back);
    assert_eq!(totals["net_cents"], charged - given_back);
    assert_eq!(totals["tickets_live"], tickets - 1);
    assert_eq!(report["refunds"]["amount_cents"], given_back);
    assert_eq!(report["holds_now"]["holds"], 1, "{report}");
    let sum = |list: &str, field: &str| -> i64 {
        report[list]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l[field].as_i64().unwrap_or_default())
            .sum()
    };
    assert_eq!(sum("by_section", "revenue_cents"), charged);
    assert_eq!(sum("by_section", "tickets"), tickets);
    assert_eq!(sum("by_day", "revenue_cents"), charged);

    // And Postgres, counted another way: the payments captured, the tickets issued.
    app.settle_captures().await;
    let (captured, issued, back): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COALESCE(sum(amount_cents), 0)::int8 FROM payments WHERE event_id = $1 AND status IN ('CAPTURED', 'REFUNDED', 'PARTIALLY_REFUNDED')), \
                (SELECT count(*) FROM tickets WHERE event_id = $1), \
                (SELECT COALESCE(sum(amount_cents), 0)::int8 FROM refunds WHERE event_id = $1 AND status = 'SUCCEEDED')",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((captured, issued, back), (charged, tickets, given_back));

    // Another organizer sees none of it.
    let other = app.organizer().await;
    let (status, body) = app
        .get(
            &format!("/api/v1/events/{event_id}/report"),
            Some(&other.token),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app
        .get(
            &format!("/api/v1/events/{event_id}/report.csv"),
            Some(&other.token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

fn high_water_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or_else(|| panic!("no VmHWM for {pid}"))
}

#[actix_web::test]
async fn a_csv_of_100000_tickets_streams_without_holding_it_in_memory() {
    const ROWS: i64 = 100_000;
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event = big_floor(&app, &organizer, ROWS).await;
    let buyer = app.buyer().await;
    seed_orders(&app, event, &buyer, ROWS as i32).await;
    app.stop_owning().await;
    let server = ChildServer::start(&app.database_url(), free_port(), &[], None).await;
    let client = reqwest::Client::new();
    let url = |of: &str| {
        format!(
            "{}/api/v1/events/{}/report.csv?of={of}",
            server.address, event.0
        )
    };
    // A first, small export warms the server's pools; then the peak is read.
    let warm = client
        .get(format!(
            "{}/api/v1/events/{}/report",
            server.address, event.0
        ))
        .bearer_auth(&organizer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(warm.status(), StatusCode::OK);
    let pid = server.child.id();
    let before = high_water_kib(pid);

    let mut response = client
        .get(url("attendees"))
        .bearer_auth(&organizer.token)
        .timeout(StdDuration::from_secs(120))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not sized up front"
    );
    let (mut lines, mut bytes, mut head) = (0_i64, 0_usize, Vec::new());
    while let Some(chunk) = response.chunk().await.unwrap_or_else(|e| panic!("{e}")) {
        if head.len() < 200 {
            head.extend_from_slice(&chunk[..chunk.len().min(200)]);
        }
        lines += chunk.iter().filter(|b| **b == b'\n').count() as i64;
        bytes += chunk.len();
    }
    let grew = high_water_kib(pid).saturating_sub(before);
    assert_eq!(lines, ROWS + 1, "a header and a row per ticket");
    assert!(String::from_utf8_lossy(&head)
        .starts_with("ticket_id,order_id,status,section,place,holder_email"));
    println!("CSV of {ROWS} tickets: {bytes} bytes; the server's peak memory grew {grew} KiB");
    assert!(bytes > 10_000_000, "{bytes}");
    // Holding the export whole would take more than its 10+ MB; streamed, a few chunks.
    assert!(
        grew < 8 * 1024,
        "the server's peak memory grew {grew} KiB for a {bytes}-byte export"
    );

    let orders = client
        .get(url("orders"))
        .bearer_auth(&organizer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = orders.text().await.unwrap_or_default();
    assert_eq!(text.lines().count() as i64, ROWS + 1);
    let bad = client
        .get(url("everything"))
        .bearer_auth(&organizer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
