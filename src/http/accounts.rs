//! Sign-up and login.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract;
use super::AppState;
use crate::domain::account::{Email, Password, Role};
use crate::domain::validation::text;
use crate::domain::FieldErrors;
use crate::persistence::{accounts, WriteError};
use crate::security;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(
        format = "email-address",
        max_length = 254,
        example = "ada@example.com"
    )]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128, example = "correct horse battery")]
    pub password: String,
    #[schema(format = "text", max_length = 200, example = "Ada Lovelace")]
    pub name: String,
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    pub user_id: Uuid,
    pub role: Role,
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery")]
    pub password: String,
}

/// Creates an organizer or buyer account and signs it in.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 409, description = "e-mail taken", body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip(state, req, payload))]
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.auth_limiter.check(&req)?;
    let body: SignupRequest = extract::json_body(&req, payload).await?;
    let mut errors = FieldErrors::new();
    let email = errors.take("email", Email::parse(&body.email));
    let password = errors.take("password", Password::parse(&body.password));
    let name = errors.take("name", text(&body.name, 200));
    let (Some(email), Some(password), Some(name)) = (email, password, name) else {
        return Err(errors.into());
    };

    let password_hash = state.passwords.hash(password.expose().to_owned()).await?;
    let user_id = accounts::insert_user(&state.pool, &email, &password_hash, &name, body.role)
        .await
        .map_err(|error| match error {
            WriteError::Conflict(_) => {
                ApiError::conflict("email_taken", "an account with this e-mail already exists")
            }
            WriteError::Other(e) => ApiError::Unexpected(e),
        })?;
    let token = state.tokens.issue(user_id, body.role)?;
    Ok(HttpResponse::Created().json(SignupResponse {
        user_id,
        role: body.role,
        token,
    }))
}

/// Exchanges an e-mail and password for a token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = SignupResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip(state, req, payload))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.auth_limiter.check(&req)?;
    let body: LoginRequest = extract::json_body(&req, payload).await?;
    // Per account too: a password guessed from many addresses is still one account's.
    state.login_limiter.check_key(
        &body
            .email
            .trim()
            .chars()
            .take(320)
            .collect::<String>()
            .to_lowercase(),
    )?;
    let wrong = || ApiError::Unauthorized("wrong e-mail or password".into());
    let user = match Email::parse(&body.email) {
        Ok(email) => accounts::find_by_email(&state.pool, &email).await?,
        Err(_) => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password = body.password;
    // (An unknown address is checked against a decoy hash: it takes as long.)
    let matches = state
        .passwords
        .run(move |memory| {
            let stored = stored.unwrap_or_else(|| security::decoy_hash().to_owned());
            security::verify_password_in(&password, &stored, memory)
        })
        .await??;
    let user = user.filter(|_| matches).ok_or_else(wrong)?;
    let role = Role::parse(&user.role).map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
    let token = state.tokens.issue(user.user_id, role)?;
    Ok(HttpResponse::Ok().json(SignupResponse {
        user_id: user.user_id,
        role,
        token,
    }))
}
