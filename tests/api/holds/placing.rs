//! Placing holds: exact seats, across sections (all or nothing), best available together, GA tiers.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_buyer_holds_exact_seats_and_sees_them_in_the_hold() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let a = app.seat_ids(event_id, 0).await;
    let b = app.seat_ids(event_id, 1).await;

    let (status, hold) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[0], b[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["status"], "HELD");
    assert_eq!(hold["quantity"], 2);
    assert_eq!(hold["total_cents"], 8000 + 5000);
    assert_eq!(hold["currency"], "EUR");
    assert_eq!(hold["seats"][0]["label"], "A A-1");
    assert_eq!(hold["seats"][1]["label"], "B 1-1");
    assert!(hold["expires_at"].is_string());

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
    assert_eq!(again["hold_id"], hold["hold_id"]);
    let states = app.seat_states(event_id).await;
    assert_eq!(states[&a[0]], "held");
    assert_eq!(states[&a[1]], "available");
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(detail["sections"][0]["available"], 11, "{detail}");
    // The engine records ON_SALE behind the sale (never in a buyer's way): it comes soon.
    let path = format!("/api/v1/events/{event_id}");
    app.eventually("the event is recorded ON_SALE", || async {
        app.get(&path, None).await.1["status"] == "ON_SALE"
    })
    .await;
}

#[actix_web::test]
async fn a_seat_held_by_one_buyer_is_unavailable_to_another() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (one, two) = (app.buyer().await, app.buyer().await);
    let a = app.seat_ids(event_id, 0).await;
    let (status, _) = app
        .hold(&one.token, event_id, &json!({"seat_ids": [a[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .hold(&two.token, event_id, &json!({"seat_ids": [a[1], a[0]]}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "seat_unavailable");
    assert_eq!(body["error"]["seat_ids"], json!([a[0]]));
    // All or nothing: the free seat of the refused request is still free.
    let (status, _) = app
        .hold(&two.token, event_id, &json!({"seat_ids": [a[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn a_hold_across_sections_is_rolled_back_when_one_section_refuses() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (one, two) = (app.buyer().await, app.buyer().await);
    let a = app.seat_ids(event_id, 0).await;
    let b = app.seat_ids(event_id, 1).await;
    app.hold(&one.token, event_id, &json!({"seat_ids": [b[3]]}))
        .await;
    let (status, body) = app
        .hold(
            &two.token,
            event_id,
            &json!({"seat_ids": [a[5], a[6], b[3]]}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "seat_unavailable");
    assert_eq!(body["error"]["seat_ids"], json!([b[3]]));
    let states = app.seat_states(event_id).await;
    assert_eq!(
        (states[&a[5]].as_str(), states[&a[6]].as_str()),
        ("available", "available"),
        "section A was not rolled back"
    );
}

#[actix_web::test]
async fn best_available_holds_seats_together_in_the_best_row() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 3}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let labels: Vec<_> = hold["seats"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| s["label"].clone())
        .collect();
    assert_eq!(
        labels,
        vec![json!("A A-1"), json!("A A-2"), json!("A A-3")],
        "the dearest section, front row, side by side"
    );

    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"section_id": venue.seated[1], "quantity": 4}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let labels: Vec<_> = hold["seats"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| s["label"].clone())
        .collect();
    assert_eq!(
        labels,
        vec![
            json!("B 1-1"),
            json!("B 1-2"),
            json!("B 1-3"),
            json!("B 1-4")
        ]
    );
}

#[actix_web::test]
async fn tier_holds_count_down_the_tier_until_it_is_sold_out() {
    let app = spawn_app_with(|s| s.max_holds_per_buyer = 50).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    let vip = detail["tiers"][1]["tier_id"].clone();
    assert_eq!(detail["tiers"][1]["name"], "VIP");

    for _ in 0..10 {
        let (status, hold) = app
            .hold(
                &buyer.token,
                event_id,
                &json!({"tier_id": vip, "quantity": 2}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        assert_eq!(hold["tier"]["quantity"], 2);
        assert_eq!(hold["total_cents"], 24000);
    }
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": vip, "quantity": 1}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "sold_out");
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": vip, "quantity": 3}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "max_per_order_exceeded",
    );
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(detail["tiers"][1]["available"], 0);
    assert_eq!(detail["tiers"][0]["available"], 80);
}

#[actix_web::test]
async fn best_available_at_a_price_level_stays_at_that_price() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    // Section A is €80, B €50: the best seats at €50 are in B, although A is better.
    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 2, "price_cents": 5000}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["total_cents"], 10_000, "{hold}");
    assert!(
        hold["seats"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|s| s["label"].as_str().is_some_and(|l| l.starts_with("B "))),
        "{hold}"
    );
    // A price nobody sells at, or a section at another price, names the field.
    for body in [
        json!({"best_available": {"quantity": 1, "price_cents": 1234}}),
        json!({"best_available": {"quantity": 1, "price_cents": 5000, "section_id": venue.seated[0]}}),
    ] {
        let (status, refused) = app.hold(&buyer.token, event_id, &body).await;
        assert_error(
            status,
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            refused["error"]["fields"]["best_available.price_cents"].is_string(),
            "{refused}"
        );
    }
}
