//! `flash-sale`: simulated browsers go through a whole on-sale. Each one joins the waiting
//! room before the sale opens, waits for admission, opens the live seat map, chooses seats
//! (best available, or seats of a popular block to force contention), holds them, and pays
//! with the simulated card, except for the shares that are declined (and retry with a good
//! card), abandon the hold (it expires) or release it. The run ends when every browser is
//! done (bought, gave up, or found the event sold out) or the time limit passes; then the
//! invariants are checked in Postgres and through the API.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use uuid::Uuid;

use crate::baseline::{Baseline, Confirmed};
use crate::invariants::{self, LeftHold, Verdict};
use crate::report::{Report, Summary, Tally};
use crate::server::{priced_event, Api, Server};
use crate::Common;

/// The scenario's own parameters.
#[derive(Debug, Clone)]
pub struct Plan {
    pub browsers: usize,
    pub sections: usize,
    pub rows: i32,
    pub seats_per_row: i32,
    pub admission_per_minute: u32,
    /// Seconds from set-up to the sale opening (browsers join in this time).
    pub lead_seconds: u64,
    /// Share of browsers that go for the popular block rather than best available.
    pub popular_share: f64,
    pub decline_share: f64,
    pub abandon_share: f64,
    pub release_share: f64,
    pub hold_minutes: u32,
    /// The shopping window of a server the harness starts.
    pub admission_window_minutes: u32,
}

/// How a browser's visit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Bought,
    Released,
    Abandoned,
    SoldOut,
    /// Still waiting for admission when the run's time ran out.
    NotAdmitted,
    /// Every hold attempt was refused (seats taken under the browser's nose).
    NoSeats,
    /// Neither card went through.
    PaymentFailed,
    /// An error answer or a lost connection.
    Error,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Bought => "bought",
            Ending::Released => "released",
            Ending::Abandoned => "abandoned",
            Ending::SoldOut => "sold_out",
            Ending::NotAdmitted => "not_admitted",
            Ending::NoSeats => "no_seats",
            Ending::PaymentFailed => "payment_failed",
            Ending::Error => "error",
        }
    }
}

/// What a browser does once it has a hold, drawn from the plan's shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Pay,
    DeclinedThenPay,
    Abandon,
    Release,
}

impl Plan {
    /// Draws a browser's intent: `roll` in 0..1.
    pub fn intent(&self, roll: f64) -> Intent {
        let mut edge = self.decline_share;
        if roll < edge {
            return Intent::DeclinedThenPay;
        }
        edge += self.abandon_share;
        if roll < edge {
            return Intent::Abandon;
        }
        edge += self.release_share;
        if roll < edge {
            return Intent::Release;
        }
        Intent::Pay
    }
}

/// The steps' measurements, shared by the browsers.
#[derive(Default)]
struct Steps {
    join: Mutex<Option<Tally>>,
    admission: Mutex<Option<Tally>>,
    hold: Mutex<Option<Tally>>,
    checkout: Mutex<Option<Tally>>,
    /// From a hold's answer to the delta that shows its seats held, on the buyer's map.
    delta: Mutex<Option<Tally>>,
    endings: Mutex<BTreeMap<&'static str, u64>>,
    left: Mutex<Vec<LeftHold>>,
    /// Over the run, by second: buyers admitted, holds made, seats sold.
    admitted: Mutex<BTreeMap<u64, u64>>,
    holds: Mutex<BTreeMap<u64, u64>>,
    sold: Mutex<BTreeMap<u64, u64>>,
}

impl Steps {
    fn ended(&self, ending: Ending) {
        *self
            .endings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(ending.name())
            .or_default() += 1;
    }
}

/// Adds `n` to second `at` of a timeline.
fn count(timeline: &Mutex<BTreeMap<u64, u64>>, at: Instant, n: u64) {
    *timeline
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(at.elapsed().as_secs())
        .or_default() += n;
}

