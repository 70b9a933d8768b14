//! The operator's view of the outbox: how much waits, what was dead-lettered and why, and
//! putting a dead row back in line once its cause is fixed (operator token).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::cluster::operator;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::persistence::webhooks as store;

#[derive(Serialize, ToSchema)]
pub struct OutboxView {
    /// Rows not yet relayed (due now or waiting for a retry).
    pub pending: i64,
    /// Rows dead-lettered after their last try.
    pub dead: i64,
    /// The last 100 dead rows, newest first.
    pub dead_rows: Vec<DeadRowView>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadRowView {
    pub id: i64,
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub dead_at: DateTime<Utc>,
}

/// Pending and dead-lettered outbox rows (operator token).
#[utoipa::path(get, path = "/api/v1/outbox", tag = "operations", security(("operator" = [])),
    responses((status = 200, body = OutboxView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, description = "no operator token configured", body = ErrorBody)))]
pub async fn view(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    operator(&state, &req)?;
    let (pending, dead) = store::outbox_counts(&state.pool).await?;
    let dead_rows = store::dead_rows(&state.pool)
        .await?
        .into_iter()
        .map(|r| DeadRowView {
            id: r.id,
            kind: r.kind,
            payload: r.payload,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.created_at,
            dead_at: r.dead_at,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(OutboxView {
            pending,
            dead,
            dead_rows,
        }))
}

/// Puts a dead-lettered row back in line, its tries counted afresh (operator token).
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "operations", security(("operator" = [])),
    params(("id" = i64, Path, description = "the outbox row")),
    responses((status = 202, description = "queued again"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, description = "no such dead row, or no operator token configured", body = ErrorBody)))]
pub async fn retry(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    operator(&state, &req)?;
    if store::retry_dead(&state.pool, *path, state.now()).await? {
        Ok(HttpResponse::Accepted().finish())
    } else {
        Err(ApiError::NotFound(
            "no dead-lettered outbox row with this id".into(),
        ))
    }
}
