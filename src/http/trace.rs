//! The request span of every request, and what is logged when one ends. Nothing secret
//! reaches a log line: the span carries the path without its query string (sockets take
//! `?token=`), never a header, never a body; a refusal (4xx) is logged at debug with its
//! code only, and counted on `/metrics` by code; an unexpected failure (5xx) is logged at
//! error with its cause where it happened (`ApiError::Unexpected`), and here only by code.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::Error;
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// The error code an answer carried, put in the response's extensions by `ApiError`, so
/// that metrics and logs can name it without reading the body.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// Builds request spans that name the route and the path, never the query string.
pub struct RedactedSpan;

/// The path of a request as logs may show it: the query string is replaced by `?…`.
pub fn loggable_target(path: &str, query: &str) -> String {
    let path: String = path.chars().take(200).collect();
    if query.is_empty() {
        path
    } else {
        format!("{path}?…")
    }
}

impl RootSpanBuilder for RedactedSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let peer = request
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %loggable_target(request.path(), request.query_string()),
            http.peer = %peer,
            http.status_code = tracing::field::Empty,
            error.code = tracing::field::Empty,
            request_id = %request_id,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, code) = match outcome {
            Ok(response) => (
                response.status(),
                response
                    .response()
                    .extensions()
                    .get::<ErrorCode>()
                    .map(|c| c.0),
            ),
            Err(error) => (error.as_response_error().status_code(), None),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(code) = code {
            span.record("error.code", code);
        }
        let _entered = span.enter();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, "request failed");
        } else if status.is_client_error() {
            // Refusals are the business working (a taken seat, a sold-out tier): counted,
            // not warned about.
            tracing::debug!(status = status.as_u16(), code, "request refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_never_reach_the_log() {
        assert_eq!(loggable_target("/api/v1/events", ""), "/api/v1/events");
        assert_eq!(
            loggable_target("/api/v1/events/x/live", "token=secret"),
            "/api/v1/events/x/live?…"
        );
        assert_eq!(loggable_target(&"a".repeat(10_000), "").len(), 200);
    }
}
