use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, assert_fields, event_body, spawn_app, uuid, venue_body};

#[actix_web::test]
async fn an_organizer_creates_a_venue_with_a_generated_layout() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (status, body) = app
        .create_venue(&organizer.token, &venue_body("Hall", "Lyon"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["capacity"], 3 * 4 + 2 * 5 + 100);
    assert_eq!(body["venue_type"], "THEATER");
    assert_eq!(body["facilities"]["parking"], true);
    let sections = body["sections"].as_array().cloned().unwrap_or_default();
    let summary: Vec<_> = sections
        .iter()
        .map(|s| (s["name"].clone(), s["kind"].clone(), s["capacity"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("A"), json!("seated"), json!(12)),
            (json!("B"), json!("seated"), json!(10)),
            (json!("Floor"), json!("general_admission"), json!(100)),
        ]
    );
    let seats: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM seats JOIN sections USING (section_id) WHERE venue_id = $1",
    )
    .bind(uuid(&body["venue_id"]))
    .fetch_one(&app.pool)
    .await
    .unwrap_or_default();
    assert_eq!(seats, 22);
}

#[actix_web::test]
async fn an_organizer_creates_a_venue_from_an_explicit_seat_list() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let mut body = venue_body("Club", "Paris");
    body["layout"] = json!({"sections": [{"name": "Boxes", "kind": "seated", "seats": [
        {"row": "BOX1", "number": 1, "x": 0.0, "y": 0.0}, {"row": "BOX1", "number": 2, "x": 1.5, "y": 0.0},
        {"row": "BOX2", "number": 1, "x": 10.0, "y": 0.0}
    ]}]});
    let (status, created) = app.create_venue(&organizer.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["capacity"], 3);
    let labels: Vec<(String, i32, f32)> =
        sqlx::query_as("SELECT row_label, seat_number, x FROM seats JOIN sections USING (section_id) WHERE venue_id = $1 ORDER BY seats.position")
            .bind(uuid(&created["venue_id"]))
            .fetch_all(&app.pool)
            .await
            .unwrap_or_default();
    assert_eq!(
        labels,
        vec![
            ("BOX1".into(), 1, 0.0),
            ("BOX1".into(), 2, 1.5),
            ("BOX2".into(), 1, 10.0)
        ]
    );
}

