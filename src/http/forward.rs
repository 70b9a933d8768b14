//! Any node answers any request: those that need an on-sale's owner (holds, checkout, the
//! waiting room) are forwarded to it when this node is not it. Reads any node can serve
//! (catalog, seat map, live viewers) stay local.
//!
//! A forwarded request carries a hop header whose value only nodes know (derived from the
//! shared signing key): the receiving node serves it itself, whoever owns the sale (if that
//! is not itself, it answers 503 `owner_unavailable` rather than forwarding again, so there
//! are no loops), and trusts the client address it names for rate limits.
//!
//! While no node owns the on-sale (its owner just died) or the owner does not answer a
//! connection, the request waits for the takeover (about one lease) and is then served
//! where it lands; past that, or when the owner took the request but did not answer in
//! time, the answer is 503 `owner_unavailable` with `Retry-After`: never a 500, 502 or 504.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::cluster::{ClusterError, Route};

/// Marks a request forwarded by a node.
pub const HOP_HEADER: &str = "x-boxoffice-hop";
/// The client's address, as the first node saw it (trusted only with a valid hop header).
pub const CLIENT_IP_HEADER: &str = "x-boxoffice-client-ip";
/// How long to wait between looks at a lease that is changing hands.
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// How often a forwarded request that has no answer yet looks at the owner's lease.
const LEASE_WATCH: Duration = Duration::from_millis(500);

/// What an owner request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Event(Uuid),
    Hold(Uuid),
    /// Forwarded when another node owns the on-sale, served here otherwise, never a reason
    /// to take its lease: reads whose live part (held seats) only the owner knows, and the
    /// organizer's changes to what the owner caches (so it forgets at once).
    OwnerIfAny(Uuid),
}

/// The on-sale a request (its path and query) needs the owner of, if it needs one.
pub fn owner_target(method: &Method, path_and_query: &str) -> Option<Target> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let rest = path.strip_prefix("/api/v1/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    // A buyer's live holds: the owner's hold book has them.
    if parts == ["me", "holds"] && *method == Method::GET {
        let id = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("event_id="))?;
        return Uuid::parse_str(id).ok().map(Target::OwnerIfAny);
    }
    let is = |m: Method| *method == m;
    let (kind, id) = match parts.as_slice() {
        ["events", id, "holds"] if is(Method::POST) => ("event", *id),
        ["events", id, "queue"]
            if is(Method::POST) || is(Method::GET) || is(Method::PATCH) || is(Method::DELETE) =>
        {
            ("event", *id)
        }
        ["events", id, "queue", "claim"] if is(Method::POST) => ("event", *id),
        // Joining asks the owner whether the tier or section is sold out.
        ["events", id, "waitlist"] if is(Method::POST) => ("event", *id),
        ["events", id, "queue", "stats"] if is(Method::GET) => ("event", *id),
        ["holds", id] if is(Method::GET) || is(Method::DELETE) => ("hold", *id),
        ["holds", id, "checkout"] if is(Method::POST) => ("hold", *id),
        ["events", id, "seatmap"] if is(Method::GET) => ("if_any", *id),
        ["events", id, "onsale"] | ["events", id, "pricing"] if is(Method::PUT) => ("if_any", *id),
        ["events", id, "cancel"] if is(Method::POST) => ("if_any", *id),
        _ => return None,
    };
    let id = Uuid::parse_str(id).ok()?;
    Some(match kind {
        "event" => Target::Event(id),
        "hold" => Target::Hold(id),
        _ => Target::OwnerIfAny(id),
    })
}

/// Sends requests to other nodes.
pub struct Forwarder {
    client: reqwest::Client,
    hop_token: String,
    /// How long a request waits for an on-sale to get an owner again.
    failover_wait: Duration,
}

/// Why a forwarded request got no answer.
enum ForwardError {
    /// Nothing reached the owner (connection refused or reset before sending).
    Unreachable,
    /// The owner may have taken the request but did not answer in time.
    NoAnswer,
    /// The owner's lease lapsed while it had the request (it is paused or hung).
    OwnerGone,
}

