//! One helper per endpoint, and set-ups made of them (a venue, a draft, an event on sale).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;

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

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, None).await
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
        self.signup_as(role, &email).await
    }

    /// An account of `role` signed up with `email`.
    pub async fn signup_as(&self, role: &str, email: &str) -> Account {
        let email = email.to_owned();
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

    /// Confirmed orders of an event, in Postgres.
    pub async fn confirmed_orders(&self, event_id: Uuid) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'CONFIRMED'",
        )
        .bind(event_id)
        .fetch_one(&self.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
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

    /// Moves the server's clock by `by` and has the event's engine end every hold that is
    /// then due, at once: what a test of deadlines uses instead of waiting for a sweep.
    pub async fn pass_time(&self, event_id: Uuid, by: chrono::Duration) {
        self.clock.advance(by);
        self.engine.sweep_now(event_id).await;
    }

    /// Waits until every payment whose order exists has been captured: captures run behind
    /// the checkout's answer on purpose (`payments::capturer`).
    pub async fn settle_captures(&self) {
        let pool = self.pool.clone();
        self.eventually("every order's payment is captured", || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM payments WHERE status = 'AUTHORIZED' AND order_id IS NOT NULL",
                )
                .fetch_one(&pool)
                .await
                .is_ok_and(|n| n == 0)
            }
        })
        .await;
    }

    /// Polls until `check` holds, for at most five seconds; panics with `what` otherwise.
    /// Only for work the server does behind an answer on purpose (status and mirror writes,
    /// Redis, a room closing); deadlines are tested with [`TestApp::pass_time`].
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
