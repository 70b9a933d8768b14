//! The flash sale on boxoffice: [`run_sale`] sets the event up through the API (a seated
//! venue, prices, an on-sale with a waiting room), drives one [`BoxofficeShop`] per
//! browser through [`browser::visit`](super::browser::visit), and reports what they
//! measured. A shop is what a browser tab does against boxoffice: it joins the room and
//! polls its place, watches the live map over a socket (and times the delta of its own
//! hold), and holds, pays, releases and leaves with the API.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use super::browser::{self, Answer, Hold, Payment, Shop};
use super::live_map::{apply, drain, Socket, Venue};
use super::steps::{copy, count, ninety_percent, record, second_reaching, take, Steps};
use super::{Ending, Plan, Sale};
use crate::invariants::LeftHold;
use crate::report::{Report, Summary};
use crate::server::{priced_event, Api};
use crate::Common;

/// One browser tab against boxoffice.
struct BoxofficeShop {
    client: reqwest::Client,
    base: String,
    ws_base: String,
    event_id: String,
    token: String,
    venue: Arc<Venue>,
    steps: Arc<Steps>,
    gate: Arc<Semaphore>,
    started: Instant,
    /// For the room's polling jitter only (the visit's choices have their own seed).
    jitter: rand::rngs::StdRng,
    admission: String,
    /// The browser's copy of the live map, and the socket that keeps it current.
    map: Vec<Vec<u8>>,
    socket: Option<Socket>,
    hold: Value,
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

impl BoxofficeShop {
    fn queue(&self) -> String {
        format!("{}/api/v1/events/{}/queue", self.base, self.event_id)
    }

