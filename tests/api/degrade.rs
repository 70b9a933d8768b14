//! Graceful degradation: the card processor slowed on purpose opens the breaker; checkouts
//! then answer at once with a retryable 503 and keep the hold (given more time, once), no
//! money is asked for without an order, the waiting room admits at a tenth of its rate,
//! and everything comes back when the processor does. And the order writer's bounded
//! queue: a full one answers 503 `orders_busy`, nothing charged.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

impl TestApp {
    async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default()
    }

    /// The value of one series (name with its labels, as written on `/metrics`).
    async fn series(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    async fn expires_at(&self, token: &str, hold_id: &Value) -> (String, DateTime<Utc>) {
        let (status, hold) = self
            .get(
                &format!("/api/v1/holds/{}", hold_id.as_str().unwrap_or_default()),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{hold}");
        let at = hold["expires_at"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{hold}"));
        (string(&hold["status"]), at)
    }
}

fn string(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn a_slow_processor_opens_the_breaker_checkouts_fail_fast_and_the_room_slows_until_it_recovers(
) {
    let app = spawn_app_with(|s| {
        s.degrade.min_calls = 3;
        s.degrade.failure_percent = 100;
        s.degrade.slow_call = StdDuration::from_millis(150);
        s.degrade.open_for = StdDuration::from_secs(4);
        s.degrade.probes = 1;
        s.degrade.admission_percent = 10;
        s.degrade.hold_extension = StdDuration::from_secs(120);
        s.queue_tick = StdDuration::from_millis(50);
    })
    .await;
    let organizer = app.organizer().await;
    let (_, event) = app.on_sale_event(&organizer.token).await;
    let room_event = app.room_event(&organizer, ROOM).await;
    app.rooms
        .stats(room_event)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let target =
        format!(r#"boxoffice_room_admission_target_per_minute{{event_id="{room_event}"}}"#);
    let slowed = format!(r#"boxoffice_room_slowed{{event_id="{room_event}"}}"#);
    let at_rate = |rate: f64, slow: f64| {
        let (app, target, slowed) = (&app, target.clone(), slowed.clone());
        move || {
            let (target, slowed) = (target.clone(), slowed.clone());
            async move {
                app.series(&target).await == Some(rate) && app.series(&slowed).await == Some(slow)
            }
        }
    };
    app.eventually("the room paces at its full rate", at_rate(600.0, 0.0))
        .await;
    assert_eq!(
        app.series("boxoffice_payment_breaker_state").await,
        Some(0.0)
    );

    // The processor slows to 300 ms a call: three buyers still pay (slowly)...
    let seats = app.seat_ids(event, 0).await;
    let mut buyers = Vec::new();
    for _ in 0..4 {
        buyers.push(app.buyer().await);
    }
    let mut holds = Vec::new();
    for (buyer, seat) in buyers.iter().zip(&seats) {
        let (status, hold) = app
            .hold(&buyer.token, event, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        holds.push(hold["hold_id"].clone());
    }
    app.gateway.set_latency(StdDuration::from_millis(300));
    let paid = join_all(
        buyers[..3]
            .iter()
            .zip(&holds)
            .map(|(buyer, hold)| app.checkout(&buyer.token, hold, "slow", "tok_ok")),
    )
    .await;
    for (status, order) in &paid {
        assert_eq!(*status, StatusCode::CREATED, "{order}");
    }
    // ...and the breaker opens on those three slow answers.
    assert_eq!(
        app.series("boxoffice_payment_breaker_state").await,
        Some(2.0)
    );

    // The fourth buyer is answered at once, retryably, and nothing is asked of the processor.
    let (buyer, hold) = (&buyers[3], &holds[3]);
    let (_, deadline) = app.expires_at(&buyer.token, hold).await;
    let asked = app.gateway.calls().len();
    let response = app
        .client
        .post(app.url(&format!(
            "/api/v1/holds/{}/checkout",
            hold.as_str().unwrap_or_default()
        )))
        .bearer_auth(&buyer.token)
        .header("Idempotency-Key", "degraded")
        .json(&json!({"payment_token": "tok_ok"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After header"));
    assert!((1..=4).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "payment_unavailable", "{body}");
    assert_eq!(body["error"]["retryable"], true, "{body}");
    assert_eq!(
        app.gateway.calls().len(),
        asked,
        "the processor was not asked"
    );

    // The hold is kept, with two more minutes, once: a second refusal adds nothing.
    let (status, extended) = app.expires_at(&buyer.token, hold).await;
    assert_eq!(
        (status.as_str(), extended),
        ("HELD", deadline + Duration::minutes(2))
    );
    let (status, body) = app.checkout(&buyer.token, hold, "again", "tok_ok").await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    );
    assert_eq!(app.expires_at(&buyer.token, hold).await.1, extended);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE hold_id = $1")
        .bind(uuid(hold))
        .fetch_one(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows, 0, "no payment was started");

    // Meanwhile the room lets buyers in at a tenth of its rate.
    app.eventually("the room slows to a tenth", at_rate(60.0, 1.0))
        .await;

    // The processor recovers: after the pause a probe goes through, the breaker closes,
    // the fourth buyer pays, and the room is back to its rate.
    app.gateway.set_latency(StdDuration::ZERO);
    let (buyer_token, hold_id) = (buyer.token.clone(), hold.clone());
    app.eventually("the checkout goes through once the breaker lets it", || {
        let (app, token, hold) = (&app, buyer_token.clone(), hold_id.clone());
        async move {
            // (eventually polls for five seconds; the pause is four, begun a while ago.)
            app.checkout(&token, &hold, "recovered", "tok_ok").await.0 == StatusCode::CREATED
        }
    })
    .await;
    assert_eq!(
        app.series("boxoffice_payment_breaker_state").await,
        Some(0.0)
    );
    app.eventually("the room is back to its rate", at_rate(600.0, 0.0))
        .await;

    // No money without an order: four orders, four captured charges, nothing else kept.
    app.settle_captures().await;
    let orders = app.confirmed_orders(event).await;
    assert_eq!(orders, 4);
    assert_eq!(app.gateway.captured_cents(), paid_total(&app, event).await);
    let text = app.metrics_text().await;
    for series in [
        r#"boxoffice_checkouts_total{outcome="payment_unavailable"}"#,
        r#"boxoffice_payment_breaker_transitions_total{to="open"}"#,
        r#"boxoffice_payment_breaker_transitions_total{to="closed"}"#,
        "boxoffice_holds_extended_total",
    ] {
        assert!(text.contains(series), "{series} on /metrics");
    }
}

async fn paid_total(app: &TestApp, event: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(total_cents), 0)::BIGINT FROM orders WHERE event_id = $1 AND status = 'CONFIRMED'",
    )
    .bind(event)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[actix_web::test]
async fn a_full_order_queue_answers_orders_busy_and_charges_nothing() {
    // A queue of one, and Postgres held up by a lock on the on-sale's lease row (each
    // batch takes it FOR SHARE): four batches wait in flight, one order waits in the queue,
    // the next is refused at once.
    // (Connections enough for the four batches the writer keeps in flight and the rest.)
    let app = spawn_app_with(|s| {
        s.order_queue = 1;
        s.db_max_connections = 20;
    })
    .await;
    let organizer = app.organizer().await;
    let (_, event) = app.on_sale_event(&organizer.token).await;
    let seats = app.seat_ids(event, 0).await;
    let mut buyers = Vec::new();
    let mut holds = Vec::new();
    for seat in seats.iter().take(6) {
        let buyer = app.buyer().await;
        let (status, hold) = app
            .hold(&buyer.token, event, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        holds.push(hold["hold_id"].clone());
        buyers.push(buyer);
    }
    let mut lock = app.pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("SELECT 1 FROM onsale_leases WHERE event_id = $1 FOR UPDATE")
        .bind(event)
        .execute(&mut *lock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let checkouts = buyers
        .iter()
        .zip(&holds)
        .map(|(buyer, hold)| app.checkout(&buyer.token, hold, "busy", "tok_ok"));
    let answers = join_all(checkouts);
    let release = async {
        // Until a refusal is counted, the lock stays: then the queue drains.
        app.eventually("an order is refused for a full queue", || async {
            app.series("boxoffice_order_writer_refused_total")
                .await
                .is_some_and(|n| n >= 1.0)
        })
        .await;
    };
    let (answers, ()) = tokio::join!(answers, async {
        release.await;
        lock.rollback().await.unwrap_or_else(|e| panic!("{e}"));
    });
    let mut created = 0;
    let mut busy = Vec::new();
    for ((status, body), hold) in answers.iter().zip(&holds) {
        match *status {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "orders_busy", "{body}");
                busy.push(hold.clone());
            }
            other => panic!("{other} {body}"),
        }
    }
    assert!(!busy.is_empty() && created >= 1, "{answers:?}");
    // A refused buyer's hold is kept and nothing was charged for it; a retry buys it.
    app.settle_captures().await;
    assert_eq!(app.gateway.captured_cents(), paid_total(&app, event).await);
    for (buyer, hold) in buyers.iter().zip(&holds) {
        if busy.contains(hold) {
            let (status, order) = app.checkout(&buyer.token, hold, "retry", "tok_ok").await;
            assert_eq!(status, StatusCode::CREATED, "{order}");
        }
    }
    app.settle_captures().await;
    let orders = app.confirmed_orders(event).await;
    assert_eq!(orders, 6);
    assert_eq!(app.gateway.captured_cents(), paid_total(&app, event).await);
}

#[actix_web::test]
async fn the_processor_is_slowed_only_by_the_operator_and_only_within_bounds() {
    let closed = spawn_app().await;
    let (status, body) = closed
        .put(
            "/api/v1/operator/payment-latency",
            None,
            &json!({"latency_ms": 10}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let app = spawn_app_with(|s| s.operator_token = Some("operator-token-for-tests".into())).await;
    let path = "/api/v1/operator/payment-latency";
    let (status, body) = app.put(path, None, &json!({"latency_ms": 10})).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let buyer = app.buyer().await;
    let (status, body) = app
        .put(path, Some(&buyer.token), &json!({"latency_ms": 10}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let operator = Some("operator-token-for-tests");
    for odd in [
        json!({"latency_ms": -1}),
        json!({"latency_ms": 60_001}),
        json!({"latency_ms": "slow"}),
        json!({}),
        json!({"latency_ms": 10, "also": 1}),
    ] {
        let (status, body) = app.put(path, operator, &odd).await;
        assert!(
            status.is_client_error() && status != StatusCode::NOT_FOUND,
            "{odd}: {status} {body}"
        );
        assert!(body["error"]["code"].is_string(), "{odd}: {body}");
    }
    assert_eq!(app.gateway.latency(), StdDuration::ZERO, "nothing changed");
    let (status, body) = app.put(path, operator, &json!({"latency_ms": 250})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["latency_ms"].as_u64(), body["previous_ms"].as_u64()),
        (Some(250), Some(0))
    );
    assert_eq!(app.gateway.latency(), StdDuration::from_millis(250));
}
