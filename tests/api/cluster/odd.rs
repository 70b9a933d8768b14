//! Odd requests across nodes: unknown holds, loops, forged headers, the operator view.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::*;

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
