//! How holds end: released, expired at their deadline, bought to the last seat (SOLD_OUT).

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn releasing_a_hold_puts_its_seats_back_at_once() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (one, two) = (app.buyer().await, app.buyer().await);
    let a = app.seat_ids(event_id, 0).await;
    let (_, hold) = app
        .hold(&one.token, event_id, &json!({"seat_ids": [a[2]]}))
        .await;
    let path = format!(
        "/api/v1/holds/{}",
        hold["hold_id"].as_str().unwrap_or_default()
    );
    let (status, _) = app
        .call(reqwest::Method::DELETE, &path, Some(&one.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&path, Some(&one.token)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "hold_not_found");
    let (status, _) = app
        .hold(&two.token, event_id, &json!({"seat_ids": [a[2]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn a_hold_expires_at_its_deadline_and_its_seats_go_back_on_sale() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (one, two) = (app.buyer().await, app.buyer().await);
    let a = app.seat_ids(event_id, 0).await;
    let (_, hold) = app
        .hold(&one.token, event_id, &json!({"seat_ids": [a[0], a[1]]}))
        .await;
    let path = format!(
        "/api/v1/holds/{}",
        hold["hold_id"].as_str().unwrap_or_default()
    );

    app.clock
        .advance(Duration::minutes(7) + Duration::seconds(59));
    let (status, still) = app.get(&path, Some(&one.token)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a second before the deadline the hold stands: {still}"
    );

    app.pass_time(event_id, Duration::seconds(2)).await;
    let (status, body) = app.get(&path, Some(&one.token)).await;
    assert_error(status, &body, StatusCode::CONFLICT, "hold_expired");
    let states = app.seat_states(event_id).await;
    assert_eq!(states[&a[0]], "available");
    let (status, _) = app
        .hold(&two.token, event_id, &json!({"seat_ids": [a[0], a[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn an_event_whose_last_seat_is_bought_becomes_sold_out() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let mut venue = crate::helpers::venue_body("Tiny Room", "Nantes");
    venue["layout"] =
        json!({"sections": [{"name": "Only", "kind": "seated", "rows": 1, "seats_per_row": 2}]});
    let (status, created) = app.create_venue(&organizer.token, &venue).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let venue_id = crate::helpers::uuid(&created["venue_id"]);
    let event_id = app.draft_event(&organizer.token, venue_id, 9).await;
    let section = created["sections"][0]["section_id"].clone();
    app.set_pricing(
        &organizer.token,
        event_id,
        &json!({"currency": "EUR", "sections": [{"section_id": section, "price_cents": 1000}]}),
    )
    .await;
    app.set_onsale(
        &organizer.token,
        event_id,
        &crate::helpers::open_onsale_body(9),
    )
    .await;
    app.publish(&organizer.token, event_id).await;

    let buyer = app.buyer().await;
    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, body) = app
        .hold(
            &app.buyer().await.token,
            event_id,
            &json!({"best_available": {"quantity": 1}}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "sold_out");
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(
        detail["status"], "ON_SALE",
        "held seats may still come back"
    );

    let (status, _) = app
        .checkout(&buyer.token, &hold["hold_id"], "all", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.eventually("the event is SOLD_OUT in Postgres", || async {
        let status: String = sqlx::query_scalar("SELECT status FROM events WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&app.pool)
            .await
            .unwrap_or_default();
        status == "SOLD_OUT"
    })
    .await;
    let (_, list) = app.get("/api/v1/events", None).await;
    assert_eq!(list["events"][0]["status"], "SOLD_OUT");
    assert_eq!(list["events"][0]["available"], 0);
}
