//! The virtual waiting room: fairness, pacing, back-pressure from the inventory left,
//! sold-out news, admission tokens on holds and checkout, visitors, restarts with Redis,
//! abandoned places and rate limits.

use chrono::Duration;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{
    assert_error, days_from_now, redis_url, spawn_app, spawn_app_sharing, spawn_app_with,
    standard_pricing, string, uuid, Account, TestApp,
};

/// How a test's waiting room is set up.
struct Room {
    admission_per_minute: i64,
    max_per_order: i64,
    /// A 12-place standing venue instead of the standard 122 places.
    tiny: bool,
}

const ROOM: Room = Room {
    admission_per_minute: 600,
    max_per_order: 6,
    tiny: false,
};

impl TestApp {
    /// A published event whose waiting room is open now and whose sale starts in an hour.
    async fn room_event(&self, organizer: &Account, room: Room) -> Uuid {
        let (venue_id, pricing) = if room.tiny {
            let (status, venue) = self
                .create_venue(
                    &organizer.token,
                    &json!({
                        "name": "The Back Room", "address": "1 Side Street", "city": "Leeds",
                        "latitude": 53.8, "longitude": -1.5, "timezone": "Europe/London",
                        "venue_type": "CLUB", "facilities": {},
                        "layout": {"sections": [{"name": "Floor", "kind": "general_admission", "capacity": 12}]}
                    }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{venue}");
            let floor = venue["sections"][0]["section_id"].clone();
            (
                uuid(&venue["venue_id"]),
                json!({"currency": "EUR", "sections": [], "tiers": [
                    {"section_id": floor, "name": "GENERAL", "price_cents": 2500, "quantity": 12, "max_per_order": 6}
                ]}),
            )
        } else {
            let venue = self.standard_venue(&organizer.token).await;
            (venue.venue_id, standard_pricing(&venue))
        };
        let event_id = self.draft_event(&organizer.token, venue_id, 9).await;
        let (status, body) = self.set_pricing(&organizer.token, event_id, &pricing).await;
        assert_eq!(status, StatusCode::OK, "pricing: {body}");
        let now = chrono::Utc::now();
        let (status, body) = self
            .set_onsale(
                &organizer.token,
                event_id,
                &json!({
                    "sale_starts_at": now + Duration::hours(1),
                    "sale_ends_at": days_from_now(9),
                    "hold_minutes": 8,
                    "max_per_order": room.max_per_order,
                    "waiting_room": {"queue_opens_at": now - Duration::minutes(1),
                                     "admission_per_minute": room.admission_per_minute}
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "onsale: {body}");
        let (status, body) = self.publish(&organizer.token, event_id).await;
        assert_eq!(status, StatusCode::OK, "publish: {body}");
        event_id
    }

    /// Moves the clock past the sale start (an hour and a second).
    fn start_sale(&self) {
        self.clock
            .advance(Duration::hours(1) + Duration::seconds(1));
    }

    async fn join(&self, event_id: Uuid, token: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/queue"),
            Some(token),
            &json!({}),
        )
        .await
    }

    async fn visitor(&self) -> String {
        crate::helpers::visitor_token(&self.client, &self.address).await
    }

    async fn claim(&self, event_id: Uuid, buyer: &str, visitor: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/queue/claim"),
            Some(buyer),
            &json!({"visitor_token": visitor}),
        )
        .await
    }

    async fn place(&self, event_id: Uuid, token: &str) -> (StatusCode, Value) {
        self.get(&format!("/api/v1/events/{event_id}/queue"), Some(token))
            .await
    }

    /// `buyers` join in the pre-queue and the sale starts; answers them in their drawn
    /// order, nobody admitted yet.
    async fn line_up(
        &self,
        organizer: &Account,
        event_id: Uuid,
        buyers: &[Account],
    ) -> Vec<Account> {
        for buyer in buyers {
            self.join(event_id, &buyer.token).await;
        }
        self.start_sale();
        self.control(organizer, event_id, json!({"paused": true}))
            .await;
        self.admit_pass(event_id).await;
        let mut by_place = Vec::new();
        for buyer in buyers {
            let (_, place) = self.place(event_id, &buyer.token).await;
            by_place.push((position(&place), buyer.clone()));
        }
        by_place.sort_by_key(|(p, _)| *p);
        self.control(organizer, event_id, json!({"paused": false}))
            .await;
        by_place.into_iter().map(|(_, b)| b).collect()
    }

    /// An admission pass, now; how many were let in.
    async fn admit_pass(&self, event_id: Uuid) -> u64 {
        self.rooms
            .admit_now(event_id)
            .await
            .unwrap_or_else(|e| panic!("admission pass: {e}"))
    }

    async fn control(&self, organizer: &Account, event_id: Uuid, body: Value) -> Value {
        let (status, stats) = self
            .patch(
                &format!("/api/v1/events/{event_id}/queue"),
                Some(&organizer.token),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        stats
    }

    async fn room_stats(&self, organizer: &Account, event_id: Uuid) -> Value {
        let (status, stats) = self
            .get(
                &format!("/api/v1/events/{event_id}/queue/stats"),
                Some(&organizer.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        stats
    }

    /// The buyer's admission token (they must have been let in).
    async fn admission(&self, event_id: Uuid, token: &str) -> String {
        let (status, place) = self.place(event_id, token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["state"], "admitted", "{place}");
        string(&place["admission_token"])
    }

    /// A hold sent with an admission token (or none).
    async fn admitted_hold(
        &self,
        token: &str,
        admission: Option<&str>,
        event_id: Uuid,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/events/{event_id}/holds")))
            .bearer_auth(token)
            .json(body);
        if let Some(admission) = admission {
            request = request.header("X-Admission-Token", admission);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("hold: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn admitted_checkout(
        &self,
        token: &str,
        admission: Option<&str>,
        hold_id: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(&format!(
                "/api/v1/holds/{}/checkout",
                hold_id.as_str().unwrap_or_default()
            )))
            .bearer_auth(token)
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({"payment_token": "tok_ok"}));
        if let Some(admission) = admission {
            request = request.header("X-Admission-Token", admission);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("checkout: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn general_tier(&self, event_id: Uuid) -> Value {
        let (_, detail) = self.get(&format!("/api/v1/events/{event_id}"), None).await;
        detail["tiers"][0]["tier_id"].clone()
    }
}

fn position(place: &Value) -> u64 {
    place["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position in {place}"))
}

#[actix_web::test]
async fn the_pre_queue_is_shuffled_at_the_start_and_later_arrivals_queue_in_order() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let early = app.quick_buyers(1000).await;
    for buyer in &early {
        let (status, place) = app.join(event_id, &buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["state"], "waiting");
        assert_eq!(place["phase"], "pre_queue");
        assert!(
            place.get("position").is_none(),
            "no place before the draw: {place}"
        );
    }
    // Joining again (another tab) keeps the one place.
    let (_, again) = app.join(event_id, &early[0].token).await;
    assert_eq!(again["waiting"], 1000);

    // The sale starts; admission is paused so the whole order can be read first.
    app.control(&organizer, event_id, json!({"paused": true}))
        .await;
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 0);
    let mut positions = Vec::with_capacity(early.len());
    for buyer in &early {
        let (status, place) = app.place(event_id, &buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["phase"], "line");
        assert_eq!(place["ahead"].as_u64(), Some(position(&place) - 1));
        positions.push(position(&place));
    }
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=1000).collect::<Vec<u64>>(), "a permutation");
    // Spearman's rank correlation between join order and place: about 0 for a fair shuffle
    // (its standard deviation is 1/sqrt(999) = 0.032); 1 for first come, first served.
    let n = early.len() as f64;
    let d2: f64 = positions
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64 + 1.0 - *p as f64).powi(2))
        .sum();
    let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
    assert!(
        rho.abs() < 0.15,
        "join order predicts the place: rho = {rho}"
    );
    let first_tenth_early = positions[..100].iter().filter(|p| **p <= 100).count();
    assert!(
        first_tenth_early < 30,
        "the first 100 to join took {first_tenth_early} of the first 100 places"
    );

