//! The operator's view of the nodes: which nodes were seen, which on-sales each owns, at
//! which epoch, and how long their leases have left.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::persistence::leases;

#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    /// The node that answered.
    pub node_id: String,
    pub nodes: Vec<NodeView>,
    pub onsales: Vec<LeaseView>,
}

#[derive(Serialize, ToSchema)]
pub struct NodeView {
    pub node_id: String,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Set when the node stopped cleanly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// On-sales whose live lease this node holds.
    pub owns: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct LeaseView {
    pub event_id: Uuid,
    pub owner: String,
    pub owner_url: String,
    pub epoch: i64,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
    /// Whether the lease is live (not expired) by the database's clock.
    pub live: bool,
    /// Milliseconds since the owner took the lease.
    pub lease_age_ms: i64,
}

pub(super) fn operator(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(expected) = &state.settings.operator_token else {
        return Err(ApiError::NotFound(
            "no such endpoint (set BOXOFFICE_OPERATOR_TOKEN to enable it)".into(),
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError::Unauthorized(
            "the operator token is required".into(),
        )),
        Some(token) if super::forward::constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            Ok(())
        }
        Some(_) => Err(ApiError::Forbidden("this is not the operator token".into())),
    }
}

/// Nodes, and who owns which on-sale (operator token).
#[utoipa::path(get, path = "/api/v1/cluster", tag = "operations", security(("operator" = [])),
    responses((status = 200, body = ClusterView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, description = "no operator token configured", body = ErrorBody)))]
pub async fn view(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    operator(&state, &req)?;
    let nodes = leases::nodes(&state.pool).await?;
    let rows = leases::all(&state.pool).await?;
    let now = state.now();
    let onsales: Vec<LeaseView> = rows
        .into_iter()
        .map(|l| LeaseView {
            event_id: l.event_id,
            lease_age_ms: (now - l.acquired_at).num_milliseconds().max(0),
            owner: l.node_id,
            owner_url: l.node_url,
            epoch: l.epoch,
            acquired_at: l.acquired_at,
            renewed_at: l.renewed_at,
            lease_expires_at: l.expires_at,
            live: l.live,
        })
        .collect();
    let nodes = nodes
        .into_iter()
        .map(|n| NodeView {
            owns: onsales
                .iter()
                .filter(|l| l.live && l.owner == n.node_id)
                .map(|l| l.event_id)
                .collect(),
            node_id: n.node_id,
            url: n.node_url,
            started_at: n.started_at,
            last_seen: n.last_seen,
            stopped_at: n.stopped_at,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(ClusterView {
            node_id: state.engine.cluster().node_id().to_owned(),
            nodes,
            onsales,
        }))
}

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyBody {
    /// How long each call to the simulated processor takes from now on, 0 to 60,000 ms.
    #[schema(minimum = 0, maximum = 60000)]
    pub latency_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct LatencyView {
    pub latency_ms: u64,
    /// What it was before.
    pub previous_ms: u64,
}

/// Slows (or speeds up again) the simulated card processor on this node, to rehearse
/// degraded payments: the breaker, the retryable answers, the room slowing down (operator
/// token; a real processor answers 409).
#[utoipa::path(put, path = "/api/v1/operator/payment-latency", tag = "operations", security(("operator" = [])),
    request_body = LatencyBody,
    responses((status = 200, body = LatencyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, description = "no operator token configured", body = ErrorBody),
              (status = 409, description = "not_simulated: the processor is a real one", body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn payment_latency(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: super::extract::Json<LatencyBody>,
) -> Result<HttpResponse, ApiError> {
    operator(&state, &req)?;
    let latency_ms = body.0.latency_ms;
    if latency_ms > 60_000 {
        return Err(ApiError::invalid_field(
            "latency_ms",
            "must be from 0 to 60000",
        ));
    }
    let latency = std::time::Duration::from_millis(latency_ms);
    let Some(previous) = state.engine.gateway().simulate_latency(latency) else {
        return Err(ApiError::conflict(
            "not_simulated",
            "the card processor is a real one: it cannot be slowed",
        ));
    };
    tracing::warn!(
        latency_ms,
        "the simulated card processor's latency was changed by the operator"
    );
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(LatencyView {
            latency_ms,
            previous_ms: u64::try_from(previous.as_millis()).unwrap_or(u64::MAX),
        }))
}
