//! Admission: pushed over the socket with its token, demanded by holds and checkout, claimed by a visitor after signing in, one draw per buyer.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

use super::*;

#[actix_web::test]
async fn admission_is_pushed_over_the_socket_with_its_token() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyer = app.buyer().await;
    let (_, place) = app.join(event_id, &buyer.token).await;
    assert_eq!(place["phase"], "pre_queue");
    let mut socket = watch(&app, event_id, &buyer.token).await;
    let hello = next_message(&mut socket).await;
    assert_eq!(
        (hello["type"].clone(), hello["phase"].clone()),
        (json!("queue"), json!("pre_queue"))
    );
    app.start_sale();
    app.admit_pass(event_id).await;
    let news = loop {
        let news = next_message(&mut socket).await;
        if news["state"] == "admitted" {
            break news;
        }
    };
    let token = string(&news["admission_token"]);
    let tier = app.general_tier(event_id).await;
    let (status, hold) = app
        .admitted_hold(
            &buyer.token,
            Some(&token),
            event_id,
            &json!({"tier_id": tier, "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");

    // A socket without a valid token is refused before the upgrade.
    let url = format!(
        "{}/api/v1/events/{event_id}/queue/live?token=nonsense",
        app.address.replacen("http", "ws", 1)
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[actix_web::test]
async fn holds_and_checkout_demand_a_valid_admission_for_the_event_and_the_buyer() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let other_event = app.room_event(&organizer, ROOM).await;
    let (alice, bob) = (app.buyer().await, app.buyer().await);
    for buyer in [&alice, &bob] {
        app.join(event_id, &buyer.token).await;
    }
    app.join(other_event, &alice.token).await;
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 2);
    assert_eq!(app.admit_pass(other_event).await, 1);
    let alices = app.admission(event_id, &alice.token).await;
    let bobs = app.admission(event_id, &bob.token).await;
    let alices_other = app.admission(other_event, &alice.token).await;
    let (_, joined) = app.join(event_id, &alice.token).await;
    assert_eq!(
        string(&joined["admission_token"]),
        alices,
        "joining again: the same session"
    );
    let tier = app.general_tier(event_id).await;
    let two = json!({"tier_id": tier, "quantity": 2});

    let (status, body) = app.admitted_hold(&alice.token, None, event_id, &two).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "admission_required",
    );
    let forged =
        boxoffice::queue::admission::AdmissionKeys::new(b"another-secret-another-secret-!!")
            .issue(
                alice.user_id,
                event_id,
                chrono::Utc::now(),
                Duration::minutes(15),
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .0;
    let cases = [
        ("garbage", "invalid"),
        (forged.as_str(), "invalid"),
        (alice.token.as_str(), "invalid"),
        (alices_other.as_str(), "other_event"),
        (bobs.as_str(), "other_buyer"),
    ];
    for (token, reason) in cases {
        let (status, body) = app
            .admitted_hold(&alice.token, Some(token), event_id, &two)
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
        assert_eq!(body["error"]["reason"], reason, "{body}");
    }
    let (status, rows): (StatusCode, i64) = (
        StatusCode::OK,
        sqlx::query_scalar("SELECT count(*) FROM orders")
            .fetch_one(&app.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!((status, rows), (StatusCode::OK, 0));

    // The right token: the hold is placed, and ends no later than the shopping window.
    let (status, hold) = app
        .admitted_hold(&alice.token, Some(&alices), event_id, &two)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (_, place) = app.place(event_id, &alice.token).await;
    assert!(string(&hold["expires_at"]) <= string(&place["expires_at"]));
    let (status, body) = app
        .admitted_checkout(&alice.token, None, &hold["hold_id"])
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "admission_required",
    );
    let (status, body) = app
        .admitted_checkout(&alice.token, Some(&bobs), &hold["hold_id"])
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
    let (status, order) = app
        .admitted_checkout(&alice.token, Some(&alices), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    // The token works for its own event only.
    let other_tier = app.general_tier(other_event).await;
    let (status, _) = app
        .admitted_hold(
            &alice.token,
            Some(&alices_other),
            other_event,
            &json!({"tier_id": other_tier, "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Once the shopping window closes, the token is refused.
    app.clock.advance(Duration::minutes(16));
    let (status, body) = app
        .admitted_hold(&bob.token, Some(&bobs), event_id, &two)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
    assert_eq!(body["error"]["reason"], "expired");
}

#[actix_web::test]
async fn a_visitor_queues_anonymously_and_claims_the_admission_after_signing_in() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let visitor_token = app.visitor().await;
    let (status, place) = app.join(event_id, &visitor_token).await;
    assert_eq!(
        (status, place["state"].clone()),
        (StatusCode::OK, json!("waiting"))
    );
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 1);
    let visitors_pass = app.admission(event_id, &visitor_token).await;
    let buyer = app.buyer().await;
    let tier = app.general_tier(event_id).await;
    let one = json!({"tier_id": tier, "quantity": 1});
    let (status, body) = app
        .admitted_hold(&buyer.token, Some(&visitors_pass), event_id, &one)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
    assert_eq!(body["error"]["reason"], "other_buyer");

    // Signing in and claiming moves the admission to the buyer.
    let (status, body) = app.claim(event_id, &buyer.token, "not-a-token").await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, claimed) = app.claim(event_id, &buyer.token, &visitor_token).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["state"], "admitted");
    let claimed_token = string(&claimed["admission_token"]);
    let (status, hold) = app
        .admitted_hold(&buyer.token, Some(&claimed_token), event_id, &one)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, body) = app.place(event_id, &visitor_token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");

    // A buyer who queued on their own keeps their own admission: claiming a visitor who
    // was let in earlier does not improve it, and that visitor's admission is given up.
    let (early, own_buyer) = (app.visitor().await, app.buyer().await);
    app.join(event_id, &early).await;
    app.clock.advance(Duration::seconds(2));
    assert_eq!(app.admit_pass(event_id).await, 1);
    app.join(event_id, &own_buyer.token).await;
    app.clock.advance(Duration::seconds(2));
    assert_eq!(app.admit_pass(event_id).await, 1);
    let own = app.admission(event_id, &own_buyer.token).await;
    let (status, kept) = app.claim(event_id, &own_buyer.token, &early).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(
        kept["admitted_at"],
        app.place(event_id, &own_buyer.token).await.1["admitted_at"]
    );
    let (status, hold) = app
        .admitted_hold(&own_buyer.token, Some(&own), event_id, &one)
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "still their own session: {hold}"
    );
    let (status, body) = app.place(event_id, &early).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
}

#[actix_web::test]
async fn a_buyer_with_many_visitor_tokens_still_gets_one_draw() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyer = app.buyer().await;
    let mut tickets = Vec::new();
    for _ in 0..5 {
        let visitor = app.visitor().await;
        app.join(event_id, &visitor).await;
        tickets.push(visitor);
    }
    let others = app.quick_buyers(40).await;
    for other in &others {
        app.join(event_id, &other.token).await;
    }

    // Before the draw, the first claim moves a place; every further identity is given up.
    let (status, first) = app.claim(event_id, &buyer.token, &tickets[0]).await;
    assert_eq!(
        (status, first["phase"].clone()),
        (StatusCode::OK, json!("pre_queue"))
    );
    for extra in &tickets[1..] {
        let (status, kept) = app.claim(event_id, &buyer.token, extra).await;
        assert_eq!(status, StatusCode::OK, "{kept}");
        let (status, body) = app.place(event_id, extra).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    }
    // The draw, with admission paused so that everyone stays in the line.
    app.control(&organizer, event_id, json!({"paused": true}))
        .await;
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 0);
    let (status, place) = app.place(event_id, &buyer.token).await;
    assert_eq!(
        (status, place["phase"].clone()),
        (StatusCode::OK, json!("line"))
    );
    assert_eq!(
        place["waiting"],
        json!(41),
        "one place for the buyer, 40 for the others"
    );

    // After the draw, a waiting visitor cannot be claimed: that would let a buyer pick the
    // best of several draws. Once let in, it can (by a buyer with nothing yet).
    let late_visitor = app.visitor().await;
    app.join(event_id, &late_visitor).await;
    let newcomer = app.buyer().await;
    let (status, body) = app.claim(event_id, &newcomer.token, &late_visitor).await;
    assert_error(status, &body, StatusCode::CONFLICT, "claim_too_late");
    let (status, body) = app.place(event_id, &late_visitor).await;
    assert_eq!(status, StatusCode::OK, "the visitor keeps waiting: {body}");
}

