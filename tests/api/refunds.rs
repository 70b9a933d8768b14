//! Refunds: the organizer refunds part of an order then the rest, once each through the
//! gateway however often asked; a buyer cancels inside the refund policy less its fee, and
//! is refused outside it; refunded seats are on the live map at once; odd requests are 4xx.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app, string, uuid, Account, TestApp};
use crate::live::Watcher;

impl TestApp {
    /// Asks for a refund of `order_id` (with `key` as its Idempotency-Key, if any).
    pub async fn refund(
        &self,
        token: &str,
        order_id: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/orders/{order_id}/refund")))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("refund: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `buyer` buys `n` seats of section 0; the order.
    pub async fn order_of(&self, buyer: &Account, event_id: Uuid, n: usize) -> Value {
        let tickets = self.bought(buyer, event_id, n).await;
        let ticket_id = uuid(&tickets[0]["ticket_id"]);
        let order_id: Uuid =
            sqlx::query_scalar("SELECT order_id FROM tickets WHERE ticket_id = $1")
                .bind(ticket_id)
                .fetch_one(&self.pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        let (status, order) = self
            .get(&format!("/api/v1/orders/{order_id}"), Some(&buyer.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }
}

fn ticket_ids(order: &Value) -> Vec<String> {
    order["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| string(&t["ticket_id"]))
        .collect()
}

#[actix_web::test]
async fn an_organizer_refunds_part_then_the_rest_of_an_order_each_once() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 3).await;
    let order_id = string(&order["order_id"]);
    let tickets = ticket_ids(&order);
    let total = order["total_cents"].as_i64().unwrap_or_default();

    let part = json!({"ticket_ids": [tickets[0]], "reason": "Seat broken"});
    let (status, first) = app
        .refund(&organizer.token, &order_id, Some("r-1"), &part)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "PARTIALLY_REFUNDED");
    assert_eq!(first["refund"]["status"], "SUCCEEDED");
    assert_eq!(first["refund"]["amount_cents"], 8000);
    assert_eq!(first["refunded_cents"], 8000);
    let refunded = first["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["ticket_id"] == tickets[0].as_str())
        .map(|t| t["status"].clone());
    assert_eq!(refunded, Some(json!("CANCELLED")));

    // Retried with its key, and again without one: the same refund, nothing more paid.
    let (status, again) = app
        .refund(&organizer.token, &order_id, Some("r-1"), &part)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["refund"]["refund_id"], first["refund"]["refund_id"]);
    let (status, again) = app.refund(&organizer.token, &order_id, None, &part).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(again["refund"].is_null(), "nothing left to refund: {again}");
    assert_eq!(app.gateway.refunds().len(), 1);

    // The rest: the order is REFUNDED, every cent back.
    let (status, rest) = app
        .refund(
            &organizer.token,
            &order_id,
            None,
            &json!({"reason": "Show moved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["status"], "REFUNDED");
    assert_eq!(rest["refunded_cents"], total);
    let refunds = app.gateway.refunds();
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds.iter().map(|r| r.amount_cents).sum::<i64>(), total);
    assert_eq!(app.gateway.captured_cents(), 0);

    // Postgres agrees: two refunds, every ticket cancelled with one REFUNDED entry.
    let (succeeded, tickets_left, ledger): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM refunds WHERE order_id = $1 AND status = 'SUCCEEDED'), \
                (SELECT count(*) FROM tickets WHERE order_id = $1 AND status <> 'CANCELLED'), \
                (SELECT count(*) FROM ticket_ledger l JOIN tickets t USING (ticket_id) WHERE t.order_id = $1 AND l.kind = 'REFUNDED')",
    )
    .bind(uuid(&order["order_id"]))
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((succeeded, tickets_left, ledger), (2, 0, 3));
    // The door turns the refunded ticket away.
    let (_, scanner) = app.scanner(&organizer, event_id, "North").await;
    let qr = &order["tickets"][0]["qr_token"];
    let (status, scan) = app.scan(&scanner, event_id, qr, "n-1").await;
    assert_eq!(status, StatusCode::OK, "{scan}");
    assert_eq!(
        (scan["result"].clone(), scan["reason"].clone()),
        (json!("INVALID"), json!("refunded")),
        "{scan}"
    );
    let (status, history) = app.history(&organizer.token, &json!(tickets[0])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["entries"][1]["kind"], "REFUNDED", "{history}");
    assert_eq!(history["entries"][1]["reason"], "Seat broken");
}

#[actix_web::test]
async fn refunds_racing_for_one_ticket_pay_once() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 2).await;
    let order_id = string(&order["order_id"]);
    let ticket = ticket_ids(&order)[0].clone();
    let body = json!({"ticket_ids": [ticket], "reason": "Double booked"});
    let answers = join_all((0..12).map(|i| {
        let (app, order_id, body, organizer) = (&app, &order_id, &body, &organizer);
        async move {
            let key = format!("race-{i}");
            app.refund(&organizer.token, order_id, Some(&key), body)
                .await
        }
    }))
    .await;
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::OK
                || (*status == StatusCode::CONFLICT
                    && body["error"]["code"] == "refund_in_progress"),
            "{status} {body}"
        );
    }
    assert!(answers.iter().any(|(s, _)| *s == StatusCode::OK));
    assert_eq!(app.gateway.refunds().len(), 1, "one refund paid");
    let refunds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refunds WHERE order_id = $1 AND status IN ('SUCCEEDED', 'PENDING')",
    )
    .bind(uuid(&order["order_id"]))
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refunds, 1);
}

