//! `spawn_app()`: the server on a free port against a database of its own, dropped when the
//! test ends; and one helper per endpoint so tests read as the steps a person takes.

use std::sync::Once;

use std::sync::Arc;

use async_trait::async_trait;
use boxoffice::clock::ManualClock;
use boxoffice::config::Settings;
use boxoffice::payments::{
    Authorization, AuthorizeRequest, PaymentError, PaymentGateway, SimulatedGateway,
};
use boxoffice::startup::{Application, Dependencies};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

static TRACING: Once = Once::new();
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// The server's clock: tests move it forward instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The simulated card processor the server pays with.
    pub gateway: Arc<SimulatedGateway>,
    /// The server's waiting rooms: tests run admission passes instead of waiting for ticks.
    pub rooms: Arc<boxoffice::queue::WaitingRooms>,
    /// The server's engine: tests read live-map figures from it.
    pub engine: Arc<boxoffice::actors::Engine>,
    /// The server's view of the nodes: tests make it give its on-sales up.
    pub cluster: Arc<boxoffice::cluster::Cluster>,
    db_name: String,
    owns_database: bool,
    server_url: String,
}

/// A signed-in account.
#[derive(Clone, Debug)]
pub struct Account {
    pub user_id: Uuid,
    pub token: String,
    pub email: String,
}

/// A venue made by [`TestApp::standard_venue`]: two seated sections and a standing floor.
#[derive(Clone, Debug)]
pub struct VenueFixture {
    pub venue_id: Uuid,
    pub seated: Vec<Uuid>,
    pub floor: Uuid,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the server with settings adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_paying_through(configure, None).await
}

/// Spawns the server paying through the given gateway, which wraps the given simulated
/// processor (the one `TestApp::gateway` shows).
pub async fn spawn_app_paying_through(
    configure: impl FnOnce(&mut Settings),
    gateway: Option<(Arc<SimulatedGateway>, Arc<dyn PaymentGateway>)>,
) -> TestApp {
    spawn(configure, gateway, None).await
}

/// A second server on the same database as `other` (another node, or the same node after
/// a restart); the database stays `other`'s to drop.
pub async fn spawn_app_sharing(other: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(configure, None, Some(other.db_name.clone())).await
}

/// Redis for the tests that use it: `REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn spawn(
    configure: impl FnOnce(&mut Settings),
    gateway: Option<(Arc<SimulatedGateway>, Arc<dyn PaymentGateway>)>,
    shared_database: Option<String>,
) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            boxoffice::telemetry::init(boxoffice::config::LogFormat::Pretty);
        }
    });
    let base = Settings::from_lookup(|name| match name {
        "BOXOFFICE_BIND" => Some("127.0.0.1:0".into()),
        "BOXOFFICE_WORKERS" => Some("2".into()),
        "BOXOFFICE_DB_MAX_CONNECTIONS" => Some("5".into()),
        "BOXOFFICE_AUTH_RATE_PER_MINUTE" => Some("100000".into()),
        "BOXOFFICE_IP_RATE_PER_MINUTE" | "BOXOFFICE_BUYER_RATE_PER_MINUTE" => {
            Some("100000000".into())
        }
        // Waiting rooms admit when a test says so (`admit_pass`), not on their own clock,
        // and keep places however far a test moves time.
        "BOXOFFICE_QUEUE_TICK_MS" => Some("60000".into()),
        "BOXOFFICE_QUEUE_ABANDON_SECONDS" => Some("86400".into()),
        "BOXOFFICE_JWT_SECRET" => Some(TEST_SECRET.into()),
        // Proofs of work a debug build solves in a few milliseconds.
        "BOXOFFICE_POW_MAX_NUMBER" => Some("2000".into()),
        "BOXOFFICE_WEB_DIR" => Some(concat!(env!("CARGO_MANIFEST_DIR"), "/web").into()),
        other => std::env::var(other).ok(),
    })
    .unwrap_or_else(|e| panic!("test settings: {e}"));
    let (db_name, owns_database) = match shared_database {
        Some(name) => (name, false),
        None => (format!("boxoffice_test_{}", Uuid::new_v4().simple()), true),
    };
    let mut settings = base.with_database(&db_name);
    // Redis only where a test asks for it (and then under a prefix of its own).
    settings.redis_url = None;
    configure(&mut settings);
    let server_url = settings.clone().with_database("postgres").database_url;

    let clock = Arc::new(ManualClock::new());
    let (simulated, gateway) = match gateway {
        Some(pair) => pair,
        None => {
            let simulated = Arc::new(SimulatedGateway::new(settings.payment_latency));
            (simulated.clone(), simulated as Arc<dyn PaymentGateway>)
        }
    };
    let dependencies = Dependencies {
        clock: clock.clone(),
        gateway,
        queue_seed: Some(7),
    };
    let application = Application::build_with(settings, dependencies)
        .await
        .unwrap_or_else(|e| panic!("building the app: {e:#}"));
    let port = application.port();
    let pool = application.pool().clone();
    let rooms = application.rooms().clone();
    let engine = application.engine().clone();
    let cluster = application.cluster().clone();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        pool,
        clock,
        gateway: simulated,
        rooms,
        engine,
        cluster,
        db_name,
        owns_database,
        server_url,
    }
}