#[actix_web::test]
async fn only_organizers_may_create_venues() {
    let app = spawn_app().await;
    let buyer = app.buyer().await;
    let (status, body) = app
        .create_venue(&buyer.token, &venue_body("Hall", "Lyon"))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .post("/api/v1/venues", None, &venue_body("Hall", "Lyon"))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[actix_web::test]
async fn an_organizer_lists_only_their_own_venues() {
    let app = spawn_app().await;
    let (one, two) = (app.organizer().await, app.organizer().await);
    app.standard_venue(&one.token).await;
    app.standard_venue(&one.token).await;
    app.standard_venue(&two.token).await;
    let (status, body) = app.get("/api/v1/venues", Some(&one.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["venues"].as_array().map(Vec::len), Some(2));
}

#[actix_web::test]
async fn another_organizer_can_neither_read_nor_change_a_venue() {
    let app = spawn_app().await;
    let (owner, other) = (app.organizer().await, app.organizer().await);
    let venue = app.standard_venue(&owner.token).await;
    let path = format!("/api/v1/venues/{}", venue.venue_id);
    let (status, body) = app.get(&path, Some(&other.token)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .patch(&path, Some(&other.token), &json!({"name": "Mine now"}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .post(
            &format!("{path}/deactivate"),
            Some(&other.token),
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .create_event(&other.token, &event_body(venue.venue_id, "Squat", 10))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, unchanged) = app.get(&path, Some(&owner.token)).await;
    assert_eq!(unchanged["name"], "Test Hall");
}

#[actix_web::test]
async fn a_venue_update_changes_details_and_the_layout_until_an_event_uses_it() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let path = format!("/api/v1/venues/{}", venue.venue_id);

    let new_layout =
        json!({"sections": [{"name": "Only", "kind": "seated", "rows": 2, "seats_per_row": 2}]});
    let (status, body) = app
        .patch(
            &path,
            Some(&organizer.token),
            &json!({"city": "Grenoble", "layout": new_layout}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["city"], "Grenoble");
    assert_eq!(body["name"], "Test Hall");
    assert_eq!(body["capacity"], 4);

    app.draft_event(&organizer.token, venue.venue_id, 20).await;
    let (status, body) = app
        .patch(
            &path,
            Some(&organizer.token),
            &json!({"layout": new_layout}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "venue_in_use");
    let (status, body) = app
        .patch(&path, Some(&organizer.token), &json!({"name": "Renamed"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Renamed");
}

#[actix_web::test]
async fn a_deactivated_venue_takes_no_new_events_until_activated() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let venue = app.standard_venue(&organizer.token).await;
    let path = format!("/api/v1/venues/{}", venue.venue_id);
    let (status, body) = app
        .post(
            &format!("{path}/deactivate"),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_active"], false);
    let (status, body) = app
        .create_event(&organizer.token, &event_body(venue.venue_id, "Night", 10))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["venue_id"]);
    app.post(
        &format!("{path}/activate"),
        Some(&organizer.token),
        &json!({}),
    )
    .await;
    let (status, _) = app
        .create_event(&organizer.token, &event_body(venue.venue_id, "Night", 10))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn bad_layouts_name_the_fields_that_are_wrong() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let mut body = venue_body("Hall", "Lyon");
    body["layout"] = json!({"sections": [
        {"name": "Zero", "kind": "seated", "rows": 0, "seats_per_row": 10},
        {"name": "Neg", "kind": "general_admission", "capacity": -5},
        {"name": "Half", "kind": "seated", "rows": 3},
        {"name": "Zero", "kind": "seated", "rows": 1, "seats_per_row": 1},
        {"name": "Huge", "kind": "seated", "rows": 500, "seats_per_row": 500}
    ]});
    body["latitude"] = json!(123.0);
    body["venue_type"] = json!("CASTLE");
    body["timezone"] = json!("not a zone");
    let (status, response) = app.create_venue(&organizer.token, &body).await;
    assert_error(
        status,
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(
        &response,
        &[
            "layout.sections[0].rows",
            "layout.sections[1].capacity",
            "layout.sections[2]",
            "layout.sections[4]",
            "latitude",
            "venue_type",
            "timezone",
        ],
    );

    body = venue_body("Hall", "Lyon");
    body["layout"] = json!({"sections": []});
    let (status, response) = app.create_venue(&organizer.token, &body).await;
    assert_error(
        status,
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&response, &["layout.sections"]);
    let venues: i64 = sqlx::query_scalar("SELECT count(*) FROM venues")
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
    assert_eq!(venues, 0, "a refused venue left rows behind");
}

#[actix_web::test]
async fn unknown_fields_and_wrong_types_in_a_venue_are_400() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let mut body = venue_body("Hall", "Lyon");
    body["colour"] = json!("red");
    let (status, response) = app.create_venue(&organizer.token, &body).await;
    assert_error(
        status,
        &response,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
    assert_fields(&response, &["colour"]);

    let mut body = venue_body("Hall", "Lyon");
    body["layout"]["sections"][1]["rows"] = json!("two");
    let (status, response) = app.create_venue(&organizer.token, &body).await;
    assert_error(
        status,
        &response,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
    assert_fields(&response, &["layout.sections[1].rows"]);

    let mut body = venue_body("Hall", "Lyon");
    body["layout"]["sections"][0]["kind"] = json!("hovering");
    let (status, response) = app.create_venue(&organizer.token, &body).await;
    assert_error(
        status,
        &response,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
}

#[actix_web::test]
async fn the_layout_preview_draws_the_seats_without_storing_anything() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let layout = json!({"layout": venue_body("Preview Hall", "Lyon")["layout"]});
    let (status, plan) = app
        .post("/api/v1/venues/preview", Some(&organizer.token), &layout)
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["capacity"], 122);
    let a = &plan["sections"][0]["seats"];
    assert_eq!(a.as_array().map(Vec::len), Some(12));
    assert_eq!(a[0]["label"], "A-1");
    assert!(a[1]["x"].as_f64() > a[0]["x"].as_f64(), "{a}");
    assert_eq!(plan["sections"][2]["seats"], json!([]));
    let (_, venues) = app.get("/api/v1/venues", Some(&organizer.token)).await;
    assert_eq!(venues["venues"], json!([]), "nothing stored");

    // Bad layouts get the same field errors as creating the venue; only organizers ask.
    let bad = json!({"layout": {"sections": [{"name": "A", "kind": "seated", "rows": 0, "seats_per_row": 4}]}});
    let (status, body) = app
        .post("/api/v1/venues/preview", Some(&organizer.token), &bad)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["layout.sections[0].rows"]);
    let (status, body) = app
        .post(
            "/api/v1/venues/preview",
            Some(&organizer.token),
            &json!({"sections": []}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    // A small body cannot ask for a huge answer: three 20,000-seat sections are refused.
    let section =
        |name: &str| json!({"name": name, "kind": "seated", "rows": 40, "seats_per_row": 500});
    let huge = json!({"layout": {"sections": [section("A"), section("B"), section("C")]}});
    let (status, body) = app
        .post("/api/v1/venues/preview", Some(&organizer.token), &huge)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["layout"]);
    let buyer = app.buyer().await;
    let (status, body) = app
        .post("/api/v1/venues/preview", Some(&buyer.token), &layout)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
}
