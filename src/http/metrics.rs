//! Prometheus metrics: request counts and latencies by route pattern, served at `/metrics`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use super::error::ApiError;
use super::AppState;

/// The server's metrics and the registry they are exported from.
pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    refusals: IntCounterVec,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new_custom(Some("boxoffice".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "refusals_total",
                "Requests answered with a client error, by route and error code (seat_unavailable, sold_out, ...)",
            ),
            &["route", "code"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            refusals,
        })
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }
}

/// Middleware: times each request and counts it under its route pattern (never the raw
/// path, so ids do not explode the label set).
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        if response.status().is_client_error() {
            let code = response
                .response()
                .extensions()
                .get::<super::trace::ErrorCode>()
                .map_or("other", |c| c.0);
            state
                .metrics
                .refusals
                .with_label_values(&[&route, code])
                .inc();
        }
        state.metrics.observe(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

/// `GET /metrics` in the Prometheus text format.
pub async fn export(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crate::metrics::figures().sample();
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&state.metrics.registry.gather(), &mut buffer)
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(buffer))
}
