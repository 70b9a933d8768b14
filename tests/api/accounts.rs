use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, assert_fields, spawn_app, spawn_app_with, uuid};

#[actix_web::test]
async fn signup_creates_an_account_whose_token_works() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/api/v1/auth/signup", None, &json!({"email": "Ada@Example.com", "password": "correct horse", "name": "Ada", "role": "organizer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["role"], "organizer");
    let token = body["token"].as_str().unwrap_or_default();
    let (status, venues) = app.get("/api/v1/venues", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{venues}");

    let stored: String = sqlx::query_scalar("SELECT email FROM users WHERE user_id = $1")
        .bind(uuid(&body["user_id"]))
        .fetch_one(&app.pool)
        .await
        .unwrap_or_default();
    assert_eq!(stored, "ada@example.com");
}

#[actix_web::test]
async fn signup_refuses_a_taken_email_whatever_its_case() {
    let app = spawn_app().await;
    let account = app.buyer().await;
    let (status, body) = app
        .post("/api/v1/auth/signup", None, &json!({"email": account.email.to_uppercase(), "password": "another password", "name": "B", "role": "buyer"}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "email_taken");
}

#[actix_web::test]
async fn signup_names_each_invalid_field() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/v1/auth/signup",
            None,
            &json!({"email": "not-an-email", "password": "short", "name": "  ", "role": "buyer"}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_fields(&body, &["email", "password", "name"]);

    let (status, body) = app
        .post(
            "/api/v1/auth/signup",
            None,
            &json!({"email": "a@b.co", "password": "long enough", "name": "A", "role": "admin"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    assert_fields(&body, &["role"]);
}

#[actix_web::test]
async fn login_returns_a_token_for_the_right_password() {
    let app = spawn_app().await;
    let account = app.organizer().await;
    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": account.email, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(uuid(&body["user_id"]), account.user_id);
    assert_eq!(body["role"], "organizer");
    let (status, _) = app.get("/api/v1/venues", body["token"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn login_refuses_a_wrong_password_and_an_unknown_email_alike() {
    let app = spawn_app().await;
    let account = app.buyer().await;
    let (status_wrong, wrong) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": account.email, "password": "wrong password"}),
        )
        .await;
    let (status_unknown, unknown) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    assert_error(
        status_wrong,
        &wrong,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        status_unknown,
        &unknown,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
}

#[actix_web::test]
async fn bad_tokens_are_refused_with_401() {
    let app = spawn_app().await;
    for header in ["Bearer not-a-jwt", "Basic abc", "Bearer "] {
        let response = app
            .client
            .get(app.url("/api/v1/venues"))
            .header("authorization", header)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let (status, body) = app.get("/api/v1/venues", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[actix_web::test]
async fn a_token_signed_with_another_key_is_refused() {
    let app = spawn_app().await;
    let other = boxoffice::security::TokenKeys::new(&[9; 32], std::time::Duration::from_secs(600));
    let forged = other
        .issue(
            uuid::Uuid::new_v4(),
            boxoffice::domain::account::Role::Organizer,
        )
        .unwrap_or_default();
    let (status, body) = app.get("/api/v1/venues", Some(&forged)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[actix_web::test]
async fn sign_up_and_login_are_rate_limited_per_client() {
    let app = spawn_app_with(|s| s.auth_rate_per_minute = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "nobody@example.com", "password": "whatever123"}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let retry_after = response.headers().get("retry-after").cloned();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["error"]["code"], "rate_limited");
            assert!(retry_after
                .and_then(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()))
                .is_some_and(|s| s >= 1));
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        2,
        "{statuses:?}"
    );
}
