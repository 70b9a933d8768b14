//! `viewers`: many browsers watch one event's live seat map while seats change. Measures,
//! on one node: how many viewers it holds and the memory each idle one costs, and, with a
//! steady rate of seat changes (holds and releases), the delay from a hold's
//! acknowledgement to its delta reaching viewers (p50, p99), read by a sample of viewers
//! that parse every frame; the others read and drop what they are sent, as fast as a
//! browser would. The seed design has no live map, so there is no baseline run.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::raw_socket::{Event, RawSocket};
use crate::report::{Report, Summary, Tally};
use crate::server::{section_on_sale, Api};
use crate::Common;

/// The scenario's own parameters.
pub struct Plan {
    pub viewers: usize,
    /// Seat changes a second (half holds, half releases).
    pub changes_per_second: u32,
    /// Viewers that parse every frame and time each hold's delta.
    pub samplers: usize,
    pub rows: i32,
    pub seats_per_row: i32,
    /// Buyers making the changes, each with its own seats.
    pub changers: usize,
}

/// When a hold was sent and when it was acknowledged, by seat.
#[derive(Clone, Copy)]
struct Ack {
    acked: Option<Instant>,
}

type Acks = Arc<Mutex<HashMap<String, Ack>>>;

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    seat_id: String,
    state: String,
}

