//! What a probe found, closed: secrets in logs, amplified and unthrottled error answers,
//! warnings for every business refusal, missing security headers, organizers buying.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app};
use crate::process::{free_port, log_dir, ChildServer};

#[actix_web::test]
async fn no_secret_reaches_the_log_and_refusals_are_neither_warnings_nor_amplified() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let seat = app.seat_ids(event_id, 0).await[0];
    let buyers = app.quick_buyers(2).await;
    app.stop_owning().await;
    let log = log_dir().join(format!("secrets-{}.log", Uuid::new_v4().simple()));
    let env = [
        (
            "RUST_LOG",
            "debug,sqlx=warn,h2=warn,hyper=warn,hyper_util=warn,reqwest=warn,actix_server=warn,mio=warn",
        ),
        ("BOXOFFICE_LOG_FORMAT", "json"),
        ("BOXOFFICE_AUTH_RATE_PER_MINUTE", "4"),
    ];
    let server =
        ChildServer::start(&app.database_url(), free_port(), &env, Some(log.clone())).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.address);
    let (idempotency_key, admission, password) = (
        "idem-SECRET-7f3a9c",
        "admission-SECRET-2b8e11",
        "password-SECRET-9d0c44",
    );

    // Sockets take tokens in the query string: refused, and logged without it.
    let visitor_token = crate::helpers::visitor_token(&client, &server.address).await;
    for path in [
        format!(
            "/api/v1/events/{}/live?token={}",
            Uuid::new_v4(),
            buyers[0].token
        ),
        format!("/api/v1/events/{event_id}/queue/live?token={visitor_token}"),
    ] {
        let status = client.get(url(&path)).send().await.map(|r| r.status());
        assert!(status.is_ok_and(|s| s.is_client_error()), "{path}");
    }
    // A hold, a rival's refused hold, a checkout with its key and an admission header.
    let hold_body = json!({"seat_ids": [seat]});
    let holds = url(&format!("/api/v1/events/{event_id}/holds"));
    let (hold, status) = post(&client, &holds, Some(&buyers[0].token), &hold_body).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (body, status) = post(&client, &holds, Some(&buyers[1].token), &hold_body).await;
    assert_error(status, &body, StatusCode::CONFLICT, "seat_unavailable");
    let checkout = url(&format!(
        "/api/v1/holds/{}/checkout",
        hold["hold_id"].as_str().unwrap_or_default()
    ));
    let answer = client
        .post(&checkout)
        .bearer_auth(&buyers[0].token)
        .header("Idempotency-Key", idempotency_key)
        .header("X-Admission-Token", admission)
        .json(&json!({"payment_token": "tok_decline"}))
        .send()
        .await
        .map(|r| r.status());
    assert_eq!(answer.ok(), Some(StatusCode::PAYMENT_REQUIRED));
    // A wrong password.
    let (_, status) = post(
        &client,
        &url("/api/v1/auth/login"),
        None,
        &json!({"email": "nobody@example.com", "password": password}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A megabyte of field name comes back as a bounded answer.
    let huge = format!(r#"{{"{}": 1}}"#, "k".repeat(1_000_000));
    let response = client
        .post(url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap_or_default();
    assert!(text.len() < 2_000, "a {} byte answer", text.len());
    // Past the limit, a bad body is not even read: 429, not 400.
    let mut limited = false;
    for _ in 0..4 {
        let status = client
            .post(url("/api/v1/auth/signup"))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .map(|r| r.status());
        limited |= status.ok() == Some(StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(limited, "sign-up is limited before its body is parsed");

    // Refusals are counted by code.
    let metrics = client
        .get(url("/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("boxoffice_refusals_total")
                && l.contains("code=\"seat_unavailable\"")),
        "{metrics}"
    );
    drop(server);

    let written = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        written.contains("request refused"),
        "the log was written at debug"
    );
    for secret in [
        buyers[0].token.as_str(),
        buyers[1].token.as_str(),
        visitor_token.as_str(),
        idempotency_key,
        admission,
        password,
        "tok_decline",
    ] {
        assert!(
            !written.contains(secret),
            "a secret reached the log: {secret}"
        );
    }
    for line in written.lines() {
        assert!(line.len() < 4_096, "a {} byte log line", line.len());
        let entry: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        if entry["level"] == "WARN" || entry["level"] == "ERROR" {
            assert!(
                !line.contains("seat_unavailable") && !line.contains("409"),
                "a business refusal logged as a warning: {line}"
            );
        }
    }
    assert!(
        !written.contains("\u{1b}["),
        "no colour codes in a log file"
    );
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> (Value, StatusCode) {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status();
    (response.json().await.unwrap_or(Value::Null), status)
}

#[actix_web::test]
async fn pages_and_answers_carry_security_headers() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(app.url("/account.html"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let policy = header("content-security-policy");
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(!policy.contains("script-src 'self' 'unsafe-inline'"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    let html = page.text().await.unwrap_or_default();
    assert!(
        !html.contains("<script>") && !html.contains("<script type=\"module\">"),
        "no inline script"
    );

    let buyer = app.buyer().await;
    let mine = app
        .client
        .get(app.url("/api/v1/me/orders"))
        .bearer_auth(&buyer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        mine.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

#[actix_web::test]
async fn only_buyers_queue_hold_and_buy() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let seat = app.seat_ids(event_id, 0).await[0];
    let (status, body) = app
        .hold(&organizer.token, event_id, &json!({"seat_ids": [seat]}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "role_not_allowed");
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{event_id}/queue"),
            Some(&organizer.token),
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "role_not_allowed");
    let buyer = app.buyer().await;
    let (status, hold) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [seat]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, body) = app
        .checkout(&organizer.token, &hold["hold_id"], "k", "tok_ok")
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "role_not_allowed");
}
