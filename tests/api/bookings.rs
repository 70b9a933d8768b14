//! Venue bookings with deposits: a venue's terms make a new event's booking REQUESTED
//! until its deposit is paid (idempotent, a decline leaves it requested), publishing needs
//! it CONFIRMED, racing requests for one time get one winner, a request that lapses frees
//! the time, add-ons and the invoice add up, the calendar shows the venue's bookings.

use chrono::Duration;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use boxoffice::payments::simulated::GatewayCall;

use crate::helpers::*;

/// A day rate of 2,500.00, a deposit of a quarter of it, two add-ons, requests held `hours`.
fn terms(hours: i64) -> Value {
    json!({"currency": "EUR", "day_rate_cents": 250_000, "deposit": {"percent_of_day_rate": 25},
           "request_hours": hours, "addons": [
               {"kind": "CATERING", "name": "Buffet, per guest", "price_cents": 1_500},
               {"kind": "AV_EQUIPMENT", "name": "PA system", "price_cents": 40_000}]})
}

/// An event at the venue `days` from now, `hours` long, no setup or teardown.
fn event_at(venue: Uuid, title: &str, start: chrono::DateTime<chrono::Utc>, hours: i64) -> Value {
    json!({"venue_id": venue, "title": title, "description": "", "category": "CONCERT",
           "performers": ["The Asserts"], "start_time": start, "end_time": start + Duration::hours(hours),
           "currency": "EUR"})
}

impl TestApp {
    /// A venue whose terms ask a deposit of 625.00, and an event there whose booking is
    /// REQUESTED: (the venue, the event, its booking).
    async fn requested_booking(&self, token: &str) -> (VenueFixture, Uuid, Value) {
        let venue = self.standard_venue(token).await;
        let path = format!("/api/v1/venues/{}/terms", venue.venue_id);
        let (status, set) = self.put(&path, Some(token), &terms(48)).await;
        assert_eq!(status, StatusCode::OK, "{set}");
        assert_eq!(set["deposit_due_cents"], 62_500, "{set}");
        let event = self.ready_event(token, &venue, 20).await;
        let booking = self.booking_of(token, event).await;
        (venue, event, booking)
    }

