//! Waitlists: buyers wait for a sold-out section in join order; a refunded seat is offered
//! to the first as an exclusive hold nobody else can take; unbought, the offer passes to
//! the second when it ends, who buys it without the waiting room.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app, string, uuid, Account, TestApp};
use crate::live::Watcher;

impl TestApp {
    async fn join_waitlist(
        &self,
        who: &Account,
        event_id: Uuid,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/waitlist"),
            Some(&who.token),
            body,
        )
        .await
    }

    async fn offers(&self, who: &Account) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/me/offers", Some(&who.token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["offers"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `who` has exactly `n` open offers (offers are recorded behind the
    /// engine's answer); those offers.
    async fn offers_until(&self, who: &Account, n: usize) -> Vec<Value> {
        self.eventually(&format!("{} has {n} offers", who.email), || async {
            self.offers(who).await.len() == n
        })
        .await;
        self.offers(who).await
    }
}

#[actix_web::test]
async fn an_offer_goes_to_the_first_waiter_passes_on_unbought_and_is_bought() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let section = venue.seated[0];
    // Section A (12 seats) sells out to one buyer, in two orders.
    let buyer = app.buyer().await;
    let first_order = app.order_of(&buyer, event_id, 6).await;
    app.order_of(&buyer, event_id, 6).await;

    let (first, second) = (app.buyer().await, app.buyer().await);
    let want = json!({"section_id": section, "quantity": 1});
    let (status, entry) = app.join_waitlist(&first, event_id, &want).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["position"], 1);
    let (status, body) = app.join_waitlist(&first, event_id, &want).await;
    assert_error(status, &body, StatusCode::CONFLICT, "already_waiting");
    let (status, entry) = app.join_waitlist(&second, event_id, &want).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["position"], 2);
    let (status, place) = app
        .get(
            &format!("/api/v1/events/{event_id}/waitlist?section_id={section}"),
            Some(&second.token),
        )
        .await;
    assert_eq!(
        (status, place["position"].clone()),
        (StatusCode::OK, json!(2)),
        "{place}"
    );
    // Section B still has seats: buy them, do not wait.
    let (status, body) = app
        .join_waitlist(
            &first,
            event_id,
            &json!({"section_id": venue.seated[1], "quantity": 1}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "not_sold_out");

    // A seat comes back: the first waiter is offered it, on their socket too.
    let mut socket = Watcher::connect(&app, event_id, &format!("?token={}", first.token)).await;
    let ticket = &first_order["tickets"][0];
    let seat = uuid(&ticket["seat_id"]);
    let (status, body) = app
        .refund(
            &organizer.token,
            &string(&first_order["order_id"]),
            None,
            &json!({"ticket_ids": [ticket["ticket_id"]], "reason": "Returned"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let offers = app.offers_until(&first, 1).await;
    let offer = &offers[0];
    assert_eq!(offer["quantity"], 1);
    socket
        .until("the first waiter hears of the offer", |w| {
            w.hold_news(&offer["hold_id"])
                .contains(&"OFFERED".to_owned())
        })
        .await;
    assert_eq!(app.seat_states(event_id).await[&seat], "held");
    assert!(app.offers(&second).await.is_empty());
    // Nobody else can take the offered seat.
    let (status, body) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [seat]}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "seat_unavailable");

    // Unbought for 30 minutes, it passes to the second, who buys it.
    app.pass_time(event_id, chrono::Duration::minutes(31)).await;
    let offers = app.offers_until(&second, 1).await;
    assert!(app.offers(&first).await.is_empty());
    let (status, order) = app
        .checkout(&second.token, &offers[0]["hold_id"], "offer-1", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(uuid(&order["tickets"][0]["seat_id"]), seat);

    let entries: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT user_id, status FROM waitlist_entries WHERE event_id = $1 ORDER BY position",
    )
    .bind(event_id)
    .fetch_all(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let expected = vec![
        (first.user_id, "EXPIRED".to_owned()),
        (second.user_id, "PURCHASED".to_owned()),
    ];
    app.eventually("the entries are settled", || async {
        let now: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT user_id, status FROM waitlist_entries WHERE event_id = $1 ORDER BY position",
        )
        .bind(event_id)
        .fetch_all(&app.pool)
        .await
        .unwrap_or_default();
        now == expected
    })
    .await;
    assert_eq!(entries.len(), 2);
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets WHERE seat_id = $1 AND status IN ('VALID', 'USED')",
    )
    .bind(seat)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(live, 1);
}