    let late = app.quick_buyers(50).await;
    for (i, buyer) in late.iter().enumerate() {
        let (_, place) = app.join(event_id, &buyer.token).await;
        assert_eq!(
            position(&place),
            1001 + i as u64,
            "after the start: first in, first out"
        );
    }

    // Admission follows the places exactly.
    app.control(&organizer, event_id, json!({"paused": false}))
        .await;
    app.clock.advance(Duration::seconds(10));
    let admitted = app.admit_pass(event_id).await;
    assert!(admitted > 0 && admitted < 1000, "admitted {admitted}");
    for (buyer, place) in early.iter().zip(&positions) {
        let (_, now) = app.place(event_id, &buyer.token).await;
        let expected = if *place <= admitted {
            "admitted"
        } else {
            "waiting"
        };
        assert_eq!(
            now["state"], expected,
            "place {place} after {admitted} admitted: {now}"
        );
    }
    let (_, last) = app.place(event_id, &late[49].token).await;
    assert_eq!(position(&last), 1050 - admitted);
}

#[actix_web::test]
async fn admission_follows_the_organizers_rate_pause_and_resume() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(
            &organizer,
            Room {
                admission_per_minute: 60,
                max_per_order: 1,
                tiny: false,
            },
        )
        .await;
    let buyers = app.quick_buyers(200).await;
    for buyer in &buyers {
        app.join(event_id, &buyer.token).await;
    }
    app.start_sale();
    let first = app.admit_pass(event_id).await;
    assert!(first <= 2, "a second into the sale at 1/s: {first}");
    // Thirty seconds at 60 a minute: thirty (one more for the time the test itself takes).
    app.clock.advance(Duration::seconds(30));
    let batch = app.admit_pass(event_id).await;
    assert!((30..=31).contains(&batch), "admitted {batch}");

    let stats = app
        .control(&organizer, event_id, json!({"paused": true}))
        .await;
    assert_eq!(stats["paused"], true);
    app.clock.advance(Duration::seconds(30));
    assert_eq!(app.admit_pass(event_id).await, 0, "nobody while paused");
    let (_, place) = app.place(event_id, &buyers[199].token).await;
    assert!(
        place.get("eta_seconds").is_none(),
        "no estimate while paused: {place}"
    );

    let stats = app
        .control(
            &organizer,
            event_id,
            json!({"paused": false, "admission_per_minute": 120}),
        )
        .await;
    assert_eq!(stats["admission_per_minute"], 120);
    app.clock.advance(Duration::seconds(15));
    let resumed = app.admit_pass(event_id).await;
    assert!((30..=31).contains(&resumed), "15 s at 120/min: {resumed}");

    let total = first + batch + resumed;
    let stats = app.room_stats(&organizer, event_id).await;
    assert_eq!(stats["phase"], "selling");
    assert_eq!(stats["admitted_total"], total);
    assert_eq!(stats["admitted"], total);
    assert_eq!(stats["shopping"], total);
    assert_eq!(stats["waiting"], 200 - total);
    assert!(
        stats["eta_drain_seconds"].as_u64().is_some_and(|s| s > 0),
        "{stats}"
    );
    let (_, place) = app.place(event_id, &buyers[199].token).await;
    assert_eq!(position(&place), 200 - total);
    assert!(
        place["eta_seconds"].as_u64().is_some_and(|s| s > 0),
        "{place}"
    );
    // The settings stick: Postgres has them.
    let (paused, rate): (bool, i32) = sqlx::query_as(
        "SELECT admission_paused, admission_per_minute FROM onsales WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((paused, rate), (false, 120));
}