    async fn booking_of(&self, token: &str, event: Uuid) -> Value {
        let (status, booking) = self
            .get(&format!("/api/v1/events/{event}/booking"), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{booking}");
        booking
    }

    async fn deposit(
        &self,
        token: &str,
        booking: &Value,
        key: &str,
        card: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(&format!(
                "/api/v1/bookings/{}/deposit",
                string(&booking["booking_id"])
            )))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"payment_token": card}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[actix_web::test]
async fn a_deposit_confirms_the_booking_once_and_publishing_waits_for_it() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event, booking) = app.requested_booking(&organizer.token).await;
    assert_eq!(booking["status"], "REQUESTED", "{booking}");
    assert_eq!(booking["deposit_due_cents"], 62_500);
    assert!(booking["requested_until"].is_string(), "{booking}");
    let (status, refused) = app.publish(&organizer.token, event).await;
    assert_error(status, &refused, StatusCode::CONFLICT, "event_not_ready");
    assert!(
        refused.to_string().contains("confirmed venue booking"),
        "{refused}"
    );

    // A declined card: the booking stays requested, the same key answers the same.
    for _ in 0..2 {
        let (status, body) = app
            .deposit(&organizer.token, &booking, "first", "tok_decline")
            .await;
        assert_error(
            status,
            &body,
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
        );
    }
    assert_eq!(
        app.booking_of(&organizer.token, event).await["status"],
        "REQUESTED"
    );
    // Without a key: 400 naming it.
    let response = app
        .client
        .post(app.url(&format!(
            "/api/v1/bookings/{}/deposit",
            string(&booking["booking_id"])
        )))
        .bearer_auth(&organizer.token)
        .json(&json!({"payment_token": "tok_ok"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A good card, asked three times at once (the processor slow, so they overlap) and once
    // more after: one payment, asked of the processor once.
    app.gateway
        .set_latency(std::time::Duration::from_millis(300));
    let paid =
        join_all((0..3).map(|_| app.deposit(&organizer.token, &booking, "second", "tok_ok"))).await;
    app.gateway.set_latency(std::time::Duration::ZERO);
    let confirmed: Vec<_> = paid.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
    assert!(!confirmed.is_empty(), "{paid:?}");
    for (status, body) in &paid {
        assert!(
            *status == StatusCode::OK || body["error"]["code"] == "deposit_in_progress",
            "{status} {body}"
        );
    }
    let (status, again) = app
        .deposit(&organizer.token, &booking, "second", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "CONFIRMED");
    assert_eq!(again["deposit_paid_cents"], 62_500);
    let (status, body) = app
        .deposit(&organizer.token, &booking, "third", "tok_ok")
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "booking_confirmed");
    let booking_id = uuid(&booking["booking_id"]);
    let (captured, charged): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM booking_deposits WHERE booking_id = $1 AND status = 'CAPTURED'), \
                (SELECT count(*) FROM simulated_charges c JOIN booking_deposits d ON c.idempotency_key = 'deposit:' || d.deposit_id \
                 WHERE d.booking_id = $1 AND c.status = 'CAPTURED')",
    )
    .bind(booking_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((captured, charged), (1, 1), "one deposit taken, once");
    let authorized = app
        .gateway
        .calls()
        .iter()
        .filter(|c| matches!(c, GatewayCall::Authorize { idempotency_key, .. } if idempotency_key.starts_with("deposit:")))
        .count();
    assert_eq!(authorized, 2, "the declined attempt and the paid one");

    let (status, body) = app.publish(&organizer.token, event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A published event's booking is not cancelled on its own.
    let (status, body) = app
        .post(
            &format!("/api/v1/bookings/{booking_id}/cancel"),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "booking_in_use");

    // Nobody else's.
    let other = app.organizer().await;
    for path in [
        format!("/api/v1/bookings/{booking_id}"),
        format!("/api/v1/bookings/{booking_id}/invoice"),
        format!("/api/v1/venues/{}/terms", venue.venue_id),
        format!("/api/v1/venues/{}/calendar", venue.venue_id),
    ] {
        let (status, body) = app.get(&path, Some(&other.token)).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
}

#[actix_web::test]
async fn an_attempt_left_pending_is_in_progress_until_its_request_is_surely_gone() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, _, booking) = app.requested_booking(&organizer.token).await;
    let booking_id = uuid(&booking["booking_id"]);
    // What a server that died while asking the processor leaves behind: a PENDING attempt.
    let deposit_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO booking_deposits (deposit_id, booking_id, idempotency_key, gateway, amount_cents, currency, status) \
         VALUES ($1, $2, 'lost', 'simulated', 62500, 'EUR', 'PENDING')",
    )
    .bind(deposit_id)
    .bind(booking_id)
    .execute(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Just written, it may still be under way: its own key and any other are told so.
    for key in ["lost", "other"] {
        let (status, body) = app.deposit(&organizer.token, &booking, key, "tok_ok").await;
        assert_error(status, &body, StatusCode::CONFLICT, "deposit_in_progress");
    }
    assert!(
        app.gateway.calls().is_empty(),
        "nothing asked of the processor"
    );

    // Long after any live request would have ended, its key's retry pays it, once.
    app.clock.advance(Duration::minutes(5));
    let (status, paid) = app
        .deposit(&organizer.token, &booking, "lost", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "CONFIRMED", "{paid}");
    let (status, again) = app
        .deposit(&organizer.token, &booking, "lost", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let charges = app.gateway.charges();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].idempotency_key, format!("deposit:{deposit_id}"));
}

