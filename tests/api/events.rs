use chrono::{Duration, Utc};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_error, assert_fields, days_from_now, event_body, onsale_body, spawn_app,
    standard_pricing,
};

#[actix_web::test]
async fn an_organizer_creates_a_draft_event() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let (status, body) = app
        .create_event(
            &organizer.token,
            &event_body(venue.venue_id, "Opening Night", 12),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "DRAFT");
    assert_eq!(body["title"], "Opening Night");
    assert_eq!(body["performers"], json!(["The Asserts"]));
    assert_eq!(body["venue"]["venue_id"], json!(venue.venue_id));
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["onsale"], json!(null));
    let (status, own) = app
        .get("/api/v1/organizer/events", Some(&organizer.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["events"][0]["event_id"], body["event_id"]);
}

#[actix_web::test]
async fn bad_event_fields_are_named() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let start = days_from_now(5);
    let (status, body) = app
        .create_event(
            &organizer.token,
            &json!({"venue_id": venue.venue_id, "title": "", "category": "KNITTING", "start_time": start,
                    "end_time": start - Duration::hours(1), "age_restriction": 150, "currency": "euro",
                    "cover_image_url": "ftp://x", "setup_hours": -1}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(
        &body,
        &[
            "title",
            "category",
            "end_time",
            "age_restriction",
            "currency",
            "cover_image_url",
            "setup_hours",
        ],
    );

    let past = Utc::now() - Duration::days(1);
    let (status, body) = app
        .create_event(
            &organizer.token,
            &json!({"venue_id": venue.venue_id, "title": "Late", "category": "OTHER",
            "start_time": past, "end_time": past + Duration::hours(1)}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["start_time"]);
}

#[actix_web::test]
async fn an_unknown_venue_is_named_in_the_error() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (status, body) = app
        .create_event(
            &organizer.token,
            &event_body(uuid::Uuid::new_v4(), "Nowhere", 5),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["venue_id"]);
}

#[actix_web::test]
async fn overlapping_events_at_one_venue_are_refused() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    app.draft_event(&organizer.token, venue.venue_id, 10).await;
    let start = days_from_now(10) + Duration::hours(2);
    let (status, body) = app
        .create_event(
            &organizer.token,
            &json!({"venue_id": venue.venue_id, "title": "Clash", "category": "COMEDY",
            "start_time": start, "end_time": start + Duration::hours(2)}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "venue_booked");

    // Setup hours count too: an event starting right after the first one needs no setup…
    let after = days_from_now(10) + Duration::hours(3);
    let next = json!({"venue_id": venue.venue_id, "title": "Late show", "category": "COMEDY",
        "start_time": after, "end_time": after + Duration::hours(1)});
    let (status, created) = app.create_event(&organizer.token, &next).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // …but one that needs two hours of setup before it does not fit.
    let later = after + Duration::hours(2);
    let (status, body) = app
        .create_event(
            &organizer.token,
            &json!({"venue_id": venue.venue_id, "title": "Big build", "category": "FESTIVAL",
            "start_time": later, "end_time": later + Duration::hours(1), "setup_hours": 2}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "venue_booked");
}

#[actix_web::test]
async fn concurrent_bookings_of_one_slot_yield_exactly_one_event() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let attempts = (0..20).map(|i| {
        let body = event_body(venue.venue_id, &format!("Rival {i}"), 15);
        let (app, token) = (&app, organizer.token.clone());
        async move { app.create_event(&token, &body).await }
    });
    let results = join_all(attempts).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "venue_booked")
        .count();
    assert_eq!((created, refused), (1, 19), "{results:?}");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
    assert_eq!(events, 1, "a refused booking left its event behind");
}

#[actix_web::test]
async fn pricing_sets_section_prices_and_floor_tiers() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 8).await;
    let (status, body) = app
        .set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["currency"], "EUR");
    let sections = body["sections"].as_array().cloned().unwrap_or_default();
    assert_eq!(sections[0]["price_cents"], 8000);
    assert_eq!(sections[0]["available"], 12);
    assert_eq!(sections[2]["kind"], "general_admission");
    assert_eq!(sections[2]["price_cents"], 4000);
    assert_eq!(sections[2]["available"], 100);
    let tiers = body["tiers"].as_array().cloned().unwrap_or_default();
    assert_eq!(tiers.len(), 2);
    assert_eq!(
        (
            tiers[1]["name"].clone(),
            tiers[1]["available"].clone(),
            tiers[1]["max_per_order"].clone()
        ),
        (json!("VIP"), json!(20), json!(2))
    );
    assert_eq!(body["min_price_cents"], 4000);
    assert_eq!(body["available"], 12 + 10 + 100);

    // A second price list replaces the first.
    let (status, body) = app
        .set_pricing(&organizer.token, event_id, &json!({"currency": "EUR", "sections": [{"section_id": venue.seated[0], "price_cents": 100}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tiers"], json!([]));
    assert_eq!(body["sections"][1]["price_cents"], json!(null));
    assert_eq!(body["available"], 12);
}

#[actix_web::test]
async fn pricing_refuses_prices_that_do_not_fit_the_venue() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 8).await;
    let (status, body) = app
        .set_pricing(
            &organizer.token,
            event_id,
            &json!({"currency": "EUR",
                "sections": [{"section_id": venue.seated[0], "price_cents": -100},
                             {"section_id": venue.floor, "price_cents": 100},
                             {"section_id": uuid::Uuid::new_v4(), "price_cents": 100}],
                "tiers": [{"section_id": venue.floor, "name": "GENERAL", "price_cents": 10, "quantity": 90, "max_per_order": 4},
                          {"section_id": venue.floor, "name": "VIP", "price_cents": 10, "quantity": 20, "max_per_order": 0}]}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(
        &body,
        &[
            "sections[0].price_cents",
            "sections[1].section_id",
            "sections[2].section_id",
            "tiers",
            "tiers[1].max_per_order",
        ],
    );
    let tiers: i64 = sqlx::query_scalar("SELECT count(*) FROM ticket_tiers")
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
    assert_eq!(tiers, 0);
}

#[actix_web::test]
async fn the_onsale_schedule_is_validated_and_saved() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 8).await;
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &onsale_body(2, 8))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hold_minutes"], 8);
    assert_eq!(body["waiting_room"]["admission_per_minute"], 500);

    let now = Utc::now();
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &json!({"sale_starts_at": now + Duration::hours(3), "sale_ends_at": now + Duration::hours(2),
            "hold_minutes": 0, "max_per_order": 0,
            "waiting_room": {"queue_opens_at": now + Duration::hours(4), "admission_per_minute": -3}}))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(
        &body,
        &[
            "sale_ends_at",
            "hold_minutes",
            "max_per_order",
            "waiting_room.queue_opens_at",
            "waiting_room.admission_per_minute",
        ],
    );

    let (status, body) = app
        .set_onsale(
            &organizer.token,
            event_id,
            &json!({"sale_starts_at": now, "sale_ends_at": days_from_now(30), "max_per_order": 4}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["sale_ends_at"]);

    // No hold_minutes: the server's default applies; no waiting room is fine.
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &json!({"sale_starts_at": now + Duration::hours(1), "sale_ends_at": days_from_now(8), "max_per_order": 4}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hold_minutes"], 10);
    assert_eq!(body["waiting_room"], json!(null));
}

#[actix_web::test]
async fn publishing_needs_prices_and_an_onsale() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 8).await;
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "event_not_ready");
    assert_eq!(
        body["error"]["missing"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );

    app.set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
        .await;
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "event_not_ready");
    assert_eq!(
        body["error"]["missing"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );

    app.set_onsale(&organizer.token, event_id, &onsale_body(1, 8))
        .await;
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "PUBLISHED");
}