fn copy<T: Clone>(slot: &Mutex<T>) -> T {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The second by which a timeline's running total reached `target` (none if it never did).
pub fn second_reaching(timeline: &BTreeMap<u64, u64>, target: u64) -> Option<u64> {
    let mut total = 0;
    timeline.iter().find_map(|(second, n)| {
        total += n;
        (total >= target).then_some(*second + 1)
    })
}

fn record(slot: &Mutex<Option<Tally>>, took: Duration, outcome: &str, success: bool) {
    let mut slot = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slot.get_or_insert_with(Tally::new)
        .record(took, outcome, success);
}

fn take(slot: &Mutex<Option<Tally>>) -> Tally {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .unwrap_or_default()
}

/// The venue as browsers see it: seat ids per section in seat-map order, and the popular
/// block (the front rows of the first section).
struct Venue {
    sections: Vec<Vec<String>>,
    popular: Vec<(usize, usize)>,
    /// Where each seat id is: (section, position).
    index: std::collections::HashMap<String, (usize, usize)>,
}

struct Browser {
    client: reqwest::Client,
    base: String,
    ws_base: String,
    event_id: String,
    token: String,
    venue: Arc<Venue>,
    steps: Arc<Steps>,
    gate: Arc<Semaphore>,
    started: Instant,
    deadline: Instant,
}

/// An answer: error code (or status, or the kind of failure), status, JSON body, and how
/// long the server took. At most `gate`'s permits of requests are in flight, so the
/// browsers share a pool of kept-alive connections instead of opening one each; the time
/// waited for a permit is the harness's, and does not count.
async fn send(
    gate: &Semaphore,
    request: reqwest::RequestBuilder,
) -> (String, u16, Value, Duration) {
    let Ok(_permit) = gate.acquire().await else {
        return ("closed".to_owned(), 0, Value::Null, Duration::ZERO);
    };
    let t = Instant::now();
    let (code, status, body) = answer(request).await;
    (code, status, body, t.elapsed())
}

async fn answer(request: reqwest::RequestBuilder) -> (String, u16, Value) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"]
                .as_str()
                .map_or_else(|| status.to_string(), str::to_owned);
            (code, status, body)
        }
        Err(error) => (crate::failure(&error).to_owned(), 0, Value::Null),
    }
}

