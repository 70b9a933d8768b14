//! The live seat map over real WebSocket clients: snapshot, numbered deltas, hold news for
//! the holder, catch-up on reconnect, slow viewers, and two nodes sharing Redis.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use boxoffice::actors::broadcaster::GetStats;
use chrono::Duration;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{
    assert_error, redis_url, spawn_app, spawn_app_sharing, spawn_app_with, uuid, TestApp,
};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(app: &TestApp, event_id: Uuid, query: &str) -> Socket {
    let url = format!(
        "{}/api/v1/events/{event_id}/live{query}",
        app.address.replacen("http", "ws", 1)
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the live map: {e}"));
    socket
}

/// The next JSON frame (pings are answered by the client library).
async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(StdDuration::from_secs(10), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no frame within 10 s"));
        let Some(Ok(message)) = message else {
            panic!("socket closed or failed: {message:?}");
        };
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        }
    }
}

fn state_of(code: char) -> &'static str {
    match code {
        'a' => "available",
        'h' => "held",
        's' => "sold",
        'b' => "blocked",
        other => panic!("unknown packed state {other}"),
    }
}

/// A client of the live map keeping its own copy, checking every rule of the protocol as
/// frames arrive: a snapshot first, then deltas numbered one more than the last.
struct Watcher {
    socket: Socket,
    /// Seat ids per section, in seat-map order.
    layout: Vec<(Uuid, Vec<Uuid>)>,
    seq: u64,
    seats: HashMap<Uuid, String>,
    sections: HashMap<Uuid, u64>,
    tiers: HashMap<Uuid, u64>,
    /// Every change seen, in order.
    log: Vec<(Uuid, String)>,
    /// Hold news, in order.
    holds: Vec<Value>,
    snapshots: usize,
    deltas: usize,
}