/// What the viewers saw.
#[derive(Default)]
struct Seen {
    frames: AtomicU64,
    bytes: AtomicU64,
    /// Snapshots after the first: a viewer fell behind and was brought back.
    resyncs: AtomicU64,
    closed: AtomicU64,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SNAPSHOT: &[u8] = b"{\"type\":\"snapshot\"";

/// A sampling viewer: parses every frame and times every hold it sees, until told to stop.
async fn sample(
    mut socket: Socket,
    acks: Acks,
    seen: Arc<Seen>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Tally {
    let mut delays = Tally::new();
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = stop.changed() => break,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            _ => {
                seen.closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        let now = Instant::now();
        seen.frames.fetch_add(1, Ordering::Relaxed);
        seen.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        if text.as_bytes().starts_with(SNAPSHOT) {
            seen.resyncs.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            continue;
        };
        if frame.kind != "delta" {
            continue;
        }
        let acks = acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for change in frame.changes.iter().filter(|c| c.state == "held") {
            if let Some(ack) = acks.get(&change.seat_id) {
                // A delta that beats the buyer's own answer counts as no delay at all.
                let delay = ack
                    .acked
                    .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
                delays.record(delay, "delta", true);
            }
        }
    }
    delays
}

/// Any other viewer: reads (and drops) what it is sent as fast as it comes, answering
/// pings, until told to stop.
async fn skim(
    mut socket: RawSocket,
    seen: Arc<Seen>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Tally {
    loop {
        let event = tokio::select! {
            event = socket.next() => event,
            _ = stop.changed() => break,
        };
        match event {
            Event::Data {
                len,
                starts_with_prefix,
            } => {
                seen.frames.fetch_add(1, Ordering::Relaxed);
                seen.bytes.fetch_add(len as u64, Ordering::Relaxed);
                if starts_with_prefix {
                    seen.resyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::Closed => {
                seen.closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    Tally::new()
}

/// Opens a skimming viewer and reads its snapshot.
async fn open_raw(address: SocketAddr, path: &str) -> Result<RawSocket, String> {
    let opened = tokio::time::timeout(Duration::from_secs(30), async {
        let mut socket = RawSocket::open(address, path, SNAPSHOT).await?;
        match socket.next().await {
            Event::Data {
                starts_with_prefix: true,
                ..
            } => Ok(socket),
            _ => Err("no_snapshot".to_owned()),
        }
    })
    .await;
    opened.unwrap_or_else(|_| Err("timeout".into()))
}

async fn connect(url: &str) -> Result<Socket, String> {
    match tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url),
    )
    .await
    {
        Ok(Ok((mut socket, _))) => {
            // The first frame is the snapshot.
            match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.as_bytes().starts_with(SNAPSHOT) => {
                    Ok(socket)
                }
                _ => Err("no_snapshot".into()),
            }
        }
        Ok(Err(error)) => Err(match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                response.status().as_u16().to_string()
            }
            tokio_tungstenite::tungstenite::Error::Io(_) => "connection_error".into(),
            _ => "handshake_error".into(),
        }),
        Err(_) => Err("timeout".into()),
    }
}

/// The largest number of sockets this process may open, less a margin for everything else.
fn socket_budget() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    limit.saturating_sub(200)
}

pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    let budget = socket_budget();
    if plan.viewers == 0 || plan.viewers > budget {
        bail!(
            "--viewers must be between 1 and {budget} here (this process may open {} files; \
             raise `ulimit -n` for more)",
            budget + 200
        );
    }
    let server = crate::start(common).await?;
    let api = Api::new(&server.url);
    let organizer = api.signup("organizer").await?;
    let (event_id, seats) =
        section_on_sale(&api, &organizer, plan.rows, plan.seats_per_row).await?;
    if seats.len() < plan.changers * 16 {
        bail!("the venue is too small for {} changers", plan.changers);
    }
    // Buyers sign up first: password hashing takes memory that would blur the figures.
    let buyers = crate::buyers(&api, plan.changers).await?;
    // The event's engine starts with the first viewer: start it now so the memory read
    // before the viewers is the engine's, not theirs.
    let mut probe = connect(&format!(
        "{}/api/v1/events/{event_id}/live",
        server.url.replacen("http", "ws", 1)
    ))
    .await
    .map_err(|e| anyhow::anyhow!("the first viewer could not connect: {e}"))?;
    let _ = probe.close(None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = server.rss_mib();

    // Viewers connect, `clients` at a time.
    println!("viewers: connecting {} viewers", plan.viewers);
    let url = Arc::new(format!(
        "{}/api/v1/events/{event_id}/live",
        server.url.replacen("http", "ws", 1)
    ));
    let path = Arc::new(format!("/api/v1/events/{event_id}/live"));
    let authority = server.url.trim_start_matches("http://").to_owned();
    let address = tokio::net::lookup_host(&authority)
        .await?
        .next()
        .with_context(|| format!("resolving {authority}"))?;
    let acks: Acks = Arc::new(Mutex::new(HashMap::new()));
    let seen = Arc::new(Seen::default());
    let (stop_all, stop) = tokio::sync::watch::channel(false);
    let next = Arc::new(AtomicUsize::new(0));
    let sample_every = (plan.viewers / plan.samplers.max(1)).max(1);
    let started = Instant::now();
    let connectors: Vec<_> = (0..common.clients)
        .map(|_| {
            let (url, next, acks, seen, stop, path) = (
                url.clone(),
                next.clone(),
                acks.clone(),
                seen.clone(),
                stop.clone(),
                path.clone(),
            );
            let viewers = plan.viewers;
            tokio::spawn(async move {
                let mut tally = Tally::new();
                let mut watchers = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= viewers {
                        break;
                    }
                    let t = Instant::now();
                    let watcher = if i % sample_every == 0 {
                        connect(&url).await.map(|socket| {
                            tokio::spawn(sample(socket, acks.clone(), seen.clone(), stop.clone()))
                        })
                    } else {
                        open_raw(address, &path)
                            .await
                            .map(|socket| tokio::spawn(skim(socket, seen.clone(), stop.clone())))
                    };
                    match watcher {
                        Ok(watcher) => {
                            tally.record(t.elapsed(), "connected", true);
                            watchers.push(watcher);
                        }
                        Err(outcome) => tally.record(t.elapsed(), &outcome, false),
                    }
                }
                (tally, watchers)
            })
        })
        .collect();
    let mut connect_tally = Tally::new();
    let mut watchers = Vec::new();
    for connector in connectors {
        let (tally, mut mine) = connector.await.context("a connecting task")?;
        connect_tally.merge(&tally);
        watchers.append(&mut mine);
    }
    let connect_time = started.elapsed();
    let connected = connect_tally.successes as usize;
    println!(
        "viewers: {connected} connected in {:.1} s",
        connect_time.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = server.rss_mib();

    // Seat changes at the set rate: each changer holds its next seat and lets go of its
    // oldest held one, so half the changes are holds and half releases.
    println!(
        "viewers: {} seat changes a second for {} s",
        plan.changes_per_second, common.seconds
    );
    let holds_url = Arc::new(format!("{}/api/v1/events/{event_id}/holds", server.url));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.changers * 2)
        .build()?;
    let ticks_per_changer = f64::from(plan.changes_per_second) / 2.0 / plan.changers as f64;
    let period = Duration::from_secs_f64(1.0 / ticks_per_changer.max(0.01));
    let deadline = Instant::now() + Duration::from_secs(common.seconds);
    let changes = Arc::new(AtomicU64::new(0));
    let per_changer = seats.len() / plan.changers;
    let changing = Instant::now();
    let cpu_at_start = (
        server.cpu_seconds(),
        crate::server::cpu_seconds("/proc/self/stat"),
    );
    let changers: Vec<_> = buyers
        .into_iter()
        .enumerate()
        .map(|(c, token)| {
            let mine: Vec<String> = seats[c * per_changer..(c + 1) * per_changer].to_vec();
            let (client, holds_url, acks, changes) = (
                client.clone(),
                holds_url.clone(),
                acks.clone(),
                changes.clone(),
            );
            let base = api.url.clone();
            tokio::spawn(async move {
                let (mut holds, mut releases) = (Tally::new(), Tally::new());
                let mut held: VecDeque<String> = VecDeque::new();
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut next_seat = 0;
                while Instant::now() < deadline {
                    tick.tick().await;
                    let seat = mine[next_seat % mine.len()].clone();
                    next_seat += 1;
                    acks.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(seat.clone(), Ack { acked: None });
                    let t = Instant::now();
                    let body = json!({"seat_ids": [seat]});
                    let response = client
                        .post(holds_url.as_str())
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await;
                    let hold_id = match response {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let now = Instant::now();
                            acks.lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .insert(seat.clone(), Ack { acked: Some(now) });
                            holds.record(now - t, "201", true);
                            changes.fetch_add(1, Ordering::Relaxed);
                            let body: Value = r.json().await.unwrap_or(Value::Null);
                            body["hold_id"].as_str().map(str::to_owned)
                        }
                        Ok(r) => {
                            holds.record(t.elapsed(), r.status().as_str(), false);
                            None
                        }
                        Err(_) => {
                            holds.record(t.elapsed(), "connection_error", false);
                            None
                        }
                    };
                    if let Some(id) = hold_id {
                        held.push_back(id);
                    }
                    if held.len() > 8 {
                        if let Some(id) = held.pop_front() {
                            let t = Instant::now();
                            match client
                                .delete(format!("{base}/api/v1/holds/{id}"))
                                .bearer_auth(&token)
                                .send()
                                .await
                            {
                                Ok(r) if r.status().as_u16() == 204 => {
                                    releases.record(t.elapsed(), "204", true);
                                    changes.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(r) => releases.record(t.elapsed(), r.status().as_str(), false),
                                Err(_) => releases.record(t.elapsed(), "connection_error", false),
                            }
                        }
                    }
                }
                (holds, releases)
            })
        })
        .collect();
    let mut hold_tally = Tally::new();
    let mut release_tally = Tally::new();
    for changer in changers {
        let (holds, releases) = changer.await.context("a changing task")?;
        hold_tally.merge(&holds);
        release_tally.merge(&releases);
    }
    let change_time = changing.elapsed();
    let cpu_at_end = (
        server.cpu_seconds(),
        crate::server::cpu_seconds("/proc/self/stat"),
    );
    let cores_used = |start: Option<f64>, end: Option<f64>| {
        Some(((end? - start?) / change_time.as_secs_f64() * 100.0).round() / 100.0)
    };
    // Let the last batch reach everyone, then stop the viewers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peak = server.peak_rss_mib();
    let _ = stop_all.send(true);
    let mut delay_tally = Tally::new();
    for watcher in watchers {
        if let Ok(delays) = watcher.await {
            delay_tally.merge(&delays);
        }
    }

    let changes_done = changes.load(Ordering::Relaxed);
    let runs = vec![
        Summary::new(
            "connect",
            common.clients,
            connect_time,
            &connect_tally,
            rss_idle,
        ),
        Summary::new("hold", plan.changers, change_time, &hold_tally, None),
        Summary::new("release", plan.changers, change_time, &release_tally, None),
        Summary::new(
            "delta-delay",
            plan.samplers,
            change_time,
            &delay_tally,
            peak,
        ),
    ];
    let mut report = Report::new("viewers", runs);
    let mut extra = BTreeMap::new();
    extra.insert("viewers_asked".into(), json!(plan.viewers));
    extra.insert("viewers_connected".into(), json!(connected));
    extra.insert("seats".into(), json!(seats.len()));
    extra.insert(
        "changes_per_second".into(),
        json!((changes_done as f64 / change_time.as_secs_f64()).round()),
    );
    extra.insert(
        "frames_received".into(),
        json!(seen.frames.load(Ordering::Relaxed)),
    );
    extra.insert(
        "bytes_received".into(),
        json!(seen.bytes.load(Ordering::Relaxed)),
    );
    extra.insert(
        "viewers_resynced".into(),
        json!(seen.resyncs.load(Ordering::Relaxed)),
    );
    extra.insert(
        "viewers_closed_by_server".into(),
        json!(seen.closed.load(Ordering::Relaxed)),
    );
    extra.insert(
        "server_cores_busy".into(),
        json!(cores_used(cpu_at_start.0, cpu_at_end.0)),
    );
    extra.insert(
        "harness_cores_busy".into(),
        json!(cores_used(cpu_at_start.1, cpu_at_end.1)),
    );
    extra.insert("rss_mib_before_viewers".into(), json!(rss_before));
    extra.insert("rss_mib_viewers_idle".into(), json!(rss_idle));
    if let (Some(before), Some(idle)) = (rss_before, rss_idle) {
        extra.insert(
            "kib_per_idle_viewer".into(),
            json!(((idle - before) * 1024.0 / connected.max(1) as f64 * 10.0).round() / 10.0),
        );
    }
    report.extra = extra;
    if connected < plan.viewers {
        println!("note: {connected} of {} viewers connected", plan.viewers);
    }
    Ok(report)
}