impl Browser {
    async fn visit(&self, plan: &Plan, rng_seed: u64) -> Ending {
        let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
        let rng = &mut rng;
        let queue = format!("{}/api/v1/events/{}/queue", self.base, self.event_id);
        let (code, status, _, took) = send(
            &self.gate,
            self.client.post(&queue).bearer_auth(&self.token),
        )
        .await;
        record(&self.steps.join, took, &code, status == 200);
        if status != 200 {
            return Ending::Error;
        }
        // Wait for admission, polling as a browser tab would: every two seconds or so near
        // the front, less often while the estimated wait is long.
        let waited = Instant::now();
        let admission = loop {
            if Instant::now() > self.deadline {
                return Ending::NotAdmitted;
            }
            let (_, status, body, _) =
                send(&self.gate, self.client.get(&queue).bearer_auth(&self.token)).await;
            match body["state"].as_str() {
                Some("admitted") => {
                    break body["admission_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                }
                Some("sold_out") | Some("closed") => {
                    record(&self.steps.admission, waited.elapsed(), "sold_out", false);
                    return Ending::SoldOut;
                }
                _ if status != 200 && status != 429 => return Ending::Error,
                _ => {
                    let wait = poll_after(body["eta_seconds"].as_u64(), rng.gen_range(0.75..1.25));
                    tokio::time::sleep(wait).await
                }
            }
        };
        record(&self.steps.admission, waited.elapsed(), "admitted", true);
        count(&self.steps.admitted, self.started, 1);
        let ending = self.shop(plan, &admission, rng).await;
        // A page that is done (bought, or gave up) says so, as the web page does, and the
        // room lets the next buyer in; a tab that was simply closed (an abandoned hold)
        // does not.
        if !matches!(ending, Ending::Abandoned) {
            let _ = send(
                &self.gate,
                self.client.delete(&queue).bearer_auth(&self.token),
            )
            .await;
        }
        ending
    }

    /// An admitted browser's visit to the shop: the map, a hold, payment.
    async fn shop(&self, plan: &Plan, admission: &str, rng: &mut rand::rngs::StdRng) -> Ending {
        // The live map: the snapshot, then whatever deltas have come when choosing.
        let url = format!("{}/api/v1/events/{}/live", self.ws_base, self.event_id);
        let mut map: Vec<Vec<u8>> = self
            .venue
            .sections
            .iter()
            .map(|s| vec![b'a'; s.len()])
            .collect();
        let mut socket = match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => Some(socket),
            Err(_) => None,
        };
        let quantity = rng.gen_range(1..=4u32);
        let popular = rng.gen_bool(plan.popular_share.clamp(0.0, 1.0));
        let holds = format!("{}/api/v1/events/{}/holds", self.base, self.event_id);
        let mut hold = None;
        for attempt in 0..6 {
            if let Some(socket) = socket.as_mut() {
                drain(socket, &self.venue, &mut map).await;
            }
            let body = match choose(&self.venue, &map, popular, attempt, quantity, rng) {
                Some(picked) => {
                    let ids: Vec<&String> = picked
                        .iter()
                        .map(|(s, p)| &self.venue.sections[*s][*p])
                        .collect();
                    json!({"seat_ids": ids})
                }
                None => json!({"best_available": {"quantity": quantity}}),
            };
            let (code, status, answer, took) = send(
                &self.gate,
                self.client
                    .post(&holds)
                    .bearer_auth(&self.token)
                    .header("X-Admission-Token", admission)
                    .json(&body),
            )
            .await;
            record(&self.steps.hold, took, &code, status == 201);
            match (status, code.as_str()) {
                (201, _) => {
                    count(&self.steps.holds, self.started, 1);
                    if let Some(socket) = socket.as_mut() {
                        self.time_delta(socket, &mut map, &answer).await;
                    }
                    hold = Some(answer);
                    break;
                }
                (409, "sold_out") => return Ending::SoldOut,
                // A person looks at the map again (the next deltas arrive) and picks again.
                (409, "seat_unavailable") => {
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(100..300))).await
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        drop(socket);
        let Some(hold) = hold else {
            return Ending::NoSeats;
        };
        let hold_id = hold["hold_id"].as_str().unwrap_or_default().to_owned();
        let intent = plan.intent(rng.gen());
        match intent {
            Intent::Abandon => {
                let expires_at = hold["expires_at"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .unwrap_or_else(Utc::now);
                self.steps
                    .left
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(LeftHold {
                        hold_id,
                        token: self.token.clone(),
                        expires_at,
                    });
                return Ending::Abandoned;
            }
            Intent::Release => {
                let _ = send(
                    &self.gate,
                    self.client
                        .delete(format!("{}/api/v1/holds/{hold_id}", self.base))
                        .bearer_auth(&self.token),
                )
                .await;
                return Ending::Released;
            }
            Intent::Pay | Intent::DeclinedThenPay => {}
        }
        let checkout = format!("{}/api/v1/holds/{hold_id}/checkout", self.base);
        let cards: &[&str] = if intent == Intent::DeclinedThenPay {
            &["tok_decline", "tok_ok"]
        } else {
            &["tok_ok"]
        };
        for (i, card) in cards.iter().enumerate() {
            let (code, status, _, took) = send(
                &self.gate,
                self.client
                    .post(&checkout)
                    .bearer_auth(&self.token)
                    .header("X-Admission-Token", admission)
                    .header("Idempotency-Key", format!("{hold_id}-{i}"))
                    .json(&json!({"payment_token": card})),
            )
            .await;
            record(&self.steps.checkout, took, &code, status == 201);
            if status == 201 {
                let seats = hold["seats"].as_array().map_or(0, Vec::len) as u64;
                count(&self.steps.sold, self.started, seats);
                return Ending::Bought;
            }
        }
        Ending::PaymentFailed
    }
}

impl Browser {
    /// Waits (two seconds at most) for the buyer's own map to show the seats of `hold` held,
    /// and records the delay from the hold's answer; a delta that came before the answer
    /// counts as no delay.
    async fn time_delta<S>(&self, socket: &mut S, map: &mut [Vec<u8>], hold: &Value)
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + Unpin,
    {
        let acked = Instant::now();
        let mine: Vec<(usize, usize)> = hold["seats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|seat| self.venue.position(seat["seat_id"].as_str()?))
            .collect();
        if mine.is_empty() {
            return;
        }
        let shown = |map: &[Vec<u8>]| mine.iter().all(|(s, p)| map[*s][*p] != b'a');
        drain(socket, &self.venue, map).await;
        while !shown(map) {
            let left = Duration::from_secs(2).saturating_sub(acked.elapsed());
            match tokio::time::timeout(left, socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => apply(&text, &self.venue, map),
                Ok(Some(Ok(_))) => {}
                _ => {
                    record(&self.steps.delta, acked.elapsed(), "not_seen", false);
                    return;
                }
            }
        }
        record(&self.steps.delta, acked.elapsed(), "delta", true);
    }
}

/// When a waiting browser asks again: a quarter of its estimated wait, between 2 and 10
/// seconds, times `jitter` (so that tabs do not poll in step).
fn poll_after(eta_seconds: Option<u64>, jitter: f64) -> Duration {
    let base = eta_seconds
        .map_or(2.0, |eta| eta as f64 / 4.0)
        .clamp(2.0, 10.0);
    Duration::from_secs_f64(base * jitter)
}

/// The seats a browser asks for on this attempt: some free seats of the popular block (for
/// a browser that wants them, on its first three attempts), or none: best available.
fn choose(
    venue: &Venue,
    map: &[Vec<u8>],
    popular: bool,
    attempt: usize,
    quantity: u32,
    rng: &mut impl Rng,
) -> Option<Vec<(usize, usize)>> {
    // After three seats taken under its nose, a browser settles for best available.
    if !popular || attempt >= 3 {
        return None;
    }
    let free: Vec<&(usize, usize)> = venue
        .popular
        .iter()
        .filter(|(s, p)| map.get(*s).and_then(|row| row.get(*p)) == Some(&b'a'))
        .collect();
    let picked: Vec<(usize, usize)> = free
        .choose_multiple(rng, quantity as usize)
        .map(|seat| **seat)
        .collect();
    (!picked.is_empty()).then_some(picked)
}

/// Applies the deltas that have already arrived to the browser's map (without waiting).
async fn drain<S>(socket: &mut S, venue: &Venue, map: &mut [Vec<u8>])
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(Duration::from_millis(1), socket.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(text)))) => apply(&text, venue, map),
            Ok(Some(Ok(_))) => {}
            _ => return,
        }
    }
}

