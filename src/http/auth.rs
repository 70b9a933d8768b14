//! Who is calling: extractors for a signed-in account, an organizer, or anyone.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::domain::account::Role;

/// A caller with a valid account token.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
}

/// The token of an `Authorization: Bearer <token>` header (none without the header; 401
/// for a header of another shape). Account, visitor and scanner tokens all come this way.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|token| Some(token.trim()))
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })
}

fn caller(req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    let Some(token) = bearer_token(req)? else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("application state is missing")))?;
    let claims = state.tokens.verify(token).map_err(|_| {
        if state.visitors.verify(token).is_ok() {
            sign_in_required()
        } else {
            ApiError::Unauthorized("the token is invalid or has expired; log in again".into())
        }
    })?;
    Ok(Some(Caller {
        user_id: claims.sub,
        role: claims.role,
    }))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req).and_then(|c| {
            c.ok_or_else(|| ApiError::Unauthorized("sign in first: no bearer token".into()))
        }))
    }
}

/// A signed-in buyer: only buyers queue, hold and buy. Organizers manage events (and door
/// scanners check tickets in); their tokens here answer 403 `role_not_allowed`.
#[derive(Debug, Clone, Copy)]
pub struct Buyer(pub Caller);

impl Buyer {
    pub fn of(caller: Caller) -> Result<Buyer, ApiError> {
        if caller.role == Role::Buyer {
            Ok(Buyer(caller))
        } else {
            Err(role_not_allowed())
        }
    }
}

/// 401 `sign_in_required` for a visitor token where an account is needed: a visitor may
/// wait in the line, but buys signed in (and keeps their place by claiming it:
/// `POST /api/v1/events/{event_id}/queue/claim` with the account token and the visitor's).
pub fn sign_in_required() -> ApiError {
    ApiError::coded(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "sign_in_required",
        "sign in to buy: a visitor token waits in the line but cannot hold or pay; sign in (or sign up) and claim your place in the line with POST /api/v1/events/{event_id}/queue/claim",
    )
}

/// 403 for an account whose role may not do this.
pub fn role_not_allowed() -> ApiError {
    ApiError::coded(
        actix_web::http::StatusCode::FORBIDDEN,
        "role_not_allowed",
        "only buyer accounts queue, hold and buy tickets; sign in with a buyer account",
    )
}

impl FromRequest for Buyer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(
            Caller::from_request(req, payload)
                .into_inner()
                .and_then(Buyer::of),
        )
    }
}

/// A caller who may or may not be signed in; a token that is present must be valid.
#[derive(Debug, Clone, Copy)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req).map(MaybeCaller))
    }
}

/// A signed-in organizer.
#[derive(Debug, Clone, Copy)]
pub struct Organizer {
    pub user_id: Uuid,
}

impl FromRequest for Organizer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(Caller::from_request(req, payload).into_inner().and_then(
            |caller| match caller.role {
                Role::Organizer => Ok(Organizer {
                    user_id: caller.user_id,
                }),
                Role::Buyer => Err(ApiError::Forbidden("only organizers may do this".into())),
            },
        ))
    }
}
