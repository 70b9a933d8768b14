//! The waiting room's door: a proof of work for every visitor token, and for every new
//! place in a room whose on-sale asks for it (always, or above a join rate, switched live
//! by the organizer). Each solved challenge opens the door once, on any node.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, days_from_now, redis_url, solve, spawn_app, spawn_app_sharing, spawn_app_with,
    string, Account, TestApp,
};

impl TestApp {
    /// A published event whose waiting room is open now, its door as `door` says.
    async fn door_event(&self, organizer: &Account, door: Value) -> Uuid {
        let venue = self.standard_venue(&organizer.token).await;
        let event_id = self.ready_event(&organizer.token, &venue, 9).await;
        let now = chrono::Utc::now();
        let mut room =
            json!({"queue_opens_at": now - Duration::minutes(1), "admission_per_minute": 600});
        if let (Some(room), Some(door)) = (room.as_object_mut(), door.as_object()) {
            room.extend(door.clone());
        }
        let (status, body) = self
            .set_onsale(
                &organizer.token,
                event_id,
                &json!({"sale_starts_at": now + Duration::hours(1), "sale_ends_at": days_from_now(9),
                        "max_per_order": 4, "waiting_room": room}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self.publish(&organizer.token, event_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        event_id
    }

    /// Joins with `proof` as `X-Proof-Of-Work` (or none).
    async fn join_with(
        &self,
        event_id: Uuid,
        token: &str,
        proof: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/events/{event_id}/queue")))
            .bearer_auth(token)
            .json(&json!({}));
        if let Some(proof) = proof {
            request = request.header("X-Proof-Of-Work", proof);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("join: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn mint_visitor(&self, proof: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url("/api/v1/visitors"));
        if let Some(proof) = proof {
            request = request.header("X-Proof-Of-Work", proof);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("visitor: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn challenge(&self, path: &str) -> Value {
        let (status, challenge) = self.get(path, None).await;
        assert_eq!(status, StatusCode::OK, "{challenge}");
        challenge
    }
}

fn assert_refused(status: StatusCode, body: &Value, reason: &str) {
    assert_error(status, body, StatusCode::FORBIDDEN, "proof_of_work_invalid");
    assert_eq!(body["error"]["reason"], reason, "{body}");
}

#[actix_web::test]
async fn a_visitor_token_costs_a_solved_challenge_that_opens_the_door_once() {
    let app = spawn_app().await;
    // Without a proof: refused, with a challenge to solve.
    let (status, body) = app.mint_visitor(None).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "proof_of_work_required",
    );
    let challenge = &body["error"]["challenge"];
    assert_eq!(challenge["algorithm"], "SHA-256", "{body}");
    assert_eq!(
        challenge["maxnumber"], 2000,
        "the server's difficulty: {body}"
    );

    let proof = solve(challenge);
    let (status, visitor) = app.mint_visitor(Some(&proof)).await;
    assert_eq!(status, StatusCode::CREATED, "{visitor}");
    // The same solution again: a thousand identities cost a thousand solutions.
    let (status, body) = app.mint_visitor(Some(&proof)).await;
    assert_refused(status, &body, "used");

    // Junk, a wrong number, and a challenge solved for something else.
    let (status, body) = app.mint_visitor(Some("not a payload")).await;
    assert_refused(status, &body, "malformed");
    let mut wrong: Value =
        serde_json::from_str(&solve(&app.challenge("/api/v1/visitors/challenge").await))
            .unwrap_or_default();
    wrong["number"] = json!(wrong["number"].as_u64().unwrap_or(0) + 1);
    let (status, body) = app.mint_visitor(Some(&wrong.to_string())).await;
    assert_refused(status, &body, "wrong");
    let join = app
        .challenge(&format!(
            "/api/v1/events/{}/queue/challenge",
            Uuid::new_v4()
        ))
        .await;
    let (status, body) = app.mint_visitor(Some(&solve(&join))).await;
    assert_refused(status, &body, "other_purpose");

    // A challenge is good for its lifetime only.
    let late = solve(&app.challenge("/api/v1/visitors/challenge").await);
    app.clock.advance(Duration::minutes(6));
    let (status, body) = app.mint_visitor(Some(&late)).await;
    assert_refused(status, &body, "expired");
}

#[actix_web::test]
async fn a_door_set_to_always_asks_every_new_place_for_its_own_proof() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app
        .door_event(&organizer, json!({"proof_of_work": "always"}))
        .await;
    let other_event = app.door_event(&organizer, json!({})).await;
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(
        detail["onsale"]["waiting_room"]["proof_of_work"], "always",
        "{detail}"
    );
    let buyers = app.quick_buyers(2).await;

    let (status, body) = app.join_with(event_id, &buyers[0].token, None).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "proof_of_work_required",
    );
    let proof = solve(&body["error"]["challenge"]);
    let (status, place) = app
        .join_with(event_id, &buyers[0].token, Some(&proof))
        .await;
    assert_eq!(status, StatusCode::OK, "{place}");
    assert_eq!(place["state"], "waiting");
    // Joining again keeps the place and costs nothing.
    let (status, again) = app.join_with(event_id, &buyers[0].token, None).await;
    assert_eq!(status, StatusCode::OK, "{again}");

    // Another buyer cannot ride on the first one's solution, nor on one for another room.
    let (status, body) = app
        .join_with(event_id, &buyers[1].token, Some(&proof))
        .await;
    assert_refused(status, &body, "used");
    let elsewhere = app
        .challenge(&format!("/api/v1/events/{other_event}/queue/challenge"))
        .await;
    let (status, body) = app
        .join_with(event_id, &buyers[1].token, Some(&solve(&elsewhere)))
        .await;
    assert_refused(status, &body, "other_purpose");
    // A room whose door is off asks nothing.
    let (status, place) = app.join_with(other_event, &buyers[1].token, None).await;
    assert_eq!(status, StatusCode::OK, "{place}");
}

#[actix_web::test]
async fn an_auto_door_opens_proofs_above_the_join_rate_and_the_organizer_steers_it_live() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.door_event(&organizer, json!({})).await;
    let queue = format!("/api/v1/events/{event_id}/queue");
    let (status, stats) = app
        .patch(
            &queue,
            Some(&organizer.token),
            &json!({"proof_of_work": "auto", "proof_of_work_joins_per_minute": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["proof_of_work"], "auto");
    assert_eq!(stats["proof_of_work_asked"], false);

    let buyers = app.quick_buyers(6).await;
    for buyer in &buyers[..3] {
        let (status, place) = app.join_with(event_id, &buyer.token, None).await;
        assert_eq!(status, StatusCode::OK, "below the rate: {place}");
    }
    // Three joined this minute: the door now asks the fourth.
    let (status, body) = app.join_with(event_id, &buyers[3].token, None).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "proof_of_work_required",
    );
    let (_, stats) = app
        .get(&format!("{queue}/stats"), Some(&organizer.token))
        .await;
    assert_eq!(
        (
            stats["joins_last_minute"].clone(),
            stats["proof_of_work_asked"].clone()
        ),
        (json!(3), json!(true)),
        "{stats}"
    );
    let (status, place) = app
        .join_with(
            event_id,
            &buyers[3].token,
            Some(&solve(&body["error"]["challenge"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{place}");

    // A minute later the rush is over and the door lets people in freely again.
    app.clock.advance(Duration::seconds(61));
    let (status, place) = app.join_with(event_id, &buyers[4].token, None).await;
    assert_eq!(status, StatusCode::OK, "{place}");

    // The organizer switches it on for everyone, then off, while the room runs; the choice
    // is kept (a restarted room reads it back).
    let (status, stats) = app
        .patch(
            &queue,
            Some(&organizer.token),
            &json!({"proof_of_work": "always"}),
        )
        .await;
    assert_eq!(
        (status, stats["proof_of_work_asked"].clone()),
        (StatusCode::OK, json!(true)),
        "{stats}"
    );
    let (status, body) = app.join_with(event_id, &buyers[5].token, None).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "proof_of_work_required",
    );
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(detail["onsale"]["waiting_room"]["proof_of_work"], "always");
    assert_eq!(
        detail["onsale"]["waiting_room"]["proof_of_work_joins_per_minute"],
        3
    );
    let (status, _) = app
        .patch(
            &queue,
            Some(&organizer.token),
            &json!({"proof_of_work": "off"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, place) = app.join_with(event_id, &buyers[5].token, None).await;
    assert_eq!(status, StatusCode::OK, "{place}");

    // Odd settings name the field.
    let (status, body) = app
        .patch(
            &queue,
            Some(&organizer.token),
            &json!({"proof_of_work": "sometimes", "proof_of_work_joins_per_minute": 0}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    for field in ["proof_of_work", "proof_of_work_joins_per_minute"] {
        assert!(
            body["error"]["fields"].get(field).is_some(),
            "{field}: {body}"
        );
    }
}

#[actix_web::test]
async fn a_challenge_spent_on_one_node_is_refused_on_another() {
    let prefix = format!("boxoffice-test-{}", Uuid::new_v4().simple());
    let with_redis = |s: &mut boxoffice::config::Settings| {
        s.redis_url = Some(redis_url());
        s.redis_prefix = prefix.clone();
    };
    let first = spawn_app_with(with_redis).await;
    let second = spawn_app_sharing(&first, with_redis).await;
    let challenge = first.challenge("/api/v1/visitors/challenge").await;
    let proof = solve(&challenge);
    let (status, visitor) = first.mint_visitor(Some(&proof)).await;
    assert_eq!(status, StatusCode::CREATED, "{visitor}");
    let (status, body) = second.mint_visitor(Some(&proof)).await;
    assert_refused(status, &body, "used");

    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:pow:{}", string(&challenge["challenge"])))
        .query_async(&mut conn)
        .await
        .unwrap_or(());
}
