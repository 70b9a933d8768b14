//! Notices written by the sale and the door: `event.sold_out` when the last seat sells,
//! `ticket.checked_in` for each ticket let in — delivered to an organizer who subscribed,
//! and (for check-ins, of which a door makes many) not even written for one who did not.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{open_onsale_body, spawn_app_with, string, TestApp};
use crate::webhooks::{receiver, seen_count, subscribe, Seen};

fn bodies(seen: &Seen) -> Vec<Value> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter_map(|(_, _, body)| serde_json::from_str(body).ok())
        .collect()
}

async fn outbox_count(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = $1")
        .bind(kind)
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1)
}

#[actix_web::test]
async fn selling_out_and_letting_in_reach_the_organizers_webhook() {
    let app = spawn_app_with(|s| s.webhook_allow_private = true).await;
    let organizer = app.organizer().await;
    let (url, seen) = receiver(Vec::new()).await;
    let (status, hook) = subscribe(
        &app,
        &organizer.token,
        &url,
        json!(["event.sold_out", "ticket.checked_in"]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");

    // Only section A (12 seats) is sold: two orders of six sell the event out.
    let venue = app.standard_venue(&organizer.token).await;
    let event_id = app.draft_event(&organizer.token, venue.venue_id, 9).await;
    let pricing = json!({"currency": "EUR", "sections": [{"section_id": venue.seated[0], "price_cents": 8000}], "tiers": []});
    let (status, body) = app.set_pricing(&organizer.token, event_id, &pricing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .set_onsale(&organizer.token, event_id, &open_onsale_body(9))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let buyer = app.buyer().await;
    let tickets = app.bought(&buyer, event_id, 6).await;
    assert_eq!(outbox_count(&app, "event.sold_out").await, 0);
    app.bought(&buyer, event_id, 6).await;
    app.eventually("the sold-out notice is delivered", || async {
        bodies(&seen).iter().any(|b| b["type"] == "event.sold_out")
    })
    .await;
    let sold_out = bodies(&seen)
        .into_iter()
        .find(|b| b["type"] == "event.sold_out")
        .unwrap_or_default();
    assert_eq!(
        sold_out["data"]["event_id"],
        event_id.to_string(),
        "{sold_out}"
    );
    assert_eq!(sold_out["data"]["title"], "Test Night", "{sold_out}");

    // A ticket let in is one notice; the second scan of it is none.
    let (_, token) = app.scanner(&organizer, event_id, "North").await;
    for nonce in ["first-scan", "second-scan"] {
        let (status, answer) = app
            .scan(&token, event_id, &tickets[0]["qr_token"], nonce)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    app.eventually("the check-in notice is delivered", || async {
        seen_count(&seen) == 2
    })
    .await;
    let checked_in = bodies(&seen)
        .into_iter()
        .find(|b| b["type"] == "ticket.checked_in")
        .unwrap_or_default();
    assert_eq!(checked_in["data"]["ticket_id"], tickets[0]["ticket_id"]);
    assert_eq!(checked_in["data"]["gate"], "North");
    assert_eq!(checked_in["data"]["offline"], false);
    assert_eq!(outbox_count(&app, "ticket.checked_in").await, 1);
    assert_eq!(outbox_count(&app, "event.sold_out").await, 1);

    // Another organizer's door, without a subscription: no notices written at all.
    let other = app.organizer().await;
    let (_, other_event) = app.on_sale_event(&other.token).await;
    let theirs = app.bought(&buyer, other_event, 1).await;
    let (_, token) = app.scanner(&other, other_event, "Gate").await;
    let (_, answer) = app
        .scan(&token, other_event, &theirs[0]["qr_token"], "n")
        .await;
    assert_eq!(string(&answer["result"]), "ADMIT", "{answer}");
    assert_eq!(outbox_count(&app, "ticket.checked_in").await, 1);
    app.relay_settled().await;
}

#[actix_web::test]
async fn a_dead_lettered_row_is_shown_to_the_operator_and_can_be_put_back_in_line() {
    const OPERATOR: &str = "operator-token-for-the-tests";
    // Nothing listens on this port: every e-mail fails.
    let closed = crate::process::free_port();
    let app = spawn_app_with(move |s| {
        s.operator_token = Some(OPERATOR.into());
        s.smtp_url = Some(format!("smtp://127.0.0.1:{closed}"));
    })
    .await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    app.bought(&buyer, event_id, 1).await;
    // The row has failed nine times already (as if over the last hours): its tenth is due.
    let row: i64 = sqlx::query_scalar(
        "UPDATE outbox SET attempts = 9, available_at = now() - interval '1 second' \
         WHERE kind = 'order.confirmed' RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    app.eventually("the row is dead-lettered", || async {
        let (_, view) = app.get("/api/v1/outbox", Some(OPERATOR)).await;
        view["dead"] == 1
    })
    .await;
    let (status, view) = app.get("/api/v1/outbox", Some(OPERATOR)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let dead = &view["dead_rows"][0];
    assert_eq!(
        (dead["id"].as_i64(), dead["attempts"].as_i64()),
        (Some(row), Some(10)),
        "{view}"
    );
    assert_eq!(dead["kind"], "order.confirmed");
    assert!(string(&dead["last_error"]).contains("SMTP"), "{view}");

    // Only the operator sees it or puts it back.
    let (status, _) = app.get("/api/v1/outbox", Some(&organizer.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get("/api/v1/outbox", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post(
            &format!("/api/v1/outbox/{}/retry", row + 1000),
            Some(OPERATOR),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/outbox/{row}/retry"),
            Some(OPERATOR),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (dead_at, attempts): (Option<chrono::DateTime<chrono::Utc>>, i32) =
        sqlx::query_as("SELECT dead_at, attempts FROM outbox WHERE id = $1")
            .bind(row)
            .fetch_one(&app.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    // Back in line: tried again at once (and, the server still down, due again later).
    assert!(dead_at.is_none() && attempts <= 1, "{attempts}");
    let (status, body) = app
        .post(
            &format!("/api/v1/outbox/{row}/retry"),
            Some(OPERATOR),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not dead any more: {body}");
}