/// One frame of the live map applied to the browser's copy: a snapshot replaces the
/// sections' states, a delta changes its seats; anything else is ignored.
fn apply(text: &str, venue: &Venue, map: &mut [Vec<u8>]) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match frame["type"].as_str() {
        Some("snapshot") => {
            for (i, section) in frame["sections"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let (Some(states), Some(row)) = (section["states"].as_str(), map.get_mut(i)) {
                    if states.len() == row.len() {
                        row.copy_from_slice(states.as_bytes());
                    }
                }
            }
        }
        Some("delta") => {
            for change in frame["changes"].as_array().into_iter().flatten() {
                let (Some(id), Some(state)) =
                    (change["seat_id"].as_str(), change["state"].as_str())
                else {
                    continue;
                };
                if let Some((s, p)) = venue.position(id) {
                    map[s][p] = state.as_bytes().first().copied().unwrap_or(b'a');
                }
            }
        }
        _ => {}
    }
}

impl Venue {
    fn new(sections: Vec<Vec<String>>, popular: Vec<(usize, usize)>) -> Venue {
        let index = sections
            .iter()
            .enumerate()
            .flat_map(|(s, seats)| {
                seats
                    .iter()
                    .enumerate()
                    .map(move |(p, id)| (id.clone(), (s, p)))
            })
            .collect();
        Venue {
            sections,
            popular,
            index,
        }
    }

    fn position(&self, seat_id: &str) -> Option<(usize, usize)> {
        self.index.get(seat_id).copied()
    }
}

/// A finished sale, before its invariants are checked.
pub struct Sale {
    pub report: Report,
    pub event_id: String,
    /// Holds the browsers abandoned.
    pub left: Vec<LeftHold>,
    pub api: Api,
    pub server: Server,
    /// When the run's time limit ends.
    pub deadline: Instant,
}

impl Sale {
    /// Checks the invariants (none without access to the server's database), as of the
    /// server's time `now`.
    pub async fn verify(&self, now: DateTime<Utc>) -> anyhow::Result<Option<Verdict>> {
        match self.server.pool().await? {
            Some(pool) => Ok(Some(
                invariants::check(&self.api, &pool, &self.event_id, &self.left, now).await?,
            )),
            None => Ok(None),
        }
    }
}

/// Runs the sale, waits (within the time limit) for the abandoned holds' deadlines, and
/// checks the invariants: a broken one is an error.
pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    let mut sale = run_sale(common, plan).await?;
    if let Some(last) = sale.left.iter().map(|h| h.expires_at).max() {
        let wait = (last - Utc::now() + chrono::Duration::seconds(2))
            .to_std()
            .unwrap_or_default();
        let allowed = sale.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(wait.min(allowed)).await;
    }
    match sale.verify(Utc::now()).await? {
        Some(verdict) => {
            verdict.print();
            sale.report
                .extra
                .insert("invariants".into(), json!(verdict));
            if !verdict.ok() {
                sale.report.print();
                bail!("invariants broken: {}", verdict.failures().join("; "));
            }
        }
        None => println!("invariants: not checked (no access to the server's database)"),
    }
    let mut report = sale.report;
    drop(sale.server);
    if !common.skip_baseline {
        let seed = seed_sale(common, plan).await?;
        report.runs.extend(seed.runs);
        let ours = &report.extra;
        let faster = |key: &str| -> Option<f64> {
            let theirs = seed.figures[key].as_f64()?;
            let ours = ours.get(key)?.as_f64()?;
            (ours > 0.0).then(|| theirs / ours)
        };
        let ratios = json!({
            "hold_p99": p99_ratio(&report.runs, "hold", "seed hold"),
            "checkout_p99": p99_ratio(&report.runs, "checkout", "seed checkout"),
            "time_to_sell_90_percent": faster("seconds_to_sell_90_percent"),
        });
        report.extra.insert("seed_design".into(), seed.figures);
        report
            .extra
            .insert("seed_design_over_boxoffice".into(), ratios);
    }
    Ok(report)
}

