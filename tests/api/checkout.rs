use std::collections::HashSet;
use std::sync::Arc;

use boxoffice::payments::simulated::{ChargeStatus, GatewayCall};
use boxoffice::payments::{PaymentGateway, SimulatedGateway};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_error, spawn_app, spawn_app_paying_through, spawn_app_with, uuid, GatedGateway,
};

#[actix_web::test]
async fn checkout_confirms_an_order_with_tickets_written_to_postgres() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let a = app.seat_ids(event_id, 0).await;
    let (_, hold) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[0], a[1]]}))
        .await;

    // The order's time is the server's clock's, in the answer and in Postgres alike.
    app.clock.advance(Duration::minutes(3));
    let (status, order) = app
        .checkout(&buyer.token, &hold["hold_id"], "first-try", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["total_cents"], 16000);
    let confirmed: chrono::DateTime<chrono::Utc> = order["confirmed_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    assert!(
        confirmed > chrono::Utc::now() + Duration::minutes(2),
        "{order}"
    );
    let tickets = order["tickets"].as_array().cloned().unwrap_or_default();
    assert_eq!(tickets.len(), 2);
    let tokens: HashSet<_> = tickets
        .iter()
        .map(|t| t["qr_token"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens.iter().all(|t| t.len() >= 32),
        "QR tokens carry 128 random bits"
    );
    assert_eq!(tickets[0]["label"], "A A-1");

    let order_id = uuid(&order["order_id"]);
    // The answer came once the order was durable; the capture follows it.
    app.settle_captures().await;
    let (status, tickets_in_db, outbox, payment): (&str, i64, i64, String) = {
        let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await
            .unwrap_or_default();
        let tickets: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tickets WHERE order_id = $1 AND status = 'VALID'",
        )
        .bind(order_id)
        .fetch_one(&app.pool)
        .await
        .unwrap_or_default();
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE aggregate_id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await
            .unwrap_or_default();
        let payment: String = sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await
            .unwrap_or_default();
        (
            if status == "CONFIRMED" {
                "CONFIRMED"
            } else {
                "other"
            },
            tickets,
            outbox,
            payment,
        )
    };
    assert_eq!(
        (status, tickets_in_db, outbox, payment.as_str()),
        ("CONFIRMED", 2, 1, "CAPTURED")
    );
    app.settle_captures().await;
    assert_eq!(app.gateway.captured_cents(), 16000);

    let states = app.seat_states(event_id).await;
    assert_eq!(states[&a[0]], "sold");
    let (status, again) = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&buyer.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["tickets"].as_array().map(Vec::len), Some(2));
    assert_eq!(again["event_title"], "Test Night");
    let reread: chrono::DateTime<chrono::Utc> = again["confirmed_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    assert_eq!(reread, confirmed, "written as answered");
    let (_, mine) = app.get("/api/v1/me/orders", Some(&buyer.token)).await;
    assert_eq!(mine["orders"][0]["order_id"], order["order_id"]);
    let (_, my_tickets) = app.get("/api/v1/me/tickets", Some(&buyer.token)).await;
    assert_eq!(my_tickets["tickets"].as_array().map(Vec::len), Some(2));
    assert_eq!(my_tickets["tickets"][0]["event_title"], "Test Night");

    let stranger = app.buyer().await;
    let (status, body) = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&stranger.token))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .get(
            &format!("/api/v1/orders/{}", uuid::Uuid::new_v4()),
            Some(&buyer.token),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    // The hold is gone: bought.
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/holds/{}",
                hold["hold_id"].as_str().unwrap_or_default()
            ),
            Some(&buyer.token),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "hold_purchased");
}

#[actix_web::test]
async fn a_tier_checkout_issues_one_ticket_per_place_and_counts_the_tier() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    let general = detail["tiers"][0]["tier_id"].clone();
    let (_, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": general, "quantity": 4}),
        )
        .await;
    let (status, order) = app
        .checkout(&buyer.token, &hold["hold_id"], "ga", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["tickets"].as_array().map(Vec::len), Some(4));
    assert_eq!(order["total_cents"], 16000);
    let sold: i32 = sqlx::query_scalar("SELECT sold_quantity FROM ticket_tiers WHERE tier_id = $1")
        .bind(uuid(&general))
        .fetch_one(&app.pool)
        .await
        .unwrap_or_default();
    assert_eq!(sold, 4);
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(detail["tiers"][0]["available"], 76);
}

