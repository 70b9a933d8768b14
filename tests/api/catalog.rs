use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_error, assert_fields, days_from_now, spawn_app, standard_pricing, uuid, venue_body,
};

#[actix_web::test]
async fn the_catalog_lists_published_events_with_venue_price_and_availability() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, published) = app.published_event(&organizer.token, 10).await;
    let venue = app.standard_venue(&organizer.token).await;
    app.ready_event(&organizer.token, &venue, 12).await; // stays a draft

    let (status, body) = app.get("/api/v1/events", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = body["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{body}");
    let event = &events[0];
    assert_eq!(uuid(&event["event_id"]), published);
    assert_eq!(event["status"], "PUBLISHED");
    assert_eq!(event["venue"]["name"], "Test Hall");
    assert!(event["venue"]["venue_id"].is_string());
    assert_eq!(event["venue"]["city"], "Lyon");
    assert_eq!(event["min_price_cents"], 4000);
    assert_eq!(event["currency"], "EUR");
    assert_eq!(event["available"], 12 + 10 + 100);
    assert_eq!(body["next_cursor"], json!(null));
}

#[actix_web::test]
async fn the_catalog_filters_by_category_city_keyword_and_dates() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, lyon_concert) = app.published_event(&organizer.token, 10).await;

    let (status, body) = app
        .create_venue(
            &organizer.token,
            &venue_body("Stade Vélodrome", "Marseille"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let venue_id = uuid(&body["venue_id"]);
    let sections = body["sections"].as_array().cloned().unwrap_or_default();
    let start = days_from_now(40);
    let (_, event) = app
        .create_event(&organizer.token, &json!({"venue_id": venue_id, "title": "Derby 100% Sold", "category": "SPORTS",
            "performers": ["Olympique"], "start_time": start, "end_time": start + Duration::hours(2)}))
        .await;
    let marseille_match = uuid(&event["event_id"]);
    app.set_pricing(&organizer.token, marseille_match, &json!({"currency": "EUR", "sections": [{"section_id": sections[0]["section_id"], "price_cents": 2500}]}))
        .await;
    app.set_onsale(
        &organizer.token,
        marseille_match,
        &json!({"sale_starts_at": days_from_now(1), "sale_ends_at": start, "max_per_order": 4}),
    )
    .await;
    let (status, body) = app.publish(&organizer.token, marseille_match).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let ids = |body: &serde_json::Value| -> Vec<uuid::Uuid> {
        body["events"]
            .as_array()
            .map(|a| a.iter().map(|e| uuid(&e["event_id"])).collect())
            .unwrap_or_default()
    };
    let (_, all) = app.get("/api/v1/events", None).await;
    assert_eq!(
        ids(&all),
        vec![lyon_concert, marseille_match],
        "soonest first"
    );
    let (_, sports) = app.get("/api/v1/events?category=sports", None).await;
    assert_eq!(ids(&sports), vec![marseille_match]);
    let (_, lyon) = app.get("/api/v1/events?city=LYON", None).await;
    assert_eq!(ids(&lyon), vec![lyon_concert]);
    let (_, by_performer) = app.get("/api/v1/events?q=olympique", None).await;
    assert_eq!(ids(&by_performer), vec![marseille_match]);
    let (_, by_venue) = app.get("/api/v1/events?q=v%C3%A9lodrome", None).await;
    assert_eq!(ids(&by_venue), vec![marseille_match]);
    let (_, literal_percent) = app.get("/api/v1/events?q=100%25", None).await;
    assert_eq!(ids(&literal_percent), vec![marseille_match]);
    let (_, wildcard) = app.get("/api/v1/events?q=%25%25", None).await;
    assert_eq!(ids(&wildcard), Vec::<uuid::Uuid>::new());
    let until = (days_from_now(20)).to_rfc3339().replace('+', "%2B");
    let (_, soon) = app.get(&format!("/api/v1/events?to={until}"), None).await;
    assert_eq!(ids(&soon), vec![lyon_concert]);
    let from = (days_from_now(20)).to_rfc3339().replace('+', "%2B");
    let (_, later) = app.get(&format!("/api/v1/events?from={from}"), None).await;
    assert_eq!(ids(&later), vec![marseille_match]);
}

#[actix_web::test]
async fn the_catalog_pages_through_many_events() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    for days in [10, 11, 12] {
        app.published_event(&organizer.token, days).await;
    }
    let (_, first) = app.get("/api/v1/events?per_page=2", None).await;
    assert_eq!(first["events"].as_array().map(Vec::len), Some(2));
    let cursor = first["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty(), "{first}");
    let (_, second) = app
        .get(&format!("/api/v1/events?per_page=2&cursor={cursor}"), None)
        .await;
    assert_eq!(second["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["next_cursor"], json!(null));
}

#[actix_web::test]
async fn bad_catalog_filters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    let (status, body) = app
        .get(
            "/api/v1/events?category=knitting&from=yesterday&cursor=nonsense&per_page=1000",
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert_fields(&body, &["category", "cursor", "from", "per_page"]);
    let (status, body) = app.get("/api/v1/events?colour=red", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
}

#[actix_web::test]
async fn event_detail_shows_venue_onsale_sections_and_tiers() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.published_event(&organizer.token, 10).await;
    let (status, body) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "PUBLISHED");
    assert_eq!(body["venue"]["timezone"], "Europe/Paris");
    assert_eq!(body["onsale"]["max_per_order"], 6);
    assert_eq!(body["onsale"]["waiting_room"]["admission_per_minute"], 500);
    let sections = body["sections"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        sections
            .iter()
            .map(|s| uuid(&s["section_id"]))
            .collect::<Vec<_>>(),
        vec![venue.seated[0], venue.seated[1], venue.floor]
    );
    assert_eq!(body["tiers"][0]["name"], "GENERAL");
    assert_eq!(body["tiers"][0]["available"], 80);
}

#[actix_web::test]
async fn the_seat_map_lists_rows_and_seats_in_order_with_prices() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.published_event(&organizer.token, 10).await;
    let (status, map) = app
        .get(&format!("/api/v1/events/{event_id}/seatmap"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{map}");
    let a = &map["sections"][0];
    assert_eq!(uuid(&a["section_id"]), venue.seated[0]);
    assert_eq!(a["rows"].as_array().map(Vec::len), Some(3));
    assert_eq!(a["rows"][0]["label"], "A");
    assert_eq!(a["rows"][2]["seats"][3]["label"], "C-4");
    assert_eq!(a["rows"][0]["seats"][0]["price_cents"], 8000);
    assert_eq!(a["rows"][0]["seats"][0]["state"], "available");
    let b = &map["sections"][1];
    assert_eq!(b["rows"][1]["seats"][4]["label"], "2-5");
    let floor = &map["sections"][2];
    assert_eq!(floor["kind"], "general_admission");
    assert_eq!(floor["rows"], json!([]));
    let a_right = a["rows"][0]["seats"][3]["x"].as_f64().unwrap_or(f64::MAX);
    let b_left = b["rows"][0]["seats"][0]["x"].as_f64().unwrap_or(f64::MIN);
    assert!(b_left > a_right, "sections overlap on the map");
}

#[actix_web::test]
async fn unknown_and_draft_events_are_404_and_malformed_ids_400() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let draft = app.draft_event(&organizer.token, venue.venue_id, 10).await;
    for path in [
        format!("/api/v1/events/{}", uuid::Uuid::new_v4()),
        format!("/api/v1/events/{draft}"),
        format!("/api/v1/events/{draft}/seatmap"),
    ] {
        let (status, body) = app.get(&path, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, body) = app.get("/api/v1/events/not-a-uuid", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
}

#[actix_web::test]
async fn the_seat_map_is_revalidated_by_etag_and_sent_compressed() {
    let app = crate::helpers::spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let url = app.url(&format!("/api/v1/events/{event_id}/seatmap"));
    let first = app
        .client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.status(), StatusCode::OK);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(&first, "content-encoding"), "gzip");
    assert_eq!(header(&first, "cache-control"), "no-cache");
    let tag = header(&first, "etag");
    assert!(tag.starts_with("W/\""), "{tag}");
    let again = app
        .client
        .get(&url)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A seat changes: the map is sent again, under another tag.
    let buyer = app.buyer().await;
    let seat = app.seat_ids(event_id, 0).await[0];
    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &serde_json::json!({"seat_ids": [seat]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let changed = app
        .client
        .get(&url)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(header(&changed, "etag"), tag);
}

#[actix_web::test]
async fn the_seating_is_read_once_per_event_while_prices_and_states_stay_current() {
    let app = crate::helpers::spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 9).await;
    let (status, body) = app
        .set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = format!("/api/v1/events/{event_id}/seatmap");
    let (status, map) = app.get(&path, Some(&organizer.token)).await;
    assert_eq!(status, StatusCode::OK, "{map}");
    let first = &map["sections"][0]["rows"][0]["seats"][0];
    let (seat, x, price) = (
        uuid(&first["seat_id"]),
        first["x"].clone(),
        first["price_cents"].clone(),
    );

    // Behind the server's back, the seat moves: the seating it read stays as it was (it
    // never changes for an event, so it is read once)...
    sqlx::query("UPDATE seats SET x = x + 1000 WHERE seat_id = $1")
        .bind(seat)
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // ...while prices, which the organizer may change until the sale, are read every time.
    let mut pricing = standard_pricing(&venue);
    pricing["sections"][0]["price_cents"] = json!(12_345);
    let (status, body) = app.set_pricing(&organizer.token, event_id, &pricing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, map) = app.get(&path, Some(&organizer.token)).await;
    let again = &map["sections"][0]["rows"][0]["seats"][0];
    assert_eq!(again["x"], x, "the seating came from memory");
    assert_eq!(again["price_cents"], 12_345, "the price is current");
    assert_ne!(again["price_cents"], price);

    // Another node (or a restart) reads the seating afresh.
    let other = crate::helpers::spawn_app_sharing(&app, |_| {}).await;
    let (_, map) = other.get(&path, Some(&organizer.token)).await;
    assert_ne!(map["sections"][0]["rows"][0]["seats"][0]["x"], x);
}
