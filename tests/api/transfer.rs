//! After the sale: a ticket's holder gives it to someone else, once; the ledger tells
//! every change; the old QR code is dead.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app, uuid, Account, TestApp};

impl TestApp {
    /// `buyer` buys `n` seats of section 0 of `event_id`; their tickets.
    pub async fn bought(&self, buyer: &Account, event_id: Uuid, n: usize) -> Vec<Value> {
        let seats = self.seat_ids(event_id, 0).await;
        let taken = self.seat_states(event_id).await;
        let free: Vec<_> = seats
            .iter()
            .filter(|s| taken[*s] == "available")
            .take(n)
            .collect();
        let (status, hold) = self
            .hold(&buyer.token, event_id, &json!({"seat_ids": free}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let key = Uuid::new_v4().to_string();
        let (status, order) = self
            .checkout(&buyer.token, &hold["hold_id"], &key, "tok_ok")
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        order["tickets"].as_array().cloned().unwrap_or_default()
    }

    pub async fn history(&self, token: &str, ticket_id: &Value) -> (StatusCode, Value) {
        let id = ticket_id.as_str().unwrap_or_default();
        self.get(&format!("/api/v1/tickets/{id}/history"), Some(token))
            .await
    }

    pub async fn transfer(
        &self,
        token: &str,
        ticket_id: &Value,
        email: &str,
    ) -> (StatusCode, Value) {
        let id = ticket_id.as_str().unwrap_or_default();
        self.post(
            &format!("/api/v1/tickets/{id}/transfer"),
            Some(token),
            &json!({ "email": email }),
        )
        .await
    }
}

fn kinds(history: &Value) -> Vec<String> {
    history["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_ticket_is_transferred_once_to_an_address_and_its_old_code_is_dead() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let tickets = app.bought(&buyer, event_id, 2).await;
    let (old, kept) = (&tickets[0], &tickets[1]);

    let (status, body) = app
        .transfer(&buyer.token, &old["ticket_id"], &buyer.email)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .transfer(&buyer.token, &old["ticket_id"], "not an address")
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let stranger = app.buyer().await;
    let (status, body) = app
        .transfer(&stranger.token, &old["ticket_id"], "x@example.com")
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

    let nobody = json!(Uuid::new_v4());
    let (status, body) = app.transfer(&buyer.token, &nobody, "x@example.com").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.history(&buyer.token, &nobody).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .post(
            &format!(
                "/api/v1/tickets/{}/transfer",
                old["ticket_id"].as_str().unwrap_or_default()
            ),
            Some(&buyer.token),
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");

    let friend = format!("friend-{}@example.com", Uuid::new_v4().simple());
    let (status, moved) = app.transfer(&buyer.token, &old["ticket_id"], &friend).await;
    assert_eq!(status, StatusCode::CREATED, "{moved}");
    let new = &moved["ticket"];
    assert_eq!(new["status"], "VALID");
    assert_eq!(new["label"], old["label"]);
    assert_ne!(new["qr_token"], old["qr_token"], "a new code");
    assert_ne!(new["ticket_id"], old["ticket_id"]);

    // The giver sees the old ticket TRANSFERRED, never the new code, in their tickets and
    // their order.
    let (_, mine) = app.get("/api/v1/me/tickets", Some(&buyer.token)).await;
    let statuses: Vec<(Value, Value)> = mine["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["ticket_id"].clone(), t["status"].clone()))
        .collect();
    assert!(
        statuses.contains(&(old["ticket_id"].clone(), json!("TRANSFERRED"))),
        "{mine}"
    );
    assert!(
        statuses.contains(&(kept["ticket_id"].clone(), json!("VALID"))),
        "{mine}"
    );
    assert!(
        !mine
            .to_string()
            .contains(new["qr_token"].as_str().unwrap_or("?")),
        "{mine}"
    );
    let order_id = uuid(&mine["tickets"][0]["order_id"]);
    let (_, order) = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&buyer.token))
        .await;
    assert!(
        !order
            .to_string()
            .contains(new["qr_token"].as_str().unwrap_or("?")),
        "{order}"
    );
    let qr = format!(
        "/api/v1/tickets/{}/qr.svg",
        new["ticket_id"].as_str().unwrap_or_default()
    );
    let (status, _) = app.get(&qr, Some(&buyer.token)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the giver cannot show the new code"
    );

    // Once: neither the old ticket nor the new one moves again.
    let (status, body) = app
        .transfer(&buyer.token, &old["ticket_id"], "other@example.com")
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "transfer_not_allowed");

    // The recipient signs up with the address and holds the new ticket.
    let recipient = app.signup_as("buyer", &friend).await;
    let (_, theirs) = app.get("/api/v1/me/tickets", Some(&recipient.token)).await;
    assert_eq!(
        theirs["tickets"].as_array().map(Vec::len),
        Some(1),
        "{theirs}"
    );
    assert_eq!(theirs["tickets"][0]["ticket_id"], new["ticket_id"]);
    assert_eq!(theirs["tickets"][0]["event_id"], json!(event_id));
    let (status, _) = app.get(&qr, Some(&recipient.token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .transfer(&recipient.token, &new["ticket_id"], "third@example.com")
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "transfer_not_allowed");

    // The ledger tells it, for the holder and the organizer, and to nobody else.
    let (status, history) = app.history(&buyer.token, &old["ticket_id"]).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(kinds(&history), ["ISSUED", "TRANSFERRED_OUT"]);
    assert_eq!(history["entries"][1]["to"], json!(friend));
    assert_eq!(history["entries"][1]["other_ticket_id"], new["ticket_id"]);
    let (_, history) = app.history(&recipient.token, &new["ticket_id"]).await;
    assert_eq!(kinds(&history), ["TRANSFERRED_IN"]);
    assert_eq!(
        history["entries"][0]["from"],
        json!(buyer.user_id.to_string())
    );
    let (status, _) = app.history(&organizer.token, &new["ticket_id"]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.history(&stranger.token, &new["ticket_id"]).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let other_organizer = app.organizer().await;
    let (status, _) = app.history(&other_organizer.token, &new["ticket_id"]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Every ticket has a ledger that starts with its issue or its arrival, and the ledger
    // cannot be rewritten.
    let unledgered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets t WHERE NOT EXISTS \
         (SELECT 1 FROM ticket_ledger l WHERE l.ticket_id = t.ticket_id)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap_or(-1);
    assert_eq!(unledgered, 0);
    let rewrite = sqlx::query("UPDATE ticket_ledger SET reason = 'x'")
        .execute(&app.pool)
        .await;
    assert!(rewrite.is_err(), "the ledger is append-only");
    let erase = sqlx::query("DELETE FROM ticket_ledger")
        .execute(&app.pool)
        .await;
    assert!(erase.is_err(), "the ledger is append-only");
}

#[actix_web::test]
async fn transfers_close_when_the_organizer_says_and_a_known_address_gets_it_at_once() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let tickets = app.bought(&buyer, event_id, 2).await;
    let friend = app.buyer().await;

    let (status, moved) = app
        .transfer(
            &buyer.token,
            &tickets[0]["ticket_id"],
            &friend.email.to_uppercase(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{moved}");
    let (_, theirs) = app.get("/api/v1/me/tickets", Some(&friend.token)).await;
    assert_eq!(
        theirs["tickets"][0]["ticket_id"], moved["ticket"]["ticket_id"],
        "{theirs}"
    );

    let (status, body) = app
        .put(
            &format!("/api/v1/events/{event_id}/door"),
            Some(&organizer.token),
            &json!({"transfers_allowed": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .transfer(&buyer.token, &tickets[1]["ticket_id"], &friend.email)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "transfer_not_allowed");
    let now = chrono::Utc::now();
    let (status, body) = app
        .put(
            &format!("/api/v1/events/{event_id}/door"),
            Some(&organizer.token),
            &json!({"checkin_opens_at": now, "checkin_closes_at": now - chrono::Duration::hours(1)}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        body["error"]["fields"]["checkin_closes_at"].is_string(),
        "{body}"
    );
    let (status, body) = app
        .put(
            &format!("/api/v1/events/{event_id}/door"),
            Some(&friend.token),
            &json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
}