/// Sets up the event and runs the browsers to the end (or the time limit).
pub async fn run_sale(common: &Common, plan: &Plan) -> anyhow::Result<Sale> {
    if plan.browsers == 0 || plan.sections == 0 {
        bail!("--browsers and --sections must be at least 1");
    }
    // Shoppers who leave without buying keep their place in the shop until their window
    // closes; a short window keeps the tail of a run from waiting on them.
    let window = plan.admission_window_minutes.to_string();
    let server =
        crate::start_with(common, &[("BOXOFFICE_ADMISSION_WINDOW_MINUTES", &window)]).await?;
    let api = Api::new(&server.url);
    let organizer = api.signup("organizer").await?;
    let sections: Vec<Value> = (0..plan.sections)
        .map(|i| json!({"name": format!("S{}", i + 1), "kind": "seated", "rows": plan.rows, "seats_per_row": plan.seats_per_row}))
        .collect();
    let (event_id, _, start) = priced_event(&api, &organizer, "Flash Sale Night", json!(sections), |venue| {
        let prices: Vec<Value> = venue["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, s)| json!({"section_id": s["section_id"], "price_cents": 15_000 - 2_000 * (i as i64 % 5)}))
            .collect();
        json!({"currency": "USD", "sections": prices})
    })
    .await?;
    let sale_starts = Utc::now() + chrono::Duration::seconds(plan.lead_seconds as i64);
    api.put(
        &format!("/api/v1/events/{event_id}/onsale"),
        Some(&organizer),
        &json!({"sale_starts_at": sale_starts, "sale_ends_at": start, "hold_minutes": plan.hold_minutes,
                "max_per_order": 4,
                "waiting_room": {"queue_opens_at": Utc::now() - chrono::Duration::minutes(1),
                                 "admission_per_minute": plan.admission_per_minute}}),
    )
    .await?;
    api.post(
        &format!("/api/v1/events/{event_id}/publish"),
        Some(&organizer),
        &json!({}),
    )
    .await?;
    let map: Value = api
        .get_json(&format!("/api/v1/events/{event_id}/seatmap"))
        .await?;
    let seat_ids = crate::server::seat_ids(&map);
    // The popular block: the first five rows of the first section.
    let front = (plan.seats_per_row.max(1) as usize) * 5;
    let popular = (0..seat_ids.first().map_or(0, |s| s.len().min(front)))
        .map(|p| (0, p))
        .collect();
    let capacity: usize = seat_ids.iter().map(Vec::len).sum();
    let venue = Arc::new(Venue::new(seat_ids, popular));

    println!("flash-sale: {} browsers, {capacity} seats", plan.browsers);
    let tokens = server.buyers(&api, plan.browsers).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    let steps = Arc::new(Steps::default());
    let gate = Arc::new(Semaphore::new(common.clients.max(1)));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(common.seconds.max(plan.lead_seconds + 10));
    let done = Arc::new(AtomicU64::new(0));
    let progress = indicatif::ProgressBar::new(plan.browsers as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} browsers done · {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let browsers: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let browser = Browser {
                client: client.clone(),
                base: server.url.clone(),
                ws_base: server.url.replacen("http", "ws", 1),
                event_id: event_id.clone(),
                token,
                venue: venue.clone(),
                steps: steps.clone(),
                gate: gate.clone(),
                started,
                deadline,
            };
            let (plan, done, progress) = (plan.clone(), done.clone(), progress.clone());
            tokio::spawn(async move {
                let ending = browser.visit(&plan, i as u64).await;
                browser.steps.ended(ending);
                done.fetch_add(1, Ordering::Relaxed);
                progress.inc(1);
            })
        })
        .collect();
    let ticker = {
        let (progress, steps) = (progress.clone(), steps.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let endings = steps
                    .endings
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let bought = endings.get("bought").copied().unwrap_or(0);
                progress.set_message(format!("{bought} bought"));
            }
        })
    };
    for browser in browsers {
        let _ = browser.await;
    }
    ticker.abort();
    progress.finish();
    let elapsed = started.elapsed();
    let peak = server.peak_rss_mib();

    let left = copy(&steps.left);
    let runs = vec![
        Summary::new("join", plan.browsers, elapsed, &take(&steps.join), None),
        Summary::new(
            "admission",
            plan.browsers,
            elapsed,
            &take(&steps.admission),
            None,
        ),
        Summary::new("hold", plan.browsers, elapsed, &take(&steps.hold), None),
        Summary::new(
            "delta-delay",
            plan.browsers,
            elapsed,
            &take(&steps.delta),
            None,
        ),
        Summary::new(
            "checkout",
            plan.browsers,
            elapsed,
            &take(&steps.checkout),
            peak,
        ),
    ];
    let mut report = Report::new("flash-sale", runs);
    let sold = copy(&steps.sold);
    report.extra.insert("browsers".into(), json!(plan.browsers));
    report.extra.insert("seats".into(), json!(capacity));
    report
        .extra
        .insert("endings".into(), json!(copy(&steps.endings)));
    report
        .extra
        .insert("admitted_per_second".into(), json!(copy(&steps.admitted)));
    report
        .extra
        .insert("holds_per_second".into(), json!(copy(&steps.holds)));
    report.extra.insert("sold_per_second".into(), json!(sold));
    report.extra.insert(
        "seconds_to_sell_90_percent".into(),
        json!(second_reaching(&sold, (capacity as u64 * 90).div_ceil(100))),
    );
    report
        .extra
        .insert("seconds".into(), json!(elapsed.as_secs_f64()));
    Ok(Sale {
        report,
        event_id,
        left,
        api,
        server,
        deadline,
    })
}

