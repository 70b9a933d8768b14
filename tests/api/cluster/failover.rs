//! The owner killed (SIGKILL) or paused (SIGSTOP) mid-sale.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;

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
    // (Voided behind the stale owner's answer.)
    app.eventually("no charge without an order", || async {
        let voided: Vec<String> =
            sqlx::query_scalar("SELECT status FROM payments WHERE hold_id = $1::uuid")
                .bind(&hold_id)
                .fetch_all(&app.pool)
                .await
                .unwrap_or_default();
        voided == ["VOIDED"]
    })
    .await;
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