#[actix_web::test]
async fn odd_waitlist_requests_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let section = venue.seated[0];
    let cases = [
        (json!({"quantity": 1}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"section_id": section, "tier_id": section, "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"section_id": section, "quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"section_id": section, "quantity": 7}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"section_id": Uuid::new_v4(), "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"section_id": venue.floor, "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"section_id": "x", "quantity": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"section_id": section, "quantity": 1, "extra": 1}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = app.join_waitlist(&buyer, event_id, &body).await;
        assert_error(status, &answer, expected, "validation_failed");
    }
    let (status, answer) = app
        .join_waitlist(
            &organizer,
            event_id,
            &json!({"section_id": section, "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = app
        .join_waitlist(
            &buyer,
            Uuid::new_v4(),
            &json!({"section_id": section, "quantity": 1}),
        )
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    let (status, answer) = app
        .delete(
            &format!("/api/v1/events/{event_id}/waitlist?section_id={section}"),
            Some(&buyer.token),
        )
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    let (status, answer) = app
        .delete(
            &format!("/api/v1/events/{event_id}/waitlist"),
            Some(&buyer.token),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[actix_web::test]
async fn an_offer_is_bought_without_the_waiting_room() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let room = crate::helpers::Room {
        tiny: true,
        ..crate::helpers::ROOM
    };
    let event_id = app.room_event(&organizer, room).await;
    let tier = app.general_tier(event_id).await;
    // Two buyers come through the room and buy the 12 tickets.
    let (first, second) = (app.buyer().await, app.buyer().await);
    for buyer in [&first, &second] {
        let (status, body) = app.join(event_id, &buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.start_sale();
    app.admit_pass(event_id).await;
    let mut orders = Vec::new();
    for buyer in [&first, &second] {
        let admission = app.admission(event_id, &buyer.token).await;
        let (status, hold) = app
            .admitted_hold(
                &buyer.token,
                Some(&admission),
                event_id,
                &json!({"tier_id": tier, "quantity": 6}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let (status, order) = app
            .admitted_checkout(&buyer.token, Some(&admission), &hold["hold_id"])
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        orders.push(order);
    }
    // Somebody who never queued waits for two; two come back.
    let waiter = app.buyer().await;
    let (status, entry) = app
        .join_waitlist(&waiter, event_id, &json!({"tier_id": tier, "quantity": 2}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let tickets: Vec<Value> = orders[0]["tickets"].as_array().cloned().unwrap_or_default();
    let (status, body) = app
        .refund(
            &organizer.token,
            &string(&orders[0]["order_id"]),
            None,
            &json!({"ticket_ids": [tickets[0]["ticket_id"], tickets[1]["ticket_id"]], "reason": "Returned"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let offers = app.offers_until(&waiter, 1).await;
    assert_eq!(offers[0]["quantity"], 2);
    // A hold of their own would need the room; the offer does not.
    let (status, body) = app
        .admitted_hold(
            &waiter.token,
            None,
            event_id,
            &json!({"tier_id": tier, "quantity": 1}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "admission_required",
    );
    let (status, order) = app
        .admitted_checkout(&waiter.token, None, &offers[0]["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["tickets"].as_array().map(Vec::len), Some(2));
}

#[actix_web::test]
async fn blocked_seats_released_mid_sale_go_to_the_waitlist_first() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 9).await;
    let (status, body) = app
        .set_pricing(
            &organizer.token,
            event_id,
            &crate::helpers::standard_pricing(&venue),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut onsale = crate::helpers::open_onsale_body(9);
    onsale["sale_starts_at"] = json!(chrono::Utc::now() + chrono::Duration::hours(1));
    let (status, body) = app.set_onsale(&organizer.token, event_id, &onsale).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Two seats of section A kept back (a camera) before the sale.
    let section = app.seat_ids(event_id, 0).await;
    let camera = [section[0], section[1]];
    let path = format!("/api/v1/events/{event_id}/blocked-seats");
    for (bad, expected) in [
        (json!({"seat_ids": []}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"seat_ids": [camera[0], camera[0]]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"seat_ids": [Uuid::new_v4()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"seat_ids": ["x"]}), StatusCode::BAD_REQUEST),
    ] {
        let (status, answer) = app.post(&path, Some(&organizer.token), &bad).await;
        assert_error(status, &answer, expected, "validation_failed");
    }
    let (status, body) = app
        .post(
            &path,
            Some(&organizer.token),
            &json!({"seat_ids": camera, "reason": "Camera"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seats"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(app.seat_states(event_id).await[&camera[0]], "blocked");

    // The sale opens; the other ten seats sell; a buyer waits.
    app.clock.advance(chrono::Duration::minutes(61));
    let buyer = app.buyer().await;
    app.order_of(&buyer, event_id, 6).await;
    app.order_of(&buyer, event_id, 4).await;
    let (status, body) = app
        .post(
            &path,
            Some(&organizer.token),
            &json!({"seat_ids": [section[2]]}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "sale_started");
    let waiter = app.buyer().await;
    let (status, entry) = app
        .join_waitlist(
            &waiter,
            event_id,
            &json!({"section_id": venue.seated[0], "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");

    // Released: the first seat is offered to the waiter, the second is on sale.
    let mut viewer = Watcher::connect(&app, event_id, "").await;
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &path,
            Some(&organizer.token),
            Some(&json!({"seat_ids": camera})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seats"].as_array().map(Vec::len), Some(0), "{body}");
    let offers = app.offers_until(&waiter, 1).await;
    assert_eq!(offers[0]["quantity"], 1);
    viewer
        .until(
            "one released seat is held for the waiter, the other on sale",
            |w| {
                let states = [w.seat(camera[0]), w.seat(camera[1])];
                states.contains(&"held") && states.contains(&"available")
            },
        )
        .await;
    let (status, order) = app
        .checkout(&waiter.token, &offers[0]["hold_id"], "offer", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert!(camera.contains(&uuid(&order["tickets"][0]["seat_id"])));
}
