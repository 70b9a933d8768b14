//! Holds raced through random nodes: one seat is never granted to two live holds.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::*;

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
