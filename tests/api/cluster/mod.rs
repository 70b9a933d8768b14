//! Several nodes: three real `boxoffice` processes on loopback share one Postgres database
//! and one Redis (under a prefix of the test's own). Requests go to random nodes; owners
//! are killed (SIGKILL) and paused (SIGSTOP) mid-sale; then the invariants are checked in
//! Postgres. Each test kills its processes by their own pids and deletes its Redis keys;
//! the database is the in-process app's, dropped with it.
//!
//! This module holds the nodes and the checks; the tests are grouped by behaviour.

mod failover;
mod odd;
mod races;
mod refunds;
mod waiting_room;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    days_from_now, redis_url, spawn_app, standard_pricing, uuid, Account, TestApp, TEST_SECRET,
};
use crate::process::{free_port, log_dir, ChildServer};

pub const OPERATOR_TOKEN: &str = "operator-token-for-the-cluster-tests";

/// One node: its process and its name.
pub struct Node {
    pub server: ChildServer,
    pub node_id: String,
}

/// Nodes on the test's database and a Redis prefix of their own.
pub struct Nodes {
    pub nodes: Vec<Node>,
    pub prefix: String,
    pub client: reqwest::Client,
}

impl Nodes {
    /// Starts `n` nodes and waits until each is ready.
    pub async fn start(app: &TestApp, n: usize, env: &[(&str, &str)]) -> Nodes {
        let prefix = format!("test-{}", Uuid::new_v4().simple());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let redis = redis_url();
        let mut nodes = Vec::new();
        for i in 0..n {
            let node_id = format!("{}-n{i}", &prefix[5..13]);
            let mut settings = vec![
                ("BOXOFFICE_NODE_ID", node_id.as_str()),
                ("BOXOFFICE_OPERATOR_TOKEN", OPERATOR_TOKEN),
                ("REDIS_URL", redis.as_str()),
                ("BOXOFFICE_REDIS_PREFIX", prefix.as_str()),
                ("BOXOFFICE_MAX_HOLDS_PER_BUYER", "100"),
                ("BOXOFFICE_IP_RATE_PER_MINUTE", "100000000"),
                ("BOXOFFICE_BUYER_RATE_PER_MINUTE", "100000000"),
                ("BOXOFFICE_ENGINE_THREADS", "1"),
                ("BOXOFFICE_DB_MAX_CONNECTIONS", "6"),
                ("BOXOFFICE_LOG_FORMAT", "json"),
                ("RUST_LOG", "warn,boxoffice::cluster=info"),
            ];
            settings.extend_from_slice(env);
            let log = log_dir().join(format!("{node_id}.log"));
            let server =
                ChildServer::start(&app.database_url(), free_port(), &settings, Some(log)).await;
            nodes.push(Node { server, node_id });
        }
        Nodes {
            nodes,
            prefix,
            client,
        }
    }

    pub fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node].server.address)
    }

    /// Sends a request to one node; `None` when no answer came at all.
    pub async fn send(
        &self,
        node: usize,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(node, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(error) => panic!("node {node} gave no answer to {path}: {error}"),
        }
    }

    pub async fn hold(
        &self,
        node: usize,
        buyer: &str,
        event_id: Uuid,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.send(
            node,
            reqwest::Method::POST,
            &format!("/api/v1/events/{event_id}/holds"),
            Some(buyer),
            &[],
            Some(body),
        )
        .await
    }

    pub async fn checkout(
        &self,
        node: usize,
        buyer: &str,
        hold_id: &str,
        key: &str,
    ) -> (StatusCode, Value) {
        self.send(
            node,
            reqwest::Method::POST,
            &format!("/api/v1/holds/{hold_id}/checkout"),
            Some(buyer),
            &[("Idempotency-Key", key)],
            Some(&json!({"payment_token": "tok_ok"})),
        )
        .await
    }

    pub async fn release(&self, node: usize, buyer: &str, hold_id: &str) -> StatusCode {
        self.send(
            node,
            reqwest::Method::DELETE,
            &format!("/api/v1/holds/{hold_id}"),
            Some(buyer),
            &[],
            None,
        )
        .await
        .0
    }

    /// `GET path` on one node, as `token`.
    pub async fn get(&self, node: usize, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(node, reqwest::Method::GET, path, token, &[], None)
            .await
    }

    /// Seat states from one node's seat map.
    pub async fn seat_states(&self, node: usize, event_id: Uuid) -> HashMap<Uuid, String> {
        let (status, map) = self
            .send(
                node,
                reqwest::Method::GET,
                &format!("/api/v1/events/{event_id}/seatmap"),
                None,
                &[],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{map}");
        let mut states = HashMap::new();
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

    /// A counter from one node's `/metrics` (summed over the labels that match).
    pub async fn metric(&self, node: usize, name: &str, label: &str) -> f64 {
        let text = self
            .client
            .get(self.url(node, "/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(&format!("boxoffice_{name}")) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn index_of(&self, node_id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.node_id == node_id)
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.server.kill();
        }
        let pattern = format!("{}:*", self.prefix);
        if let Ok(client) = redis::Client::open(redis_url()) {
            if let Ok(mut conn) = client.get_connection() {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query(&mut conn)
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
                }
            }
        }
    }
}

/// The node that holds the event's live lease, by Postgres.
pub async fn owner(app: &TestApp, event_id: Uuid) -> Option<(String, i64)> {
    sqlx::query_as(
        "SELECT node_id, epoch FROM onsale_leases WHERE event_id = $1 AND expires_at > now()",
    )
    .bind(event_id)
    .fetch_optional(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The in-process app sets up an organizer and an on-sale event, then stops owning
/// anything: the child processes run the sale.
pub async fn on_sale(app: &TestApp) -> Uuid {
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    app.stop_owning().await;
    event_id
}

/// No seat in two live tickets, and every ticket's order confirmed.
pub async fn assert_no_seat_sold_twice(app: &TestApp, event_id: Uuid) {
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT seat_id FROM tickets WHERE event_id = $1 AND seat_id IS NOT NULL \
         AND status = 'VALID' GROUP BY seat_id HAVING count(*) > 1) x",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(twice, 0, "a seat was sold twice");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets t JOIN orders o USING (order_id) WHERE t.event_id = $1 \
         AND t.status IN ('VALID', 'USED') AND o.status NOT IN ('CONFIRMED', 'PARTIALLY_REFUNDED')",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(orphans, 0, "live tickets of an order that is not confirmed");
}

/// Every order the buyers were told about is confirmed in Postgres.
pub async fn assert_confirmed(app: &TestApp, orders: &[String]) {
    for order_id in orders {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM orders WHERE order_id = $1::uuid")
                .bind(order_id)
                .fetch_optional(&app.pool)
                .await
                .unwrap_or(None);
        assert_eq!(status.as_deref(), Some("CONFIRMED"), "order {order_id}");
    }
}

pub fn assert_clear(status: StatusCode, body: &Value, allowed: &[StatusCode]) {
    assert!(
        allowed.contains(&status),
        "unexpected {status}: {body} (allowed {allowed:?})"
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(body["error"]["code"], "owner_unavailable", "{body}");
    }
}
