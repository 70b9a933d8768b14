//! Organizers' webhooks: deliveries from the outbox to a receiver on loopback, signed as
//! documented, retried with backoff, ended by 410, redelivered on request; odd
//! subscriptions refused.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{assert_error, spawn_app_with, string, TestApp};

/// What a receiver was sent: its signature header, delivery id header and body.
pub(crate) type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver on loopback answering the statuses it is given (200 once they run
/// out); its URL and what it saw.
pub(crate) async fn receiver(answers: Vec<u16>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let (s, a) = (seen.clone(), answers.clone());
    let server = HttpServer::new(move || {
        let (seen, answers) = (s.clone(), a.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let (seen, answers) = (seen.clone(), answers.clone());
            async move {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((
                        header("boxoffice-signature"),
                        header("boxoffice-delivery"),
                        String::from_utf8_lossy(&body).into_owned(),
                    ));
                let status = answers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop_front()
                    .unwrap_or(200);
                HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(status).unwrap_or_default(),
                )
                .finish()
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap_or_else(|e| panic!("binding the receiver: {e}"));
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}/hooks"), seen)
}

pub(crate) fn seen_count(seen: &Seen) -> usize {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len()
}

/// Checks a signature the documented way: HMAC-SHA256 over "<t>.<raw body>".
fn verifies(secret: &str, header: &str, body: &str) -> bool {
    let mut parts = header.split(',');
    let t = parts
        .next()
        .and_then(|p| p.strip_prefix("t="))
        .unwrap_or_default();
    let v1 = parts
        .next()
        .and_then(|p| p.strip_prefix("v1="))
        .unwrap_or_default();
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    !t.is_empty() && expected == v1
}

pub(crate) async fn subscribe(
    app: &TestApp,
    token: &str,
    url: &str,
    events: Value,
) -> (StatusCode, Value) {
    app.post(
        "/api/v1/webhooks",
        Some(token),
        &json!({"url": url, "events": events}),
    )
    .await
}

fn allow_private(s: &mut boxoffice::config::Settings) {
    s.webhook_allow_private = true;
}

#[actix_web::test]
async fn an_order_is_delivered_signed_retried_and_redelivered() {
    let app = spawn_app_with(allow_private).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    // The receiver fails twice, then takes it.
    let (url, seen) = receiver(vec![500, 503]).await;
    let (status, hook) = subscribe(
        &app,
        &organizer.token,
        &url,
        json!(["order.confirmed", "order.refunded"]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let secret = string(&hook["secret"]);
    assert!(secret.starts_with("whsec_"));
    let hook_id = string(&hook["webhook_id"]);
    let (_, listed) = app.get("/api/v1/webhooks", Some(&organizer.token)).await;
    assert!(
        listed["webhooks"][0]["secret"].is_null(),
        "the secret is shown once: {listed}"
    );

    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 1).await;
    app.eventually("the first try reaches the receiver", || async {
        seen_count(&seen) >= 1
    })
    .await;
    // Retries wait by the clock: 10 s, then 20 s (±20 %).
    app.clock.advance(chrono::Duration::seconds(13));
    app.eventually("the second try", || async { seen_count(&seen) >= 2 })
        .await;
    app.clock.advance(chrono::Duration::seconds(25));
    app.eventually("the third try", || async { seen_count(&seen) >= 3 })
        .await;
    let deliveries = format!("/api/v1/webhooks/{hook_id}/deliveries");
    app.eventually("the delivery is recorded as delivered", || async {
        let (_, log) = app.get(&deliveries, Some(&organizer.token)).await;
        log["deliveries"][0]["status"] == "DELIVERED"
    })
    .await;
    let (_, log) = app.get(&deliveries, Some(&organizer.token)).await;
    assert_eq!(log["deliveries"].as_array().map(Vec::len), Some(1), "{log}");
    assert_eq!(log["deliveries"][0]["attempts"], 3, "{log}");
    assert_eq!(log["deliveries"][0]["last_status"], 200, "{log}");

    let got = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for (signature, delivery, body) in &got {
        assert!(
            verifies(&secret, signature, body),
            "{signature} over {body}"
        );
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        assert_eq!(body["type"], "order.confirmed");
        assert_eq!(
            body["id"].as_str(),
            Some(delivery.as_str()),
            "one id for every try"
        );
        assert_eq!(body["data"]["order_id"], order["order_id"]);
    }
    assert!(!verifies("whsec_other", &got[0].0, &got[0].2));

    // Redelivered on request: the same id again.
    let delivery_id = string(&log["deliveries"][0]["delivery_id"]);
    let (status, body) = app
        .post(
            &format!("{deliveries}/{delivery_id}/redeliver"),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.eventually("the redelivery arrives", || async {
        seen_count(&seen) >= 4
    })
    .await;
    let again = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)[3]
        .1
        .clone();
    assert_eq!(again, delivery_id);
    // Another organizer cannot see or touch it.
    let stranger = app.organizer().await;
    let (status, _) = app.get(&deliveries, Some(&stranger.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.relay_settled().await;
}

#[actix_web::test]
async fn a_receiver_that_answers_410_ends_its_subscription() {
    let app = spawn_app_with(allow_private).await;
    let organizer = app.organizer().await;
    let (url, seen) = receiver(vec![410]).await;
    let (_, hook) = subscribe(&app, &organizer.token, &url, json!(["order.confirmed"])).await;
    let hook_id = string(&hook["webhook_id"]);
    let (status, queued) = app
        .post(
            &format!("/api/v1/webhooks/{hook_id}/test"),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    app.eventually("the subscription is disabled", || async {
        let (_, list) = app.get("/api/v1/webhooks", Some(&organizer.token)).await;
        list["webhooks"][0]["disabled_at"].is_string()
    })
    .await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    app.order_of(&buyer, event_id, 1).await;
    // The order's outbox row is relayed (and nothing is queued for a disabled subscription).
    app.eventually("the outbox is relayed", || async {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
                .fetch_one(&app.pool)
                .await
                .unwrap_or(-1);
        left == 0
    })
    .await;
    assert_eq!(seen_count(&seen), 1, "only the test was sent");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    for name in [
        "outbox_rows_total",
        "webhook_deliveries_total",
        "outbox_lag_seconds",
    ] {
        assert!(metrics.contains(name), "{name} on /metrics");
    }
    app.relay_settled().await;
}

#[actix_web::test]
async fn odd_subscriptions_are_refused_with_the_field_named() {
    let app = spawn_app_with(|_| {}).await;
    let organizer = app.organizer().await;
    let token = organizer.token.as_str();
    for (url, events) in [
        ("http://127.0.0.1:9/hooks", json!(["order.confirmed"])),
        ("http://169.254.169.254/latest", json!(["order.confirmed"])),
        ("http://[::1]/x", json!(["order.confirmed"])),
        ("ftp://example.com/x", json!(["order.confirmed"])),
        ("https://93.184.216.34/x", json!(["order.nope"])),
        ("https://93.184.216.34/x", json!([])),
    ] {
        let (status, body) = subscribe(&app, token, url, events).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = app
        .post("/api/v1/webhooks", Some(token), &json!({"url": "https://93.184.216.34/x", "events": ["order.confirmed"], "secret": "mine"}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let buyer = app.buyer().await;
    let (status, _) = subscribe(
        &app,
        &buyer.token,
        "https://93.184.216.34/x",
        json!(["order.confirmed"]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, hook) = subscribe(
        &app,
        token,
        "https://93.184.216.34/x",
        json!(["order.confirmed"]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, _) = app
        .delete(
            &format!("/api/v1/webhooks/{}", string(&hook["webhook_id"])),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn two_nodes_relaying_one_outbox_send_each_row_once_and_a_dead_claim_is_taken_up() {
    let app = spawn_app_with(allow_private).await;
    let second = crate::helpers::spawn_app_sharing(&app, allow_private).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (url, seen) = receiver(Vec::new()).await;
    let (status, hook) = subscribe(&app, &organizer.token, &url, json!(["order.confirmed"])).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");

    // Ten orders, their outbox rows relayed by both nodes at once.
    for buyer in app.quick_buyers(10).await {
        app.order_of(&buyer, event_id, 1).await;
    }
    // And one a relay claimed and then died with (claimed for 30 s, never marked).
    sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, claimed_until) \
         VALUES ('order', gen_random_uuid(), 'order.confirmed', $1, now() + interval '30 seconds')",
    )
    .bind(json!({"event_id": event_id, "order_id": "claimed-then-lost"}))
    .execute(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    app.eventually("the ten orders reach the receiver", || async {
        seen_count(&seen) >= 10
    })
    .await;
    // The dead claim lapses (both nodes' clocks move) and the row goes out.
    app.clock.advance(chrono::Duration::seconds(40));
    second.clock.advance(chrono::Duration::seconds(40));
    app.eventually("the row whose relay died is delivered", || async {
        seen_count(&seen) >= 11
    })
    .await;
    // Nothing more is coming: every row was handed out once.
    app.eventually("the outbox is empty", || async {
        let (left, pending): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox WHERE processed_at IS NULL), \
                    (SELECT count(*) FROM webhook_deliveries WHERE status <> 'DELIVERED')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap_or((-1, -1));
        (left, pending) == (0, 0)
    })
    .await;
    let got = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut ids: Vec<&String> = got.iter().map(|(_, id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (got.len(), ids.len()),
        (11, 11),
        "each row sent once, at the sink"
    );
    app.relay_settled().await;
}

impl TestApp {
    /// Waits until the relay has nothing in hand: every outbox row marked and no delivery
    /// claimed. A test that ends while the relay is mid-transaction would drop it with the
    /// runtime.
    pub async fn relay_settled(&self) {
        self.eventually("the relay has nothing in hand", || async {
            let busy: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM outbox WHERE processed_at IS NULL AND dead_at IS NULL) \
                      + (SELECT count(*) FROM webhook_deliveries WHERE claimed_until IS NOT NULL)",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap_or(-1);
            busy == 0
        })
        .await;
        // The pass that marked the last of them may still be closing its transaction.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
