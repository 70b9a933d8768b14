//! Operability: liveness, readiness and the OpenAPI document.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The node can take traffic: not draining (after SIGTERM, for `BOXOFFICE_DRAIN_SECONDS`),
/// its on-sale leases renewing, and Postgres answering. `/healthz` is about the process
/// alone.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "not_ready (with `reason`: draining, leases_failing, database)", body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if let Some(reason) = state.engine.cluster().unready() {
        let message = match reason {
            "draining" => "this node is stopping: it finishes what it has and takes nothing new",
            _ => "this node cannot renew its on-sale leases (the database?)",
        };
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": {"code": "not_ready", "reason": reason, "message": message}
        }));
    }
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => HttpResponse::Ok().json(Health { status: "ready" }),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "error": {"code": "not_ready", "reason": "database", "message": "the database is not reachable"}
            }))
        }
    }
}

/// The OpenAPI 3 document of this server, generated from the code.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi::document())
}