async fn layout(app: &TestApp, event_id: Uuid) -> Vec<(Uuid, Vec<Uuid>)> {
    let (status, map) = app
        .get(&format!("/api/v1/events/{event_id}/seatmap"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{map}");
    map["sections"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let seats = s["rows"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .flat_map(|r| r["seats"].as_array().cloned().unwrap_or_default())
                .map(|seat| uuid(&seat["seat_id"]))
                .collect();
            (uuid(&s["section_id"]), seats)
        })
        .collect()
}

impl Watcher {
    /// A watcher that has seen nothing yet.
    fn new(socket: Socket, layout: Vec<(Uuid, Vec<Uuid>)>) -> Watcher {
        Watcher {
            socket,
            layout,
            seq: 0,
            seats: HashMap::new(),
            sections: HashMap::new(),
            tiers: HashMap::new(),
            log: Vec::new(),
            holds: Vec::new(),
            snapshots: 0,
            deltas: 0,
        }
    }

    /// Connects and reads the first frame, which must be a snapshot.
    async fn connect(app: &TestApp, event_id: Uuid, query: &str) -> Watcher {
        let socket = open(app, event_id, query).await;
        let mut watcher = Watcher::new(socket, layout(app, event_id).await);
        let first = next_frame(&mut watcher.socket).await;
        assert_eq!(first["type"], "snapshot", "the first frame: {first}");
        watcher.apply(&first);
        watcher
    }

    fn apply(&mut self, frame: &Value) {
        let seq = frame["seq"].as_u64().unwrap_or(0);
        match frame["type"].as_str() {
            Some("snapshot") => {
                assert!(
                    seq >= self.seq,
                    "a snapshot older than what was seen: {seq} < {}",
                    self.seq
                );
                let sections = frame["sections"].as_array().cloned().unwrap_or_default();
                assert_eq!(sections.len(), self.layout.len(), "one entry per section");
                for ((section_id, seat_ids), section) in self.layout.iter().zip(&sections) {
                    assert_eq!(uuid(&section["section_id"]), *section_id, "seat-map order");
                    let states: Vec<char> = section["states"]
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .collect();
                    assert_eq!(states.len(), seat_ids.len(), "one character per seat");
                    for (id, code) in seat_ids.iter().zip(states) {
                        self.seats.insert(*id, state_of(code).to_owned());
                    }
                    self.sections
                        .insert(*section_id, section["available"].as_u64().unwrap_or(0));
                }
                for tier in frame["tiers"].as_array().cloned().unwrap_or_default() {
                    self.tiers.insert(
                        uuid(&tier["tier_id"]),
                        tier["available"].as_u64().unwrap_or(0),
                    );
                }
                self.snapshots += 1;
            }
            Some("delta") => {
                assert_eq!(
                    seq,
                    self.seq + 1,
                    "deltas are numbered one after another: {frame}"
                );
                for change in frame["changes"].as_array().cloned().unwrap_or_default() {
                    let (id, state) = (uuid(&change["seat_id"]), string(&change["state"]));
                    self.seats.insert(id, state.clone());
                    self.log.push((id, state));
                }
                for section in frame["sections"].as_array().cloned().unwrap_or_default() {
                    self.sections.insert(
                        uuid(&section["section_id"]),
                        section["available"].as_u64().unwrap_or(0),
                    );
                }
                for tier in frame["tiers"].as_array().cloned().unwrap_or_default() {
                    self.tiers.insert(
                        uuid(&tier["tier_id"]),
                        tier["available"].as_u64().unwrap_or(0),
                    );
                }
                self.deltas += 1;
            }
            Some("hold") => {
                self.holds.push(frame.clone());
                return;
            }
            _ => panic!("unknown frame {frame}"),
        }
        self.seq = seq;
    }

    /// Reads frames until `done` holds.
    async fn until(&mut self, what: &str, done: impl Fn(&Watcher) -> bool) {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
        while !done(self) {
            let frame = tokio::time::timeout_at(deadline, next_frame(&mut self.socket))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
            self.apply(&frame);
        }
    }

    fn seat(&self, id: Uuid) -> &str {
        self.seats.get(&id).map_or("", String::as_str)
    }

    fn changes_of(&self, id: Uuid) -> Vec<&str> {
        self.log
            .iter()
            .filter(|(seat, _)| *seat == id)
            .map(|(_, state)| state.as_str())
            .collect()
    }

    fn hold_news(&self, hold_id: &Value) -> Vec<String> {
        self.holds
            .iter()
            .filter(|h| h["hold_id"] == *hold_id)
            .map(|h| string(&h["status"]))
            .collect()
    }
}

fn string(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

async fn release(app: &TestApp, token: &str, hold: &Value) {
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/holds/{}",
                hold["hold_id"].as_str().unwrap_or_default()
            ),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "release: {body}");
}

#[actix_web::test]
async fn a_viewer_sees_holds_releases_expiry_and_sales_in_order_and_the_holder_hears_of_each() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let a = app.seat_ids(event_id, 0).await;
    let buyer = app.buyer().await;

    let mut viewer = Watcher::connect(&app, event_id, "").await;
    assert!(a.iter().all(|id| viewer.seat(*id) == "available"));
    assert_eq!(viewer.sections[&venue.seated[0]], 12);
    assert_eq!(
        viewer.sections[&venue.floor], 100,
        "a GA section counts its tiers"
    );
    let mut holder = Watcher::connect(&app, event_id, &format!("?token={}", buyer.token)).await;

    // Held, then released.
    let (status, first) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    viewer
        .until("a[0] shows held", |w| w.seat(a[0]) == "held")
        .await;
    assert_eq!(
        viewer.sections[&venue.seated[0]], 11,
        "section counts ride along"
    );
    release(&app, &buyer.token, &first).await;
    viewer
        .until("a[0] shows available", |w| w.seat(a[0]) == "available")
        .await;
    assert_eq!(viewer.sections[&venue.seated[0]], 12);

    // Held, warned, then expired.
    let (status, second) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    viewer
        .until("a[1] shows held", |w| w.seat(a[1]) == "held")
        .await;
    app.clock
        .advance(Duration::minutes(7) + Duration::seconds(30));
    holder
        .until("the holder is warned", |w| {
            w.hold_news(&second["hold_id"])
                .contains(&"EXPIRING_SOON".to_owned())
        })
        .await;
    app.clock.advance(Duration::minutes(1));
    viewer
        .until("a[1] expires", |w| w.seat(a[1]) == "available")
        .await;

    // Held, paid for, sold.
    let (status, third) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[2]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    viewer
        .until("a[2] shows held", |w| w.seat(a[2]) == "held")
        .await;
    let (status, order) = app
        .checkout(&buyer.token, &third["hold_id"], "live-1", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    viewer
        .until("a[2] shows sold", |w| w.seat(a[2]) == "sold")
        .await;

    // GA: the tier's count goes down.
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    let general = uuid(&detail["tiers"][0]["tier_id"]);
    let (status, _) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": general, "quantity": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    viewer
        .until("the tier shows 77 left", |w| {
            w.tiers.get(&general) == Some(&77)
        })
        .await;
    assert_eq!(viewer.sections[&venue.floor], 97);

    assert_eq!(viewer.changes_of(a[0]), ["held", "available"]);
    assert_eq!(viewer.changes_of(a[1]), ["held", "available"]);
    assert_eq!(viewer.changes_of(a[2]), ["held", "sold"]);
    assert_eq!(viewer.snapshots, 1);
    assert!(
        viewer.holds.is_empty(),
        "an anonymous viewer hears no hold news"
    );

    holder
        .until("the holder hears of the sale", |w| {
            w.hold_news(&third["hold_id"])
                .contains(&"CONFIRMED".to_owned())
        })
        .await;
    assert_eq!(holder.hold_news(&first["hold_id"]), ["HELD", "RELEASED"]);
    assert_eq!(
        holder.hold_news(&second["hold_id"]),
        ["HELD", "EXPIRING_SOON", "EXPIRED"]
    );
    assert_eq!(
        holder.hold_news(&third["hold_id"]),
        ["HELD", "PAYMENT_PENDING", "CONFIRMED"]
    );
    let held = holder
        .holds
        .iter()
        .find(|h| h["hold_id"] == first["hold_id"]);
    assert_eq!(
        held.map(|h| h["expires_at"].clone()),
        Some(first["expires_at"].clone()),
        "hold news carries the deadline for a countdown"
    );
    let confirmed = holder
        .holds
        .iter()
        .find(|h| h["hold_id"] == third["hold_id"] && h["status"] == "CONFIRMED");
    assert_eq!(
        confirmed.map(|h| h["order_id"].clone()),
        Some(order["order_id"].clone())
    );

    // Another buyer's socket hears none of it.
    let other = app.buyer().await;
    let mut stranger = Watcher::connect(&app, event_id, &format!("?token={}", other.token)).await;
    let (status, fourth) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[3]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fourth}");
    stranger
        .until("a[3] shows held", |w| w.seat(a[3]) == "held")
        .await;
    holder
        .until("the holder hears of a[3]", |w| {
            !w.hold_news(&fourth["hold_id"]).is_empty()
        })
        .await;
    assert!(
        stranger.holds.is_empty(),
        "hold news goes to the holder only"
    );
}

