//! A refund served by a node that does not run the on-sale: the owner hears of it through
//! the engine's inbox, the seat is on sale again on its live map, and the first waiter
//! gets it.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::*;

#[actix_web::test]
async fn a_refund_on_another_node_reaches_the_owner_and_its_waitlist() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    app.stop_owning().await;
    let seats: Vec<Uuid> = app.seat_ids(event_id, 0).await;
    let nodes = Nodes::start(&app, 2, &[]).await;

    // Section A (12 seats) sells out through node 0, in two orders.
    let buyer = app.buyer().await;
    let mut orders = Vec::new();
    for chunk in seats.chunks(6) {
        let (status, hold) = nodes
            .hold(0, &buyer.token, event_id, &json!({"seat_ids": chunk}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let key = Uuid::new_v4().to_string();
        let (status, order) = nodes
            .checkout(
                0,
                &buyer.token,
                hold["hold_id"].as_str().unwrap_or_default(),
                &key,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        orders.push(order);
    }
    let (owner_id, _) = owner(&app, event_id)
        .await
        .unwrap_or_else(|| panic!("no owner"));
    let owner_node = nodes
        .index_of(&owner_id)
        .unwrap_or_else(|| panic!("owner is not a node"));
    let other = 1 - owner_node;

    // A buyer waits (through the other node: forwarded to the owner).
    let waiter = app.buyer().await;
    let (status, entry) = nodes
        .send(
            other,
            reqwest::Method::POST,
            &format!("/api/v1/events/{event_id}/waitlist"),
            Some(&waiter.token),
            &[],
            Some(&json!({"section_id": venue.seated[0], "quantity": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");

    // Two seats are refunded on the node that does not run the sale.
    let tickets = orders[0]["tickets"].as_array().cloned().unwrap_or_default();
    let (status, refunded) = nodes
        .send(
            other,
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/refund", orders[0]["order_id"].as_str().unwrap_or_default()),
            Some(&organizer.token),
            &[],
            Some(&json!({"ticket_ids": [tickets[0]["ticket_id"], tickets[1]["ticket_id"]], "reason": "Returned"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["status"], "PARTIALLY_REFUNDED");
    let (first, second) = (uuid(&tickets[0]["seat_id"]), uuid(&tickets[1]["seat_id"]));

    // The owner knows: one seat is held for the waiter, the other is on sale.
    app.eventually("the owner offers one seat and sells the other", || async {
        let states = nodes.seat_states(owner_node, event_id).await;
        let pair = [states[&first].as_str(), states[&second].as_str()];
        pair.contains(&"held") && pair.contains(&"available")
    })
    .await;
    let (status, offers) = nodes
        .get(other, "/api/v1/me/offers", Some(&waiter.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{offers}");
    let hold_id = offers["offers"][0]["hold_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, order) = nodes
        .checkout(other, &waiter.token, &hold_id, "offer")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_no_seat_sold_twice(&app, event_id).await;
}
