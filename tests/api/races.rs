//! Concurrency claims, raced over real HTTP and checked in Postgres afterwards.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::future::join_all;
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, uuid, TestApp};

#[derive(Default)]
struct Outcomes {
    /// Holds that were taken and neither bought nor released: hold id → seat ids.
    live_holds: HashMap<String, Vec<Uuid>>,
    /// Orders confirmed to a client: order id → seat ids.
    orders: HashMap<String, Vec<Uuid>>,
    statuses: HashMap<u16, usize>,
    server_errors: Vec<Value>,
}

impl Outcomes {
    fn count(&mut self, status: StatusCode, body: &Value) {
        *self.statuses.entry(status.as_u16()).or_default() += 1;
        if status.is_server_error() {
            self.server_errors.push(body.clone());
        }
    }
}

fn seats_of(body: &Value) -> Vec<Uuid> {
    body["seats"]
        .as_array()
        .map(|s| s.iter().map(|s| uuid(&s["seat_id"])).collect())
        .unwrap_or_default()
}

/// 2,000 hold attempts from 200 buyers over 22 seats, mixed with checkouts (some
/// declined), releases and abandoned holds.
#[actix_web::test]
async fn racing_holds_checkouts_and_releases_never_sell_a_seat_twice() {
    let app = spawn_app_with(|s| s.max_holds_per_buyer = 100).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let mut seats = app.seat_ids(event_id, 0).await;
    seats.extend(app.seat_ids(event_id, 1).await);
    let buyers = app.quick_buyers(200).await;
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));

    let tasks = buyers.iter().enumerate().map(|(i, buyer)| {
        let (app, seats, outcomes) = (&app, &seats, outcomes.clone());
        async move {
            let mut rng = StdRng::seed_from_u64(i as u64);
            for attempt in 0..10 {
                let wanted: Vec<Uuid> = (0..rng.gen_range(1..=3))
                    .map(|_| seats[rng.gen_range(0..seats.len())])
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let (status, hold) = app
                    .hold(&buyer.token, event_id, &json!({"seat_ids": wanted}))
                    .await;
                outcomes.lock().await.count(status, &hold);
                if status != StatusCode::CREATED {
                    continue;
                }
                let hold_id = hold["hold_id"].clone();
                let key = format!("{i}-{attempt}");
                match rng.gen_range(0..10) {
                    0..=4 => {
                        let token = if rng.gen_bool(0.3) {
                            "tok_decline"
                        } else {
                            "tok_ok"
                        };
                        let (status, order) =
                            app.checkout(&buyer.token, &hold_id, &key, token).await;
                        let mut o = outcomes.lock().await;
                        o.count(status, &order);
                        if status == StatusCode::CREATED {
                            let seats = order["tickets"]
                                .as_array()
                                .map(|t| t.iter().map(|t| uuid(&t["seat_id"])).collect())
                                .unwrap_or_default();
                            o.orders.insert(
                                order["order_id"].as_str().unwrap_or_default().to_owned(),
                                seats,
                            );
                        } else {
                            o.live_holds.insert(
                                hold_id.as_str().unwrap_or_default().to_owned(),
                                seats_of(&hold),
                            );
                        }
                    }
                    5..=7 => {
                        let path =
                            format!("/api/v1/holds/{}", hold_id.as_str().unwrap_or_default());
                        let (status, body) = app
                            .call(reqwest::Method::DELETE, &path, Some(&buyer.token), None)
                            .await;
                        outcomes.lock().await.count(status, &body);
                    }
                    _ => {
                        outcomes.lock().await.live_holds.insert(
                            hold_id.as_str().unwrap_or_default().to_owned(),
                            seats_of(&hold),
                        );
                    }
                }
            }
        }
    });
    join_all(tasks).await;

    let outcomes = outcomes.lock().await;
    assert!(
        outcomes.server_errors.is_empty(),
        "server errors: {:?}",
        outcomes.server_errors
    );
    assert!(
        outcomes.statuses.get(&201).copied().unwrap_or(0) > 0,
        "{:?}",
        outcomes.statuses
    );
    assert!(
        outcomes.statuses.get(&409).copied().unwrap_or(0) > 0,
        "no contention happened: {:?}",
        outcomes.statuses
    );
    check_invariants(&app, event_id, &outcomes).await;
}

