//! The audit log (`audit_log`, append-only): organizer actions written by their handlers,
//! order and ticket changes written by triggers; read back by owner, newest first.

use std::net::IpAddr;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// One action to record.
pub struct Entry<'a> {
    pub owner_id: Uuid,
    pub actor_id: Option<Uuid>,
    /// `ORGANIZER`, `BUYER` or `SYSTEM`.
    pub actor_kind: &'static str,
    pub event_id: Option<Uuid>,
    pub object_kind: &'static str,
    pub object_id: Option<Uuid>,
    pub action: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub ip: Option<IpAddr>,
}

pub async fn append(pool: &PgPool, entry: Entry<'_>) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (owner_id, actor_id, actor_kind, event_id, object_kind, object_id, action, before, after, ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet)",
    )
    .bind(entry.owner_id)
    .bind(entry.actor_id)
    .bind(entry.actor_kind)
    .bind(entry.event_id)
    .bind(entry.object_kind)
    .bind(entry.object_id)
    .bind(entry.action)
    .bind(entry.before)
    .bind(entry.after)
    .bind(entry.ip.map(|ip| ip.to_string()))
    .execute(pool)
    .await
    .context("appending to the audit log")?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntryRow {
    pub entry_id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub actor_kind: String,
    pub event_id: Option<Uuid>,
    pub object_kind: String,
    pub object_id: Option<Uuid>,
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub ip: Option<String>,
}

/// What to read.
pub struct Filter {
    pub owner_id: Uuid,
    pub event_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    /// Entries older than this one (the next page).
    pub before_entry: Option<i64>,
    pub limit: i64,
}

/// The owner's entries, newest first.
pub async fn entries(pool: &PgPool, filter: &Filter) -> anyhow::Result<Vec<EntryRow>> {
    sqlx::query_as(
        "SELECT a.entry_id, a.at, a.actor_id, u.email AS actor_email, a.actor_kind, a.event_id, a.object_kind, \
                a.object_id, a.action, a.before, a.after, host(a.ip) AS ip \
         FROM audit_log a LEFT JOIN users u ON u.user_id = a.actor_id \
         WHERE a.owner_id = $1 AND ($2::uuid IS NULL OR a.event_id = $2) AND ($3::uuid IS NULL OR a.actor_id = $3) \
           AND ($4::timestamptz IS NULL OR a.at >= $4) AND ($5::int8 IS NULL OR a.entry_id < $5) \
         ORDER BY a.entry_id DESC LIMIT $6",
    )
    .bind(filter.owner_id)
    .bind(filter.event_id)
    .bind(filter.actor_id)
    .bind(filter.from)
    .bind(filter.before_entry)
    .bind(filter.limit)
    .fetch_all(pool)
    .await
    .context("reading the audit log")
}

/// What changed between two JSON objects: the top-level keys whose values differ, each
/// side with its own value (keys only one side has count as changed).
pub fn diff(before: &Value, after: &Value) -> (Value, Value) {
    let (Value::Object(old), Value::Object(new)) = (before, after) else {
        return (before.clone(), after.clone());
    };
    let mut was = serde_json::Map::new();
    let mut now = serde_json::Map::new();
    for key in old.keys().chain(new.keys()) {
        if old.get(key) != new.get(key) && !was.contains_key(key) && !now.contains_key(key) {
            was.insert(key.clone(), old.get(key).cloned().unwrap_or(Value::Null));
            now.insert(key.clone(), new.get(key).cloned().unwrap_or(Value::Null));
        }
    }
    (Value::Object(was), Value::Object(now))
}

#[cfg(test)]
mod tests {
    use super::diff;
    use serde_json::json;

    #[test]
    fn a_diff_keeps_what_changed_only() {
        let (was, now) = diff(
            &json!({"title": "Old", "city": "Lyon", "gone": 1}),
            &json!({"title": "New", "city": "Lyon", "added": true}),
        );
        assert_eq!(was, json!({"title": "Old", "gone": 1, "added": null}));
        assert_eq!(now, json!({"title": "New", "gone": null, "added": true}));
    }
}
