//! The waiting room through whatever node a buyer reaches.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;

#[actix_web::test]
async fn the_waiting_room_is_one_room_whatever_node_a_buyer_reaches() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let create = |title: &'static str| {
        let (app, organizer) = (&app, &organizer);
        async move {
            let venue = app.standard_venue(&organizer.token).await;
            let event_id = app.draft_event(&organizer.token, venue.venue_id, 9).await;
            let (status, body) = app
                .set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
                .await;
            assert_eq!(status, StatusCode::OK, "{title}: {body}");
            event_id
        }
    };
    let with_room = create("with a room").await;
    let now = Utc::now();
    let (status, body) = app
        .set_onsale(
            &organizer.token,
            with_room,
            &json!({
                "sale_starts_at": now + chrono::Duration::seconds(3),
                "sale_ends_at": days_from_now(9),
                "hold_minutes": 8, "max_per_order": 6,
                "waiting_room": {"queue_opens_at": now, "admission_per_minute": 6000}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let later = create("a room added later").await;
    let plain = json!({"sale_starts_at": now + chrono::Duration::hours(1), "sale_ends_at": days_from_now(9), "hold_minutes": 8, "max_per_order": 6});
    let (status, body) = app.set_onsale(&organizer.token, later, &plain).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for event_id in [with_room, later] {
        let (status, body) = app.publish(&organizer.token, event_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let buyer: Account = app.buyer().await;
    app.stop_owning().await;
    let nodes = Nodes::start(&app, 3, &[("BOXOFFICE_QUEUE_TICK_MS", "200")]).await;

    // Join on node 0, wait on node 1, shop on node 2 with the token node 1 handed out.
    let queue = format!("/api/v1/events/{with_room}/queue");
    let (status, place) = nodes
        .send(
            0,
            reqwest::Method::POST,
            &queue,
            Some(&buyer.token),
            &[],
            Some(&json!({})),
        )
        .await;
    assert!(status.is_success(), "{status}: {place}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let token = loop {
        let (status, place) = nodes
            .send(
                1,
                reqwest::Method::GET,
                &queue,
                Some(&buyer.token),
                &[],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{place}");
        if place["state"] == "admitted" {
            break place["admission_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
        assert!(Instant::now() < deadline, "never admitted: {place}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seat = app.seat_ids(with_room, 0).await[0];
    let (status, body) = nodes
        .send(
            1,
            reqwest::Method::POST,
            &format!("/api/v1/events/{with_room}/holds"),
            Some(&buyer.token),
            &[],
            Some(&json!({"seat_ids": [seat]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("admission_required"))
    );
    let (status, body) = nodes
        .send(
            2,
            reqwest::Method::POST,
            &format!("/api/v1/events/{with_room}/holds"),
            Some(&buyer.token),
            &[("X-Admission-Token", &token)],
            Some(&json!({"seat_ids": [seat]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A node that is not the room's owner still pushes the place over its socket.
    let (room_owner, _) = owner(&app, with_room)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    let other = (0..3)
        .find(|n| nodes.nodes[*n].node_id != room_owner)
        .unwrap_or(0);
    let ws = nodes
        .url(other, &format!("{queue}/live?token={}", buyer.token))
        .replacen("http", "ws", 1);
    let (mut socket, _) = tokio_tungstenite::connect_async(ws)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let message = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut socket),
    )
    .await
    .ok()
    .flatten()
    .and_then(Result::ok)
    .map(|m| m.to_string())
    .unwrap_or_default();
    let message: Value = serde_json::from_str(&message).unwrap_or(Value::Null);
    assert_eq!(
        (message["type"].clone(), message["state"].clone()),
        (json!("queue"), json!("admitted")),
        "{message}"
    );

    // A room added through one node is enforced by every node at once.
    let seat = app.seat_ids(later, 0).await[0];
    let (status, body) = nodes
        .hold(1, &buyer.token, later, &json!({"seat_ids": [seat]}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("sale_not_open"))
    );
    let mut with_a_room = plain.clone();
    with_a_room["waiting_room"] = json!({"queue_opens_at": now, "admission_per_minute": 100});
    let (status, body) = nodes
        .send(
            2,
            reqwest::Method::PUT,
            &format!("/api/v1/events/{later}/onsale"),
            Some(&organizer.token),
            &[],
            Some(&with_a_room),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for node in 0..3 {
        let (status, body) = nodes
            .hold(node, &buyer.token, later, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (StatusCode::UNAUTHORIZED, json!("admission_required")),
            "node {node}"
        );
    }
}