async fn check_invariants(app: &TestApp, event_id: Uuid, outcomes: &Outcomes) {
    // No seat in two live tickets, and every ticket was announced to exactly one buyer.
    let sold: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT seat_id, count(*) FROM tickets WHERE event_id = $1 AND status IN ('VALID', 'USED') GROUP BY seat_id",
    )
    .bind(event_id)
    .fetch_all(&app.pool)
    .await
    .unwrap_or_default();
    assert!(
        sold.iter().all(|(_, n)| *n == 1),
        "a seat was sold twice: {sold:?}"
    );
    let announced: HashSet<Uuid> = outcomes.orders.values().flatten().copied().collect();
    let in_db: HashSet<Uuid> = sold.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        announced, in_db,
        "confirmed orders and tickets in Postgres disagree"
    );
    assert_eq!(
        announced.len(),
        outcomes.orders.values().map(Vec::len).sum::<usize>(),
        "a seat was confirmed to two buyers"
    );

    // Every confirmed order has its tickets and a captured payment.
    let orders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'CONFIRMED'",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(orders as usize, outcomes.orders.len());
    let without_tickets: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.order_id)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(without_tickets, 0);
    app.settle_captures().await;
    let captured: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = 'CAPTURED'")
            .fetch_one(&app.pool)
            .await
            .unwrap_or(-1);
    assert_eq!(
        captured, orders,
        "every order paid once, every capture has its order"
    );
    let keys: HashSet<String> = app
        .gateway
        .charges()
        .iter()
        .map(|c| c.idempotency_key.clone())
        .collect();
    assert_eq!(
        keys.len(),
        app.gateway.charges().len(),
        "one authorization per key"
    );

    // The live map: sold seats are exactly the tickets; held seats exactly the live holds;
    // everything else is available. sold + held + available = capacity.
    let states = app.seat_states(event_id).await;
    let held: HashSet<Uuid> = outcomes.live_holds.values().flatten().copied().collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (seat, state) in &states {
        *counts.entry(state.as_str()).or_default() += 1;
        let expected = if in_db.contains(seat) {
            "sold"
        } else if held.contains(seat) {
            "held"
        } else {
            "available"
        };
        assert_eq!(state, expected, "seat {seat}");
    }
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    for (i, capacity) in [(0usize, 12usize), (1, 10)] {
        let section = &detail["sections"][i];
        let section_seats: HashSet<Uuid> = app.seat_ids(event_id, i).await.into_iter().collect();
        let sold_here = section_seats.iter().filter(|s| in_db.contains(s)).count();
        let held_here = section_seats.iter().filter(|s| held.contains(s)).count();
        let available = section["available"].as_u64().unwrap_or(u64::MAX) as usize;
        assert_eq!(
            sold_here + held_here + available,
            capacity,
            "section {i}: {section}"
        );
    }
}

/// 600 buyers race for a 100-place tier, 1 to 4 places each; every hold is paid for.
#[actix_web::test]
async fn racing_for_a_general_admission_tier_never_oversells_it() {
    let app = spawn_app_with(|s| s.max_holds_per_buyer = 100).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    let general = detail["tiers"][0]["tier_id"].clone();
    let buyers = app.quick_buyers(600).await;
    let results = join_all(buyers.iter().enumerate().map(|(i, buyer)| {
        let (app, general) = (&app, general.clone());
        async move {
            let quantity = 1 + (i % 4);
            let (status, hold) = app
                .hold(
                    &buyer.token,
                    event_id,
                    &json!({"tier_id": general, "quantity": quantity}),
                )
                .await;
            if status != StatusCode::CREATED {
                return (status, 0);
            }
            let (status, order) = app
                .checkout(&buyer.token, &hold["hold_id"], "pay", "tok_ok")
                .await;
            (status, order["tickets"].as_array().map_or(0, Vec::len))
        }
    }))
    .await;
    assert!(
        results.iter().all(|(s, _)| !s.is_server_error()),
        "{results:?}"
    );
    let mut sold: usize = results.iter().map(|(_, n)| n).sum();
    assert!(sold > 0 && sold <= 80, "sold {sold} of 80");
    assert!(
        results.iter().any(|(s, _)| *s == StatusCode::CONFLICT),
        "no buyer was turned away"
    );
    // Whatever the race left, one more buyer takes place by place until it is gone.
    let last = app.quick_buyers(1).await.remove(0);
    loop {
        let (status, hold) = app
            .hold(
                &last.token,
                event_id,
                &json!({"tier_id": general, "quantity": 1}),
            )
            .await;
        if status == StatusCode::CONFLICT {
            assert_eq!(hold["error"]["code"], "sold_out");
            break;
        }
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let (status, _) = app
            .checkout(
                &last.token,
                &hold["hold_id"],
                &format!("top-up-{sold}"),
                "tok_ok",
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        sold += 1;
    }
    assert_eq!(sold, 80, "the GENERAL tier (80 places) sells out exactly");
    let (in_db, tickets): (i32, i64) = sqlx::query_as(
        "SELECT t.sold_quantity, (SELECT count(*) FROM tickets WHERE tier_id = t.tier_id) FROM ticket_tiers t WHERE tier_id = $1",
    )
    .bind(uuid(&general))
    .fetch_one(&app.pool)
    .await
    .unwrap_or((-1, -1));
    assert_eq!((in_db, tickets), (80, 80));
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(detail["tiers"][0]["available"], 0);
}