/// The same sale on the seed design: the same browsers (same seeds, so the same
/// quantities, choices and intents) at the same concurrency, straight at Postgres, the way
/// seed 001 describes it. The seeds have no waiting room, so every browser starts at once;
/// they see the map by reading the seats (as from a read replica), and hold, pay and
/// release with the seed's transactions. Its 60-second sweep frees abandoned holds.
pub async fn seed_sale(common: &Common, plan: &Plan) -> anyhow::Result<SeedSale> {
    let base = Arc::new(Baseline::for_run(common).await?);
    let mut sections = Vec::new();
    for _ in 0..plan.sections {
        sections.push(base.add_section(plan.rows, plan.seats_per_row).await?);
    }
    let capacity: usize = sections.iter().map(Vec::len).sum();
    let front = (plan.seats_per_row.max(1) as usize) * 5;
    let popular: Vec<Uuid> = sections
        .first()
        .map(|s| s.iter().take(front).copied().collect())
        .unwrap_or_default();
    println!(
        "flash-sale: the seed design, {} browsers, {capacity} seats",
        plan.browsers
    );
    let steps = Arc::new(Steps::default());
    let gate = Arc::new(Semaphore::new(common.clients.max(1)));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(common.seconds);
    let sweeper = {
        let base = base.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let _ = base.sweep().await;
            }
        })
    };
    let popular = Arc::new(popular);
    let browsers: Vec<_> = (0..plan.browsers)
        .map(|i| {
            let seed = SeedBrowser {
                base: base.clone(),
                popular: popular.clone(),
                steps: steps.clone(),
                gate: gate.clone(),
                started,
                deadline,
            };
            let plan = plan.clone();
            tokio::spawn(async move {
                let ending = seed.visit(&plan, i as u64).await;
                seed.steps.ended(ending);
            })
        })
        .collect();
    for browser in browsers {
        let _ = browser.await;
    }
    sweeper.abort();
    let elapsed = started.elapsed();
    let counts = base.seat_counts().await?;
    if counts.tickets != counts.ticketed_seats
        || counts.sold != counts.tickets
        || (counts.sold + counts.held + counts.available) as usize != capacity
    {
        bail!("the seed design's counts do not add up: {counts:?}");
    }
    let sold = copy(&steps.sold);
    Ok(SeedSale {
        runs: vec![
            Summary::new(
                "seed hold",
                plan.browsers,
                elapsed,
                &take(&steps.hold),
                None,
            ),
            Summary::new(
                "seed checkout",
                plan.browsers,
                elapsed,
                &take(&steps.checkout),
                None,
            ),
        ],
        figures: json!({
            "endings": copy(&steps.endings),
            "holds_per_second": copy(&steps.holds),
            "sold_per_second": sold,
            "seconds_to_sell_90_percent": second_reaching(&sold, (capacity as u64 * 90).div_ceil(100)),
            "seconds": elapsed.as_secs_f64(),
            "seats": counts,
        }),
    })
}

/// The seed design's sale: its steps, and its figures for the report.
pub struct SeedSale {
    pub runs: Vec<Summary>,
    pub figures: Value,
}

/// A browser of the seed design's sale.
struct SeedBrowser {
    base: Arc<Baseline>,
    /// The popular block, as seat ids.
    popular: Arc<Vec<Uuid>>,
    steps: Arc<Steps>,
    gate: Arc<Semaphore>,
    started: Instant,
    deadline: Instant,
}