impl Forwarder {
    pub fn new(secret: &[u8], timeout: Duration, lease: Duration) -> anyhow::Result<Forwarder> {
        let hop_token = hop_token(secret)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Forwarder {
            client,
            hop_token,
            failover_wait: lease + Duration::from_secs(2),
        })
    }

    /// Whether the request was forwarded by a node (its hop header is genuine).
    pub fn is_hop(&self, headers: &HeaderMap) -> bool {
        headers
            .get(HOP_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| constant_time_eq(v.as_bytes(), self.hop_token.as_bytes()))
    }

    /// The client address a genuine forwarded request names.
    pub fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.is_hop(headers) {
            return None;
        }
        headers.get(CLIENT_IP_HEADER)?.to_str().ok()?.parse().ok()
    }

    /// Forwards the request to `owner` at `base`, giving up as soon as the owner's lease is
    /// no longer live (a paused or hung owner): the request is then routed again. That is
    /// safe even if the old owner handles it when it wakes: it answers nothing once its
    /// lease lapsed, and its durable writes are fenced.
    async fn send(
        &self,
        state: &AppState,
        req: &ServiceRequest,
        (event_id, owner, base): (Uuid, &str, &str),
        body: web::Bytes,
    ) -> Result<HttpResponse, ForwardError> {
        let cluster = state.engine.cluster();
        let watch = async {
            let mut tick = tokio::time::interval(LEASE_WATCH);
            tick.tick().await;
            loop {
                tick.tick().await;
                match cluster.is_live_owner(event_id, owner).await {
                    Ok(false) => return,
                    Ok(true) => {}
                    Err(error) => tracing::debug!(%error, "could not read a lease"),
                }
            }
        };
        tokio::select! {
            answer = self.send_once(req, base, body) => answer,
            () = watch => {
                tracing::info!(%event_id, owner, "the owner's lease lapsed while it had a forwarded request");
                Err(ForwardError::OwnerGone)
            }
        }
    }

    async fn send_once(
        &self,
        req: &ServiceRequest,
        base: &str,
        body: web::Bytes,
    ) -> Result<HttpResponse, ForwardError> {
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
        let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
            .map_err(|_| ForwardError::Unreachable)?;
        let mut request = self.client.request(method, format!("{base}{path}"));
        for (name, value) in req.headers() {
            if is_hop_by_hop(name.as_str()) || name.as_str() == CLIENT_IP_HEADER {
                continue;
            }
            request = request.header(name.as_str(), value.as_bytes());
        }
        let client = super::ratelimit::client_ip(req.request());
        request = request
            .header(HOP_HEADER, &self.hop_token)
            .header(CLIENT_IP_HEADER, client.to_string())
            .body(body);
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                ForwardError::Unreachable
            } else {
                tracing::warn!(%error, base, "a forwarded request got no answer");
                ForwardError::NoAnswer
            }
        })?;
        let status =
            StatusCode::from_u16(response.status().as_u16()).map_err(|_| ForwardError::NoAnswer)?;
        let mut answer = HttpResponse::build(status);
        for (name, value) in response.headers() {
            if is_hop_by_hop(name.as_str()) || name.as_str() == "content-length" {
                continue;
            }
            answer.append_header((name.as_str(), value.as_bytes()));
        }
        let bytes = response.bytes().await.map_err(|error| {
            tracing::warn!(%error, base, "a forwarded answer was cut short");
            ForwardError::NoAnswer
        })?;
        Ok(answer.body(bytes.to_vec()))
    }
}

impl Forwarder {
    /// A waiting-room socket's message for a room that runs on another node: the place as
    /// the owner answers `GET /queue` for this token (`{"type": "queue", ...}`), or an
    /// error message (`{"type": "error", "error": {...}}`).
    pub async fn queue_status(&self, state: &AppState, event_id: Uuid, token: &str) -> String {
        let error =
            |e: ApiError| serde_json::json!({"type": "error", "error": e.body()}).to_string();
        let url = match state.engine.cluster().route(event_id).await {
            Ok(Route::Forward { url, .. }) => url,
            Ok(Route::Local(_)) => {
                return error(ApiError::owner_unavailable());
            }
            Err(_) => return error(ApiError::owner_unavailable()),
        };
        let answer = self
            .client
            .get(format!("{url}/api/v1/events/{event_id}/queue"))
            .bearer_auth(token)
            .header(HOP_HEADER, &self.hop_token)
            .send()
            .await;
        let Ok(answer) = answer else {
            state.engine.cluster().forget_owner(event_id);
            return error(ApiError::owner_unavailable());
        };
        let ok = answer.status().is_success();
        match answer.json::<serde_json::Value>().await {
            Ok(serde_json::Value::Object(mut body)) if ok => {
                body.insert("type".into(), "queue".into());
                serde_json::Value::Object(body).to_string()
            }
            Ok(serde_json::Value::Object(body)) => serde_json::json!({
                "type": "error",
                "error": body.get("error").cloned().unwrap_or_default(),
            })
            .to_string(),
            _ => error(ApiError::owner_unavailable()),
        }
    }
}

