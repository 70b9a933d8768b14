//! With Redis configured, live holds outlive the node that took them.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{assert_error, redis_url, spawn_app_sharing, spawn_app_with, uuid};

#[actix_web::test]
async fn holds_mirrored_to_redis_come_back_after_a_restart() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let with_redis = |s: &mut boxoffice::config::Settings| {
        s.redis_url = Some(redis_url());
        s.redis_prefix = prefix.clone();
    };
    let first = spawn_app_with(with_redis).await;
    let organizer = first.organizer().await;
    let (_, event_id) = first.on_sale_event(&organizer.token).await;
    let (holder, rival) = (first.buyer().await, first.buyer().await);
    let a = first.seat_ids(event_id, 0).await;
    let (status, seats_hold) = first
        .hold(&holder.token, event_id, &json!({"seat_ids": [a[0], a[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, detail) = first.get(&format!("/api/v1/events/{event_id}"), None).await;
    let general = detail["tiers"][0]["tier_id"].clone();
    let (status, _) = first
        .hold(
            &holder.token,
            event_id,
            &json!({"tier_id": general, "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, released) = first
        .hold(&rival.token, event_id, &json!({"seat_ids": [a[5]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    first
        .call(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/holds/{}",
                released["hold_id"].as_str().unwrap_or_default()
            ),
            Some(&rival.token),
            None,
        )
        .await;

    // The node stops (giving its on-sales up); a new node (or this one restarted) rebuilds
    // the event from Postgres and Redis.
    first.stop_owning().await;
    let second = spawn_app_sharing(&first, with_redis).await;
    second
        .eventually("the restarted node shows the holds", || async {
            let states = second.seat_states(event_id).await;
            states.get(&a[0]).map(String::as_str) == Some("held")
                && states.get(&a[1]).map(String::as_str) == Some("held")
        })
        .await;
    let states = second.seat_states(event_id).await;
    assert_eq!(states[&a[5]], "available", "a released hold stays released");
    let (status, body) = second
        .hold(&rival.token, event_id, &json!({"seat_ids": [a[0]]}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "seat_unavailable");
    let (_, detail) = second
        .get(&format!("/api/v1/events/{event_id}"), None)
        .await;
    assert_eq!(detail["tiers"][0]["available"], 78);
    let path = format!(
        "/api/v1/holds/{}",
        seats_hold["hold_id"].as_str().unwrap_or_default()
    );
    let (status, hold) = second.get(&path, Some(&holder.token)).await;
    assert_eq!(status, StatusCode::OK, "{hold}");
    assert_eq!(hold["expires_at"], seats_hold["expires_at"]);
    let (status, order) = second
        .checkout(
            &holder.token,
            &seats_hold["hold_id"],
            "after-restart",
            "tok_ok",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(
        order["tickets"]
            .as_array()
            .map(|t| t.iter().map(|t| uuid(&t["seat_id"])).collect::<Vec<_>>()),
        Some(vec![a[0], a[1]])
    );

    // Holds whose time ran out while the node was down are not restored.
    second.stop_owning().await;
    let third = spawn_app_sharing(&first, with_redis).await;
    third.clock.advance(Duration::minutes(9));
    let (_, detail) = third.get(&format!("/api/v1/events/{event_id}"), None).await;
    let _ = detail;
    let states = third.seat_states(event_id).await;
    assert_eq!(states[&a[0]], "sold");
    assert!(
        states.values().filter(|s| *s == "held").count() == 0,
        "{states:?}"
    );
}

#[actix_web::test]
async fn a_hold_bought_just_before_a_crash_is_not_counted_as_held_again() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let with_redis = |s: &mut boxoffice::config::Settings| {
        s.redis_url = Some(redis_url());
        s.redis_prefix = prefix.clone();
    };
    let first = spawn_app_with(with_redis).await;
    let organizer = first.organizer().await;
    let (_, event_id) = first.on_sale_event(&organizer.token).await;
    let buyer = first.buyer().await;
    let (_, detail) = first.get(&format!("/api/v1/events/{event_id}"), None).await;
    let general = detail["tiers"][0]["tier_id"].clone();
    let (status, hold) = first
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": general, "quantity": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let hold_id = uuid(&hold["hold_id"]);
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("{e}"));
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let key = format!("{prefix}:hold:{event_id}:{hold_id}");
    let mut mirrored: Option<String> = None;
    first
        .eventually("the hold is mirrored", || {
            let (mut redis, key) = (redis.clone(), key.clone());
            async move {
                let found: Option<String> = redis::AsyncCommands::get(&mut redis, key)
                    .await
                    .unwrap_or(None);
                found.is_some()
            }
        })
        .await;
    if let Ok(found) = redis::AsyncCommands::get(&mut redis, &key).await {
        mirrored = found;
    }
    let (status, order) = first
        .checkout(&buyer.token, &hold["hold_id"], "k", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

    // The node dies after the order's commit but before the mirror let go of the hold.
    first.stop_owning().await;
    let mirrored = mirrored.unwrap_or_else(|| panic!("no mirrored hold"));
    let _: () = redis::AsyncCommands::set(&mut redis, &key, mirrored)
        .await
        .unwrap_or(());
    let _: () = redis::AsyncCommands::sadd(
        &mut redis,
        format!("{prefix}:holds:{event_id}"),
        hold_id.to_string(),
    )
    .await
    .unwrap_or(());

    let second = spawn_app_sharing(&first, with_redis).await;
    let (status, again) = second
        .checkout(&buyer.token, &hold["hold_id"], "k", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["order_id"], order["order_id"], "the same order");
    second
        .engine
        .inventory(event_id, Vec::new(), 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let available = second
        .engine
        .counts(event_id)
        .await
        .and_then(|c| c.tiers.first().map(|t| t.1));
    assert_eq!(available, Some(80 - 3), "sold once, not held as well");
    let _: () = redis::AsyncCommands::del(
        &mut redis,
        vec![
            key,
            format!("{prefix}:holds:{event_id}"),
            format!("{prefix}:epoch:{event_id}"),
        ],
    )
    .await
    .unwrap_or(());
}
