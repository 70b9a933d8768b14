//! Waiting rooms for tests: an event whose room is open, and its steps.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;

/// How a test's waiting room is set up.
pub struct Room {
    pub admission_per_minute: i64,
    pub max_per_order: i64,
    /// A 12-place standing venue instead of the standard 122 places.
    pub tiny: bool,
}

pub const ROOM: Room = Room {
    admission_per_minute: 600,
    max_per_order: 6,
    tiny: false,
};

impl TestApp {
    /// A published event whose waiting room is open now and whose sale starts in an hour.
    pub async fn room_event(&self, organizer: &Account, room: Room) -> Uuid {
        let (venue_id, pricing) = if room.tiny {
            let (status, venue) = self
                .create_venue(
                    &organizer.token,
                    &json!({
                        "name": "The Back Room", "address": "1 Side Street", "city": "Leeds",
                        "latitude": 53.8, "longitude": -1.5, "timezone": "Europe/London",
                        "venue_type": "CLUB", "facilities": {},
                        "layout": {"sections": [{"name": "Floor", "kind": "general_admission", "capacity": 12}]}
                    }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{venue}");
            let floor = venue["sections"][0]["section_id"].clone();
            (
                uuid(&venue["venue_id"]),
                json!({"currency": "EUR", "sections": [], "tiers": [
                    {"section_id": floor, "name": "GENERAL", "price_cents": 2500, "quantity": 12, "max_per_order": 6}
                ]}),
            )
        } else {
            let venue = self.standard_venue(&organizer.token).await;
            (venue.venue_id, standard_pricing(&venue))
        };
        let event_id = self.draft_event(&organizer.token, venue_id, 9).await;
        let (status, body) = self.set_pricing(&organizer.token, event_id, &pricing).await;
        assert_eq!(status, StatusCode::OK, "pricing: {body}");
        let now = chrono::Utc::now();
        let (status, body) = self
            .set_onsale(
                &organizer.token,
                event_id,
                &json!({
                    "sale_starts_at": now + Duration::hours(1),
                    "sale_ends_at": days_from_now(9),
                    "hold_minutes": 8,
                    "max_per_order": room.max_per_order,
                    "waiting_room": {"queue_opens_at": now - Duration::minutes(1),
                                     "admission_per_minute": room.admission_per_minute}
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "onsale: {body}");
        let (status, body) = self.publish(&organizer.token, event_id).await;
        assert_eq!(status, StatusCode::OK, "publish: {body}");
        event_id
    }

    /// Moves the clock past the sale start (an hour and a second).
    pub fn start_sale(&self) {
        self.clock
            .advance(Duration::hours(1) + Duration::seconds(1));
    }

    pub async fn join(&self, event_id: Uuid, token: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/queue"),
            Some(token),
            &json!({}),
        )
        .await
    }

    pub async fn visitor(&self) -> String {
        crate::helpers::visitor_token(&self.client, &self.address).await
    }

    pub async fn claim(&self, event_id: Uuid, buyer: &str, visitor: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/queue/claim"),
            Some(buyer),
            &json!({"visitor_token": visitor}),
        )
        .await
    }

    pub async fn place(&self, event_id: Uuid, token: &str) -> (StatusCode, Value) {
        self.get(&format!("/api/v1/events/{event_id}/queue"), Some(token))
            .await
    }

    /// `buyers` join in the pre-queue and the sale starts; answers them in their drawn
    /// order, nobody admitted yet.
    pub async fn line_up(
        &self,
        organizer: &Account,
        event_id: Uuid,
        buyers: &[Account],
    ) -> Vec<Account> {
        for buyer in buyers {
            self.join(event_id, &buyer.token).await;
        }
        self.start_sale();
        self.control(organizer, event_id, json!({"paused": true}))
            .await;
        self.admit_pass(event_id).await;
        let mut by_place = Vec::new();
        for buyer in buyers {
            let (_, place) = self.place(event_id, &buyer.token).await;
            by_place.push((position(&place), buyer.clone()));
        }
        by_place.sort_by_key(|(p, _)| *p);
        self.control(organizer, event_id, json!({"paused": false}))
            .await;
        by_place.into_iter().map(|(_, b)| b).collect()
    }

    /// An admission pass, now; how many were let in.
    pub async fn admit_pass(&self, event_id: Uuid) -> u64 {
        self.rooms
            .admit_now(event_id)
            .await
            .unwrap_or_else(|e| panic!("admission pass: {e}"))
    }

    pub async fn control(&self, organizer: &Account, event_id: Uuid, body: Value) -> Value {
        let (status, stats) = self
            .patch(
                &format!("/api/v1/events/{event_id}/queue"),
                Some(&organizer.token),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        stats
    }

    pub async fn room_stats(&self, organizer: &Account, event_id: Uuid) -> Value {
        let (status, stats) = self
            .get(
                &format!("/api/v1/events/{event_id}/queue/stats"),
                Some(&organizer.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        stats
    }

    /// The buyer's admission token (they must have been let in).
    pub async fn admission(&self, event_id: Uuid, token: &str) -> String {
        let (status, place) = self.place(event_id, token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["state"], "admitted", "{place}");
        string(&place["admission_token"])
    }

    /// A hold sent with an admission token (or none).
    pub async fn admitted_hold(
        &self,
        token: &str,
        admission: Option<&str>,
        event_id: Uuid,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/events/{event_id}/holds")))
            .bearer_auth(token)
            .json(body);
        if let Some(admission) = admission {
            request = request.header("X-Admission-Token", admission);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("hold: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn admitted_checkout(
        &self,
        token: &str,
        admission: Option<&str>,
        hold_id: &Value,
    ) -> (StatusCode, Value) {
        let key = Uuid::new_v4().to_string();
        self.admitted_checkout_keyed(token, admission, hold_id, &key)
            .await
    }

    /// A checkout with an admission token (or none) and the given `Idempotency-Key`.
    pub async fn admitted_checkout_keyed(
        &self,
        token: &str,
        admission: Option<&str>,
        hold_id: &Value,
        key: &str,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(&format!(
                "/api/v1/holds/{}/checkout",
                hold_id.as_str().unwrap_or_default()
            )))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"payment_token": "tok_ok"}));
        if let Some(admission) = admission {
            request = request.header("X-Admission-Token", admission);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("checkout: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn general_tier(&self, event_id: Uuid) -> Value {
        let (_, detail) = self.get(&format!("/api/v1/events/{event_id}"), None).await;
        detail["tiers"][0]["tier_id"].clone()
    }
}

pub fn position(place: &Value) -> u64 {
    place["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position in {place}"))
}