#[actix_web::test]
async fn a_retry_with_the_same_key_returns_the_same_order_and_charges_once() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 2}}),
        )
        .await;
    let (status, first) = app
        .checkout(&buyer.token, &hold["hold_id"], "same-key", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = app
        .checkout(&buyer.token, &hold["hold_id"], "same-key", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(first["order_id"], second["order_id"]);
    let first_tokens: Vec<_> = first["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| t["qr_token"].clone())
        .collect();
    let mut second_tokens: Vec<_> = second["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| t["qr_token"].clone())
        .collect();
    let mut sorted_first = first_tokens.clone();
    sorted_first.sort_by_key(|v| v.to_string());
    second_tokens.sort_by_key(|v| v.to_string());
    assert_eq!(sorted_first, second_tokens);
    assert_eq!(app.gateway.charges().len(), 1);
    app.settle_captures().await;
    assert_eq!(app.gateway.captured_cents(), 16000);
    // Another key for the same, bought hold does not buy it again.
    let (status, body) = app
        .checkout(&buyer.token, &hold["hold_id"], "other-key", "tok_ok")
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "hold_purchased");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
    assert_eq!(orders, 1);
}

#[actix_web::test]
async fn a_declined_card_keeps_the_hold_and_takes_no_money() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    let (status, body) = app
        .checkout(&buyer.token, &hold["hold_id"], "try-1", "tok_decline")
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYMENT_REQUIRED,
        "payment_declined",
    );
    assert_eq!(body["error"]["reason"], "card_declined");
    let (status, again) = app
        .get(
            &format!(
                "/api/v1/holds/{}",
                hold["hold_id"].as_str().unwrap_or_default()
            ),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "HELD");
    assert_eq!(
        again["expires_at"], hold["expires_at"],
        "the original deadline stands"
    );
    app.settle_captures().await;
    assert_eq!(app.gateway.captured_cents(), 0);
    let declined: String = sqlx::query_scalar("SELECT status FROM payments")
        .fetch_one(&app.pool)
        .await
        .unwrap_or_default();
    assert_eq!(declined, "DECLINED");

    let (status, order) = app
        .checkout(&buyer.token, &hold["hold_id"], "try-2", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    app.settle_captures().await;
    assert_eq!(app.gateway.captured_cents(), 8000);
}

#[actix_web::test]
async fn a_failed_or_timed_out_payment_is_502_and_its_authorization_is_voided() {
    let app = spawn_app_with(|s| s.payment_timeout = std::time::Duration::from_millis(300)).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;

    let (status, body) = app
        .checkout(&buyer.token, &hold["hold_id"], "fail", "tok_fail")
        .await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "payment_failed");
    let (status, body) = app
        .checkout(&buyer.token, &hold["hold_id"], "slow", "tok_timeout")
        .await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "payment_failed");
    let charges = app.gateway.charges();
    assert_eq!(
        charges.len(),
        1,
        "the timed-out authorization happened at the processor"
    );
    // Both are voided behind the answers (the buyer is not kept waiting for it).
    app.eventually("both authorizations are voided", || async {
        let statuses: Vec<String> =
            sqlx::query_scalar("SELECT status FROM payments ORDER BY created_at")
                .fetch_all(&app.pool)
                .await
                .unwrap_or_default();
        statuses == ["VOIDED", "VOIDED"]
    })
    .await;
    assert_eq!(
        app.gateway.charges()[0].status,
        ChargeStatus::Voided,
        "…and was voided"
    );
    let (status, held) = app
        .get(
            &format!(
                "/api/v1/holds/{}",
                hold["hold_id"].as_str().unwrap_or_default()
            ),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(
        (status, held["status"].clone()),
        (StatusCode::OK, json!("HELD"))
    );
}

#[actix_web::test]
async fn paying_a_moment_after_expiry_is_refused_and_charges_nothing() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 2}}),
        )
        .await;
    app.clock
        .advance(Duration::minutes(8) + Duration::seconds(1));
    let (status, body) = app
        .checkout(&buyer.token, &hold["hold_id"], "late", "tok_ok")
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "hold_expired");
    assert!(app.gateway.calls().is_empty(), "the card was never touched");
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
    assert_eq!(payments, 0);
    let states = app.seat_states(event_id).await;
    assert!(
        states.values().all(|s| s == "available"),
        "the seats went back on sale"
    );
}

