//! The live seat map over real WebSocket clients: snapshot, numbered deltas, hold news for
//! the holder, catch-up on reconnect, slow viewers, and two nodes sharing Redis.

mod abuse;
mod nodes;
mod order;
mod reload;

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::*;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn open(app: &TestApp, event_id: Uuid, query: &str) -> Socket {
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
pub(crate) async fn next_frame(socket: &mut Socket) -> Value {
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

pub(crate) fn state_of(code: char) -> &'static str {
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
pub(crate) struct Watcher {
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

pub(crate) async fn layout(app: &TestApp, event_id: Uuid) -> Vec<(Uuid, Vec<Uuid>)> {
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
    pub(crate) async fn connect(app: &TestApp, event_id: Uuid, query: &str) -> Watcher {
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
    pub(crate) async fn until(&mut self, what: &str, done: impl Fn(&Watcher) -> bool) {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
        while !done(self) {
            let frame = tokio::time::timeout_at(deadline, next_frame(&mut self.socket))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
            self.apply(&frame);
        }
    }

    pub(crate) fn seat(&self, id: Uuid) -> &str {
        self.seats.get(&id).map_or("", String::as_str)
    }

    fn changes_of(&self, id: Uuid) -> Vec<&str> {
        self.log
            .iter()
            .filter(|(seat, _)| *seat == id)
            .map(|(_, state)| state.as_str())
            .collect()
    }

    pub(crate) fn hold_news(&self, hold_id: &Value) -> Vec<String> {
        self.holds
            .iter()
            .filter(|h| h["hold_id"] == *hold_id)
            .map(|h| string(&h["status"]))
            .collect()
    }
}

pub(crate) fn string(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

pub(crate) async fn release(app: &TestApp, token: &str, hold: &Value) {
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