/// Reads the next `queue` message from a waiting-room socket.
async fn next_message<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no message within 10 s"));
        let Some(Ok(message)) = message else {
            panic!("socket closed or failed: {message:?}");
        };
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        }
    }
}

async fn watch(
    app: &TestApp,
    event_id: Uuid,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/api/v1/events/{event_id}/queue/live?token={token}",
        app.address.replacen("http", "ws", 1)
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connecting: {e}"));
    socket
}

#[actix_web::test]
async fn admission_is_held_back_by_inventory_waits_while_all_is_held_and_sold_out_is_told_at_once()
{
    let app = spawn_app_with(|s| s.admission_window = std::time::Duration::from_secs(60)).await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(&organizer, Room { tiny: true, ..ROOM })
        .await;
    let buyers = app.quick_buyers(10).await;
    let order = app.line_up(&organizer, event_id, &buyers).await;
    app.clock.advance(Duration::seconds(10));

    // 12 tickets, up to 6 each: two shoppers could take everything.
    assert_eq!(app.admit_pass(event_id).await, 2);
    app.clock.advance(Duration::seconds(10));
    assert_eq!(
        app.admit_pass(event_id).await,
        0,
        "held back: 2 shoppers x 6 >= 12 left"
    );
    let tier = app.general_tier(event_id).await;

    // The first buys 6; the second may still take the other 6, so nobody else comes in yet.
    let (first, second) = (&order[0], &order[1]);
    let pass1 = app.admission(event_id, &first.token).await;
    let (status, hold) = app
        .admitted_hold(
            &first.token,
            Some(&pass1),
            event_id,
            &json!({"tier_id": tier, "quantity": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, order1) = app
        .admitted_checkout(&first.token, Some(&pass1), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order1}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0);

    // A waiting buyer watches their place over a socket.
    let watcher = &order[2];
    let mut socket = watch(&app, event_id, &watcher.token).await;
    let hello = next_message(&mut socket).await;
    assert_eq!(hello["type"], "queue");
    assert_eq!(hello["state"], "waiting");
    assert_eq!(hello["position"], 1);

    // The second holds the last 6. Nothing is free, but a hold may still come back: the
    // line waits rather than being sent home.
    let pass2 = app.admission(event_id, &second.token).await;
    let (status, last) = app
        .admitted_hold(
            &second.token,
            Some(&pass2),
            event_id,
            &json!({"tier_id": tier, "quantity": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{last}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0);
    let (_, place) = app.place(event_id, &watcher.token).await;
    assert_eq!(
        place["state"], "waiting",
        "all held is not sold out: {place}"
    );

    // The second's hold ends with their shopping window (a minute): the tickets come back
    // and go to the next in line.
    app.clock.advance(Duration::seconds(61));
    app.eventually("the expired hold's tickets are back", || async {
        let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
        detail["tiers"][0]["available"] == 6
    })
    .await;
    assert_eq!(app.admit_pass(event_id).await, 1);
    loop {
        let news = next_message(&mut socket).await;
        if news["state"] == "admitted" {
            break;
        }
        assert_eq!(news["state"], "waiting", "{news}");
    }

    // The watcher buys the last 6: sold out for good. Everyone still waiting hears it at once.
    let mut other = watch(&app, event_id, &order[3].token).await;
    assert_eq!(next_message(&mut other).await["state"], "waiting");
    let pass3 = app.admission(event_id, &watcher.token).await;
    let (status, hold) = app
        .admitted_hold(
            &watcher.token,
            Some(&pass3),
            event_id,
            &json!({"tier_id": tier, "quantity": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, paid) = app
        .admitted_checkout(&watcher.token, Some(&pass3), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(app.admit_pass(event_id).await, 0);
    loop {
        let news = next_message(&mut other).await;
        if news["state"] == "sold_out" {
            break;
        }
        assert_eq!(news["state"], "waiting", "{news}");
    }
    let (_, place) = app.place(event_id, &order[9].token).await;
    assert_eq!(place["state"], "sold_out");
    let stats = app.room_stats(&organizer, event_id).await;
    assert_eq!(stats["phase"], "sold_out");
    assert_eq!(stats["waiting"], 0, "places are released");
    let newcomer = app.quick_buyers(1).await;
    let (status, joined) = app.join(event_id, &newcomer[0].token).await;
    assert_eq!(
        (status, joined["state"].clone()),
        (StatusCode::OK, json!("sold_out"))
    );
}

#[actix_web::test]
async fn admission_is_pushed_over_the_socket_with_its_token() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyer = app.buyer().await;
    let (_, place) = app.join(event_id, &buyer.token).await;
    assert_eq!(place["phase"], "pre_queue");
    let mut socket = watch(&app, event_id, &buyer.token).await;
    let hello = next_message(&mut socket).await;
    assert_eq!(
        (hello["type"].clone(), hello["phase"].clone()),
        (json!("queue"), json!("pre_queue"))
    );
    app.start_sale();
    app.admit_pass(event_id).await;
    let news = loop {
        let news = next_message(&mut socket).await;
        if news["state"] == "admitted" {
            break news;
        }
    };
    let token = string(&news["admission_token"]);
    let tier = app.general_tier(event_id).await;
    let (status, hold) = app
        .admitted_hold(
            &buyer.token,
            Some(&token),
            event_id,
            &json!({"tier_id": tier, "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");

    // A socket without a valid token is refused before the upgrade.
    let url = format!(
        "{}/api/v1/events/{event_id}/queue/live?token=nonsense",
        app.address.replacen("http", "ws", 1)
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[actix_web::test]
async fn holds_and_checkout_demand_a_valid_admission_for_the_event_and_the_buyer() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let other_event = app.room_event(&organizer, ROOM).await;
    let (alice, bob) = (app.buyer().await, app.buyer().await);
    for buyer in [&alice, &bob] {
        app.join(event_id, &buyer.token).await;
    }
    app.join(other_event, &alice.token).await;
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 2);
    assert_eq!(app.admit_pass(other_event).await, 1);
    let alices = app.admission(event_id, &alice.token).await;
    let bobs = app.admission(event_id, &bob.token).await;
    let alices_other = app.admission(other_event, &alice.token).await;
    let (_, joined) = app.join(event_id, &alice.token).await;
    assert_eq!(
        string(&joined["admission_token"]),
        alices,
        "joining again: the same session"
    );
    let tier = app.general_tier(event_id).await;
    let two = json!({"tier_id": tier, "quantity": 2});

    let (status, body) = app.admitted_hold(&alice.token, None, event_id, &two).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "admission_required",
    );
    let forged =
        boxoffice::queue::admission::AdmissionKeys::new(b"another-secret-another-secret-!!")
            .issue(
                alice.user_id,
                event_id,
                chrono::Utc::now(),
                Duration::minutes(15),
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .0;
    let cases = [
        ("garbage", "invalid"),
        (forged.as_str(), "invalid"),
        (alice.token.as_str(), "invalid"),
        (alices_other.as_str(), "other_event"),
        (bobs.as_str(), "other_buyer"),
    ];
    for (token, reason) in cases {
        let (status, body) = app
            .admitted_hold(&alice.token, Some(token), event_id, &two)
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
        assert_eq!(body["error"]["reason"], reason, "{body}");
    }
    let (status, rows): (StatusCode, i64) = (
        StatusCode::OK,
        sqlx::query_scalar("SELECT count(*) FROM orders")
            .fetch_one(&app.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!((status, rows), (StatusCode::OK, 0));

    // The right token: the hold is placed, and ends no later than the shopping window.
    let (status, hold) = app
        .admitted_hold(&alice.token, Some(&alices), event_id, &two)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (_, place) = app.place(event_id, &alice.token).await;
    assert!(string(&hold["expires_at"]) <= string(&place["expires_at"]));
    let (status, body) = app
        .admitted_checkout(&alice.token, None, &hold["hold_id"])
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "admission_required",
    );
    let (status, body) = app
        .admitted_checkout(&alice.token, Some(&bobs), &hold["hold_id"])
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
    let (status, order) = app
        .admitted_checkout(&alice.token, Some(&alices), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    // The token works for its own event only.
    let other_tier = app.general_tier(other_event).await;
    let (status, _) = app
        .admitted_hold(
            &alice.token,
            Some(&alices_other),
            other_event,
            &json!({"tier_id": other_tier, "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Once the shopping window closes, the token is refused.
    app.clock.advance(Duration::minutes(16));
    let (status, body) = app
        .admitted_hold(&bob.token, Some(&bobs), event_id, &two)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
    assert_eq!(body["error"]["reason"], "expired");
}

#[actix_web::test]
async fn a_visitor_queues_anonymously_and_claims_the_admission_after_signing_in() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let visitor_token = app.visitor().await;
    let (status, place) = app.join(event_id, &visitor_token).await;
    assert_eq!(
        (status, place["state"].clone()),
        (StatusCode::OK, json!("waiting"))
    );
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 1);
    let visitors_pass = app.admission(event_id, &visitor_token).await;
    let buyer = app.buyer().await;
    let tier = app.general_tier(event_id).await;
    let one = json!({"tier_id": tier, "quantity": 1});
    let (status, body) = app
        .admitted_hold(&buyer.token, Some(&visitors_pass), event_id, &one)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admission_invalid");
    assert_eq!(body["error"]["reason"], "other_buyer");

    // Signing in and claiming moves the admission to the buyer.
    let (status, body) = app.claim(event_id, &buyer.token, "not-a-token").await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, claimed) = app.claim(event_id, &buyer.token, &visitor_token).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["state"], "admitted");
    let claimed_token = string(&claimed["admission_token"]);
    let (status, hold) = app
        .admitted_hold(&buyer.token, Some(&claimed_token), event_id, &one)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, body) = app.place(event_id, &visitor_token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");

    // A buyer who queued on their own keeps their own admission: claiming a visitor who
    // was let in earlier does not improve it, and that visitor's admission is given up.
    let (early, own_buyer) = (app.visitor().await, app.buyer().await);
    app.join(event_id, &early).await;
    app.clock.advance(Duration::seconds(2));
    assert_eq!(app.admit_pass(event_id).await, 1);
    app.join(event_id, &own_buyer.token).await;
    app.clock.advance(Duration::seconds(2));
    assert_eq!(app.admit_pass(event_id).await, 1);
    let own = app.admission(event_id, &own_buyer.token).await;
    let (status, kept) = app.claim(event_id, &own_buyer.token, &early).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(
        kept["admitted_at"],
        app.place(event_id, &own_buyer.token).await.1["admitted_at"]
    );
    let (status, hold) = app
        .admitted_hold(&own_buyer.token, Some(&own), event_id, &one)
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "still their own session: {hold}"
    );
    let (status, body) = app.place(event_id, &early).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
}

#[actix_web::test]
async fn a_buyer_with_many_visitor_tokens_still_gets_one_draw() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyer = app.buyer().await;
    let mut tickets = Vec::new();
    for _ in 0..5 {
        let visitor = app.visitor().await;
        app.join(event_id, &visitor).await;
        tickets.push(visitor);
    }
    let others = app.quick_buyers(40).await;
    for other in &others {
        app.join(event_id, &other.token).await;
    }

    // Before the draw, the first claim moves a place; every further identity is given up.
    let (status, first) = app.claim(event_id, &buyer.token, &tickets[0]).await;
    assert_eq!(
        (status, first["phase"].clone()),
        (StatusCode::OK, json!("pre_queue"))
    );
    for extra in &tickets[1..] {
        let (status, kept) = app.claim(event_id, &buyer.token, extra).await;
        assert_eq!(status, StatusCode::OK, "{kept}");
        let (status, body) = app.place(event_id, extra).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    }
    // The draw, with admission paused so that everyone stays in the line.
    app.control(&organizer, event_id, json!({"paused": true}))
        .await;
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 0);
    let (status, place) = app.place(event_id, &buyer.token).await;
    assert_eq!(
        (status, place["phase"].clone()),
        (StatusCode::OK, json!("line"))
    );
    assert_eq!(
        place["waiting"],
        json!(41),
        "one place for the buyer, 40 for the others"
    );

    // After the draw, a waiting visitor cannot be claimed: that would let a buyer pick the
    // best of several draws. Once let in, it can (by a buyer with nothing yet).
    let late_visitor = app.visitor().await;
    app.join(event_id, &late_visitor).await;
    let newcomer = app.buyer().await;
    let (status, body) = app.claim(event_id, &newcomer.token, &late_visitor).await;
    assert_error(status, &body, StatusCode::CONFLICT, "claim_too_late");
    let (status, body) = app.place(event_id, &late_visitor).await;
    assert_eq!(status, StatusCode::OK, "the visitor keeps waiting: {body}");
}

#[actix_web::test]
async fn places_and_admissions_survive_a_restart_with_redis() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let with_redis = |s: &mut boxoffice::config::Settings| {
        s.redis_url = Some(redis_url());
        s.redis_prefix = prefix.clone();
    };
    let first = spawn_app_with(with_redis).await;
    let organizer = first.organizer().await;
    let event_id = first.room_event(&organizer, ROOM).await;
    let buyers = first.quick_buyers(30).await;
    for buyer in &buyers {
        first.join(event_id, &buyer.token).await;
    }
    first.start_sale();
    first
        .control(&organizer, event_id, json!({"paused": true}))
        .await;
    first.admit_pass(event_id).await;
    first
        .control(&organizer, event_id, json!({"paused": false}))
        .await;
    first.clock.advance(Duration::milliseconds(500));
    let admitted = first.admit_pass(event_id).await;
    assert!(admitted > 0 && admitted < 30, "{admitted}");
    // Paused (in Postgres too), so the new node admits nobody before we compare.
    first
        .control(&organizer, event_id, json!({"paused": true}))
        .await;
    let mut before = Vec::new();
    for buyer in &buyers {
        let (_, place) = first.place(event_id, &buyer.token).await;
        before.push(place);
    }

    // Everything reached Redis (it is written behind), then a new node starts from it.
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let line = format!("{prefix}:queue:{event_id}:line");
    let admissions = format!("{prefix}:queue:{event_id}:admitted");
    first
        .eventually("the line is saved", || {
            let mut conn = conn.clone();
            let (line, admissions) = (line.clone(), admissions.clone());
            async move {
                let waiting: u64 = redis::cmd("ZCARD")
                    .arg(&line)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(0);
                let let_in: u64 = redis::cmd("HLEN")
                    .arg(&admissions)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(0);
                waiting == 30 - admitted && let_in == admitted
            }
        })
        .await;
    // The first node stops (giving its on-sales up); another takes over from Redis.
    first.stop_owning().await;
    let second = spawn_app_sharing(&first, with_redis).await;
    second
        .clock
        .advance(Duration::hours(1) + Duration::seconds(2));
    for (buyer, earlier) in buyers.iter().zip(&before) {
        let (status, place) = second.place(event_id, &buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["state"], earlier["state"]);
        assert_eq!(
            place["position"], earlier["position"],
            "{place} vs {earlier}"
        );
        assert_eq!(
            place["admission_token"], earlier["admission_token"],
            "the same session"
        );
    }
    let newcomer = second.quick_buyers(1).await;
    let (_, place) = second.join(event_id, &newcomer[0].token).await;
    assert_eq!(
        position(&place),
        30 - admitted + 1,
        "new arrivals still go to the back"
    );
    let _: () = redis::cmd("DEL")
        .arg(&line)
        .arg(&admissions)
        .arg(format!("{prefix}:queue:{event_id}:started"))
        .query_async(&mut conn)
        .await
        .unwrap_or(());
}

#[actix_web::test]
async fn places_nobody_asks_about_are_dropped() {
    let app = spawn_app_with(|s| s.queue_abandon_after = std::time::Duration::from_secs(120)).await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyers = app.quick_buyers(3).await;
    for buyer in &buyers {
        app.join(event_id, &buyer.token).await;
    }
    app.start_sale();
    for buyer in &buyers {
        app.place(event_id, &buyer.token).await;
    }
    app.control(&organizer, event_id, json!({"paused": true}))
        .await;
    app.admit_pass(event_id).await;
    app.clock.advance(Duration::seconds(100));
    app.place(event_id, &buyers[2].token).await;
    app.clock.advance(Duration::seconds(30));
    app.admit_pass(event_id).await;
    let stats = app.room_stats(&organizer, event_id).await;
    assert_eq!(stats["waiting"], 1, "{stats}");
    let (_, place) = app.place(event_id, &buyers[2].token).await;
    assert_eq!(position(&place), 1);
    let (status, body) = app.place(event_id, &buyers[0].token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
}

#[actix_web::test]
async fn join_status_and_holds_are_rate_limited_per_buyer_and_per_address() {
    let app = spawn_app_with(|s| {
        s.buyer_rate_per_minute = 5;
        s.ip_rate_per_minute = 12;
    })
    .await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyer = app.buyer().await;
    for _ in 0..5 {
        let (status, body) = app.place(event_id, &buyer.token).await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }
    let response = app
        .client
        .post(app.url(&format!("/api/v1/events/{event_id}/queue")))
        .bearer_auth(&buyer.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(wait >= 1, "Retry-After: {wait}");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, body) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": Uuid::new_v4(), "quantity": 1}),
        )
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Other buyers from the same address share its allowance: 12 a minute, of which the
    // refused join and hold above counted too (7 used).
    let others = app.quick_buyers(7).await;
    let mut limited = 0;
    for other in &others {
        let (status, _) = app.join(event_id, &other.token).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert_eq!(
        limited, 2,
        "the address's 13th and 14th requests are refused"
    );
}

#[actix_web::test]
async fn odd_waiting_room_requests_get_clear_answers() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let buyer = app.buyer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let (_, plain) = app.on_sale_event(&organizer.token).await;

    let (status, body) = app.join(Uuid::new_v4(), &buyer.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.join(plain, &buyer.token).await;
    assert_error(status, &body, StatusCode::CONFLICT, "no_waiting_room");
    let (status, body) = app.place(event_id, &buyer.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{event_id}/queue"),
            None,
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app.join(event_id, "not-a-token").await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // The waiting room opens at its time, not before.
    let venue = app.standard_venue(&organizer.token).await;
    let later = app.draft_event(&organizer.token, venue.venue_id, 9).await;
    app.set_pricing(&organizer.token, later, &standard_pricing(&venue))
        .await;
    let now = chrono::Utc::now();
    let (status, body) = app
        .set_onsale(
            &organizer.token,
            later,
            &json!({
                "sale_starts_at": now + Duration::hours(3), "sale_ends_at": days_from_now(9),
                "hold_minutes": 8, "max_per_order": 4,
                "waiting_room": {"queue_opens_at": now + Duration::hours(2), "admission_per_minute": 100}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.join(later, &buyer.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    app.publish(&organizer.token, later).await;
    let (status, body) = app.join(later, &buyer.token).await;
    assert_error(status, &body, StatusCode::CONFLICT, "queue_not_open");
    assert!(body["error"]["queue_opens_at"].is_string(), "{body}");

    // Organizer controls: only the event's organizer, and only sensible values.
    let path = format!("/api/v1/events/{event_id}/queue");
    // An empty change changes nothing and shows the figures.
    let (status, answer) = app.patch(&path, Some(&organizer.token), &json!({})).await;
    assert_eq!(
        (status, answer["paused"].clone()),
        (StatusCode::OK, json!(false)),
        "{answer}"
    );
    for (body, field) in [
        (json!({"admission_per_minute": 0}), "admission_per_minute"),
        (
            json!({"admission_per_minute": 10_000_000_000i64}),
            "admission_per_minute",
        ),
    ] {
        let (status, answer) = app.patch(&path, Some(&organizer.token), &body).await;
        assert_error(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(answer["error"]["fields"][field].is_string(), "{answer}");
    }
    let (status, answer) = app
        .patch(&path, Some(&organizer.token), &json!({"paused": "yes"}))
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
    let (status, answer) = app
        .patch(&path, Some(&buyer.token), &json!({"paused": true}))
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let rival = app.organizer().await;
    let (status, answer) = app.get(&format!("{path}/stats"), Some(&rival.token)).await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = app
        .patch(
            &format!("/api/v1/events/{plain}/queue"),
            Some(&organizer.token),
            &json!({"paused": true}),
        )
        .await;
    assert_error(status, &answer, StatusCode::CONFLICT, "no_waiting_room");

    // A cancelled event's room is closed.
    app.join(event_id, &buyer.token).await;
    let (status, _) = app.cancel(&organizer.token, event_id).await;
    assert_eq!(status, StatusCode::OK);
    app.eventually("the room is closed", || async {
        let (_, place) = app.place(event_id, &buyer.token).await;
        place["state"] == "closed"
    })
    .await;
}

#[actix_web::test]
async fn leaving_frees_the_place_or_the_shopping_slot_for_the_next_buyer() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(&organizer, Room { tiny: true, ..ROOM })
        .await;
    let buyers = app.quick_buyers(4).await;
    let order = app.line_up(&organizer, event_id, &buyers).await;
    app.clock.advance(Duration::seconds(10));
    // 12 tickets, up to 6 each: two shoppers, then the room holds back.
    assert_eq!(app.admit_pass(event_id).await, 2);
    app.clock.advance(Duration::seconds(10));
    assert_eq!(app.admit_pass(event_id).await, 0);

    // A shopper leaves without buying: their token stops working, and the next buyer in
    // line is let in at the next pass.
    let leaver = &order[0];
    let pass = app.admission(event_id, &leaver.token).await;
    let queue = format!("/api/v1/events/{event_id}/queue");
    let (status, body) = app
        .call(Method::DELETE, &queue, Some(&leaver.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let tier = app.general_tier(event_id).await;
    let (status, body) = app
        .admitted_hold(
            &leaver.token,
            Some(&pass),
            event_id,
            &json!({"tier_id": tier, "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.place(event_id, &leaver.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    app.clock.advance(Duration::seconds(10));
    assert_eq!(
        app.admit_pass(event_id).await,
        1,
        "the freed slot goes to the next buyer"
    );
    let (_, next) = app.place(event_id, &order[2].token).await;
    assert_eq!(next["state"], "admitted", "{next}");

    // A waiting buyer leaves: nobody is left behind them, and leaving twice is refused.
    let (_, before) = app.place(event_id, &order[3].token).await;
    assert_eq!(before["position"], 1, "{before}");
    let (status, _) = app
        .call(Method::DELETE, &queue, Some(&order[3].token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(Method::DELETE, &queue, Some(&order[3].token), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    let stats = app
        .rooms
        .stats(event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((stats.waiting, stats.shopping), (0, 2), "{stats:?}");
    let (status, body) = app.call(Method::DELETE, &queue, None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[actix_web::test]
async fn a_shopper_counts_at_what_they_may_still_buy_until_their_session_ends() {
    let app = spawn_app_with(|s| s.admission_window = std::time::Duration::from_secs(60)).await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(&organizer, Room { tiny: true, ..ROOM })
        .await;
    let buyers = app.quick_buyers(4).await;
    let order = app.line_up(&organizer, event_id, &buyers).await;
    app.clock.advance(Duration::seconds(10));
    // 12 tickets, up to 6 a buyer (max_per_buyer defaults to max_per_order): two shoppers
    // could take everything.
    assert_eq!(app.admit_pass(event_id).await, 2);
    app.clock.advance(Duration::seconds(10));
    assert_eq!(app.admit_pass(event_id).await, 0);

    // The first holds 2: 10 left, and the two shoppers may still take 4 and 6 of them.
    let first = &order[0];
    let pass = app.admission(event_id, &first.token).await;
    let tier = app.general_tier(event_id).await;
    let (status, hold) = app
        .admitted_hold(
            &first.token,
            Some(&pass),
            event_id,
            &json!({"tier_id": tier, "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0, "10 left, 4 + 6 promised");

    // Buying does not end the session: the first may buy 4 more in another order, so
    // the room still keeps them for it.
    let (status, paid) = app
        .admitted_checkout(&first.token, Some(&pass), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(
        app.admit_pass(event_id).await,
        0,
        "10 left, still 4 + 6 promised after the purchase"
    );

    // Once the first is done (leaves the room), only the second's 6 are promised: room
    // for one more shopper.
    let queue = format!("/api/v1/events/{event_id}/queue");
    let (status, body) = app
        .call(Method::DELETE, &queue, Some(&first.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 1, "10 left - 6 promised");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0, "10 left, 6 + 6 promised");
}

#[actix_web::test]
async fn moving_the_sale_keeps_the_places_and_the_sockets_of_the_line() {
    // Sockets are told only what the room pushes: no periodic re-read to hide a lost watcher.
    let app = spawn_app_with(|s| s.queue_push_every = std::time::Duration::from_secs(600)).await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let (early, late) = (app.buyer().await, app.buyer().await);
    for buyer in [&early, &late] {
        let (status, place) = app.join(event_id, &buyer.token).await;
        assert_eq!(
            (status, place["phase"].clone()),
            (StatusCode::OK, json!("pre_queue")),
            "{place}"
        );
    }
    let mut socket = watch(&app, event_id, &early.token).await;
    assert_eq!(next_message(&mut socket).await["phase"], "pre_queue");

    // The organizer brings the sale forward by half an hour while people wait.
    let now = chrono::Utc::now();
    let starts = now + Duration::minutes(30);
    let (status, body) = app
        .put(
            &format!("/api/v1/events/{event_id}/onsale"),
            Some(&organizer.token),
            &json!({
                "sale_starts_at": starts, "sale_ends_at": days_from_now(9), "hold_minutes": 8,
                "max_per_order": ROOM.max_per_order,
                "waiting_room": {"queue_opens_at": now - Duration::minutes(1),
                                 "admission_per_minute": ROOM.admission_per_minute}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Both places are still there, under the new start.
    for buyer in [&early, &late] {
        let (status, place) = app.place(event_id, &buyer.token).await;
        assert_eq!(
            (status, place["phase"].clone()),
            (StatusCode::OK, json!("pre_queue")),
            "{place}"
        );
        let shown = chrono::DateTime::parse_from_rfc3339(&string(&place["sale_starts_at"]))
            .unwrap_or_else(|e| panic!("{e}: {place}"));
        assert!(
            (shown.timestamp() - starts.timestamp()).abs() <= 1,
            "{place}"
        );
    }
    let stats = app
        .rooms
        .stats(event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.waiting, 2, "{stats:?}");

    // The socket opened before the move hears of the admission the moment it happens.
    app.start_sale();
    app.admit_pass(event_id).await;
    let news = loop {
        let news = next_message(&mut socket).await;
        if news["state"] == "admitted" {
            break news;
        }
    };
    assert!(news["admission_token"].is_string(), "{news}");
}