#[actix_web::test]
async fn a_payment_started_a_moment_before_expiry_completes_and_the_hold_cannot_expire_under_it() {
    let simulated = Arc::new(SimulatedGateway::new(std::time::Duration::ZERO));
    let gated = Arc::new(GatedGateway::new(simulated.clone()));
    let app = spawn_app_paying_through(
        |_| {},
        Some((simulated, gated.clone() as Arc<dyn PaymentGateway>)),
    )
    .await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 2}}),
        )
        .await;
    let hold_path = format!(
        "/api/v1/holds/{}",
        hold["hold_id"].as_str().unwrap_or_default()
    );

    app.clock
        .advance(Duration::minutes(7) + Duration::seconds(59));
    let checkout = app.checkout(&buyer.token, &hold["hold_id"], "just-in-time", "tok_ok");
    let act = async {
        let entered =
            tokio::time::timeout(std::time::Duration::from_secs(10), gated.entered.notified())
                .await;
        assert!(entered.is_ok(), "the payment never started");
        // The payment is in flight; the deadline passes and sweeps run meanwhile.
        app.pass_time(event_id, Duration::minutes(5)).await;
        for _ in 0..3 {
            app.engine.sweep_now(event_id).await;
            let (status, body) = app.get(&hold_path, Some(&buyer.token)).await;
            assert_eq!(
                (status, body["status"].clone()),
                (StatusCode::OK, json!("PAYMENT_PENDING")),
                "{body}"
            );
        }
        gated.open(1);
    };
    let ((status, order), ()) = futures_util::join!(checkout, act);
    assert_eq!(status, StatusCode::CREATED, "{order}");
    app.settle_captures().await;
    assert_eq!(app.gateway.captured_cents(), 16000);
}

#[actix_web::test]
async fn checkout_needs_an_idempotency_key_and_a_payment_token() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    let path = format!(
        "/api/v1/holds/{}/checkout",
        hold["hold_id"].as_str().unwrap_or_default()
    );
    let (status, body) = app
        .post(
            &path,
            Some(&buyer.token),
            &json!({"payment_token": "tok_ok"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(body["error"]["fields"].get("Idempotency-Key").is_some());
    let (status, body) = app
        .checkout(&buyer.token, &hold["hold_id"], "k", "  ")
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .checkout(
            &buyer.token,
            &json!(uuid::Uuid::new_v4().to_string()),
            "k",
            "tok_ok",
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "hold_not_found");
    assert!(app
        .gateway
        .calls()
        .iter()
        .all(|c| !matches!(c, GatewayCall::Authorize { .. })));
}

#[actix_web::test]
async fn a_tickets_qr_code_is_an_svg_for_its_buyer_only() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": app_tier(&app, event_id).await, "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold} {venue:?}");
    let (status, order) = app
        .checkout(&buyer.token, &hold["hold_id"], "qr-1", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let ticket = order["tickets"][0]["ticket_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let url = app.url(&format!("/api/v1/tickets/{ticket}/qr.svg"));
    let response = app
        .client
        .get(&url)
        .bearer_auth(&buyer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/svg+xml")
    );
    let svg = response.text().await.unwrap_or_default();
    assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");

    let stranger = app.buyer().await;
    let (status, body) = app
        .get(
            &format!("/api/v1/tickets/{ticket}/qr.svg"),
            Some(&stranger.token),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .get(
            &format!("/api/v1/tickets/{}/qr.svg", ::uuid::Uuid::new_v4()),
            Some(&buyer.token),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app
        .get("/api/v1/tickets/not-a-uuid/qr.svg", Some(&buyer.token))
        .await;
    assert!(status.is_client_error(), "{status}");
    let (status, _) = app
        .get(&format!("/api/v1/tickets/{ticket}/qr.svg"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn app_tier(app: &crate::helpers::TestApp, event_id: ::uuid::Uuid) -> serde_json::Value {
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    detail["tiers"][0]["tier_id"].clone()
}
