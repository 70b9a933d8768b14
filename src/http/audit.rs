//! The audit log over HTTP: [`Trail`] lets a handler record what its caller did (who,
//! from which address, what changed), and `GET /audit` reads an organizer's entries — their
//! own objects only. Nothing edits or deletes an entry.

use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Organizer;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::persistence::audit::{self as store, Entry, Filter};

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Trail {
    pub ip: IpAddr,
}

impl FromRequest for Trail {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(Trail {
            ip: super::ratelimit::client_ip(req),
        }))
    }
}

/// What an action did, for [`Trail::record`].
pub struct Did<'a> {
    pub event_id: Option<Uuid>,
    pub object_kind: &'static str,
    pub object_id: Option<Uuid>,
    pub action: &'a str,
    /// The object before and after (only what changed is kept).
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Did<'a> {
    /// `action` on the event `event_id` itself.
    pub fn event(event_id: Uuid, action: &'a str) -> Did<'a> {
        Did::on(event_id, "event", Some(event_id), action)
    }

    /// `action` on an object of kind `object_kind` of the event `event_id`.
    pub fn on(
        event_id: Uuid,
        object_kind: &'static str,
        object_id: Option<Uuid>,
        action: &'a str,
    ) -> Did<'a> {
        Did {
            event_id: Some(event_id),
            object_kind,
            object_id,
            action,
            before: None,
            after: None,
        }
    }

    /// With the object as it was and as it is now.
    pub fn changed(mut self, before: Option<Value>, after: Option<Value>) -> Did<'a> {
        self.before = before;
        self.after = after;
        self
    }
}

impl Trail {
    /// Records that `actor` (an organizer, on their own object) did `did`. The action has
    /// committed already: a failure to record is logged, not the caller's error.
    pub async fn record(&self, state: &AppState, actor: Uuid, did: Did<'_>) {
        self.record_for(state, actor, actor, "ORGANIZER", did).await;
    }

    /// Records an action by `actor` (of `actor_kind`) on an object `owner` owns.
    pub async fn record_for(
        &self,
        state: &AppState,
        owner: Uuid,
        actor: Uuid,
        actor_kind: &'static str,
        did: Did<'_>,
    ) {
        let (before, after) = match (did.before, did.after) {
            (Some(before), Some(after)) => {
                let (was, now) = store::diff(&before, &after);
                (Some(was), Some(now))
            }
            other => other,
        };
        let entry = Entry {
            owner_id: owner,
            actor_id: Some(actor),
            actor_kind,
            event_id: did.event_id,
            object_kind: did.object_kind,
            object_id: did.object_id,
            action: did.action,
            before,
            after,
            ip: Some(self.ip),
        };
        if let Err(error) = store::append(&state.pool, entry).await {
            tracing::error!(
                ?error,
                action = did.action,
                "an action went unrecorded in the audit log"
            );
        }
    }
}

/// `value` as JSON for the log, secrets left out.
pub fn json(value: &impl Serialize) -> Option<Value> {
    let mut value = serde_json::to_value(value).ok()?;
    if let Value::Object(map) = &mut value {
        for secret in ["secret", "token", "payment_token", "password"] {
            if map.contains_key(secret) {
                map.insert(secret.into(), Value::from("(hidden)"));
            }
        }
    }
    Some(value)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// One event's entries.
    pub event_id: Option<Uuid>,
    /// One actor's entries (a user id).
    pub actor: Option<Uuid>,
    /// From this time on.
    pub from: Option<DateTime<Utc>>,
    /// The next page: entries older than this `entry_id`.
    pub before: Option<i64>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditObject {
    pub kind: String,
    pub id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub entry_id: i64,
    pub at: DateTime<Utc>,
    /// The user who did it (null: the system).
    pub actor: Option<Uuid>,
    pub actor_email: Option<String>,
    /// `ORGANIZER`, `BUYER` or `SYSTEM`.
    pub actor_kind: String,
    pub action: String,
    pub object: AuditObject,
    pub event_id: Option<Uuid>,
    /// What changed: the fields before and after (absent for a creation or a deletion).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub ip: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for older entries; null at the end.
    pub next_before: Option<i64>,
}

/// The caller's audit log, newest first: their actions and what happened to their events'
/// orders and tickets.
#[utoipa::path(get, path = "/api/v1/audit", tag = "back office", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditLog), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn log(
    state: web::Data<AppState>,
    organizer: Organizer,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::malformed(
            "limit must be between 1 and 500",
            [("limit".to_owned(), "must be between 1 and 500".to_owned())].into(),
        ));
    }
    let rows = store::entries(
        &state.pool,
        &Filter {
            owner_id: organizer.user_id,
            event_id: query.event_id,
            actor_id: query.actor,
            from: query.from,
            before_entry: query.before,
            limit,
        },
    )
    .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.entry_id))
        .flatten();
    let entries = rows
        .into_iter()
        .map(|r| AuditEntry {
            entry_id: r.entry_id,
            at: r.at,
            actor: r.actor_id,
            actor_email: r.actor_email,
            actor_kind: r.actor_kind,
            action: r.action,
            object: AuditObject {
                kind: r.object_kind,
                id: r.object_id,
            },
            event_id: r.event_id,
            before: r.before,
            after: r.after,
            ip: r.ip,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditLog {
        entries,
        next_before,
    }))
}
