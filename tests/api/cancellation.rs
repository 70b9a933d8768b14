//! Cancelling a sold event refunds every order through the gateway, each once: in the
//! server as it runs, and across a SIGKILL halfway through 2,000 orders and a restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, open_onsale_body, spawn_app, uuid, venue_body, Account, TestApp,
};
use crate::process::{free_port, ChildServer};

/// Orders already sold and paid, written as the API would have (the fixture's one statement).
const SOLD_ORDERS: &str = include_str!("../fixtures/sold_orders.sql");

impl TestApp {
    async fn cancellation(&self, organizer: &Account, event_id: Uuid) -> (StatusCode, Value) {
        self.get(
            &format!("/api/v1/events/{event_id}/cancellation"),
            Some(&organizer.token),
        )
        .await
    }
}

/// An on-sale event with a standing floor of `tickets` in one tier; (event, floor, tier).
pub(crate) async fn big_floor(
    app: &TestApp,
    organizer: &Account,
    tickets: i64,
) -> (Uuid, Uuid, Uuid) {
    let mut venue = venue_body("Arena", "Lyon");
    venue["layout"]["sections"][2]["capacity"] = json!(tickets);
    let (status, body) = app.create_venue(&organizer.token, &venue).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sections = body["sections"].as_array().cloned().unwrap_or_default();
    let id = |i: usize| uuid(&sections[i]["section_id"]);
    let event_id = app
        .draft_event(&organizer.token, uuid(&body["venue_id"]), 9)
        .await;
    let pricing = json!({"currency": "EUR",
        "sections": [{"section_id": id(0), "price_cents": 8000}, {"section_id": id(1), "price_cents": 5000}],
        "tiers": [{"section_id": id(2), "name": "GENERAL", "price_cents": 4000, "quantity": tickets, "max_per_order": 6}]});
    let (status, body) = app.set_pricing(&organizer.token, event_id, &pricing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &open_onsale_body(9))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tier: Uuid = sqlx::query_scalar("SELECT tier_id FROM ticket_tiers WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (event_id, id(2), tier)
}

pub(crate) async fn seed_orders(app: &TestApp, event: (Uuid, Uuid, Uuid), buyer: &Account, n: i32) {
    let (event_id, floor, tier) = event;
    sqlx::query(SOLD_ORDERS)
        .bind(event_id)
        .bind(buyer.user_id)
        .bind(floor)
        .bind(tier)
        .bind(n)
        .bind(4000_i64)
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("seeding orders: {e}"));
}

/// Every order of the event was refunded once, in full, at the gateway and in Postgres.
async fn assert_each_refunded_once(app: &TestApp, event_id: Uuid, orders: i64) {
    let (refunded, refunds, paid_back, twice, live): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'REFUNDED' AND refunded_cents = total_cents), \
                (SELECT count(*) FROM refunds WHERE event_id = $1 AND status = 'SUCCEEDED'), \
                (SELECT count(*) FROM simulated_refunds s JOIN payments p ON p.gateway_ref = s.authorization_id WHERE p.event_id = $1), \
                (SELECT count(*) FROM (SELECT s.authorization_id FROM simulated_refunds s GROUP BY s.authorization_id HAVING count(*) > 1 OR sum(s.amount_cents) <> 4000) x), \
                (SELECT count(*) FROM tickets WHERE event_id = $1 AND status IN ('VALID', 'USED'))",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (refunded, refunds, paid_back, twice, live),
        (orders, orders, orders, 0, 0),
        "(orders refunded, refunds, gateway refunds, charges refunded twice or wrongly, live tickets)"
    );
}

