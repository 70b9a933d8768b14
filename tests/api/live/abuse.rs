//! Viewers that misbehave: odd requests, a socket that never reads, a flood of resync requests.

use std::time::Duration as StdDuration;

use boxoffice::actors::broadcaster::GetStats;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::*;

use super::*;

#[actix_web::test]
async fn odd_live_requests_get_clear_answers() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (status, body) = app
        .get(&format!("/api/v1/events/{}/live", Uuid::new_v4()), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .get(
            &format!("/api/v1/events/{event_id}/live?token=garbage"),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app
        .get(&format!("/api/v1/events/{event_id}/live"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not an upgrade: {body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    let (status, body) = app.get("/api/v1/events/not-a-uuid/live", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A draft event is not there for the public.
    let venue = app.standard_venue(&organizer.token).await;
    let draft = app.draft_event(&organizer.token, venue.venue_id, 5).await;
    let (status, body) = app.get(&format!("/api/v1/events/{draft}/live"), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // A cancelled event closes its viewers' sockets with the reason.
    let mut socket = open(&app, event_id, "").await;
    let first = next_frame(&mut socket).await;
    assert_eq!(first["type"], "snapshot");
    let (status, body) = app.cancel(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let closed = tokio::time::timeout(StdDuration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.reason.to_string()),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the socket was not closed"));
    assert_eq!(closed.as_deref(), Some("event_closed"));
}

/// Opens a live-map socket and never reads from it, with a tiny receive buffer so the
/// server's side fills up fast.
async fn never_reading(app: &TestApp, event_id: Uuid) -> tokio::net::TcpStream {
    let address: std::net::SocketAddr = app
        .address
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(2048)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = socket
        .connect(address)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request = format!(
        "GET /api/v1/events/{event_id}/live HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&head, b"HTTP/1.1 101", "the upgrade is accepted");
    stream
}

#[actix_web::test]
async fn a_viewer_that_never_reads_is_cut_off_while_the_others_keep_up() {
    let app = spawn_app_with(|s| {
        s.live.batch = StdDuration::from_millis(10);
        s.live.viewer_queue = 16;
        s.live.slow_limit = StdDuration::from_secs(1);
        s.max_holds_per_buyer = 1000;
    })
    .await;
    let organizer = app.organizer().await;
    // One big section, so that batches are large.
    let (status, venue) = app
        .create_venue(
            &organizer.token,
            &json!({
                "name": "Big Hall", "address": "1 Rue de Test", "city": "Lyon", "latitude": 45.76,
                "longitude": 4.83, "timezone": "Europe/Paris", "venue_type": "ARENA",
                "facilities": {"parking": true, "catering": false, "av_equipment": true},
                "layout": {"sections": [{"name": "Bowl", "kind": "seated", "rows": 40, "seats_per_row": 50}]}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{venue}");
    let section = uuid(&venue["sections"][0]["section_id"]);
    let event_id = app
        .draft_event(&organizer.token, uuid(&venue["venue_id"]), 9)
        .await;
    let (status, body) = app
        .set_pricing(
            &organizer.token,
            event_id,
            &json!({"currency": "EUR", "sections": [{"section_id": section, "price_cents": 1000}], "tiers": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut onsale = crate::helpers::open_onsale_body(9);
    onsale["max_per_order"] = json!(10);
    let (status, body) = app.set_onsale(&organizer.token, event_id, &onsale).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.publish(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut healthy = Watcher::connect(&app, event_id, "").await;
    let _stuck = never_reading(&app, event_id).await;
    let hub = app
        .engine
        .live_map(event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stats = hub.send(GetStats).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.viewers, 2);

    // Churn: buyers hold ten seats and let them go, as fast as they can, until the server
    // has given up on the stuck socket and the healthy one has read a good many batches.
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let finished = |stats: &boxoffice::actors::broadcaster::LiveStats, read: usize| {
        stats.disconnected_slow > 0 && read > 100
    };
    let buyers = app.quick_buyers(8).await;
    let churn = buyers.into_iter().map(|buyer| {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v1/events/{event_id}/holds")),
        );
        let (base, hub, read) = (app.address.clone(), hub.clone(), read.clone());
        async move {
            for _ in 0..20_000 {
                let response = client
                    .post(&url)
                    .bearer_auth(&buyer.token)
                    .json(&json!({"best_available": {"quantity": 10}}))
                    .send()
                    .await;
                let hold: Value = match response {
                    Ok(response) => response.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                if let Some(id) = hold["hold_id"].as_str() {
                    let _ = client
                        .delete(format!("{base}/api/v1/holds/{id}"))
                        .bearer_auth(&buyer.token)
                        .send()
                        .await;
                }
                let stats = hub.send(GetStats).await.unwrap_or_default();
                if finished(&stats, read.load(std::sync::atomic::Ordering::Relaxed)) {
                    break;
                }
            }
        }
    });
    let reader = async {
        // The healthy viewer keeps reading (and checking every number) all along.
        loop {
            let stats = hub.send(GetStats).await.unwrap_or_default();
            if finished(&stats, read.load(std::sync::atomic::Ordering::Relaxed)) {
                break;
            }
            if let Ok(frame) = tokio::time::timeout(
                StdDuration::from_millis(200),
                next_frame(&mut healthy.socket),
            )
            .await
            {
                healthy.apply(&frame);
                read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    };
    tokio::time::timeout(
        StdDuration::from_secs(90),
        futures_util::future::join(futures_util::future::join_all(churn), reader),
    )
    .await
    .unwrap_or_else(|_| panic!("the stuck socket was never cut off"));

    let stats = hub.send(GetStats).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stats.frames_dropped >= 1,
        "the stuck socket's queue filled: {stats:?}"
    );
    assert_eq!(stats.disconnected_slow, 1, "{stats:?}");
    assert_eq!(
        stats.viewers, 1,
        "only the healthy viewer is left: {stats:?}"
    );
    assert!(
        healthy.deltas > 100,
        "the healthy viewer kept getting deltas: {stats:?}"
    );
    // What it was sent adds up to what the server has.
    let held_now = app
        .seat_states(event_id)
        .await
        .into_iter()
        .filter(|(_, state)| state == "held")
        .count();
    healthy
        .until("the viewer's map matches the server's", |w| {
            w.seats.values().filter(|s| *s == "held").count() == held_now
        })
        .await;
}

#[actix_web::test]
async fn a_viewer_that_floods_resync_requests_gets_a_few_snapshots_then_is_cut_off() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let mut socket = open(&app, event_id, "").await;
    for _ in 0..200 {
        let sent =
            futures_util::SinkExt::send(&mut socket, Message::Text(r#"{"type":"resync"}"#.into()))
                .await;
        if sent.is_err() {
            break;
        }
    }
    let (mut snapshots, mut closed) = (0, None);
    while let Ok(Some(message)) =
        tokio::time::timeout(StdDuration::from_secs(5), socket.next()).await
    {
        match message {
            Ok(Message::Text(text)) if text.contains("\"snapshot\"") => snapshots += 1,
            Ok(Message::Close(frame)) => {
                closed = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(
        (1..=6).contains(&snapshots),
        "{snapshots} snapshots for 200 requests"
    );
    assert_eq!(closed, Some(1008), "closed as a policy violation");
}