impl Drop for TestApp {
    /// Drops the test's database, closing whatever connections are still open on it.
    fn drop(&mut self) {
        if !self.owns_database {
            return;
        }
        let url = self.server_url.clone();
        let name = self.db_name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(&url).await.ok()?;
                conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.db_name);
        }
    }
}

/// Solves a challenge the server handed out (an `X-Proof-Of-Work` payload), as a
/// browser's worker would.
pub fn solve(challenge: &Value) -> String {
    let challenge: boxoffice::pow::ChallengeView = serde_json::from_value(challenge.clone())
        .unwrap_or_else(|e| panic!("not a challenge: {e}: {challenge}"));
    boxoffice::pow::solve(&challenge).unwrap_or_else(|| panic!("no solution to {challenge:?}"))
}

/// A visitor token from the server at `base`: its challenge solved, then the token minted.
pub async fn visitor_token(client: &reqwest::Client, base: &str) -> String {
    let challenge: Value = client
        .get(format!("{base}/api/v1/visitors/challenge"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("visitor challenge: {e}"))
        .json()
        .await
        .unwrap_or(Value::Null);
    let response = client
        .post(format!("{base}/api/v1/visitors"))
        .header("X-Proof-Of-Work", solve(&challenge))
        .send()
        .await
        .unwrap_or_else(|e| panic!("minting a visitor: {e}"));
    assert_eq!(response.status(), StatusCode::CREATED);
    let visitor: Value = response.json().await.unwrap_or(Value::Null);
    string(&visitor["token"])
}

/// A time `days` from now, rounded to the hour so that tests read well in logs.
pub fn days_from_now(days: i64) -> DateTime<Utc> {
    let t = Utc::now() + Duration::days(days);
    t - Duration::seconds(t.timestamp() % 3600)
}

impl TestApp {
    /// This node stops owning on-sales, as it does when it shuts down: it gives its leases
    /// back at once and takes none again (its HTTP server still answers, forwarding).
    pub async fn stop_owning(&self) {
        self.cluster.shut_down().await;
    }

    /// The URL of this test's database.
    pub fn database_url(&self) -> String {
        let server = self.server_url.trim_end_matches("/postgres");
        format!("{server}/{}", self.db_name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request, with a JSON body when given; returns the status and the JSON answer
    /// (`Value::Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("sending to {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn patch(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    /// Sends a raw body with a content type, for malformed-input tests.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("sending to {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `n` buyer accounts made straight in the database, with tokens signed by the test key:
    /// for races with many buyers, where hashing each password would dominate the test.
    pub async fn quick_buyers(&self, n: usize) -> Vec<Account> {
        let keys = boxoffice::security::TokenKeys::new(
            TEST_SECRET.as_bytes(),
            std::time::Duration::from_secs(86_400),
        );
        let mut accounts = Vec::with_capacity(n);
        for _ in 0..n {
            let user_id = Uuid::new_v4();
            let email = format!("buyer-{}@example.com", user_id.simple());
            sqlx::query("INSERT INTO users (user_id, email, password_hash, name, role) VALUES ($1, $2, 'x', 'Racer', 'buyer')")
                .bind(user_id)
                .bind(&email)
                .execute(&self.pool)
                .await
                .unwrap_or_else(|e| panic!("inserting a buyer: {e}"));
            let token = keys
                .issue(user_id, boxoffice::domain::account::Role::Buyer)
                .unwrap_or_default();
            accounts.push(Account {
                user_id,
                token,
                email,
            });
        }
        accounts
    }

    pub async fn signup(&self, role: &str) -> Account {
        let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
        let (status, body) = self
            .post("/api/v1/auth/signup", None, &json!({"email": email, "password": "correct horse battery", "name": "Test Person", "role": role}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup: {body}");
        Account {
            user_id: uuid(&body["user_id"]),
            token: string(&body["token"]),
            email,
        }
    }

    pub async fn organizer(&self) -> Account {
        self.signup("organizer").await
    }

    pub async fn buyer(&self) -> Account {
        self.signup("buyer").await
    }

    pub async fn create_venue(&self, token: &str, body: &Value) -> (StatusCode, Value) {
        self.post("/api/v1/venues", Some(token), body).await
    }

    /// A venue with sections "A" (3 rows × 4) and "B" (2 rows × 5), and a floor of 100.
    pub async fn standard_venue(&self, token: &str) -> VenueFixture {
        let (status, body) = self
            .create_venue(token, &venue_body("Test Hall", "Lyon"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "venue: {body}");
        let sections = body["sections"].as_array().cloned().unwrap_or_default();
        let id_of = |name: &str| {
            sections
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| uuid(&s["section_id"]))
                .unwrap_or_else(|| panic!("no section {name}"))
        };
        VenueFixture {
            venue_id: uuid(&body["venue_id"]),
            seated: vec![id_of("A"), id_of("B")],
            floor: id_of("Floor"),
        }
    }

    pub async fn create_event(&self, token: &str, body: &Value) -> (StatusCode, Value) {
        self.post("/api/v1/events", Some(token), body).await
    }

    /// A draft event at the venue, `days` from now, three hours long.
    pub async fn draft_event(&self, token: &str, venue_id: Uuid, days: i64) -> Uuid {
        let (status, body) = self
            .create_event(token, &event_body(venue_id, "Test Night", days))
            .await;
        assert_eq!(status, StatusCode::CREATED, "event: {body}");
        uuid(&body["event_id"])
    }

    pub async fn set_pricing(
        &self,
        token: &str,
        event_id: Uuid,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.put(
            &format!("/api/v1/events/{event_id}/pricing"),
            Some(token),
            body,
        )
        .await
    }

    pub async fn set_onsale(
        &self,
        token: &str,
        event_id: Uuid,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.put(
            &format!("/api/v1/events/{event_id}/onsale"),
            Some(token),
            body,
        )
        .await
    }

    pub async fn publish(&self, token: &str, event_id: Uuid) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/publish"),
            Some(token),
            &json!({}),
        )
        .await
    }

    pub async fn cancel(&self, token: &str, event_id: Uuid) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/cancel"),
            Some(token),
            &json!({}),
        )
        .await
    }

    /// Prices every section of a standard venue and schedules an on-sale that opens in an
    /// hour; the event stays a draft.
    pub async fn ready_event(&self, token: &str, venue: &VenueFixture, days: i64) -> Uuid {
        let event_id = self.draft_event(token, venue.venue_id, days).await;
        let (status, body) = self
            .set_pricing(token, event_id, &standard_pricing(venue))
            .await;
        assert_eq!(status, StatusCode::OK, "pricing: {body}");
        let (status, body) = self
            .set_onsale(token, event_id, &onsale_body(1, days))
            .await;
        assert_eq!(status, StatusCode::OK, "onsale: {body}");
        event_id
    }

    /// A published event at a standard venue of its own.
    pub async fn published_event(&self, token: &str, days: i64) -> (VenueFixture, Uuid) {
        let venue = self.standard_venue(token).await;
        let event_id = self.ready_event(token, &venue, days).await;
        let (status, body) = self.publish(token, event_id).await;
        assert_eq!(status, StatusCode::OK, "publish: {body}");
        (venue, event_id)
    }
}

impl TestApp {
    /// A published event at a standard venue of its own whose sale opened an hour ago.
    pub async fn on_sale_event(&self, token: &str) -> (VenueFixture, Uuid) {
        let venue = self.standard_venue(token).await;
        let event_id = self.draft_event(token, venue.venue_id, 9).await;
        let (status, body) = self
            .set_pricing(token, event_id, &standard_pricing(&venue))
            .await;
        assert_eq!(status, StatusCode::OK, "pricing: {body}");
        let (status, body) = self.set_onsale(token, event_id, &open_onsale_body(9)).await;
        assert_eq!(status, StatusCode::OK, "onsale: {body}");
        let (status, body) = self.publish(token, event_id).await;
        assert_eq!(status, StatusCode::OK, "publish: {body}");
        (venue, event_id)
    }

    pub async fn hold(&self, token: &str, event_id: Uuid, body: &Value) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/holds"),
            Some(token),
            body,
        )
        .await
    }

    pub async fn checkout(
        &self,
        token: &str,
        hold_id: &Value,
        key: &str,
        payment_token: &str,
    ) -> (StatusCode, Value) {
        let hold_id = hold_id.as_str().unwrap_or_default();
        let response = self
            .client
            .post(self.url(&format!("/api/v1/holds/{hold_id}/checkout")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"payment_token": payment_token}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("checkout: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Seat ids of a section, in seat-map order, from the public seat map.
    pub async fn seat_ids(&self, event_id: Uuid, section: usize) -> Vec<Uuid> {
        let (status, map) = self
            .get(&format!("/api/v1/events/{event_id}/seatmap"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{map}");
        map["sections"][section]["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .flat_map(|r| r["seats"].as_array().cloned().unwrap_or_default())
                    .map(|s| uuid(&s["seat_id"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Seat states of a section from the public seat map, by seat id.
    pub async fn seat_states(&self, event_id: Uuid) -> std::collections::HashMap<Uuid, String> {
        let (_, map) = self
            .get(&format!("/api/v1/events/{event_id}/seatmap"), None)
            .await;
        let mut states = std::collections::HashMap::new();
        for section in map["sections"].as_array().cloned().unwrap_or_default() {
            for row in section["rows"].as_array().cloned().unwrap_or_default() {
                for seat in row["seats"].as_array().cloned().unwrap_or_default() {
                    states.insert(
                        uuid(&seat["seat_id"]),
                        seat["state"].as_str().unwrap_or_default().to_owned(),
                    );
                }
            }
        }
        states
    }

    /// Polls until `check` holds, for at most five seconds (the engine sweeps deadlines
    /// every 200 ms); panics with `what` otherwise.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out waiting until {what}");
    }
}

/// An on-sale that opened an hour ago and ends when the event `event_days` from now starts;
/// holds last 8 minutes; no waiting room.
pub fn open_onsale_body(event_days: i64) -> Value {
    let now = Utc::now();
    json!({
        "sale_starts_at": now - Duration::hours(1),
        "sale_ends_at": days_from_now(event_days),
        "hold_minutes": 8,
        "max_per_order": 6,
        // Tests buy many tickets as one buyer; the per-buyer limit has tests of its own.
        "max_per_buyer": 100
    })
}

/// A payment gateway that stops every authorization until the test lets it through, so a
/// test can act while a payment is in flight.
pub struct GatedGateway {
    pub inner: Arc<SimulatedGateway>,
    pub entered: Notify,
    gate: Semaphore,
}

impl GatedGateway {
    pub fn new(inner: Arc<SimulatedGateway>) -> GatedGateway {
        GatedGateway {
            inner,
            entered: Notify::new(),
            gate: Semaphore::new(0),
        }
    }

    /// Lets `n` waiting (or future) authorizations through.
    pub fn open(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

#[async_trait]
impl PaymentGateway for GatedGateway {
    fn name(&self) -> &'static str {
        "gated"
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, PaymentError> {
        self.entered.notify_one();
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| PaymentError::Failed("gate closed".into()))?;
        permit.forget();
        self.inner.authorize(request).await
    }

    async fn capture(&self, authorization_id: &str, key: &str) -> Result<(), PaymentError> {
        self.inner.capture(authorization_id, key).await
    }

    async fn void(&self, key: &str) -> Result<(), PaymentError> {
        self.inner.void(key).await
    }

    async fn refund(
        &self,
        authorization_id: &str,
        amount_cents: i64,
        key: &str,
    ) -> Result<(), PaymentError> {
        self.inner.refund(authorization_id, amount_cents, key).await
    }
}

pub fn venue_body(name: &str, city: &str) -> Value {
    json!({
        "name": name, "address": "1 Rue de Test", "city": city, "latitude": 45.76, "longitude": 4.83,
        "timezone": "Europe/Paris", "venue_type": "THEATER",
        "facilities": {"parking": true, "catering": false, "av_equipment": true},
        "layout": {"sections": [
            {"name": "A", "kind": "seated", "rows": 3, "seats_per_row": 4},
            {"name": "B", "kind": "seated", "rows": 2, "seats_per_row": 5, "row_labels": "numbers"},
            {"name": "Floor", "kind": "general_admission", "capacity": 100}
        ]}
    })
}

pub fn event_body(venue_id: Uuid, title: &str, days: i64) -> Value {
    let start = days_from_now(days);
    json!({
        "venue_id": venue_id, "title": title, "description": "A night of tests", "category": "CONCERT",
        "performers": ["The Asserts"], "start_time": start, "end_time": start + Duration::hours(3),
        "doors_open": start - Duration::hours(1)
    })
}

pub fn standard_pricing(venue: &VenueFixture) -> Value {
    json!({
        "currency": "EUR",
        "sections": [
            {"section_id": venue.seated[0], "price_cents": 8000},
            {"section_id": venue.seated[1], "price_cents": 5000}
        ],
        "tiers": [
            {"section_id": venue.floor, "name": "GENERAL", "price_cents": 4000, "quantity": 80, "max_per_order": 6},
            {"section_id": venue.floor, "name": "VIP", "price_cents": 12000, "quantity": 20, "max_per_order": 2}
        ]
    })
}

/// An on-sale opening `opens_in_hours` from now (negative: already open) and ending when the
/// event `event_days` from now starts.
pub fn onsale_body(opens_in_hours: i64, event_days: i64) -> Value {
    let now = Utc::now();
    json!({
        "sale_starts_at": now + Duration::hours(opens_in_hours),
        "sale_ends_at": days_from_now(event_days),
        "hold_minutes": 8,
        "max_per_order": 6,
        "waiting_room": {"queue_opens_at": now + Duration::hours(opens_in_hours) - Duration::minutes(30), "admission_per_minute": 500}
    })
}

pub fn uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("not a uuid: {value}"))
}

pub fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_owned()
}

/// Asserts an error answer: the status, the code, and (for validation) the named fields.
pub fn assert_error(status: StatusCode, body: &Value, expected_status: StatusCode, code: &str) {
    assert_eq!(status, expected_status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

pub fn assert_fields(body: &Value, fields: &[&str]) {
    let named = &body["error"]["fields"];
    for field in fields {
        assert!(
            named.get(*field).is_some(),
            "field {field} not named in {body}"
        );
    }
}