/// The hop header's value: an HMAC of a fixed text under the nodes' shared signing key, so
/// only a node can send it.
pub fn hop_token(secret: &[u8]) -> anyhow::Result<String> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    Ok(jsonwebtoken::crypto::sign(
        b"boxoffice node-to-node hop",
        &key,
        jsonwebtoken::Algorithm::HS256,
    )?)
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "host"
            | HOP_HEADER
    )
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: serves owner requests here when this node owns the on-sale, forwards them
/// to the owner otherwise.
pub async fn to_owner(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let target = owner_target(
        req.method(),
        req.uri()
            .path_and_query()
            .map_or(req.path(), |p| p.as_str()),
    );
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(target), Some(state)) = (target, state) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if state.forwarder.is_hop(req.headers()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    if let Target::OwnerIfAny(event_id) = target {
        return read_at_owner(req, next, &state, event_id).await;
    }
    let Some(event_id) = event_of(&state, target).await else {
        // Unknown everywhere: the handler answers 404.
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let cluster = state.engine.cluster().clone();
    let deadline = Instant::now() + state.forwarder.failover_wait;
    let mut body: Option<web::Bytes> = None;
    loop {
        let route = cluster.route(event_id).await;
        let (node_id, url) = match route {
            Ok(Route::Local(_)) | Err(ClusterError::NoSuchEvent) => {
                if let Some(bytes) = body.take() {
                    req.set_payload(Payload::from(bytes));
                }
                return Ok(next.call(req).await?.map_into_boxed_body());
            }
            Ok(Route::Forward { node_id, url }) => (node_id, url),
            Err(ClusterError::Stopping) => return Ok(unavailable(req)),
            Err(ClusterError::Unexpected(error)) => {
                tracing::warn!(%event_id, ?error, "could not tell who owns an on-sale");
                if Instant::now() < deadline {
                    tokio::time::sleep(RETRY_EVERY).await;
                    continue;
                }
                return Ok(unavailable(req));
            }
        };
        let bytes = match &body {
            Some(bytes) => bytes.clone(),
            None => {
                let bytes = req.extract::<web::Bytes>().await?;
                body = Some(bytes.clone());
                bytes
            }
        };
        let counted = |outcome: &str| {
            cluster
                .metrics
                .forwarded
                .with_label_values(&[outcome])
                .inc()
        };
        match state
            .forwarder
            .send(&state, &req, (event_id, &node_id, &url), bytes)
            .await
        {
            Ok(answer) => {
                counted("answered");
                return Ok(req.into_response(answer).map_into_boxed_body());
            }
            Err(error @ (ForwardError::Unreachable | ForwardError::OwnerGone)) => {
                counted(if matches!(error, ForwardError::Unreachable) {
                    "unreachable"
                } else {
                    "owner_gone"
                });
                tracing::info!(%event_id, owner = %node_id, "the on-sale's owner is unreachable; waiting for a takeover");
                cluster.forget_owner(event_id);
                if Instant::now() >= deadline {
                    return Ok(unavailable(req));
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(ForwardError::NoAnswer) => {
                counted("no_answer");
                cluster.forget_owner(event_id);
                return Ok(unavailable(req));
            }
        }
    }
}

/// Served here when the on-sale runs here or nowhere, and by its owner when it runs on
/// another node (served here if the owner does not answer: a read is then a little stale,
/// a change still reaches the owner through the change notice).
async fn read_at_owner(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: &AppState,
    event_id: Uuid,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let cluster = state.engine.cluster();
    let owner = if cluster.token(event_id).is_some() {
        None
    } else {
        match cluster.route_read(event_id).await {
            Ok(owner) => owner,
            Err(error) => {
                tracing::debug!(%event_id, %error, "could not tell who owns an on-sale");
                None
            }
        }
    };
    let Some((node_id, url)) = owner else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let bytes = req.extract::<web::Bytes>().await?;
    match state
        .forwarder
        .send(state, &req, (event_id, &node_id, &url), bytes.clone())
        .await
    {
        Ok(answer) => {
            cluster
                .metrics
                .forwarded
                .with_label_values(&["answered"])
                .inc();
            Ok(req.into_response(answer).map_into_boxed_body())
        }
        Err(_) => {
            cluster.forget_owner(event_id);
            req.set_payload(Payload::from(bytes));
            Ok(next.call(req).await?.map_into_boxed_body())
        }
    }
}

/// The on-sale of a target: an event's own id, or the event a hold id starts with.
async fn event_of(state: &AppState, target: Target) -> Option<Uuid> {
    match target {
        Target::Event(event_id) | Target::OwnerIfAny(event_id) => Some(event_id),
        Target::Hold(hold_id) => {
            state
                .engine
                .event_of_hold(hold_id)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, "could not find a hold's event");
                    None
                })
        }
    }
}

