//! The rules a hold keeps: the sale window, per-order and per-buyer limits across orders, other buyers' holds, and bad requests answered with 4xx.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn holds_keep_to_the_sale_window_and_the_limits() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let buyer = app.buyer().await;
    // Not open yet (an on-sale without a waiting room: holds need no admission).
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 10).await;
    app.set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
        .await;
    let mut schedule = onsale_body(1, 10);
    schedule["waiting_room"] = serde_json::Value::Null;
    let (status, body) = app.set_onsale(&organizer.token, event_id, &schedule).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "sale_not_open");
    // …and it opens when the clock gets there.
    app.clock.advance(Duration::hours(1) + Duration::minutes(1));
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (_, open_event) = app.on_sale_event(&organizer.token).await;
    let (status, body) = app
        .hold(
            &buyer.token,
            open_event,
            &json!({"best_available": {"quantity": 7}}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "max_per_order_exceeded",
    );
    assert_eq!(body["error"]["max_per_order"], 6);
    for _ in 0..2 {
        let (status, _) = app
            .hold(
                &buyer.token,
                open_event,
                &json!({"best_available": {"quantity": 1}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, body) = app
        .hold(
            &buyer.token,
            open_event,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "too_many_holds");

    // A cancelled event sells nothing.
    let (status, _) = app.cancel(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK);
    let other = app.buyer().await;
    let (status, body) = app
        .hold(
            &other.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "sale_not_open");
}

#[actix_web::test]
async fn bad_hold_requests_are_4xx_naming_what_is_wrong() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (_, other_event) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let a = app.seat_ids(event_id, 0).await;
    let foreign = app.seat_ids(other_event, 0).await;

    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"seat_ids": [uuid::Uuid::new_v4()]}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["seat_ids"]);
    let (status, body) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [foreign[0]]}))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[0], a[0]]}))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": []}))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 0}}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["best_available.quantity"]);
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": -2}}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"seat_ids": [a[0]], "best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app.hold(&buyer.token, event_id, &json!({})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": uuid::Uuid::new_v4(), "quantity": 1}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["tier_id"]);
    let (status, body) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": ["not-a-uuid"]}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = app
        .hold(
            &buyer.token,
            uuid::Uuid::new_v4(),
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{event_id}/holds"),
            None,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app
        .get(
            &format!("/api/v1/holds/{}", uuid::Uuid::new_v4()),
            Some(&buyer.token),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "hold_not_found");
    let drafts = app.standard_venue(&organizer.token).await;
    let draft = app.draft_event(&organizer.token, drafts.venue_id, 20).await;
    let (status, body) = app
        .hold(
            &buyer.token,
            draft,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[actix_web::test]
async fn another_buyers_hold_cannot_be_read_released_or_bought() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (owner, thief) = (app.buyer().await, app.buyer().await);
    let (_, hold) = app
        .hold(
            &owner.token,
            event_id,
            &json!({"best_available": {"quantity": 2}}),
        )
        .await;
    let path = format!(
        "/api/v1/holds/{}",
        hold["hold_id"].as_str().unwrap_or_default()
    );
    let (status, body) = app.get(&path, Some(&thief.token)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .call(reqwest::Method::DELETE, &path, Some(&thief.token), None)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .checkout(&thief.token, &hold["hold_id"], "k1", "tok_ok")
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(app.gateway.calls().is_empty(), "nothing was charged");
    let (status, _) = app.get(&path, Some(&owner.token)).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn a_buyer_cannot_pass_the_events_ticket_limit_across_orders() {
    let app = crate::helpers::spawn_app().await;
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
    onsale["max_per_order"] = json!(2);
    onsale.as_object_mut().map(|o| o.remove("max_per_buyer"));
    let (status, saved) = app.set_onsale(&organizer.token, event_id, &onsale).await;
    assert_eq!(
        (status, saved["max_per_buyer"].clone()),
        (StatusCode::OK, json!(2)),
        "by default, as many as one order may take"
    );
    onsale["max_per_buyer"] = json!(1);
    let (status, body) = app.set_onsale(&organizer.token, event_id, &onsale).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    onsale["max_per_buyer"] = json!(3);
    let (status, saved) = app.set_onsale(&organizer.token, event_id, &onsale).await;
    assert_eq!(
        (status, saved["max_per_buyer"].clone()),
        (StatusCode::OK, json!(3))
    );
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seats = app.seat_ids(event_id, 0).await;
    let buyer = app.buyer().await;

    // Two bought, then two more held would make four: refused; one more is fine.
    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"seat_ids": [seats[0], seats[1]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, order) = app
        .checkout(&buyer.token, &hold["hold_id"], "a", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"seat_ids": [seats[2], seats[3]]}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "buyer_limit_exceeded",
    );
    assert_eq!(
        (
            body["error"]["max_per_buyer"].clone(),
            body["error"]["tickets"].clone()
        ),
        (json!(3), json!(2))
    );
    let (status, third) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [seats[2]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    // Held tickets count too, before they are bought.
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "buyer_limit_exceeded",
    );
    // Released tickets are free to hold again.
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/holds/{}",
                third["hold_id"].as_str().unwrap_or_default()
            ),
            Some(&buyer.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [seats[4]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Another node (or this one restarted) counts what was bought from Postgres.
    app.stop_owning().await;
    let other = crate::helpers::spawn_app_sharing(&app, |_| {}).await;
    let (status, body) = other
        .hold(
            &buyer.token,
            event_id,
            &json!({"seat_ids": [seats[5], seats[6]]}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "buyer_limit_exceeded",
    );
}
