//! Malformed requests of every kind get a 4xx with a JSON error, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, venue_body};

#[actix_web::test]
async fn a_body_that_is_not_json_is_400() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (status, body) = app
        .post_raw(
            "/api/v1/venues",
            Some(&organizer.token),
            "application/json",
            b"{\"name\": ".to_vec(),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = app
        .post_raw(
            "/api/v1/venues",
            Some(&organizer.token),
            "application/json",
            b"[1, 2]".to_vec(),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = app
        .post_raw(
            "/api/v1/venues",
            Some(&organizer.token),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
}

#[actix_web::test]
async fn a_body_of_another_media_type_is_415() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let body = serde_json::to_vec(&venue_body("Hall", "Lyon")).unwrap_or_default();
    let (status, answer) = app
        .post_raw("/api/v1/venues", Some(&organizer.token), "text/plain", body)
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[actix_web::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 64 * 1024).await;
    let organizer = app.organizer().await;
    let mut venue = venue_body("Hall", "Lyon");
    venue["address"] = json!("x".repeat(100 * 1024));
    let (status, body) = app.create_venue(&organizer.token, &venue).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[actix_web::test]
async fn numbers_out_of_range_and_wrong_types_are_4xx() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let mut venue = venue_body("Hall", "Lyon");
    venue["layout"]["sections"][2]["capacity"] = json!(1e300);
    let (status, body) = app.create_venue(&organizer.token, &venue).await;
    assert!(status.is_client_error(), "{status} {body}");
    venue["layout"]["sections"][2]["capacity"] = json!(9_223_372_036_854_775_807i64);
    let (status, body) = app.create_venue(&organizer.token, &venue).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    venue["layout"]["sections"][2]["capacity"] = json!(null);
    let (status, body) = app.create_venue(&organizer.token, &venue).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        body["error"]["fields"]
            .get("layout.sections[2].capacity")
            .is_some(),
        "{body}"
    );
    venue["layout"]["sections"][2]["capacity"] = json!("many");
    let (status, body) = app.create_venue(&organizer.token, &venue).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(
        body["error"]["fields"]
            .get("layout.sections[2].capacity")
            .is_some(),
        "{body}"
    );
}

#[actix_web::test]
async fn malformed_ids_in_paths_and_bodies_are_400() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (status, body) = app.get("/api/v1/venues/123", Some(&organizer.token)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = app
        .create_event(
            &organizer.token,
            &json!({"venue_id": "nope", "title": "x", "category": "OTHER",
            "start_time": "2030-01-01T00:00:00Z", "end_time": "2030-01-01T02:00:00Z"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(body["error"]["fields"].get("venue_id").is_some(), "{body}");
    let (status, body) = app
        .create_event(
            &organizer.token,
            &json!({"venue_id": uuid::Uuid::new_v4(), "title": "x", "category": "OTHER",
            "start_time": "next tuesday", "end_time": "2030-01-01T02:00:00Z"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(
        body["error"]["fields"].get("start_time").is_some(),
        "{body}"
    );
}

#[actix_web::test]
async fn unknown_api_routes_are_404_in_json() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/nothing-here", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(reqwest::Method::DELETE, "/api/v1/events", None, None)
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[actix_web::test]
async fn control_characters_are_refused_not_stored() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let mut venue = venue_body("Hall", "Lyon");
    venue["address"] = json!("1 Rue\u{0}de Test");
    let (status, body) = app.create_venue(&organizer.token, &venue).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(body["error"]["fields"].get("address").is_some(), "{body}");
    let (status, body) = app.get("/api/v1/events?q=a%00b&city=x%00", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(
        body["error"]["fields"].get("q").is_some() && body["error"]["fields"].get("city").is_some(),
        "{body}"
    );
}

#[actix_web::test]
async fn a_known_path_asked_with_another_method_is_405_naming_the_methods_it_has() {
    let app = crate::helpers::spawn_app().await;
    let cases = [
        (
            reqwest::Method::PUT,
            "/api/v1/events".to_owned(),
            "GET, POST",
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/holds/{}", uuid::Uuid::new_v4()),
            "GET, DELETE",
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/venues/preview".to_owned(),
            "POST",
        ),
        (reqwest::Method::POST, "/healthz".to_owned(), "GET"),
    ];
    for (method, path, allow) in cases {
        let response = app
            .client
            .request(method.clone(), app.url(&path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    let (status, body) = app.get("/api/v1/nothing/here", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}
