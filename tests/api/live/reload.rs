//! A buyer never loses sight of what they hold: `GET /me/holds` and the socket's greeting
//! give a page that was reloaded (or a second tab) the live holds with their deadlines;
//! GA tiers count held and sold tickets apart on the live map.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{next_frame, open, Watcher};
use crate::helpers::*;

async fn my_holds(app: &TestApp, token: &str, event_id: uuid::Uuid) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/api/v1/me/holds?event_id={event_id}"),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["holds"].as_array().cloned().unwrap_or_default()
}

#[actix_web::test]
async fn a_reloaded_page_gets_back_the_buyers_live_holds_and_their_deadlines() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (buyer, other) = (app.buyer().await, app.buyer().await);
    assert!(my_holds(&app, &buyer.token, event_id).await.is_empty());

    let (status, seats) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"best_available": {"quantity": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{seats}");
    let tier = app.general_tier(event_id).await;
    let (status, standing) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": tier, "quantity": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{standing}");
    let (status, theirs) = app
        .hold(
            &other.token,
            event_id,
            &json!({"tier_id": tier, "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");

    // The list: the buyer's two holds, as they were answered, nobody else's.
    let mine = my_holds(&app, &buyer.token, event_id).await;
    let ids: Vec<&Value> = mine.iter().map(|h| &h["hold_id"]).collect();
    assert_eq!(ids.len(), 2, "{mine:?}");
    for made in [&seats, &standing] {
        let listed = mine
            .iter()
            .find(|h| h["hold_id"] == made["hold_id"])
            .unwrap_or_else(|| panic!("{} is not listed: {mine:?}", made["hold_id"]));
        assert_eq!(listed["expires_at"], made["expires_at"]);
        assert_eq!(listed["status"], "HELD");
        assert_eq!(listed["total_cents"], made["total_cents"]);
        assert_eq!(listed["seats"], made["seats"]);
    }
    assert!(!ids.contains(&&theirs["hold_id"]));

    // The socket of a page opened now: the snapshot, then a `hold` frame per live hold.
    let mut socket = open(&app, event_id, &format!("?token={}", buyer.token)).await;
    let first = next_frame(&mut socket).await;
    assert_eq!(first["type"], "snapshot", "{first}");
    let mut greeted = Vec::new();
    for _ in 0..2 {
        let frame = next_frame(&mut socket).await;
        assert_eq!(frame["type"], "hold", "{frame}");
        assert_eq!(frame["status"], "HELD", "{frame}");
        greeted.push(frame);
    }
    for made in [&seats, &standing] {
        let frame = greeted
            .iter()
            .find(|f| f["hold_id"] == made["hold_id"])
            .unwrap_or_else(|| panic!("no greeting for {}: {greeted:?}", made["hold_id"]));
        assert_eq!(frame["expires_at"], made["expires_at"]);
    }

    // A viewer without a token is greeted with nothing: the next frame is the next batch.
    let mut anonymous = Watcher::connect(&app, event_id, "").await;
    super::release(&app, &buyer.token, &seats).await;
    anonymous
        .until("the released seats show", |w| w.deltas > 0)
        .await;
    assert!(anonymous.holds.is_empty(), "{:?}", anonymous.holds);

    // Released: gone from the list; the other stays.
    let left: Vec<Value> = my_holds(&app, &buyer.token, event_id)
        .await
        .into_iter()
        .map(|h| h["hold_id"].clone())
        .collect();
    assert_eq!(left, vec![standing["hold_id"].clone()]);
    // Expired: gone too.
    app.pass_time(event_id, chrono::Duration::minutes(30)).await;
    assert!(my_holds(&app, &buyer.token, event_id).await.is_empty());
}

#[actix_web::test]
async fn asking_for_ones_holds_oddly_is_answered_with_a_reason() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    for (path, status) in [
        ("/api/v1/me/holds".to_owned(), StatusCode::BAD_REQUEST),
        (
            "/api/v1/me/holds?event_id=nope".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/me/holds?event_id={event_id}&event_id={event_id}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/me/holds?event_id={}", uuid::Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, body) = app.get(&path, Some(&buyer.token)).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    let path = format!("/api/v1/me/holds?event_id={event_id}");
    let (status, body) = app.get(&path, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app.get(&path, Some(&organizer.token)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "role_not_allowed");
    // An event that is not on sale has no engine: nothing is held there.
    let (_, later) = app.published_event(&organizer.token, 9).await;
    assert!(my_holds(&app, &buyer.token, later).await.is_empty());
}

#[actix_web::test]
async fn a_visitor_who_tries_to_hold_is_asked_to_sign_in_and_keeps_their_place() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let visitor = app.visitor().await;
    let (status, place) = app.join(event_id, &visitor).await;
    assert_eq!(status, StatusCode::OK, "{place}");
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 1);
    let pass = app.admission(event_id, &visitor).await;
    let tier = app.general_tier(event_id).await;
    let one = json!({"tier_id": tier, "quantity": 1});
    let (status, body) = app
        .admitted_hold(&visitor, Some(&pass), event_id, &one)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "sign_in_required");
    assert!(
        string(&body["error"]["message"]).contains("queue/claim"),
        "the answer says how to keep the place: {body}"
    );
    // A token that is neither an account's nor a visitor's stays a plain 401.
    let (status, body) = app.hold("not-a-token", event_id, &one).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    // Signed in, the buyer claims the visitor's admission and buys with it.
    let buyer = app.buyer().await;
    let (status, claimed) = app.claim(event_id, &buyer.token, &visitor).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["state"], "admitted", "{claimed}");
    let pass = string(&claimed["admission_token"]);
    let (status, hold) = app
        .admitted_hold(&buyer.token, Some(&pass), event_id, &one)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
}

#[actix_web::test]
async fn a_ga_tier_counts_held_and_sold_tickets_apart_on_the_live_map() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let tier = app.general_tier(event_id).await;
    let tier_id = uuid(&tier);
    let counts = |frame: &Value| -> Option<(u64, u64, u64)> {
        let t = frame["tiers"]
            .as_array()?
            .iter()
            .find(|t| uuid(&t["tier_id"]) == tier_id)?;
        Some((
            t["available"].as_u64()?,
            t["held"].as_u64()?,
            t["sold"].as_u64()?,
        ))
    };
    let mut socket = open(&app, event_id, "").await;
    let snapshot = next_frame(&mut socket).await;
    assert_eq!(counts(&snapshot), Some((80, 0, 0)), "{snapshot}");

    let buyer = app.buyer().await;
    let (status, hold) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": tier, "quantity": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let mut seen = Vec::new();
    while seen.last() != Some(&(77, 3, 0)) {
        let frame = next_frame(&mut socket).await;
        seen.extend(counts(&frame));
    }
    let (status, order) = app
        .checkout(&buyer.token, &hold["hold_id"], "ga-split", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    while seen.last() != Some(&(77, 0, 3)) {
        let frame = next_frame(&mut socket).await;
        seen.extend(counts(&frame));
    }
    // The counts add up to the tier at every step, and a new viewer sees the same.
    assert!(seen.iter().all(|(a, h, s)| a + h + s == 80), "{seen:?}");
    let mut late = open(&app, event_id, "").await;
    let snapshot = next_frame(&mut late).await;
    assert_eq!(counts(&snapshot), Some((77, 0, 3)), "{snapshot}");
    // And Postgres agrees on what was sold.
    let sold: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE tier_id = $1")
        .bind(tier_id)
        .fetch_one(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sold, 3);
}