impl SeedBrowser {
    /// A statement at the seed's database, timed, at most `gate`'s permits at once.
    async fn timed<T>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> (anyhow::Result<T>, Duration) {
        let Ok(_permit) = self.gate.acquire().await else {
            return (Err(anyhow::anyhow!("closed")), Duration::ZERO);
        };
        let t = Instant::now();
        let result = work.await;
        (result, t.elapsed())
    }

    /// The same visit as a boxoffice browser's with the same `rng_seed`, less the room.
    async fn visit(&self, plan: &Plan, rng_seed: u64) -> Ending {
        let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
        let rng = &mut rng;
        let buyer = Uuid::new_v4();
        let quantity = rng.gen_range(1..=4u32);
        let popular = rng.gen_bool(plan.popular_share.clamp(0.0, 1.0));
        let minutes = plan.hold_minutes as i32;
        let mut order = None;
        for attempt in 0..6 {
            if Instant::now() > self.deadline {
                return Ending::NotAdmitted;
            }
            let picked = if popular && attempt < 3 {
                // The browser reads the block's seats and picks among the free ones.
                let (states, _) = self.timed(self.base.seat_states(&self.popular)).await;
                let free: Vec<Uuid> = states
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(_, state)| state == "AVAILABLE")
                    .map(|(id, _)| id)
                    .collect();
                free.choose_multiple(rng, quantity as usize)
                    .copied()
                    .collect()
            } else {
                Vec::new()
            };
            let (held, took) = if picked.is_empty() {
                self.timed(self.base.hold_best(i64::from(quantity), buyer, minutes))
                    .await
            } else {
                self.timed(self.base.hold_seats(&picked, buyer, minutes))
                    .await
            };
            match held {
                Ok(Some(order_id)) => {
                    record(&self.steps.hold, took, "held", true);
                    count(&self.steps.holds, self.started, 1);
                    order = Some(order_id);
                    break;
                }
                Ok(None) if picked.is_empty() => {
                    record(&self.steps.hold, took, "sold_out", false);
                    return Ending::SoldOut;
                }
                Ok(None) => {
                    record(&self.steps.hold, took, "seat_unavailable", false);
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(100..300))).await
                }
                Err(_) => {
                    record(&self.steps.hold, took, "error", false);
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
            }
        }
        let Some(order_id) = order else {
            return Ending::NoSeats;
        };
        let intent = plan.intent(rng.gen());
        match intent {
            Intent::Abandon => return Ending::Abandoned,
            Intent::Release => {
                let _ = self.timed(self.base.release(order_id)).await;
                return Ending::Released;
            }
            Intent::Pay | Intent::DeclinedThenPay => {}
        }
        let cards: &[&str] = if intent == Intent::DeclinedThenPay {
            &["tok_decline", "tok_ok"]
        } else {
            &["tok_ok"]
        };
        for card in cards {
            let (confirmed, took) = self.timed(self.base.confirm_order(order_id, card)).await;
            match confirmed {
                Ok(Confirmed::Paid) => {
                    record(&self.steps.checkout, took, "paid", true);
                    count(&self.steps.sold, self.started, u64::from(quantity));
                    return Ending::Bought;
                }
                Ok(Confirmed::Declined) => record(&self.steps.checkout, took, "declined", false),
                Ok(other) => {
                    record(&self.steps.checkout, took, &format!("{other:?}"), false);
                    return Ending::PaymentFailed;
                }
                Err(_) => record(&self.steps.checkout, took, "error", false),
            }
        }
        Ending::PaymentFailed
    }
}

