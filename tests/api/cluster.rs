//! Several nodes: three real `boxoffice` processes on loopback share one Postgres database
//! and one Redis (under a prefix of the test's own). Requests go to random nodes; owners
//! are killed (SIGKILL) and paused (SIGSTOP) mid-sale; then the invariants are checked in
//! Postgres. Each test kills its processes by their own pids and deletes its Redis keys;
//! the database is the in-process app's, dropped with it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    days_from_now, redis_url, spawn_app, standard_pricing, uuid, Account, TestApp, TEST_SECRET,
};
use crate::process::{free_port, log_dir, ChildServer};

const OPERATOR_TOKEN: &str = "operator-token-for-the-cluster-tests";

/// One node: its process and its name.
struct Node {
    server: ChildServer,
    node_id: String,
}

/// Nodes on the test's database and a Redis prefix of their own.
struct Nodes {
    nodes: Vec<Node>,
    prefix: String,
    client: reqwest::Client,
}

impl Nodes {
    /// Starts `n` nodes and waits until each is ready.
    async fn start(app: &TestApp, n: usize, env: &[(&str, &str)]) -> Nodes {
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

    fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node].server.address)
    }

    /// Sends a request to one node; `None` when no answer came at all.
    async fn send(
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

    async fn hold(
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

    async fn checkout(
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

    async fn release(&self, node: usize, buyer: &str, hold_id: &str) -> StatusCode {
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
    async fn get(&self, node: usize, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(node, reqwest::Method::GET, path, token, &[], None)
            .await
    }

    /// Seat states from one node's seat map.
    async fn seat_states(&self, node: usize, event_id: Uuid) -> HashMap<Uuid, String> {
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
    async fn metric(&self, node: usize, name: &str, label: &str) -> f64 {
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

    fn index_of(&self, node_id: &str) -> Option<usize> {
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
async fn owner(app: &TestApp, event_id: Uuid) -> Option<(String, i64)> {
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
async fn on_sale(app: &TestApp) -> Uuid {
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    app.stop_owning().await;
    event_id
}

/// No seat in two live tickets, and every ticket's order confirmed.
async fn assert_no_seat_sold_twice(app: &TestApp, event_id: Uuid) {
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
        "SELECT count(*) FROM tickets t JOIN orders o USING (order_id) WHERE t.event_id = $1 AND o.status <> 'CONFIRMED'",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(orphans, 0, "tickets of an order that is not confirmed");
}

/// Every order the buyers were told about is confirmed in Postgres.
async fn assert_confirmed(app: &TestApp, orders: &[String]) {
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

fn assert_clear(status: StatusCode, body: &Value, allowed: &[StatusCode]) {
    assert!(
        allowed.contains(&status),
        "unexpected {status}: {body} (allowed {allowed:?})"
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(body["error"]["code"], "owner_unavailable", "{body}");
    }
}

#[actix_web::test]
async fn three_nodes_never_grant_one_seat_to_two_live_holds() {
    let app = spawn_app().await;
    let event_id = on_sale(&app).await;
    let seats: Vec<Uuid> = app
        .seat_ids(event_id, 0)
        .await
        .into_iter()
        .take(24)
        .collect();
    let buyers = app.quick_buyers(48).await;
    let nodes = Nodes::start(&app, 3, &[]).await;

    // Every buyer tries four times for two of 24 seats, each time through a random node.
    let attempts = join_all(buyers.iter().enumerate().map(|(i, buyer)| {
        let (nodes, seats) = (&nodes, &seats);
        async move {
            let mut rng = StdRng::seed_from_u64(i as u64);
            let (mut granted, mut refused) = (Vec::new(), Vec::new());
            for _ in 0..4 {
                let a = rng.gen_range(0..seats.len());
                let b = (a + rng.gen_range(1..seats.len())) % seats.len();
                let node = rng.gen_range(0..3);
                let (status, body) = nodes
                    .hold(
                        node,
                        &buyer.token,
                        event_id,
                        &json!({"seat_ids": [seats[a], seats[b]]}),
                    )
                    .await;
                assert_clear(status, &body, &[StatusCode::CREATED, StatusCode::CONFLICT]);
                if status == StatusCode::CREATED {
                    granted.push((
                        body["hold_id"].as_str().unwrap_or_default().to_owned(),
                        vec![seats[a], seats[b]],
                    ));
                } else {
                    refused.push(
                        body["error"]["code"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
            (granted, refused)
        }
    }))
    .await;
    let refused: Vec<String> = attempts.iter().flat_map(|(_, r)| r.clone()).collect();
    assert!(
        refused.iter().all(|code| code == "seat_unavailable"),
        "only taken seats are refused: {refused:?}"
    );
    let attempts: Vec<_> = attempts.into_iter().map(|(g, _)| g).collect();
    let (_, first_epoch) = owner(&app, event_id)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    let granted: Vec<(usize, String, Vec<Uuid>)> = attempts
        .into_iter()
        .enumerate()
        .flat_map(|(i, holds)| holds.into_iter().map(move |(h, s)| (i, h, s)))
        .collect();
    let mut held_by: HashMap<Uuid, String> = HashMap::new();
    for (_, hold_id, seat_ids) in &granted {
        for seat in seat_ids {
            if let Some(other) = held_by.insert(*seat, hold_id.clone()) {
                panic!("seat {seat} was granted to two live holds: {other} and {hold_id}");
            }
        }
    }
    assert!(
        granted.len() >= 4 && refused.len() >= 100,
        "a real race: {} granted, {} refused",
        granted.len(),
        refused.len()
    );

    // Half the holds are bought, half released, each through a random node.
    let outcomes = join_all(granted.iter().enumerate().map(|(k, (i, hold_id, _))| {
        let (nodes, buyer) = (&nodes, &buyers[*i]);
        async move {
            let node = k % 3;
            if k % 2 == 0 {
                let (status, order) = nodes
                    .checkout(node, &buyer.token, hold_id, &format!("key-{k}"))
                    .await;
                assert_clear(status, &order, &[StatusCode::CREATED]);
                Some(order["order_id"].as_str().unwrap_or_default().to_owned())
            } else {
                let status = nodes.release((node + 1) % 3, &buyer.token, hold_id).await;
                assert_eq!(status, StatusCode::NO_CONTENT);
                None
            }
        }
    }))
    .await;
    let orders: Vec<String> = outcomes.into_iter().flatten().collect();
    assert_confirmed(&app, &orders).await;
    assert_no_seat_sold_twice(&app, event_id).await;
    let sold: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
    assert_eq!(sold as usize, orders.len() * 2);

    // Every node shows the same map: bought seats sold, released seats free again.
    let released: Vec<Uuid> = granted
        .iter()
        .enumerate()
        .filter(|(k, _)| k % 2 == 1)
        .flat_map(|(_, (_, _, s))| s.clone())
        .collect();
    for node in 0..3 {
        let states = nodes.seat_states(node, event_id).await;
        for (k, (_, _, seat_ids)) in granted.iter().enumerate() {
            let expected = if k % 2 == 0 { "sold" } else { "available" };
            for seat in seat_ids {
                assert_eq!(states[seat], expected, "seat {seat} on node {node}");
            }
        }
    }
    // Nothing stays locked: every released seat can be held again, through any node.
    let again = buyers.last().map(|b| b.token.clone()).unwrap_or_default();
    for (k, seat) in released.iter().enumerate() {
        let (status, body) = nodes
            .hold(k % 3, &again, event_id, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // One owner all along; the others forwarded to it.
    let (owner_id, epoch) = owner(&app, event_id)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    assert_eq!(
        epoch, first_epoch,
        "the lease never changed hands while every node lived"
    );
    let owner_index = nodes
        .index_of(&owner_id)
        .unwrap_or_else(|| panic!("owner {owner_id} is not a node"));
    let mut acquired = 0.0;
    for node in 0..3 {
        acquired += nodes.metric(node, "lease_changes_total", "acquired").await;
        if node != owner_index {
            assert!(
                nodes
                    .metric(node, "forwarded_requests_total", "answered")
                    .await
                    > 0.0
            );
        }
    }
    assert_eq!(acquired, 1.0, "one node took the on-sale, once");
}

#[actix_web::test]
async fn killing_the_owner_mid_sale_loses_no_order_and_leaves_no_seat_locked() {
    let app = spawn_app().await;
    let event_id = on_sale(&app).await;
    let mut seats = app.seat_ids(event_id, 0).await;
    seats.extend(app.seat_ids(event_id, 1).await);
    let buyers = app.quick_buyers(seats.len()).await;
    let mut nodes = Nodes::start(&app, 3, &[]).await;

    // Before the kill: 8 buyers buy a seat each, 4 more only hold one.
    let mut confirmed = Vec::new();
    let mut held: Vec<(usize, String, Uuid)> = Vec::new();
    let before = join_all((0..12).map(|i| {
        let (nodes, buyer, seat) = (&nodes, &buyers[i], seats[i]);
        async move {
            let (status, hold) = nodes
                .hold(i % 3, &buyer.token, event_id, &json!({"seat_ids": [seat]}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{hold}");
            let hold_id = hold["hold_id"].as_str().unwrap_or_default().to_owned();
            if i < 8 {
                let (status, order) = nodes
                    .checkout((i + 1) % 3, &buyer.token, &hold_id, "k")
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{order}");
                (
                    hold_id,
                    Some(order["order_id"].as_str().unwrap_or_default().to_owned()),
                )
            } else {
                (hold_id, None)
            }
        }
    }))
    .await;
    for (i, (hold_id, order)) in before.into_iter().enumerate() {
        match order {
            Some(order) => confirmed.push(order),
            None => held.push((i, hold_id, seats[i])),
        }
    }

    // The four holds are in the Redis mirror (written behind) before the owner dies.
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("{e}"));
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mirrored = format!("{}:holds:{event_id}", nodes.prefix);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::AsyncCommands::scard::<_, usize>(&mut redis, &mirrored)
        .await
        .unwrap_or(0)
        < held.len()
    {
        assert!(Instant::now() < deadline, "the holds never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (owner_id, _) = owner(&app, event_id)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    let dead = nodes
        .index_of(&owner_id)
        .unwrap_or_else(|| panic!("owner is not a node"));
    let survivors: Vec<usize> = (0..3).filter(|n| *n != dead).collect();
    nodes.nodes[dead].server.kill();
    let killed_at = Instant::now();

    // First thing after the kill, the holders pay, through the survivors: the new owner
    // brings their holds back from Redis, whatever request reaches it first.
    let paid = join_all(held.iter().enumerate().map(|(k, (i, hold_id, _))| {
        let (nodes, buyer, node) = (&nodes, &buyers[*i], survivors[k % survivors.len()]);
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (status, order) = nodes.checkout(node, &buyer.token, hold_id, "k").await;
                assert_clear(
                    status,
                    &order,
                    &[StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE],
                );
                if status == StatusCode::CREATED {
                    return order["order_id"].as_str().unwrap_or_default().to_owned();
                }
                assert!(Instant::now() < deadline, "no checkout 30 s after the kill");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }))
    .await;
    confirmed.extend(paid);

    // After the kill: the other buyers, through the survivors, retrying while the answer
    // is 503 owner_unavailable (never a 500, 502 or 504).
    let after = join_all((12..seats.len()).map(|i| {
        let (nodes, buyer, seat, survivors) = (&nodes, &buyers[i], seats[i], &survivors);
        async move {
            let node = survivors[i % survivors.len()];
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (status, hold) = nodes
                    .hold(node, &buyer.token, event_id, &json!({"seat_ids": [seat]}))
                    .await;
                assert_clear(
                    status,
                    &hold,
                    &[StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE],
                );
                if status == StatusCode::CREATED {
                    let served_at = killed_at.elapsed();
                    let hold_id = hold["hold_id"].as_str().unwrap_or_default().to_owned();
                    let (status, order) = nodes.checkout(node, &buyer.token, &hold_id, "k").await;
                    assert_eq!(status, StatusCode::CREATED, "{order}");
                    return (
                        served_at,
                        order["order_id"].as_str().unwrap_or_default().to_owned(),
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "no node served holds 30 s after the kill"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }))
    .await;
    let first_served = after.iter().map(|(t, _)| *t).min().unwrap_or_default();
    println!("failover: the survivors served holds {first_served:?} after the owner was killed");
    confirmed.extend(after.into_iter().map(|(_, order)| order));

    // Every order anyone was told about is there; no seat twice.
    assert_confirmed(&app, &confirmed).await;
    assert_no_seat_sold_twice(&app, event_id).await;
    let (new_owner, epoch) = owner(&app, event_id)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    assert_ne!(new_owner, owner_id);
    assert!(epoch >= 2, "a takeover raises the epoch");

    let states = nodes.seat_states(survivors[1], event_id).await;
    let still_held: Vec<&Uuid> = states
        .iter()
        .filter(|(_, s)| *s == "held")
        .map(|(id, _)| id)
        .collect();
    assert!(still_held.is_empty(), "seats left locked: {still_held:?}");
}

#[actix_web::test]
async fn a_paused_owner_that_wakes_up_cannot_confirm_a_sale() {
    let app = spawn_app().await;
    let event_id = on_sale(&app).await;
    let seats = app.seat_ids(event_id, 0).await;
    let buyers = app.quick_buyers(3).await;
    let (a, b) = (&buyers[0], &buyers[1]);
    let nodes = Nodes::start(&app, 3, &[("BOXOFFICE_PAYMENT_LATENCY_MS", "2000")]).await;

    // A holds a seat; the owner (whichever node took the on-sale) starts A's checkout.
    let (status, hold) = nodes
        .hold(0, &a.token, event_id, &json!({"seat_ids": [seats[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let hold_id = hold["hold_id"].as_str().unwrap_or_default().to_owned();
    let (owner_id, first_epoch) = owner(&app, event_id)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    let old = nodes
        .index_of(&owner_id)
        .unwrap_or_else(|| panic!("owner is not a node"));
    let (x, y) = ((old + 1) % 3, (old + 2) % 3);
    let stale_checkout = {
        let (client, url, token, hold_id) = (
            nodes.client.clone(),
            nodes.url(old, &format!("/api/v1/holds/{hold_id}/checkout")),
            a.token.clone(),
            hold_id.clone(),
        );
        actix_web::rt::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "first")
                .json(&json!({"payment_token": "tok_ok"}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{hold_id}: {e}"));
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    };
    // The payment is in flight once its row exists: pause the owner then.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM payments WHERE hold_id = $1::uuid")
                .bind(&hold_id)
                .fetch_one(&app.pool)
                .await
                .unwrap_or(0);
        if pending > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the checkout never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes.nodes[old].server.signal("STOP");

    // Another node takes the on-sale over once the lease lapses, and sells.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (new_owner, new_epoch) = loop {
        if let Some((node, epoch)) = owner(&app, event_id).await {
            if node != owner_id {
                break (node, epoch);
            }
        }
        // Requests make a node look at the lease.
        let _ = nodes
            .hold(x, &b.token, event_id, &json!({"seat_ids": [seats[1]]}))
            .await;
        assert!(
            Instant::now() < deadline,
            "nobody took the paused owner's on-sale over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(new_epoch > first_epoch);
    let (status, b_hold) = nodes
        .hold(y, &b.token, event_id, &json!({"seat_ids": [seats[2]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b_hold}");
    let (status, order) = nodes
        .checkout(
            x,
            &b.token,
            b_hold["hold_id"].as_str().unwrap_or_default(),
            "b",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, restored) = nodes
        .get(y, &format!("/api/v1/holds/{hold_id}"), Some(&a.token))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "A's hold came back on {new_owner}: {restored}"
    );

    // The old owner wakes up: its order is refused, its authorization voided.
    nodes.nodes[old].server.signal("CONT");
    let (status, body) = stale_checkout.await.unwrap_or_else(|e| panic!("{e}"));
    assert_clear(status, &body, &[StatusCode::SERVICE_UNAVAILABLE]);
    assert!(nodes.metric(old, "fenced_writes_total", "orders").await >= 1.0);
    let voided: Vec<String> =
        sqlx::query_scalar("SELECT status FROM payments WHERE hold_id = $1::uuid")
            .bind(&hold_id)
            .fetch_all(&app.pool)
            .await
            .unwrap_or_default();
    assert_eq!(
        voided,
        vec!["VOIDED".to_owned()],
        "no charge without an order"
    );
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE hold_id = $1::uuid")
        .bind(&hold_id)
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
    assert_eq!(orders, 0);

    // It serves the on-sale no more: what reaches it goes to the new owner.
    let (status, body) = nodes
        .hold(
            old,
            &buyers[2].token,
            event_id,
            &json!({"seat_ids": [seats[3]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(owner(&app, event_id).await.map(|(n, _)| n), Some(new_owner));
    assert!(
        nodes.metric(old, "lease_changes_total", "lost").await
            + nodes.metric(old, "lease_changes_total", "lapsed").await
            >= 1.0,
        "the old owner noticed it lost the on-sale"
    );

    // A pays again through any node and gets the seat, once.
    let (status, order) = nodes.checkout(old, &a.token, &hold_id, "second").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_confirmed(
        &app,
        &[order["order_id"].as_str().unwrap_or_default().to_owned()],
    )
    .await;
    assert_no_seat_sold_twice(&app, event_id).await;
}

#[actix_web::test]
async fn the_waiting_room_is_one_room_whatever_node_a_buyer_reaches() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let create = |title: &'static str| {
        let (app, organizer) = (&app, &organizer);
        async move {
            let venue = app.standard_venue(&organizer.token).await;
            let event_id = app.draft_event(&organizer.token, venue.venue_id, 9).await;
            let (status, body) = app
                .set_pricing(&organizer.token, event_id, &standard_pricing(&venue))
                .await;
            assert_eq!(status, StatusCode::OK, "{title}: {body}");
            event_id
        }
    };
    let with_room = create("with a room").await;
    let now = Utc::now();
    let (status, body) = app
        .set_onsale(
            &organizer.token,
            with_room,
            &json!({
                "sale_starts_at": now + chrono::Duration::seconds(3),
                "sale_ends_at": days_from_now(9),
                "hold_minutes": 8, "max_per_order": 6,
                "waiting_room": {"queue_opens_at": now, "admission_per_minute": 6000}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let later = create("a room added later").await;
    let plain = json!({"sale_starts_at": now + chrono::Duration::hours(1), "sale_ends_at": days_from_now(9), "hold_minutes": 8, "max_per_order": 6});
    let (status, body) = app.set_onsale(&organizer.token, later, &plain).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for event_id in [with_room, later] {
        let (status, body) = app.publish(&organizer.token, event_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let buyer: Account = app.buyer().await;
    app.stop_owning().await;
    let nodes = Nodes::start(&app, 3, &[("BOXOFFICE_QUEUE_TICK_MS", "200")]).await;

    // Join on node 0, wait on node 1, shop on node 2 with the token node 1 handed out.
    let queue = format!("/api/v1/events/{with_room}/queue");
    let (status, place) = nodes
        .send(
            0,
            reqwest::Method::POST,
            &queue,
            Some(&buyer.token),
            &[],
            Some(&json!({})),
        )
        .await;
    assert!(status.is_success(), "{status}: {place}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let token = loop {
        let (status, place) = nodes
            .send(
                1,
                reqwest::Method::GET,
                &queue,
                Some(&buyer.token),
                &[],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{place}");
        if place["state"] == "admitted" {
            break place["admission_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
        assert!(Instant::now() < deadline, "never admitted: {place}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seat = app.seat_ids(with_room, 0).await[0];
    let (status, body) = nodes
        .send(
            1,
            reqwest::Method::POST,
            &format!("/api/v1/events/{with_room}/holds"),
            Some(&buyer.token),
            &[],
            Some(&json!({"seat_ids": [seat]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("admission_required"))
    );
    let (status, body) = nodes
        .send(
            2,
            reqwest::Method::POST,
            &format!("/api/v1/events/{with_room}/holds"),
            Some(&buyer.token),
            &[("X-Admission-Token", &token)],
            Some(&json!({"seat_ids": [seat]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A node that is not the room's owner still pushes the place over its socket.
    let (room_owner, _) = owner(&app, with_room)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    let other = (0..3)
        .find(|n| nodes.nodes[*n].node_id != room_owner)
        .unwrap_or(0);
    let ws = nodes
        .url(other, &format!("{queue}/live?token={}", buyer.token))
        .replacen("http", "ws", 1);
    let (mut socket, _) = tokio_tungstenite::connect_async(ws)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let message = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut socket),
    )
    .await
    .ok()
    .flatten()
    .and_then(Result::ok)
    .map(|m| m.to_string())
    .unwrap_or_default();
    let message: Value = serde_json::from_str(&message).unwrap_or(Value::Null);
    assert_eq!(
        (message["type"].clone(), message["state"].clone()),
        (json!("queue"), json!("admitted")),
        "{message}"
    );

    // A room added through one node is enforced by every node at once.
    let seat = app.seat_ids(later, 0).await[0];
    let (status, body) = nodes
        .hold(1, &buyer.token, later, &json!({"seat_ids": [seat]}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("sale_not_open"))
    );
    let mut with_a_room = plain.clone();
    with_a_room["waiting_room"] = json!({"queue_opens_at": now, "admission_per_minute": 100});
    let (status, body) = nodes
        .send(
            2,
            reqwest::Method::PUT,
            &format!("/api/v1/events/{later}/onsale"),
            Some(&organizer.token),
            &[],
            Some(&with_a_room),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for node in 0..3 {
        let (status, body) = nodes
            .hold(node, &buyer.token, later, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (StatusCode::UNAUTHORIZED, json!("admission_required")),
            "node {node}"
        );
    }
}

#[actix_web::test]
async fn odd_requests_across_nodes_get_clear_answers() {
    let app = spawn_app().await;
    let event_id = on_sale(&app).await;
    let seats = app.seat_ids(event_id, 0).await;
    let buyer = app.quick_buyers(1).await.remove(0);
    let nodes = Nodes::start(&app, 3, &[]).await;
    let (status, hold) = nodes
        .hold(0, &buyer.token, event_id, &json!({"seat_ids": [seats[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (owner_id, _) = owner(&app, event_id)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    let owner_index = nodes.index_of(&owner_id).unwrap_or(0);
    let other = (owner_index + 1) % 3;

    // A hold id unknown everywhere, and one that names the event but no hold: 404 on every node.
    let hold_id = uuid(&hold["hold_id"]);
    assert_eq!(
        &hold_id.as_bytes()[..8],
        &event_id.as_bytes()[..8],
        "hold ids carry their event"
    );
    let mut unknown_of_event = *Uuid::new_v4().as_bytes();
    unknown_of_event[..8].copy_from_slice(&event_id.as_bytes()[..8]);
    for node in 0..3 {
        for id in [Uuid::new_v4(), Uuid::from_bytes(unknown_of_event)] {
            let (status, body) = nodes
                .get(node, &format!("/api/v1/holds/{id}"), Some(&buyer.token))
                .await;
            assert_eq!(
                (status, body["error"]["code"].clone()),
                (StatusCode::NOT_FOUND, json!("hold_not_found")),
                "node {node}"
            );
        }
        let (status, body) = nodes
            .get(
                node,
                &format!("/api/v1/holds/{hold_id}"),
                Some(&buyer.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "node {node}: {body}");
    }

    // A request that was forwarded once is never forwarded again: a node that does not
    // own the on-sale answers 503 owner_unavailable. A forged hop header is just ignored.
    let hop = boxoffice::http::forward::hop_token(TEST_SECRET.as_bytes()).unwrap_or_default();
    let (status, body) = nodes
        .send(
            other,
            reqwest::Method::POST,
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&buyer.token),
            &[("X-Boxoffice-Hop", &hop)],
            Some(&json!({"seat_ids": [seats[1]]})),
        )
        .await;
    assert_clear(status, &body, &[StatusCode::SERVICE_UNAVAILABLE]);
    let (status, body) = nodes
        .send(
            other,
            reqwest::Method::POST,
            &format!("/api/v1/events/{event_id}/holds"),
            Some(&buyer.token),
            &[
                ("X-Boxoffice-Hop", "forged"),
                ("X-Boxoffice-Client-Ip", "10.9.9.9"),
            ],
            Some(&json!({"seat_ids": [seats[1]]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The operator's view: every node, and who owns the on-sale at which epoch.
    let (status, _) = nodes.get(other, "/api/v1/cluster", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = nodes
        .get(other, "/api/v1/cluster", Some("wrong-token-wrong-token"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, view) = nodes
        .get(other, "/api/v1/cluster", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let seen: HashSet<String> = view["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    for node in &nodes.nodes {
        assert!(seen.contains(&node.node_id), "{view}");
    }
    let lease = view["onsales"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|l| l["event_id"] == json!(event_id))
        .unwrap_or_else(|| panic!("{view}"));
    assert_eq!(
        (lease["owner"].clone(), lease["epoch"].clone()),
        (json!(owner_id), json!(1))
    );
}