#[actix_web::test]
async fn cancelling_a_sold_event_refunds_every_order_and_shows_the_progress() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event = big_floor(&app, &organizer, 500).await;
    let event_id = event.0;
    let buyer = app.buyer().await;
    seed_orders(&app, event, &buyer, 40).await;
    // And one bought through the API, with seats, and a waiter.
    let bought = app.order_of(&buyer, event_id, 2).await;
    let waiter = app.buyer().await;
    sqlx::query("INSERT INTO waitlist_entries (entry_id, event_id, section_id, user_id, quantity) SELECT $1, $2, section_id, $3, 1 FROM tickets WHERE ticket_id = $4")
        .bind(Uuid::new_v4())
        .bind(event_id)
        .bind(waiter.user_id)
        .bind(uuid(&bought["tickets"][0]["ticket_id"]))
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let (status, body) = app.cancellation(&organizer, event_id).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let cancel = format!("/api/v1/events/{event_id}/cancel");
    let (status, body) = app
        .post(
            &cancel,
            Some(&organizer.token),
            &json!({"reason": "x".repeat(501)}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .post(
            &cancel,
            Some(&organizer.token),
            &json!({"reason": "The band split up"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CANCELLED");
    let (status, body) = app
        .post(&cancel, Some(&organizer.token), &json!({"reason": "Again"}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "invalid_transition");

    app.eventually("every order is refunded", || async {
        let (_, progress) = app.cancellation(&organizer, event_id).await;
        progress["done"] == true
    })
    .await;
    let (_, progress) = app.cancellation(&organizer, event_id).await;
    assert_eq!(progress["orders"], 41, "{progress}");
    assert_eq!(progress["refunded"], 41, "{progress}");
    assert_eq!(progress["failed"], 0, "{progress}");
    let (status, order) = app
        .get(
            &format!(
                "/api/v1/orders/{}",
                bought["order_id"].as_str().unwrap_or_default()
            ),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(
        (status, order["status"].clone()),
        (StatusCode::OK, json!("REFUNDED"))
    );
    let (notices, waiting): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox WHERE kind = 'order.refunded' AND payload->>'event_id' = $1::text), \
                (SELECT count(*) FROM waitlist_entries WHERE event_id = $1 AND status <> 'CANCELLED')",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((notices, waiting), (41, 0), "(buyers told, waiters left)");
    let reason: Option<String> = sqlx::query_scalar(
        "SELECT reason FROM ticket_ledger l JOIN tickets t USING (ticket_id) WHERE t.order_id = $1 AND l.kind = 'REFUNDED' LIMIT 1",
    )
    .bind(uuid(&bought["order_id"]))
    .fetch_optional(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reason.as_deref(), Some("The band split up"));
    // The gateway paid each refund once; the API's order had two seats at 8,000.
    let captured_back: i64 = app.gateway.refunds().iter().map(|r| r.amount_cents).sum();
    assert_eq!(captured_back, 40 * 4000 + 16_000);
}

#[actix_web::test]
async fn a_cancellation_killed_halfway_finishes_after_a_restart_refunding_each_order_once() {
    const ORDERS: i64 = 2_000;
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event = big_floor(&app, &organizer, ORDERS).await;
    let event_id = event.0;
    let buyer = app.buyer().await;
    seed_orders(&app, event, &buyer, ORDERS as i32).await;
    app.stop_owning().await;
    let database_url = app.database_url();
    // The processor answers in 2 ms: 2,000 refunds take long enough to be stopped halfway.
    let env = [
        ("BOXOFFICE_PAYMENT_LATENCY_MS", "2"),
        ("BOXOFFICE_RECONCILE_SECONDS", "1"),
        ("BOXOFFICE_RECONCILE_GRACE_SECONDS", "1"),
    ];
    let port = free_port();
    let mut server = ChildServer::start(&database_url, port, &env, None).await;
    let client = reqwest::Client::new();
    let progress = |address: String| {
        let client = client.clone();
        let token = organizer.token.clone();
        async move {
            let answer = client
                .get(format!("{address}/api/v1/events/{event_id}/cancellation"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?;
            answer.json::<Value>().await.ok()
        }
    };
    let answer = client
        .post(format!(
            "{}/api/v1/events/{event_id}/cancel",
            server.address
        ))
        .bearer_auth(&organizer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cancel: {e}"));
    assert_eq!(answer.status(), StatusCode::OK);

    // Killed once a few hundred are refunded, well before the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let refunded = progress(server.address.clone())
            .await
            .and_then(|p| p["refunded"].as_i64())
            .unwrap_or(0);
        if refunded >= 300 || Instant::now() > deadline {
            server.kill();
            break refunded;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        (300..ORDERS).contains(&at_kill),
        "the kill came halfway: {at_kill} of {ORDERS} refunded"
    );

    let mut server = ChildServer::start(&database_url, free_port(), &env, None).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = progress(server.address.clone())
            .await
            .is_some_and(|p| p["done"] == true);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the cancellation did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill();
    assert_each_refunded_once(&app, event_id, ORDERS).await;
}