#[actix_web::test]
async fn a_buyer_cancels_inside_the_policy_less_its_fee_and_not_outside_it() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 2).await;
    let order_id = string(&order["order_id"]);
    let tickets = ticket_ids(&order);
    let one = json!({"ticket_ids": [tickets[0]], "reason": "Cannot come"});

    // No policy: buyers cannot cancel; the answer says what the policy is.
    let (status, body) = app.refund(&buyer.token, &order_id, None, &one).await;
    assert_error(status, &body, StatusCode::CONFLICT, "refund_not_allowed");
    assert!(
        body["error"]["policy"]["buyer_cancel_until_hours"].is_null(),
        "{body}"
    );

    let policy = json!({"buyer_cancel_until_hours": 48, "fee_cents": 100, "fee_percent": 10});
    let path = format!("/api/v1/events/{event_id}/refund-policy");
    let (status, set) = app.put(&path, Some(&buyer.token), &policy).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{set}");
    let (status, set) = app.put(&path, Some(&organizer.token), &policy).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert!(set["buyers_may_cancel_until"].is_string(), "{set}");
    let (_, shown) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(shown["refund_policy"]["fee_percent"], 10.0, "{shown}");

    // Inside the policy: 8,000 less 100 and 10 %.
    let (status, cancelled) = app.refund(&buyer.token, &order_id, None, &one).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["refund"]["amount_cents"], 8000 - 100 - 800);
    assert_eq!(cancelled["refund"]["fee_cents"], 900);
    assert_eq!(cancelled["status"], "PARTIALLY_REFUNDED");

    // Another buyer's order is not theirs to cancel (nor to know of).
    let stranger = app.buyer().await;
    let (status, body) = app.refund(&stranger.token, &order_id, None, &one).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Past the deadline: the organizer moves it to 12 hours from now, and they pass.
    let start = chrono::DateTime::parse_from_rfc3339(&string(&shown["start_time"]))
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|e| panic!("{e}"));
    let hours = (start - chrono::Utc::now()).num_hours() - 12;
    let policy = json!({"buyer_cancel_until_hours": hours});
    let (status, set) = app.put(&path, Some(&organizer.token), &policy).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    app.clock.advance(chrono::Duration::hours(13));
    let rest = json!({"reason": "Still cannot come"});
    let (status, body) = app.refund(&buyer.token, &order_id, None, &rest).await;
    assert_error(status, &body, StatusCode::CONFLICT, "refund_not_allowed");
    assert_eq!(body["error"]["policy"]["buyer_cancel_until_hours"], hours);
    // The organizer still can.
    let (status, body) = app.refund(&organizer.token, &order_id, None, &rest).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "REFUNDED");
}

#[actix_web::test]
async fn refunded_seats_are_on_the_live_map_and_for_sale_at_once() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 2).await;
    let seat = uuid(&order["tickets"][0]["seat_id"]);
    let mut viewer = Watcher::connect(&app, event_id, "").await;
    viewer
        .until("the bought seat shows sold", |w| w.seat(seat) == "sold")
        .await;
    let (status, body) = app
        .refund(
            &organizer.token,
            &string(&order["order_id"]),
            None,
            &json!({"ticket_ids": [order["tickets"][0]["ticket_id"]], "reason": "Refund"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    viewer
        .until("the refunded seat shows available", |w| {
            w.seat(seat) == "available"
        })
        .await;
    let other = app.buyer().await;
    let (status, hold) = app
        .hold(&other.token, event_id, &json!({"seat_ids": [seat]}))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the seat is for sale again: {hold}"
    );
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets WHERE seat_id = $1 AND status IN ('VALID', 'USED')",
    )
    .bind(seat)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(live, 0);
}

#[actix_web::test]
async fn odd_refund_requests_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 1).await;
    let other = app.order_of(&buyer, event_id, 1).await;
    let order_id = string(&order["order_id"]);
    let token = organizer.token.as_str();
    let cases = [
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"reason": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"reason": "x".repeat(501)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"reason": "a\u{0}b"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"reason": "ok", "ticket_ids": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"reason": "ok", "ticket_ids": ["nope"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"reason": "ok", "ticket_ids": [other["tickets"][0]["ticket_id"]]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"reason": "ok", "amount_cents": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (json!([{"reason": "ok"}]), StatusCode::BAD_REQUEST),
    ];
    for (body, expected) in cases {
        let (status, answer) = app.refund(token, &order_id, None, &body).await;
        assert_error(status, &answer, expected, "validation_failed");
    }
    let long_key = "k".repeat(201);
    let (status, answer) = app
        .refund(token, &order_id, Some(&long_key), &json!({"reason": "ok"}))
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, answer) = app
        .refund(
            token,
            &Uuid::new_v4().to_string(),
            None,
            &json!({"reason": "ok"}),
        )
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    let policy = format!("/api/v1/events/{event_id}/refund-policy");
    for bad in [
        json!({"buyer_cancel_until_hours": -1}),
        json!({"buyer_cancel_until_hours": 1, "fee_percent": 101}),
        json!({"buyer_cancel_until_hours": 1, "fee_cents": -1}),
        json!({"buyer_cancel_until_hours": 1, "fee_percent": 1.234}),
    ] {
        let (status, answer) = app.put(&policy, Some(token), &bad).await;
        assert_error(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    assert!(app.gateway.refunds().is_empty(), "nothing was refunded");
}