fn unavailable(req: ServiceRequest) -> ServiceResponse<BoxBody> {
    let response = ApiError::owner_unavailable().error_response();
    req.into_response(response).map_into_boxed_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_requests_are_recognised_by_method_and_path() {
        let id = Uuid::new_v4();
        let cases = [
            (
                Method::POST,
                format!("/api/v1/events/{id}/holds"),
                Some(Target::Event(id)),
            ),
            (Method::GET, format!("/api/v1/events/{id}/holds"), None),
            (
                Method::POST,
                format!("/api/v1/events/{id}/queue"),
                Some(Target::Event(id)),
            ),
            (
                Method::GET,
                format!("/api/v1/events/{id}/queue"),
                Some(Target::Event(id)),
            ),
            (
                Method::PATCH,
                format!("/api/v1/events/{id}/queue"),
                Some(Target::Event(id)),
            ),
            (
                Method::DELETE,
                format!("/api/v1/events/{id}/queue"),
                Some(Target::Event(id)),
            ),
            (Method::PUT, format!("/api/v1/events/{id}/queue"), None),
            (
                Method::POST,
                format!("/api/v1/events/{id}/queue/claim"),
                Some(Target::Event(id)),
            ),
            (
                Method::GET,
                format!("/api/v1/events/{id}/queue/stats"),
                Some(Target::Event(id)),
            ),
            (Method::GET, format!("/api/v1/events/{id}/queue/live"), None),
            (
                Method::GET,
                format!("/api/v1/holds/{id}"),
                Some(Target::Hold(id)),
            ),
            (
                Method::DELETE,
                format!("/api/v1/holds/{id}"),
                Some(Target::Hold(id)),
            ),
            (
                Method::POST,
                format!("/api/v1/holds/{id}/checkout"),
                Some(Target::Hold(id)),
            ),
            (Method::GET, format!("/api/v1/events/{id}"), None),
            (
                Method::PUT,
                format!("/api/v1/events/{id}/onsale"),
                Some(Target::OwnerIfAny(id)),
            ),
            (
                Method::PUT,
                format!("/api/v1/events/{id}/pricing"),
                Some(Target::OwnerIfAny(id)),
            ),
            (
                Method::POST,
                format!("/api/v1/events/{id}/cancel"),
                Some(Target::OwnerIfAny(id)),
            ),
            (Method::PATCH, format!("/api/v1/events/{id}"), None),
            (
                Method::GET,
                format!("/api/v1/events/{id}/seatmap"),
                Some(Target::OwnerIfAny(id)),
            ),
            (
                Method::POST,
                "/api/v1/events/not-a-uuid/holds".to_owned(),
                None,
            ),
            (Method::POST, format!("/api/v2/events/{id}/holds"), None),
            (
                Method::GET,
                format!("/api/v1/me/holds?event_id={id}"),
                Some(Target::OwnerIfAny(id)),
            ),
            (Method::GET, format!("/api/v1/events/{id}/holds?x=1"), None),
            (
                Method::GET,
                "/api/v1/me/holds?event_id=nope".to_owned(),
                None,
            ),
            (Method::GET, "/api/v1/me/holds".to_owned(), None),
            (
                Method::POST,
                format!("/api/v1/events/{id}/holds?event_id={id}"),
                Some(Target::Event(id)),
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(owner_target(&method, &path), expected, "{method} {path}");
        }
    }

    #[test]
    fn only_the_nodes_hop_token_counts() {
        let forwarder = Forwarder::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(1),
            Duration::from_secs(3),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut headers = HeaderMap::new();
        assert!(!forwarder.is_hop(&headers));
        headers.insert(
            actix_web::http::header::HeaderName::from_static(HOP_HEADER),
            actix_web::http::header::HeaderValue::from_static("forged"),
        );
        headers.insert(
            actix_web::http::header::HeaderName::from_static(CLIENT_IP_HEADER),
            actix_web::http::header::HeaderValue::from_static("10.1.2.3"),
        );
        assert!(!forwarder.is_hop(&headers));
        assert_eq!(forwarder.forwarded_client(&headers), None);
        let genuine = actix_web::http::header::HeaderValue::from_str(&forwarder.hop_token)
            .unwrap_or_else(|e| panic!("{e}"));
        headers.insert(
            actix_web::http::header::HeaderName::from_static(HOP_HEADER),
            genuine,
        );
        assert!(forwarder.is_hop(&headers));
        assert_eq!(
            forwarder.forwarded_client(&headers),
            Some(IpAddr::from([10, 1, 2, 3]))
        );
    }
}
