//! The audit log: each organizer action and each order and ticket change appends an entry
//! with who, when, from where and what changed; an organizer reads their own only, by
//! event, actor and time, page by page; nothing can change an entry, not even SQL.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn audit(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, log) = app.get(&format!("/api/v1/audit{query}"), Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log
}

fn actions(log: &Value) -> Vec<String> {
    log["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| string(&e["action"]))
        .collect()
}

#[actix_web::test]
async fn actions_and_sales_are_audited_for_their_owner_only_and_never_change() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/events/{event_id}"),
            Some(&organizer.token),
            &json!({"title": "Renamed Night"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .put(
            &format!("/api/v1/events/{event_id}/refund-policy"),
            Some(&organizer.token),
            &json!({"buyer_cancel_until_hours": 24, "fee_cents": 0, "fee_percent": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, scanner) = app
        .post(
            &format!("/api/v1/events/{event_id}/scanners"),
            Some(&organizer.token),
            &json!({"name": "Gate A", "gate": "A"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{scanner}");
    let (status, _) = app
        .delete(
            &format!(
                "/api/v1/events/{event_id}/scanners/{}",
                string(&scanner["scanner_id"])
            ),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 2).await;
    let order_id = string(&order["order_id"]);
    let tickets = order["tickets"].clone();
    let (status, refunded) = app
        .refund(
            &organizer.token,
            &order_id,
            None,
            &json!({"ticket_ids": [tickets[0]["ticket_id"]], "reason": "Seat broken"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refunded}");

    let log = audit(&app, &organizer.token, "?limit=500").await;
    let seen = actions(&log);
    for action in [
        "venue.created",
        "event.created",
        "event.priced",
        "event.onsale_set",
        "event.published",
        "event.updated",
        "event.refund_policy_set",
        "scanner.created",
        "scanner.revoked",
        "order.created",
        "ticket.issued",
        "order.refund_requested",
        "order.partially_refunded",
        "ticket.cancelled",
    ] {
        assert!(
            seen.iter().any(|a| a == action),
            "{action} is audited: {seen:?}"
        );
    }
    let renamed = log["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["action"] == "event.updated")
        .cloned()
        .unwrap_or_default();
    assert_eq!(renamed["actor"], json!(organizer.user_id), "{renamed}");
    assert_eq!(renamed["ip"], "127.0.0.1", "{renamed}");
    assert_eq!(
        renamed["before"],
        json!({"title": "Test Night"}),
        "only what changed: {renamed}"
    );
    assert_eq!(
        renamed["after"],
        json!({"title": "Renamed Night"}),
        "{renamed}"
    );
    let refund = log["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["action"] == "order.refund_requested")
        .cloned()
        .unwrap_or_default();
    assert_eq!(refund["actor_kind"], "ORGANIZER", "{refund}");
    assert_eq!(refund["after"]["order_id"], json!(order_id), "{refund}");

    // By actor: the buyer's own doings on this organizer's event; by event; page by page.
    let by_buyer = audit(&app, &organizer.token, &format!("?actor={}", buyer.user_id)).await;
    assert!(!actions(&by_buyer).is_empty());
    assert!(by_buyer["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| e["actor"] == json!(buyer.user_id)));
    let first = audit(
        &app,
        &organizer.token,
        &format!("?event_id={event_id}&limit=3"),
    )
    .await;
    assert_eq!(actions(&first).len(), 3);
    let next = first["next_before"]
        .as_i64()
        .unwrap_or_else(|| panic!("a next page: {first}"));
    let second = audit(
        &app,
        &organizer.token,
        &format!("?event_id={event_id}&limit=3&before={next}"),
    )
    .await;
    let (a, b) = (
        first["entries"][2]["entry_id"].as_i64(),
        second["entries"][0]["entry_id"].as_i64(),
    );
    assert!(a > b, "older entries on the next page: {a:?} then {b:?}");
    let venue_only = audit(
        &app,
        &organizer.token,
        &format!("?from={}", chrono::Utc::now() + chrono::Duration::hours(1)),
    )
    .await;
    assert!(actions(&venue_only).is_empty(), "nothing from the future");

    // Another organizer sees none of it, even asking for the event.
    let other = app.organizer().await;
    assert!(actions(&audit(&app, &other.token, "").await).is_empty());
    assert!(actions(&audit(&app, &other.token, &format!("?event_id={event_id}")).await).is_empty());
    let (status, body) = app.get("/api/v1/audit", Some(&buyer.token)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app
        .get("/api/v1/audit?limit=0", Some(&organizer.token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Append-only, whatever the path: no endpoint edits it and Postgres refuses.
    for sql in [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::query(sql).execute(&app.pool).await;
        assert!(refused.is_err(), "{sql} must be refused");
    }
    let _ = venue;
}