#[actix_web::test]
async fn the_lifecycle_refuses_moves_it_does_not_allow() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.published_event(&organizer.token, 9).await;

    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "invalid_transition");

    let (status, body) = app.cancel(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CANCELLED");
    let (status, body) = app.cancel(&organizer.token, event_id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "invalid_transition");
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "invalid_transition");
    let (status, body) = app
        .patch(
            &format!("/api/v1/events/{event_id}"),
            Some(&organizer.token),
            &json!({"title": "Back"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "event_closed");
    let (status, body) = app
        .set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "event_closed");

    // The cancelled event freed its venue booking.
    let (status, body) = app
        .create_event(
            &organizer.token,
            &event_body(venue.venue_id, "Replacement", 9),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[actix_web::test]
async fn prices_and_schedule_are_frozen_once_the_sale_has_started() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 9).await;
    app.set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
        .await;
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &onsale_body(-1, 9))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "sale_started");
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &onsale_body(2, 9))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "sale_started");
}

#[actix_web::test]
async fn an_event_update_changes_its_details_and_moves_its_booking() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let first = app.draft_event(&organizer.token, venue.venue_id, 9).await;
    let second = app.draft_event(&organizer.token, venue.venue_id, 11).await;
    let path = format!("/api/v1/events/{first}");
    let (status, body) = app
        .patch(&path, Some(&organizer.token), &json!({"title": "Renamed", "performers": ["New Band"], "category": "festival", "age_restriction": 18}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["title"].clone(),
            body["category"].clone(),
            body["age_restriction"].clone()
        ),
        (json!("Renamed"), json!("FESTIVAL"), json!(18))
    );
    assert_eq!(body["performers"], json!(["New Band"]));

    // Moving onto the second event's night clashes; the first keeps its slot.
    let clash = days_from_now(11);
    let (status, body) = app
        .patch(&path, Some(&organizer.token), &json!({"start_time": clash, "end_time": clash + Duration::hours(2), "doors_open": clash - Duration::hours(1)}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "venue_booked");
    let (_, still) = app.get(&path, Some(&organizer.token)).await;
    assert_eq!(still["title"], "Renamed");
    let (_, other) = app
        .get(&format!("/api/v1/events/{second}"), Some(&organizer.token))
        .await;
    assert_eq!(other["status"], "DRAFT");

    let (status, body) = app
        .patch(
            &path,
            Some(&organizer.token),
            &json!({"end_time": days_from_now(1)}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["end_time"]);
}

#[actix_web::test]
async fn another_organizer_cannot_touch_an_event() {
    let app = spawn_app().await;
    let (owner, other) = (app.organizer().await, app.organizer().await);
    let venue = app.standard_venue(&owner.token).await;
    let event_id = app.ready_event(&owner.token, &venue, 9).await;
    let path = format!("/api/v1/events/{event_id}");
    let token = Some(other.token.as_str());
    let attempts = [
        app.patch(&path, token, &json!({"title": "Mine"})).await,
        app.set_pricing(&other.token, event_id, &standard_pricing(&venue))
            .await,
        app.set_onsale(&other.token, event_id, &onsale_body(1, 9))
            .await,
        app.publish(&other.token, event_id).await,
        app.cancel(&other.token, event_id).await,
    ];
    for (status, body) in attempts {
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    // A buyer is not an organizer at all.
    let buyer = app.buyer().await;
    let (status, body) = app.publish(&buyer.token, event_id).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // The other organizer cannot see the draft either.
    let (status, body) = app.get(&path, token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, own) = app.get(&path, Some(&owner.token)).await;
    assert_eq!(own["status"], "DRAFT");
    assert_eq!(own["title"], "Test Night");
}
