//! An organizer's webhooks: subscribe a URL to event types (the secret is shown once), list
//! and delete subscriptions, read a subscription's delivery log, send a test, redeliver.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{Did, Trail};
use super::auth::Organizer;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::AppState;
use crate::persistence::webhooks::{self as store, WebhookRow};
use crate::webhooks::{check_url, new_secret, EVENT_TYPES};

/// Most subscriptions one organizer may have.
const MAX_WEBHOOKS: usize = 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: an http(s) URL, not on a private network.
    #[schema(min_length = 8, max_length = 2000, format = "uri")]
    pub url: String,
    /// Event types: `order.confirmed`, `order.refunded`, `ticket.transferred`, `ticket.checked_in`, `event.sold_out`, `event.cancelled`, `waitlist.offered`.
    #[schema(min_items = 1, max_items = 32)]
    pub events: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub webhook_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Set when the receiver answered 410 Gone: nothing more is sent.
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// The signing secret: in the answer that creates the subscription only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn view(row: WebhookRow, with_secret: bool) -> WebhookView {
    WebhookView {
        webhook_id: row.webhook_id,
        url: row.url,
        events: row.events,
        created_at: row.created_at,
        disabled_at: row.disabled_at,
        disabled_reason: row.disabled_reason,
        secret: with_secret.then_some(row.secret),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// Subscribes a URL to event types of the organizer's own events. Deliveries are POSTs of
/// `{id, type, created_at, data}` signed in `Boxoffice-Signature: t=<unix seconds>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<raw body>")>`, retried with backoff for a day; answer 2xx
/// within 10 s; answer 410 to end the subscription.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "organizer", security(("bearer" = [])),
    request_body = CreateWebhook,
    responses((status = 201, body = WebhookView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "too_many_webhooks", body = ErrorBody),
              (status = 400, body = ErrorBody), (status = 422, description = "a private or malformed URL, an unknown event type", body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn create(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    body: Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let url = body.url.trim().to_owned();
    if url.chars().count() > 2000 {
        return Err(ApiError::invalid_field(
            "url",
            "must be at most 2000 characters",
        ));
    }
    check_url(&url, state.settings.webhook_allow_private)
        .await
        .map_err(|why| ApiError::invalid_field("url", why))?;
    let mut events: Vec<String> = Vec::new();
    for kind in &body.events {
        if !EVENT_TYPES.contains(&kind.as_str()) {
            return Err(ApiError::invalid_field(
                "events",
                format!("unknown event type (known: {})", EVENT_TYPES.join(", ")),
            ));
        }
        if !events.contains(kind) {
            events.push(kind.clone());
        }
    }
    if events.is_empty() || body.events.len() > 32 {
        return Err(ApiError::invalid_field(
            "events",
            "must name 1 to 32 event types",
        ));
    }
    if store::of_organizer(&state.pool, organizer.user_id)
        .await?
        .len()
        >= MAX_WEBHOOKS
    {
        return Err(ApiError::conflict(
            "too_many_webhooks",
            format!("an organizer may have at most {MAX_WEBHOOKS} webhooks"),
        ));
    }
    let row = WebhookRow {
        webhook_id: Uuid::new_v4(),
        organizer_id: organizer.user_id,
        url,
        events,
        secret: new_secret(),
        created_at: state.now(),
        disabled_at: None,
        disabled_reason: None,
    };
    store::create(&state.pool, &row).await?;
    let made = serde_json::json!({"url": row.url, "events": row.events});
    trail
        .record(
            &state,
            organizer.user_id,
            Did {
                event_id: None,
                object_kind: "webhook",
                object_id: Some(row.webhook_id),
                action: "webhook.created",
                before: None,
                after: Some(made),
            },
        )
        .await;
    Ok(HttpResponse::Created().json(view(row, true)))
}

/// The organizer's subscriptions (without their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "organizer", security(("bearer" = [])),
    responses((status = 200, body = WebhookList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn list(
    state: web::Data<AppState>,
    organizer: Organizer,
) -> Result<HttpResponse, ApiError> {
    let webhooks = store::of_organizer(&state.pool, organizer.user_id)
        .await?
        .into_iter()
        .map(|w| view(w, false))
        .collect();
    Ok(HttpResponse::Ok().json(WebhookList { webhooks }))
}

async fn own(
    state: &AppState,
    organizer: Organizer,
    webhook_id: Uuid,
) -> Result<WebhookRow, ApiError> {
    store::find(&state.pool, webhook_id)
        .await?
        .filter(|w| w.organizer_id == organizer.user_id)
        .ok_or_else(|| ApiError::NotFound("no such webhook".into()))
}

/// Ends a subscription (queued deliveries are dropped).
#[utoipa::path(delete, path = "/api/v1/webhooks/{webhook_id}", tag = "organizer", security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn delete(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let hook = own(&state, organizer, *path).await?;
    store::delete(&state.pool, hook.webhook_id).await?;
    let was = serde_json::json!({"url": hook.url, "events": hook.events});
    trail
        .record(
            &state,
            organizer.user_id,
            Did {
                event_id: None,
                object_kind: "webhook",
                object_id: Some(hook.webhook_id),
                action: "webhook.deleted",
                before: Some(was),
                after: None,
            },
        )
        .await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub delivery_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    /// `PENDING` (to be tried at `next_attempt_at`), `DELIVERED`, or `DEAD` (given up on).
    pub status: String,
    pub attempts: i32,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

/// The subscription's last 100 deliveries, newest first, with the receiver's last answers.
#[utoipa::path(get, path = "/api/v1/webhooks/{webhook_id}/deliveries", tag = "organizer", security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path)),
    responses((status = 200, body = DeliveryList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn deliveries(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let hook = own(&state, organizer, *path).await?;
    let deliveries = store::deliveries(&state.pool, hook.webhook_id)
        .await?
        .into_iter()
        .map(|d| DeliveryView {
            delivery_id: d.delivery_id,
            kind: d.kind,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryList { deliveries }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub delivery_id: Uuid,
}

/// Queues a `webhook.test` delivery, sent within a second.
#[utoipa::path(post, path = "/api/v1/webhooks/{webhook_id}/test", tag = "organizer", security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path)),
    responses((status = 202, body = Queued), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn test(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let hook = own(&state, organizer, *path).await?;
    let delivery_id = store::queue_test(&state.pool, hook.webhook_id, state.now()).await?;
    Ok(HttpResponse::Accepted().json(Queued { delivery_id }))
}

/// Sends a delivery again (the same body and id: receivers drop what they have seen).
#[utoipa::path(post, path = "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", tag = "organizer", security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, body = Queued), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn redeliver(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (webhook_id, delivery_id) = path.into_inner();
    let hook = own(&state, organizer, webhook_id).await?;
    if !store::redeliver(&state.pool, hook.webhook_id, delivery_id, state.now()).await? {
        return Err(ApiError::NotFound("no such delivery".into()));
    }
    Ok(HttpResponse::Accepted().json(Queued { delivery_id }))
}