/// p99 of `step` in the seed design over boxoffice's: how many times faster boxoffice is.
fn p99_ratio(runs: &[Summary], ours: &str, theirs: &str) -> Option<f64> {
    let of = |name: &str| runs.iter().find(|r| r.system == name).map(|r| r.p99_ms);
    match (of(ours), of(theirs)) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            browsers: 1,
            sections: 1,
            rows: 1,
            seats_per_row: 1,
            admission_per_minute: 60,
            lead_seconds: 1,
            popular_share: 0.0,
            decline_share: 0.1,
            abandon_share: 0.2,
            release_share: 0.3,
            hold_minutes: 1,
            admission_window_minutes: 2,
        }
    }

    #[test]
    fn intents_follow_the_shares_in_order() {
        let plan = plan();
        assert_eq!(plan.intent(0.05), Intent::DeclinedThenPay);
        assert_eq!(plan.intent(0.15), Intent::Abandon);
        assert_eq!(plan.intent(0.45), Intent::Release);
        assert_eq!(plan.intent(0.61), Intent::Pay);
        assert_eq!(plan.intent(0.99), Intent::Pay);
    }

    #[test]
    fn a_seat_is_found_by_its_id() {
        let venue = Venue::new(
            vec![vec!["a".into(), "b".into()], vec!["c".into()]],
            Vec::new(),
        );
        assert_eq!(venue.position("c"), Some((1, 0)));
        assert_eq!(venue.position("b"), Some((0, 1)));
        assert_eq!(venue.position("z"), None);
    }

    fn small_venue() -> Venue {
        Venue::new(
            vec![
                vec!["a1".into(), "a2".into(), "a3".into()],
                vec!["b1".into(), "b2".into()],
            ],
            vec![(0, 0), (0, 1), (0, 2)],
        )
    }

    #[test]
    fn frames_update_the_browsers_map() {
        let venue = small_venue();
        let mut map = vec![vec![b'a'; 3], vec![b'a'; 2]];
        apply(
            r#"{"type":"snapshot","seq":7,"sections":[{"states":"ahs"},{"states":"sa"}]}"#,
            &venue,
            &mut map,
        );
        assert_eq!(map, vec![b"ahs".to_vec(), b"sa".to_vec()]);
        apply(
            r#"{"type":"delta","seq":8,"changes":[{"seat_id":"a2","state":"available"},{"seat_id":"b2","state":"held"},{"seat_id":"zz","state":"sold"}]}"#,
            &venue,
            &mut map,
        );
        assert_eq!(map, vec![b"aas".to_vec(), b"sh".to_vec()]);
        // A snapshot of another shape, a hold frame or garbage leave the map alone.
        for frame in [
            r#"{"type":"snapshot","sections":[{"states":"a"}]}"#,
            r#"{"type":"hold","hold_id":"x","status":"HELD"}"#,
            "not json",
        ] {
            apply(frame, &venue, &mut map);
        }
        assert_eq!(map, vec![b"aas".to_vec(), b"sh".to_vec()]);
    }

    #[test]
    fn a_popular_browser_picks_free_seats_of_the_block_then_settles_for_best_available() {
        let venue = small_venue();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let map = vec![b"aha".to_vec(), b"aa".to_vec()];
        for attempt in 0..3 {
            let picked = choose(&venue, &map, true, attempt, 4, &mut rng);
            let mut picked = picked.unwrap_or_default();
            picked.sort();
            assert_eq!(picked, vec![(0, 0), (0, 2)], "only the free block seats");
        }
        assert_eq!(choose(&venue, &map, true, 3, 2, &mut rng), None);
        assert_eq!(choose(&venue, &map, false, 0, 2, &mut rng), None);
        let taken = vec![b"hsh".to_vec(), b"aa".to_vec()];
        assert_eq!(choose(&venue, &taken, true, 0, 2, &mut rng), None);
        let one = choose(&venue, &map, true, 0, 1, &mut rng).unwrap_or_default();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn waiting_browsers_poll_less_often_while_the_wait_is_long() {
        assert_eq!(poll_after(None, 1.0), Duration::from_secs(2));
        assert_eq!(poll_after(Some(0), 1.0), Duration::from_secs(2));
        assert_eq!(poll_after(Some(24), 1.0), Duration::from_secs(6));
        assert_eq!(poll_after(Some(3_600), 1.0), Duration::from_secs(10));
        assert_eq!(poll_after(Some(24), 1.25), Duration::from_secs_f64(7.5));
    }

    #[test]
    fn the_time_to_sell_is_when_the_running_total_reaches_the_target() {
        let sold: BTreeMap<u64, u64> = [(0, 10), (1, 50), (4, 40)].into();
        assert_eq!(second_reaching(&sold, 10), Some(1));
        assert_eq!(second_reaching(&sold, 60), Some(2));
        assert_eq!(second_reaching(&sold, 95), Some(5));
        assert_eq!(second_reaching(&sold, 101), None);
    }

    #[test]
    fn the_ratio_is_the_seed_designs_p99_over_ours() {
        let mut fast = Tally::new();
        let mut slow = Tally::new();
        fast.record(Duration::from_millis(10), "201", true);
        slow.record(Duration::from_millis(250), "held", true);
        let runs = vec![
            Summary::new("hold", 1, Duration::from_secs(1), &fast, None),
            Summary::new("seed hold", 1, Duration::from_secs(1), &slow, None),
        ];
        let ratio = p99_ratio(&runs, "hold", "seed hold").unwrap_or_default();
        assert!((ratio - 25.0).abs() < 0.1, "{ratio}");
        assert_eq!(p99_ratio(&runs, "checkout", "seed checkout"), None);
    }
}
