use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[actix_web::test]
async fn readyz_answers_ready_when_the_database_is_reachable() {
    let app = spawn_app().await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
}

#[actix_web::test]
async fn readyz_answers_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.pool.close().await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    app.get("/api/v1/events", None).await;
    app.get(&format!("/api/v1/events/{}", uuid::Uuid::new_v4()), None)
        .await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(
        text.contains(
            r#"boxoffice_http_requests_total{method="GET",route="/api/v1/events",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/events/{event_id}",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("boxoffice_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[actix_web::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, methods) in [
        ("/api/v1/auth/signup", vec!["post"]),
        ("/api/v1/auth/login", vec!["post"]),
        ("/api/v1/venues", vec!["post", "get"]),
        ("/api/v1/venues/{venue_id}", vec!["get", "patch"]),
        ("/api/v1/venues/{venue_id}/deactivate", vec!["post"]),
        ("/api/v1/venues/{venue_id}/activate", vec!["post"]),
        ("/api/v1/organizer/events", vec!["get"]),
        ("/api/v1/events", vec!["post", "get"]),
        ("/api/v1/events/{event_id}", vec!["get", "patch"]),
        ("/api/v1/events/{event_id}/pricing", vec!["put"]),
        ("/api/v1/events/{event_id}/onsale", vec!["put"]),
        ("/api/v1/events/{event_id}/publish", vec!["post"]),
        ("/api/v1/events/{event_id}/cancel", vec!["post"]),
        ("/api/v1/events/{event_id}/seatmap", vec!["get"]),
        ("/api/v1/events/{event_id}/holds", vec!["post"]),
        ("/api/v1/holds/{hold_id}", vec!["get", "delete"]),
        ("/api/v1/holds/{hold_id}/checkout", vec!["post"]),
        ("/api/v1/orders/{order_id}", vec!["get"]),
        ("/api/v1/me/orders", vec!["get"]),
        ("/api/v1/me/tickets", vec!["get"]),
        ("/healthz", vec!["get"]),
        ("/readyz", vec!["get"]),
    ] {
        for method in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} missing from the OpenAPI document"
            );
        }
    }
}

#[actix_web::test]
async fn the_web_pages_are_served_at_the_root() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .text()
        .await
        .unwrap_or_default()
        .contains("boxoffice"));
}

#[actix_web::test]
async fn on_sigterm_a_node_drains_not_ready_but_still_serving() {
    use std::time::{Duration, Instant};

    let app = spawn_app().await;
    let port = crate::process::free_port();
    let mut server = crate::process::ChildServer::start(
        &app.database_url(),
        port,
        &[("BOXOFFICE_DRAIN_SECONDS", "30")],
        None,
    )
    .await;
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{}{path}", server.address)).send();
        async move {
            match request.await {
                Ok(r) => {
                    let status = r.status();
                    (
                        status,
                        r.json::<serde_json::Value>().await.unwrap_or_default(),
                    )
                }
                Err(error) => panic!("{error}"),
            }
        }
    };
    assert_eq!(get("/readyz").await.0, StatusCode::OK);
    server.signal("TERM");
    // Draining: not ready (the load balancer moves away), yet alive and serving.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get("/readyz").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break body;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "/readyz never said draining");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["error"]["code"], "not_ready", "{body}");
    assert_eq!(body["error"]["reason"], "draining", "{body}");
    assert_eq!(
        get("/healthz").await.0,
        StatusCode::OK,
        "the process is fine"
    );
    let (status, _) = get("/api/v1/events").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "requests are still served while draining"
    );
    // (The drain is 30 s; the test does not wait it out: the child is killed when dropped.)
    assert!(
        server.child.try_wait().ok().flatten().is_none(),
        "the node serves until the drain ends"
    );
}