    fn hold_id(&self) -> String {
        self.hold["hold_id"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits (two seconds at most) for the buyer's own map to show the seats of its hold
    /// held, and records the delay from the hold's answer; a delta that came before the
    /// answer counts as no delay.
    async fn time_delta(&mut self) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        let acked = Instant::now();
        let mine: Vec<(usize, usize)> = self.hold["seats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|seat| self.venue.position(seat["seat_id"].as_str()?))
            .collect();
        if mine.is_empty() {
            return;
        }
        let shown = |map: &[Vec<u8>]| mine.iter().all(|(s, p)| map[*s][*p] != b'a');
        drain(socket, &self.venue, &mut self.map).await;
        while !shown(&self.map) {
            let left = Duration::from_secs(2).saturating_sub(acked.elapsed());
            match tokio::time::timeout(left, socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => apply(&text, &self.venue, &mut self.map),
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

impl Shop for BoxofficeShop {
    /// Joins the room and waits for admission, polling as a browser tab would: every two
    /// seconds or so near the front, less often while the estimated wait is long. Then
    /// opens the live map.
    async fn enter(&mut self, deadline: Instant) -> Result<(), Ending> {
        let queue = self.queue();
        let join = self.client.post(&queue).bearer_auth(&self.token);
        let (code, status, _, took) = send(&self.gate, join).await;
        record(&self.steps.join, took, &code, status == 200);
        if status != 200 {
            return Err(Ending::Error);
        }
        let waited = Instant::now();
        self.admission = loop {
            if Instant::now() > deadline {
                return Err(Ending::NotAdmitted);
            }
            let poll = self.client.get(&queue).bearer_auth(&self.token);
            let (_, status, body, _) = send(&self.gate, poll).await;
            match body["state"].as_str() {
                Some("admitted") => {
                    break body["admission_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                }
                Some("sold_out") | Some("closed") => {
                    record(&self.steps.admission, waited.elapsed(), "sold_out", false);
                    return Err(Ending::SoldOut);
                }
                _ if status != 200 && status != 429 => return Err(Ending::Error),
                _ => {
                    let jitter = self.jitter.gen_range(0.75..1.25);
                    tokio::time::sleep(poll_after(body["eta_seconds"].as_u64(), jitter)).await
                }
            }
        };
        record(&self.steps.admission, waited.elapsed(), "admitted", true);
        count(&self.steps.admitted, self.started, 1);
        // The live map: the snapshot, then whatever deltas have come when choosing.
        let url = format!("{}/api/v1/events/{}/live", self.ws_base, self.event_id);
        self.socket = tokio_tungstenite::connect_async(url)
            .await
            .ok()
            .map(|(socket, _)| socket);
        Ok(())
    }

    async fn free_in_block(&mut self) -> Vec<usize> {
        if let Some(socket) = self.socket.as_mut() {
            drain(socket, &self.venue, &mut self.map).await;
        }
        self.venue.free_in_block(&self.map)
    }

    async fn hold(&mut self, block: &[usize], quantity: u32) -> Answer<Hold> {
        let body = if block.is_empty() {
            json!({"best_available": {"quantity": quantity}})
        } else {
            let ids: Vec<&String> = block
                .iter()
                .map(|&i| {
                    let (s, p) = self.venue.popular[i];
                    &self.venue.sections[s][p]
                })
                .collect();
            json!({"seat_ids": ids})
        };
        let request = self
            .client
            .post(format!(
                "{}/api/v1/events/{}/holds",
                self.base, self.event_id
            ))
            .bearer_auth(&self.token)
            .header("X-Admission-Token", &self.admission)
            .json(&body);
        let (code, status, answer, took) = send(&self.gate, request).await;
        let held = match (status, code.as_str()) {
            (201, _) => {
                let seats = answer["seats"].as_array().map_or(0, Vec::len) as u64;
                self.hold = answer;
                self.time_delta().await;
                // The map is not looked at again: a person pays now.
                self.socket = None;
                Hold::Held { seats }
            }
            (409, "sold_out") => Hold::SoldOut,
            (409, "seat_unavailable") => Hold::Taken,
            _ => Hold::Failed,
        };
        (held, code, took)
    }

    async fn pay(&mut self, card: &str, attempt: usize) -> Answer<Payment> {
        let hold_id = self.hold_id();
        let request = self
            .client
            .post(format!("{}/api/v1/holds/{hold_id}/checkout", self.base))
            .bearer_auth(&self.token)
            .header("X-Admission-Token", &self.admission)
            .header("Idempotency-Key", format!("{hold_id}-{attempt}"))
            .json(&json!({"payment_token": card}));
        let (code, status, body, took) = send(&self.gate, request).await;
        let paid = match status {
            201 => {
                let seats = self.hold["seats"].as_array().map_or(0, Vec::len) as u64;
                Payment::Paid { seats }
            }
            // Payments degraded (the breaker) or the order queue full: nothing charged, the
            // hold kept; the page waits as told and tries again.
            503 => Payment::Retry(Duration::from_secs(
                body["error"]["retry_after_seconds"]
                    .as_u64()
                    .unwrap_or(1)
                    .clamp(1, 10),
            )),
            // The processor failed or timed out: nothing charged, the hold kept.
            502 => Payment::Retry(Duration::from_secs(1)),
            _ => Payment::Declined,
        };
        (paid, code, took)
    }

    async fn release(&mut self) {
        let url = format!("{}/api/v1/holds/{}", self.base, self.hold_id());
        let request = self.client.delete(url).bearer_auth(&self.token);
        let _ = send(&self.gate, request).await;
    }

    async fn abandon(&mut self) {
        let expires_at = self.hold["expires_at"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .unwrap_or_else(Utc::now);
        let left = LeftHold {
            hold_id: self.hold_id(),
            token: self.token.clone(),
            expires_at,
        };
        self.steps
            .left
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(left);
    }

    /// A page that is done (bought, or gave up) says so, as the web page does, and the
    /// room lets the next buyer in; a tab that was simply closed (an abandoned hold)
    /// does not.
    async fn leave(&mut self, ending: Ending) {
        self.socket = None;
        if ending != Ending::Abandoned {
            let request = self.client.delete(self.queue()).bearer_auth(&self.token);
            let _ = send(&self.gate, request).await;
        }
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

/// An event on sale for the flash sale, as the browsers will find it.
struct SetUp {
    api: Api,
    server: crate::server::Server,
    event_id: String,
    venue: Arc<Venue>,
    capacity: usize,
    inbox: crate::smtp_sink::Inbox,
    sale_starts: DateTime<Utc>,
}

/// The operator token of a server the harness starts to slow its processor.
const OPERATOR: &str = "loadtest-operator-token";

/// Starts (or finds) the server and puts a seated event on sale with a waiting room that
/// opened a minute ago and a sale that starts `lead_seconds` from now.
async fn set_up(common: &Common, plan: &Plan) -> anyhow::Result<SetUp> {
    if plan.browsers == 0 || plan.sections == 0 {
        bail!("--browsers and --sections must be at least 1");
    }
    // Shoppers who leave without buying keep their place in the shop until their window
    // closes; a short window keeps the tail of a run from waiting on them.
    let window = plan.admission_window_minutes.to_string();
    // The server's e-mail (a confirmation with a PDF per order) goes to a sink on loopback.
    let (smtp_port, inbox) = crate::smtp_sink::start().await;
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let mut env = vec![
        ("BOXOFFICE_ADMISSION_WINDOW_MINUTES", window.as_str()),
        ("BOXOFFICE_SMTP_URL", smtp.as_str()),
    ];
    if plan.slow_payments_at > 0 {
        env.push(("BOXOFFICE_OPERATOR_TOKEN", OPERATOR));
    }
    if plan.no_breaker {
        env.push(("BOXOFFICE_BREAKER", "false"));
    }
    let server = crate::start_with(common, &env).await?;
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
    let capacity = seat_ids.iter().map(Vec::len).sum();
    Ok(SetUp {
        api,
        server,
        event_id,
        venue: Arc::new(Venue::new(seat_ids, popular)),
        capacity,
        inbox,
        sale_starts,
    })
}

/// Slows the server's simulated processor `at` seconds into the sale for `for` seconds;
/// returns the window it was slow in, in seconds of the run (from `started`).
async fn slow_payments(
    base: String,
    plan: Plan,
    sale_starts: DateTime<Utc>,
    started: Instant,
) -> anyhow::Result<(f64, f64)> {
    let client = reqwest::Client::new();
    let set = |ms: u64| {
        client
            .put(format!("{base}/api/v1/operator/payment-latency"))
            .bearer_auth(OPERATOR)
            .json(&json!({"latency_ms": ms}))
            .send()
    };
    let wait = (sale_starts + chrono::Duration::seconds(plan.slow_payments_at as i64) - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    let answer: Value = set(plan.slow_payments_ms)
        .await?
        .error_for_status()?
        .json()
        .await?;
    let from = started.elapsed().as_secs_f64();
    println!(
        "flash-sale: the card processor slows to {} ms a call",
        plan.slow_payments_ms
    );
    tokio::time::sleep(Duration::from_secs(plan.slow_payments_for)).await;
    set(answer["previous_ms"].as_u64().unwrap_or(0))
        .await?
        .error_for_status()?;
    println!("flash-sale: the card processor is back");
    Ok((from, started.elapsed().as_secs_f64()))
}

/// Sets up the event, runs the browsers to the end (or the time limit), and reports.
pub async fn run_sale(common: &Common, plan: &Plan) -> anyhow::Result<Sale> {
    let sale = set_up(common, plan).await?;
    println!(
        "flash-sale: {} browsers, {} seats",
        plan.browsers, sale.capacity
    );
    let tokens = sale.server.buyers(&sale.api, plan.browsers).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    let started = Instant::now();
    let at = browser::Clock {
        steps: Arc::new(Steps::default()),
        started,
        deadline: started + Duration::from_secs(common.seconds.max(plan.lead_seconds + 10)),
    };
    let slowing = (plan.slow_payments_at > 0).then(|| {
        tokio::spawn(slow_payments(
            sale.server.url.clone(),
            plan.clone(),
            sale.sale_starts,
            started,
        ))
    });
    let gate = Arc::new(Semaphore::new(common.clients.max(1)));
    let blank: Vec<Vec<u8>> = sale
        .venue
        .sections
        .iter()
        .map(|s| vec![b'a'; s.len()])
        .collect();
    let shops = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| BoxofficeShop {
            client: client.clone(),
            base: sale.server.url.clone(),
            ws_base: sale.server.url.replacen("http", "ws", 1),
            event_id: sale.event_id.clone(),
            token,
            venue: sale.venue.clone(),
            steps: at.steps.clone(),
            gate: gate.clone(),
            started,
            jitter: rand::rngs::StdRng::seed_from_u64(i as u64 ^ 0x5eed),
            admission: String::new(),
            map: blank.clone(),
            socket: None,
            hold: Value::Null,
        })
        .collect();
    browser::drive(shops, plan, &at).await;
    let elapsed = started.elapsed();
    let mut report = report(
        plan,
        &at.steps,
        elapsed,
        sale.capacity,
        sale.server.peak_rss_mib(),
    );
    if let Some(slowing) = slowing {
        let window = match slowing.await {
            Ok(Ok(window)) => window,
            Ok(Err(error)) => bail!("slowing the card processor: {error:#}"),
            Err(error) => bail!("slowing the card processor: {error}"),
        };
        report.extra.insert(
            "slow_payments".into(),
            degraded_figures(plan, window, &copy(&at.steps.sold)),
        );
    }
    Ok(Sale {
        report,
        event_id: sale.event_id,
        left: copy(&at.steps.left),
        api: sale.api,
        server: sale.server,
        deadline: at.deadline,
        inbox: sale.inbox,
    })
}

/// The slow window and how sales came back after it: the rate of sales in the ten
/// seconds before it, and the first second after it from which three seconds in a row
/// sold at least half that rate again.
fn degraded_figures(plan: &Plan, (from, to): (f64, f64), sold: &BTreeMap<u64, u64>) -> Value {
    let at = |s: u64| sold.get(&s).copied().unwrap_or(0) as f64;
    let start = from.floor() as u64;
    let before = (start.saturating_sub(10)..start).map(at).sum::<f64>() / 10.0;
    let end = to.ceil() as u64;
    let last = sold.keys().next_back().copied().unwrap_or(end);
    let recovered = (end..=last)
        .find(|s| (*s..s + 3).all(|t| at(t) >= before / 2.0))
        .map(|s| s as f64 - to);
    let during = (start..end).map(at).sum::<f64>() / (to - from).max(1.0);
    json!({"latency_ms": plan.slow_payments_ms, "from_s": from, "to_s": to,
           "breaker": !plan.no_breaker, "sold_per_second_before": before,
           "sold_per_second_during": during, "seconds_to_recover": recovered})
}

/// The sale's report: a summary per step, the endings, the timelines and the time to
/// sell nine tenths.
fn report(
    plan: &Plan,
    steps: &Steps,
    elapsed: Duration,
    capacity: usize,
    peak: Option<f64>,
) -> Report {
    let n = plan.browsers;
    let runs = vec![
        Summary::new("join", n, elapsed, &take(&steps.join), None),
        Summary::new("admission", n, elapsed, &take(&steps.admission), None),
        Summary::new("hold", n, elapsed, &take(&steps.hold), None),
        Summary::new("delta-delay", n, elapsed, &take(&steps.delta), None),
        Summary::new("checkout", n, elapsed, &take(&steps.checkout), peak),
    ];
    let mut report = Report::new("flash-sale", runs);
    let sold = copy(&steps.sold);
    let extra = [
        ("browsers", json!(n)),
        ("seats", json!(capacity)),
        ("endings", json!(copy(&steps.endings))),
        ("admitted_per_second", json!(copy(&steps.admitted))),
        ("holds_per_second", json!(copy(&steps.holds))),
        (
            "seconds_to_sell_90_percent",
            json!(second_reaching(&sold, ninety_percent(capacity))),
        ),
        ("sold_per_second", json!(sold)),
        ("seconds", json!(elapsed.as_secs_f64())),
    ];
    for (key, value) in extra {
        report.extra.insert(key.into(), value);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_browsers_poll_less_often_while_the_wait_is_long() {
        assert_eq!(poll_after(None, 1.0), Duration::from_secs(2));
        assert_eq!(poll_after(Some(0), 1.0), Duration::from_secs(2));
        assert_eq!(poll_after(Some(24), 1.0), Duration::from_secs(6));
        assert_eq!(poll_after(Some(3_600), 1.0), Duration::from_secs(10));
        assert_eq!(poll_after(Some(24), 1.25), Duration::from_secs_f64(7.5));
    }
}
