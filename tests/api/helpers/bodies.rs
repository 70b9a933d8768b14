//! Request bodies, proof-of-work solving, visitor tokens and the assertions tests share.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;

/// Solves a challenge the server handed out (an `X-Proof-Of-Work` payload), as a
/// browser's worker would.
pub fn solve(challenge: &Value) -> String {
    let challenge: boxoffice::pow::ChallengeView = serde_json::from_value(challenge.clone())
        .unwrap_or_else(|e| panic!("not a challenge: {e}: {challenge}"));
    boxoffice::pow::solve(&challenge).unwrap_or_else(|| panic!("no solution to {challenge:?}"))
}

/// A visitor token from the server at `base`: its challenge solved, then the token minted.
pub async fn visitor_token(client: &reqwest::Client, base: &str) -> String {
    let challenge: Value = client
        .get(format!("{base}/api/v1/visitors/challenge"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("visitor challenge: {e}"))
        .json()
        .await
        .unwrap_or(Value::Null);
    let response = client
        .post(format!("{base}/api/v1/visitors"))
        .header("X-Proof-Of-Work", solve(&challenge))
        .send()
        .await
        .unwrap_or_else(|e| panic!("minting a visitor: {e}"));
    assert_eq!(response.status(), StatusCode::CREATED);
    let visitor: Value = response.json().await.unwrap_or(Value::Null);
    string(&visitor["token"])
}

/// A time `days` from now, rounded to the hour so that tests read well in logs.
pub fn days_from_now(days: i64) -> DateTime<Utc> {
    // Whole hours: two calls a moment apart give the same time (the part of a second they
    // were made in once made an event "right after" another overlap it by microseconds).
    let t = Utc::now() + Duration::days(days);
    chrono::DurationRound::duration_trunc(t, Duration::hours(1)).unwrap_or(t)
}

/// An on-sale that opened an hour ago and ends when the event `event_days` from now starts;
/// holds last 8 minutes; no waiting room.
pub fn open_onsale_body(event_days: i64) -> Value {
    let now = Utc::now();
    json!({
        "sale_starts_at": now - Duration::hours(1),
        "sale_ends_at": days_from_now(event_days),
        "hold_minutes": 8,
        "max_per_order": 6,
        // Tests buy many tickets as one buyer; the per-buyer limit has tests of its own.
        "max_per_buyer": 100
    })
}

pub fn venue_body(name: &str, city: &str) -> Value {
    json!({
        "name": name, "address": "1 Rue de Test", "city": city, "latitude": 45.76, "longitude": 4.83,
        "timezone": "Europe/Paris", "venue_type": "THEATER",
        "facilities": {"parking": true, "catering": false, "av_equipment": true},
        "layout": {"sections": [
            {"name": "A", "kind": "seated", "rows": 3, "seats_per_row": 4},
            {"name": "B", "kind": "seated", "rows": 2, "seats_per_row": 5, "row_labels": "numbers"},
            {"name": "Floor", "kind": "general_admission", "capacity": 100}
        ]}
    })
}

pub fn event_body(venue_id: Uuid, title: &str, days: i64) -> Value {
    let start = days_from_now(days);
    json!({
        "venue_id": venue_id, "title": title, "description": "A night of tests", "category": "CONCERT",
        "performers": ["The Asserts"], "start_time": start, "end_time": start + Duration::hours(3),
        "doors_open": start - Duration::hours(1)
    })
}

pub fn standard_pricing(venue: &VenueFixture) -> Value {
    json!({
        "currency": "EUR",
        "sections": [
            {"section_id": venue.seated[0], "price_cents": 8000},
            {"section_id": venue.seated[1], "price_cents": 5000}
        ],
        "tiers": [
            {"section_id": venue.floor, "name": "GENERAL", "price_cents": 4000, "quantity": 80, "max_per_order": 6},
            {"section_id": venue.floor, "name": "VIP", "price_cents": 12000, "quantity": 20, "max_per_order": 2}
        ]
    })
}

/// An on-sale opening `opens_in_hours` from now (negative: already open) and ending when the
/// event `event_days` from now starts.
pub fn onsale_body(opens_in_hours: i64, event_days: i64) -> Value {
    let now = Utc::now();
    json!({
        "sale_starts_at": now + Duration::hours(opens_in_hours),
        "sale_ends_at": days_from_now(event_days),
        "hold_minutes": 8,
        "max_per_order": 6,
        "waiting_room": {"queue_opens_at": now + Duration::hours(opens_in_hours) - Duration::minutes(30), "admission_per_minute": 500}
    })
}

pub fn uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("not a uuid: {value}"))
}

pub fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_owned()
}

/// Asserts an error answer: the status, the code, and (for validation) the named fields.
pub fn assert_error(status: StatusCode, body: &Value, expected_status: StatusCode, code: &str) {
    assert_eq!(status, expected_status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

pub fn assert_fields(body: &Value, fields: &[&str]) {
    let named = &body["error"]["fields"];
    for field in fields {
        assert!(
            named.get(*field).is_some(),
            "field {field} not named in {body}"
        );
    }
}