#[actix_web::test]
async fn racing_requests_for_one_time_have_one_winner_and_touching_ones_both_win() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let (status, body) = app
        .put(
            &format!("/api/v1/venues/{}/terms", venue.venue_id),
            Some(&organizer.token),
            &terms(48),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let start = days_from_now(30);
    let asked = join_all((0..8).map(|i| {
        // Each overlaps every other by at least an hour.
        let body = event_at(
            venue.venue_id,
            &format!("Race {i}"),
            start + Duration::minutes(10 * i),
            3,
        );
        let (app, token) = (&app, organizer.token.clone());
        async move { app.create_event(&token, &body).await }
    }))
    .await;
    let won: Vec<_> = asked
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    assert_eq!(won.len(), 1, "{asked:?}");
    for (status, body) in asked.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, StatusCode::CONFLICT, "venue_booked");
        assert!(
            body["error"]["conflict"]["from"].is_string(),
            "the window is named: {body}"
        );
    }
    // Requested (not yet paid) time is taken all the same; the time right after is free.
    let winner = &won[0].1;
    let ends = winner["end_time"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let after = chrono::DateTime::parse_from_rfc3339(&ends)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_timezone(&chrono::Utc);
    let (status, body) = app
        .create_event(
            &organizer.token,
            &event_at(venue.venue_id, "Right after", after, 2),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "touching windows do not overlap: {body}"
    );
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM venue_bookings WHERE venue_id = $1 AND status <> 'CANCELLED'",
    )
    .bind(venue.venue_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_default();
    assert_eq!(live, 2);
    let (status, calendar) = app
        .get(
            &format!("/api/v1/venues/{}/calendar", venue.venue_id),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{calendar}");
    assert_eq!(
        calendar["bookings"].as_array().map(Vec::len),
        Some(2),
        "{calendar}"
    );
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/venues/{}/calendar?from=2027-02-01T00:00:00Z&to=2027-01-01T00:00:00Z",
                venue.venue_id
            ),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[actix_web::test]
async fn an_unpaid_request_lapses_and_frees_the_time() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let (status, body) = app
        .put(
            &format!("/api/v1/venues/{}/terms", venue.venue_id),
            Some(&organizer.token),
            &terms(1),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let start = days_from_now(40);
    let (status, first) = app
        .create_event(
            &organizer.token,
            &event_at(venue.venue_id, "First", start, 3),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first = uuid(&first["event_id"]);
    let (status, body) = app
        .create_event(
            &organizer.token,
            &event_at(venue.venue_id, "Second", start, 3),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "venue_booked");

    // An hour later, unpaid: the request lapses and the time is the next one's.
    app.clock.advance(Duration::minutes(61));
    let (status, second) = app
        .create_event(
            &organizer.token,
            &event_at(venue.venue_id, "Second", start, 3),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let lapsed = app.booking_of(&organizer.token, first).await;
    assert_eq!(
        (&lapsed["status"], &lapsed["cancel_reason"]),
        (&json!("CANCELLED"), &json!("LAPSED")),
        "{lapsed}"
    );
    let (status, body) = app
        .deposit(&organizer.token, &lapsed, "late", "tok_ok")
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "booking_cancelled");
    // Asked again, the time is taken now.
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{first}/booking"),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "venue_booked");
    // The second cancels its request: the first may ask again and gets it.
    let second = uuid(&second["event_id"]);
    let booking = app.booking_of(&organizer.token, second).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/bookings/{}/cancel", string(&booking["booking_id"])),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, again) = app
        .post(
            &format!("/api/v1/events/{first}/booking"),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "REQUESTED");
}

#[actix_web::test]
async fn add_ons_and_the_invoice_add_up() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let (_, set) = app
        .put(
            &format!("/api/v1/venues/{}/terms", venue.venue_id),
            Some(&organizer.token),
            &terms(48),
        )
        .await;
    let offer = |i: usize| set["addons"][i]["offer_id"].clone();
    // Three hours and three hours of setup on each side: nine hours, one day of rent.
    let start = days_from_now(50);
    let mut body = event_at(venue.venue_id, "Gala", start, 3);
    body["setup_hours"] = json!(3);
    body["teardown_hours"] = json!(3);
    let (status, event) = app.create_event(&organizer.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    let booking = app
        .booking_of(&organizer.token, uuid(&event["event_id"]))
        .await;
    let id = string(&booking["booking_id"]);
    let (status, with) = app
        .put(&format!("/api/v1/bookings/{id}/addons"), Some(&organizer.token),
             &json!({"addons": [{"offer_id": offer(0), "quantity": 120}, {"offer_id": offer(1), "quantity": 1}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{with}");
    assert_eq!(with["addons"].as_array().map(Vec::len), Some(2), "{with}");
    let (status, bad) = app
        .put(
            &format!("/api/v1/bookings/{id}/addons"),
            Some(&organizer.token),
            &json!({"addons": [{"offer_id": Uuid::new_v4(), "quantity": 0}]}),
        )
        .await;
    assert_error(
        status,
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        bad["error"]["fields"]["addons[0].offer_id"].is_string(),
        "{bad}"
    );
    assert!(
        bad["error"]["fields"]["addons[0].quantity"].is_string(),
        "{bad}"
    );

    let (status, paid) = app
        .deposit(&organizer.token, &booking, "pay", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    let (status, invoice) = app
        .get(
            &format!("/api/v1/bookings/{id}/invoice"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    let amounts: Vec<i64> = invoice["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["amount_cents"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(amounts, [250_000, 180_000, 40_000], "{invoice}");
    assert_eq!(invoice["total_cents"], 470_000);
    assert_eq!(invoice["deposit_paid_cents"], 62_500);
    assert_eq!(invoice["balance_cents"], 470_000 - 62_500);
    let pdf = app
        .client
        .get(app.url(&format!("/api/v1/bookings/{id}/invoice.pdf")))
        .bearer_auth(&organizer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pdf.status(), StatusCode::OK);
    let bytes = pdf.bytes().await.unwrap_or_default();
    assert!(bytes.starts_with(b"%PDF"), "a PDF");

    // Terms that cannot be: each named.
    let path = format!("/api/v1/venues/{}/terms", venue.venue_id);
    for (body, field) in [
        (
            json!({"currency": "EUR", "day_rate_cents": 1000, "deposit": {"cents": 100, "percent_of_day_rate": 10}}),
            "deposit",
        ),
        (
            json!({"currency": "EUR", "day_rate_cents": 1000, "deposit": {"percent_of_day_rate": 0}}),
            "deposit.percent_of_day_rate",
        ),
        (
            json!({"currency": "EUR", "day_rate_cents": 0, "deposit": {"percent_of_day_rate": 10}}),
            "deposit.percent_of_day_rate",
        ),
        (
            json!({"currency": "EUR", "day_rate_cents": -1}),
            "day_rate_cents",
        ),
        (json!({"currency": "EURO", "day_rate_cents": 1}), "currency"),
        (
            json!({"currency": "EUR", "day_rate_cents": 1, "request_hours": 0}),
            "request_hours",
        ),
    ] {
        let (status, refused) = app.put(&path, Some(&organizer.token), &body).await;
        assert_error(
            status,
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            refused["error"]["fields"][field].is_string(),
            "{field}: {refused}"
        );
    }
    // A kind the document does not list does not fit the body at all: 400, named.
    let pony = json!({"currency": "EUR", "day_rate_cents": 1,
                      "addons": [{"kind": "PONY", "name": "x", "price_cents": 1}]});
    let (status, refused) = app.put(&path, Some(&organizer.token), &pony).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["error"]["fields"]["addons[0].kind"].is_string(),
        "{refused}"
    );
}

#[actix_web::test]
async fn a_venue_without_a_deposit_confirms_at_once_as_before() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event) = app.published_event(&organizer.token, 10).await;
    let booking = app.booking_of(&organizer.token, event).await;
    assert_eq!(booking["status"], "CONFIRMED", "{booking}");
    assert_eq!(booking["deposit_due_cents"], 0);
    let (status, body) = app.deposit(&organizer.token, &booking, "k", "tok_ok").await;
    assert_error(status, &body, StatusCode::CONFLICT, "booking_confirmed");
    let (status, terms) = app
        .get(
            &format!("/api/v1/venues/{}/terms", venue.venue_id),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{terms}");
    assert!(terms["deposit"].is_null(), "{terms}");
}