#[actix_web::test]
async fn a_completed_checkout_retried_after_the_shopping_window_closed_gets_its_order() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyer = app.buyer().await;
    app.join(event_id, &buyer.token).await;
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 1);
    let pass = app.admission(event_id, &buyer.token).await;
    let tier = app.general_tier(event_id).await;
    let two = json!({"tier_id": tier, "quantity": 2});
    let (status, hold) = app
        .admitted_hold(&buyer.token, Some(&pass), event_id, &two)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let key = "retry-after-the-window";
    let (status, order) = app
        .admitted_checkout_keyed(&buyer.token, Some(&pass), &hold["hold_id"], key)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

    // The page ends the session after paying (and the window would close anyway): the
    // answer was lost, the client retries with the same key.
    let (status, body) = app
        .delete(
            &format!("/api/v1/events/{event_id}/queue"),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.clock.advance(Duration::hours(2));
    for admission in [Some(pass.as_str()), None] {
        let (status, again) = app
            .admitted_checkout_keyed(&buyer.token, admission, &hold["hold_id"], key)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{again}");
        assert_eq!(again["order_id"], order["order_id"]);
        assert_eq!(again["tickets"], order["tickets"]);
    }
    // Another key is a new attempt, and the room asks for an admission again.
    let (status, body) = app
        .admitted_checkout_keyed(&buyer.token, None, &hold["hold_id"], "another")
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "admission_required",
    );
    // Someone else's key replays nothing of this buyer's.
    let thief = app.buyer().await;
    let (status, body) = app
        .admitted_checkout_keyed(&thief.token, None, &hold["hold_id"], key)
        .await;
    assert_ne!(status, StatusCode::CREATED, "{body}");
    let charges: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payments p JOIN orders o USING (order_id) WHERE o.hold_id = $1",
    )
    .bind(uuid(&hold["hold_id"]))
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(charges, 1, "one payment for one order");
}
