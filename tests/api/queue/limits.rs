//! Rate limits per buyer and per address, and odd requests answered clearly.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

#[actix_web::test]
async fn join_status_and_holds_are_rate_limited_per_buyer_and_per_address() {
    let app = spawn_app_with(|s| {
        s.buyer_rate_per_minute = 5;
        s.ip_rate_per_minute = 12;
    })
    .await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyer = app.buyer().await;
    for _ in 0..5 {
        let (status, body) = app.place(event_id, &buyer.token).await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }
    let response = app
        .client
        .post(app.url(&format!("/api/v1/events/{event_id}/queue")))
        .bearer_auth(&buyer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(wait >= 1, "Retry-After: {wait}");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": Uuid::new_v4(), "quantity": 1}),
        )
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Other buyers from the same address share its allowance: 12 a minute, of which the
    // refused join and hold above counted too (7 used).
    let others = app.quick_buyers(7).await;
    let mut limited = 0;
    for other in &others {
        let (status, _) = app.join(event_id, &other.token).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert_eq!(
        limited, 2,
        "the address's 13th and 14th requests are refused"
    );
}

#[actix_web::test]
async fn odd_waiting_room_requests_get_clear_answers() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let buyer = app.buyer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let (_, plain) = app.on_sale_event(&organizer.token).await;

    let (status, body) = app.join(Uuid::new_v4(), &buyer.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.join(plain, &buyer.token).await;
    assert_error(status, &body, StatusCode::CONFLICT, "no_waiting_room");
    let (status, body) = app.place(event_id, &buyer.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{event_id}/queue"),
            None,
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app.join(event_id, "not-a-token").await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // The waiting room opens at its time, not before.
    let venue = app.standard_venue(&organizer.token).await;
    let later = app.draft_event(&organizer.token, venue.venue_id, 9).await;
    app.set_pricing(&organizer.token, later, &standard_pricing(&venue))
        .await;
    let now = chrono::Utc::now();
    let (status, body) = app
        .set_onsale(
            &organizer.token,
            later,
            &json!({
                "sale_starts_at": now + Duration::hours(3), "sale_ends_at": days_from_now(9),
                "hold_minutes": 8, "max_per_order": 4,
                "waiting_room": {"queue_opens_at": now + Duration::hours(2), "admission_per_minute": 100}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.join(later, &buyer.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    app.publish(&organizer.token, later).await;
    let (status, body) = app.join(later, &buyer.token).await;
    assert_error(status, &body, StatusCode::CONFLICT, "queue_not_open");
    assert!(body["error"]["queue_opens_at"].is_string(), "{body}");

    // Organizer controls: only the event's organizer, and only sensible values.
    let path = format!("/api/v1/events/{event_id}/queue");
    // An empty change changes nothing and shows the figures.
    let (status, answer) = app.patch(&path, Some(&organizer.token), &json!({})).await;
    assert_eq!(
        (status, answer["paused"].clone()),
        (StatusCode::OK, json!(false)),
        "{answer}"
    );
    for (body, field) in [
        (json!({"admission_per_minute": 0}), "admission_per_minute"),
        (
            json!({"admission_per_minute": 10_000_000_000i64}),
            "admission_per_minute",
        ),
    ] {
        let (status, answer) = app.patch(&path, Some(&organizer.token), &body).await;
        assert_error(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(answer["error"]["fields"][field].is_string(), "{answer}");
    }
    let (status, answer) = app
        .patch(&path, Some(&organizer.token), &json!({"paused": "yes"}))
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
    let (status, answer) = app
        .patch(&path, Some(&buyer.token), &json!({"paused": true}))
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let rival = app.organizer().await;
    let (status, answer) = app.get(&format!("{path}/stats"), Some(&rival.token)).await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = app
        .patch(
            &format!("/api/v1/events/{plain}/queue"),
            Some(&organizer.token),
            &json!({"paused": true}),
        )
        .await;
    assert_error(status, &answer, StatusCode::CONFLICT, "no_waiting_room");

    // A cancelled event's room is closed.
    app.join(event_id, &buyer.token).await;
    let (status, _) = app.cancel(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK);
    app.eventually("the room is closed", || async {
        let (_, place) = app.place(event_id, &buyer.token).await;
        place["state"] == "closed"
    })
    .await;
}
