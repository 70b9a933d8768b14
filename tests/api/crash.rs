//! Crash safety: the server process is killed with SIGKILL in the middle of a sale and
//! started again on the same database. Every order a buyer was told about is still there
//! with its tickets; no seat is sold twice; nothing stays locked; money taken without an
//! order is given back.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::helpers::{spawn_app, uuid, TestApp};
use crate::process::{free_port, ChildServer};

/// The binary, as these tests run it: holds and the reconciler without limits or delay.
async fn start(database_url: &str, port: u16) -> ChildServer {
    let env = [
        ("BOXOFFICE_MAX_HOLDS_PER_BUYER", "100"),
        ("BOXOFFICE_RECONCILE_SECONDS", "1"),
        ("BOXOFFICE_RECONCILE_GRACE_SECONDS", "0"),
    ];
    ChildServer::start(database_url, port, &env, None).await
}

/// An order a buyer was told about: its id and seats.
type Confirmed = (String, Vec<Uuid>);

async fn call(
    client: &reqwest::Client,
    url: String,
    token: &str,
    key: Option<&str>,
    body: Value,
) -> Option<(StatusCode, Value)> {
    let mut request = client.post(url).bearer_auth(token).json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.ok()?;
    let status = response.status();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

#[actix_web::test]
async fn a_sale_survives_the_server_being_killed_mid_flight() {
    // The in-process app sets up the database, the organizer and the event.
    let app: TestApp = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let mut seats = app.seat_ids(event_id, 0).await;
    seats.extend(app.seat_ids(event_id, 1).await);
    let buyers = app.quick_buyers(60).await;
    let database_url = app.database_url();

    // The in-process app only set things up: the child process runs the on-sale.
    app.stop_owning().await;
    let port = free_port();
    let mut server = start(&database_url, port).await;
    let client = reqwest::Client::new();
    let confirmed: Arc<Mutex<Vec<Confirmed>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));

    let sale = join_all(buyers.iter().enumerate().map(|(i, buyer)| {
        let (client, confirmed, done, seats, address) = (
            &client,
            confirmed.clone(),
            done.clone(),
            &seats,
            server.address.clone(),
        );
        async move {
            for attempt in 0..5 {
                let seat = seats[(i * 7 + attempt * 3) % seats.len()];
                let url = format!("{address}/api/v1/events/{event_id}/holds");
                let Some((status, hold)) =
                    call(client, url, &buyer.token, None, json!({"seat_ids": [seat]})).await
                else {
                    return;
                };
                if status != StatusCode::CREATED {
                    continue;
                }
                let url = format!(
                    "{address}/api/v1/holds/{}/checkout",
                    hold["hold_id"].as_str().unwrap_or_default()
                );
                let key = format!("{i}-{attempt}");
                let Some((status, order)) = call(
                    client,
                    url,
                    &buyer.token,
                    Some(&key),
                    json!({"payment_token": "tok_ok"}),
                )
                .await
                else {
                    return;
                };
                if status == StatusCode::CREATED {
                    let seats = order["tickets"]
                        .as_array()
                        .map(|t| t.iter().map(|t| uuid(&t["seat_id"])).collect())
                        .unwrap_or_default();
                    confirmed.lock().await.push((
                        order["order_id"].as_str().unwrap_or_default().to_owned(),
                        seats,
                    ));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }));
    let killer = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while done.load(Ordering::SeqCst) < 5 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill();
    };
    futures_util::join!(sale, killer);
    let confirmed = confirmed.lock().await.clone();
    assert!(
        confirmed.len() >= 5,
        "the sale did not get going before the kill"
    );

    // Every order a buyer heard about is in Postgres with its tickets.
    for (order_id, seats) in &confirmed {
        let tickets: Vec<Uuid> = sqlx::query_scalar(
            "SELECT seat_id FROM tickets WHERE order_id = $1::uuid AND status = 'VALID'",
        )
        .bind(order_id)
        .fetch_all(&app.pool)
        .await
        .unwrap_or_default();
        assert_eq!(
            tickets.iter().collect::<HashSet<_>>(),
            seats.iter().collect::<HashSet<_>>(),
            "order {order_id}"
        );
    }
    let double: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT seat_id FROM tickets WHERE status IN ('VALID', 'USED') GROUP BY event_id, seat_id HAVING count(*) > 1) d",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(double, 0);

    // Started again: nothing is locked; sold seats are sold; the rest can be held.
    let restarted = start(&database_url, free_port()).await;
    let sold: HashSet<Uuid> =
        sqlx::query_scalar("SELECT seat_id FROM tickets WHERE event_id = $1 AND status = 'VALID'")
            .bind(event_id)
            .fetch_all(&app.pool)
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
    let map: Value = client
        .get(format!(
            "{}/api/v1/events/{event_id}/seatmap",
            restarted.address
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    let buyer = &buyers[0];
    for section in map["sections"].as_array().cloned().unwrap_or_default() {
        for row in section["rows"].as_array().cloned().unwrap_or_default() {
            for seat in row["seats"].as_array().cloned().unwrap_or_default() {
                let id = uuid(&seat["seat_id"]);
                let expected = if sold.contains(&id) {
                    "sold"
                } else {
                    "available"
                };
                assert_eq!(seat["state"], expected, "seat {id} after the restart");
            }
        }
    }
    let free: Vec<Uuid> = seats
        .iter()
        .filter(|s| !sold.contains(s))
        .copied()
        .collect();
    if let Some(seat) = free.first() {
        let url = format!("{}/api/v1/events/{event_id}/holds", restarted.address);
        let answer = call(
            &client,
            url,
            &buyer.token,
            None,
            json!({"seat_ids": [seat]}),
        )
        .await;
        assert_eq!(
            answer.map(|(s, _)| s),
            Some(StatusCode::CREATED),
            "a free seat can be held after the restart"
        );
    }

    // Money: authorizations with no order are voided, lost captures are captured.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM payments WHERE (status IN ('PENDING', 'AUTHORIZED') AND order_id IS NULL) \
             OR (status = 'AUTHORIZED' AND order_id IS NOT NULL)",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap_or(-1);
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} payments were never reconciled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let unpaid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id AND p.status = 'CAPTURED')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(unpaid, 0, "every order's payment is captured");
}

#[actix_web::test]
async fn sigterm_stops_the_server_gracefully() {
    let app: TestApp = spawn_app().await;
    let mut server = start(&app.database_url(), free_port()).await;
    let pid = server.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map(|s| s.success());
    assert_eq!(sent.ok(), Some(true));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.success(),
        "exit status {status:?}: it should stop cleanly, not die of the signal"
    );
}