#[actix_web::test]
async fn a_reconnecting_viewer_gets_exactly_what_it_missed_or_a_snapshot() {
    let app = spawn_app_with(|s| s.live.ring = 3).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let a = app.seat_ids(event_id, 0).await;
    let buyer = app.buyer().await;
    // A witness that stays connected shows when each change has gone out in its batch.
    let mut witness = Watcher::connect(&app, event_id, "").await;
    let left = Watcher::connect(&app, event_id, "").await;
    let since = left.seq;
    drop(left);

    let mut holds = Vec::new();
    for seat in &a[..2] {
        let (status, hold) = app
            .hold(&buyer.token, event_id, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        witness
            .until("the hold goes out", |w| w.seat(*seat) == "held")
            .await;
        holds.push(hold);
    }
    release(&app, &buyer.token, &holds[0]).await;
    witness
        .until("the release goes out", |w| w.seat(a[0]) == "available")
        .await;
    assert_eq!(
        witness.seq,
        since + 3,
        "three batches since the viewer left"
    );

    // Back with its number: exactly the three batches, then the next change in order.
    let mut back = open(&app, event_id, &format!("?since={since}")).await;
    for expected in since + 1..=since + 3 {
        let frame = next_frame(&mut back).await;
        assert_eq!(frame["type"], "delta", "{frame}");
        assert_eq!(frame["seq"], expected);
    }
    let (status, _) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[5]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let frame = next_frame(&mut back).await;
    assert_eq!(
        (frame["type"].clone(), frame["seq"].clone()),
        (json!("delta"), json!(since + 4))
    );
    witness
        .until("a[5] goes out", |w| w.seat(a[5]) == "held")
        .await;

    // Up to date already: nothing until the next batch.
    let mut current = open(&app, event_id, &format!("?since={}", since + 4)).await;
    release(&app, &buyer.token, &holds[1]).await;
    let frame = next_frame(&mut current).await;
    assert_eq!(
        (frame["type"].clone(), frame["seq"].clone()),
        (json!("delta"), json!(since + 5))
    );
    witness
        .until("a[1] goes out", |w| w.seat(a[1]) == "available")
        .await;

    // Too far behind for the ring of three, or a number from the future: a snapshot that
    // shows the state now.
    for stale in [since, since + 1, since + 1_000_000, u64::MAX] {
        let socket = open(&app, event_id, &format!("?since={stale}")).await;
        let mut late = Watcher::new(socket, witness.layout.clone());
        let frame = next_frame(&mut late.socket).await;
        assert_eq!(frame["type"], "snapshot", "since {stale}: {frame}");
        late.apply(&frame);
        assert_eq!(late.seq, witness.seq);
        assert_eq!(late.seats, witness.seats, "the snapshot is the state now");
    }

    // Bad numbers are refused before the upgrade.
    for query in [
        "?since=abc",
        "?since=-1",
        "?since=18446744073709551616",
        "?since=1.5",
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/events/{event_id}/live{query}"), None)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    }
}

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
async fn a_hold_on_one_node_appears_on_a_viewer_of_another() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let with_redis = |s: &mut boxoffice::config::Settings| {
        s.redis_url = Some(redis_url());
        s.redis_prefix = prefix.clone();
    };
    let node_a = spawn_app_with(|s| {
        with_redis(s);
        s.node_id = "node-a".into();
    })
    .await;
    let node_b = spawn_app_sharing(&node_a, |s| {
        with_redis(s);
        s.node_id = "node-b".into();
    })
    .await;
    let organizer = node_a.organizer().await;
    let (_, event_id) = node_a.on_sale_event(&organizer.token).await;
    let a = node_a.seat_ids(event_id, 0).await;
    let buyer = node_a.buyer().await;

    // The first hold starts the event's engine on node A, which takes the on-sale's lease:
    // the lease holder is the live map's source.
    let (status, first) = node_a
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let owner: Option<String> =
        sqlx::query_scalar("SELECT node_id FROM onsale_leases WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&node_a.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(owner.as_deref(), Some("node-a"));
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("{e}"));
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // A viewer on node B starts from A's map and follows A's batches.
    let mut viewer = Watcher::connect(&node_b, event_id, "").await;
    let mut holder = Watcher::connect(&node_b, event_id, &format!("?token={}", buyer.token)).await;
    assert_eq!(viewer.seat(a[0]), "held", "the snapshot comes from node A");
    let (status, second) = node_a
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    viewer
        .until("a[1] shows held on node B", |w| w.seat(a[1]) == "held")
        .await;
    release(&node_a, &buyer.token, &first).await;
    viewer
        .until("a[0] shows available on node B", |w| {
            w.seat(a[0]) == "available"
        })
        .await;
    holder
        .until("the holder on node B hears of the release", |w| {
            w.hold_news(&first["hold_id"]) == ["RELEASED"]
        })
        .await;
    assert!(holder
        .hold_news(&second["hold_id"])
        .contains(&"HELD".to_owned()));
    assert!(
        node_b.engine.counts(event_id).await.is_none(),
        "node B follows: it does not run the event's engine"
    );
    let stats = node_a
        .engine
        .live_map(event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send(GetStats)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(viewer.seq, stats.seq, "both nodes number the batches alike");
    let _: () = redis::AsyncCommands::del(
        &mut redis,
        vec![
            format!("{prefix}:livesnap:{event_id}"),
            format!("{prefix}:epoch:{event_id}"),
        ],
    )
    .await
    .unwrap_or(());
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
