//! What a place survives: a restart with Redis, the sale being moved; and what it does not: nobody asking about it.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::*;

#[actix_web::test]
async fn places_and_admissions_survive_a_restart_with_redis() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let with_redis = |s: &mut boxoffice::config::Settings| {
        s.redis_url = Some(redis_url());
        s.redis_prefix = prefix.clone();
    };
    let first = spawn_app_with(with_redis).await;
    let organizer = first.organizer().await;
    let event_id = first.room_event(&organizer, ROOM).await;
    let buyers = first.quick_buyers(30).await;
    for buyer in &buyers {
        first.join(event_id, &buyer.token).await;
    }
    first.start_sale();
    first
        .control(&organizer, event_id, json!({"paused": true}))
        .await;
    first.admit_pass(event_id).await;
    first
        .control(&organizer, event_id, json!({"paused": false}))
        .await;
    first.clock.advance(Duration::milliseconds(500));
    let admitted = first.admit_pass(event_id).await;
    assert!(admitted > 0 && admitted < 30, "{admitted}");
    // Paused (in Postgres too), so the new node admits nobody before we compare.
    first
        .control(&organizer, event_id, json!({"paused": true}))
        .await;
    let mut before = Vec::new();
    for buyer in &buyers {
        let (_, place) = first.place(event_id, &buyer.token).await;
        before.push(place);
    }

    // Everything reached Redis (it is written behind), then a new node starts from it.
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let line = format!("{prefix}:queue:{event_id}:line");
    let admissions = format!("{prefix}:queue:{event_id}:admitted");
    first
        .eventually("the line is saved", || {
            let mut conn = conn.clone();
            let (line, admissions) = (line.clone(), admissions.clone());
            async move {
                let waiting: u64 = redis::cmd("ZCARD")
                    .arg(&line)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(0);
                let let_in: u64 = redis::cmd("HLEN")
                    .arg(&admissions)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(0);
                waiting == 30 - admitted && let_in == admitted
            }
        })
        .await;
    // The first node stops (giving its on-sales up); another takes over from Redis.
    first.stop_owning().await;
    let second = spawn_app_sharing(&first, with_redis).await;
    second
        .clock
        .advance(Duration::hours(1) + Duration::seconds(2));
    for (buyer, earlier) in buyers.iter().zip(&before) {
        let (status, place) = second.place(event_id, &buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["state"], earlier["state"]);
        assert_eq!(
            place["position"], earlier["position"],
            "{place} vs {earlier}"
        );
        assert_eq!(
            place["admission_token"], earlier["admission_token"],
            "the same session"
        );
    }
    let newcomer = second.quick_buyers(1).await;
    let (_, place) = second.join(event_id, &newcomer[0].token).await;
    assert_eq!(
        position(&place),
        30 - admitted + 1,
        "new arrivals still go to the back"
    );
    let _: () = redis::cmd("DEL")
        .arg(&line)
        .arg(&admissions)
        .arg(format!("{prefix}:queue:{event_id}:started"))
        .query_async(&mut conn)
        .await
        .unwrap_or(());
}

#[actix_web::test]
async fn places_nobody_asks_about_are_dropped() {
    let app = spawn_app_with(|s| s.queue_abandon_after = std::time::Duration::from_secs(120)).await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let buyers = app.quick_buyers(3).await;
    for buyer in &buyers {
        app.join(event_id, &buyer.token).await;
    }
    app.start_sale();
    for buyer in &buyers {
        app.place(event_id, &buyer.token).await;
    }
    app.control(&organizer, event_id, json!({"paused": true}))
        .await;
    app.admit_pass(event_id).await;
    app.clock.advance(Duration::seconds(100));
    app.place(event_id, &buyers[2].token).await;
    app.clock.advance(Duration::seconds(30));
    app.admit_pass(event_id).await;
    let stats = app.room_stats(&organizer, event_id).await;
    assert_eq!(stats["waiting"], 1, "{stats}");
    let (_, place) = app.place(event_id, &buyers[2].token).await;
    assert_eq!(position(&place), 1);
    let (status, body) = app.place(event_id, &buyers[0].token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
}

#[actix_web::test]
async fn moving_the_sale_keeps_the_places_and_the_sockets_of_the_line() {
    // Sockets are told only what the room pushes: no periodic re-read to hide a lost watcher.
    let app = spawn_app_with(|s| s.queue_push_every = std::time::Duration::from_secs(600)).await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let (early, late) = (app.buyer().await, app.buyer().await);
    for buyer in [&early, &late] {
        let (status, place) = app.join(event_id, &buyer.token).await;
        assert_eq!(
            (status, place["phase"].clone()),
            (StatusCode::OK, json!("pre_queue")),
            "{place}"
        );
    }
    let mut socket = watch(&app, event_id, &early.token).await;
    assert_eq!(next_message(&mut socket).await["phase"], "pre_queue");

    // The organizer brings the sale forward by half an hour while people wait.
    let now = chrono::Utc::now();
    let starts = now + Duration::minutes(30);
    let (status, body) = app
        .put(
            &format!("/api/v1/events/{event_id}/onsale"),
            Some(&organizer.token),
            &json!({
                "sale_starts_at": starts, "sale_ends_at": days_from_now(9), "hold_minutes": 8,
                "max_per_order": ROOM.max_per_order,
                "waiting_room": {"queue_opens_at": now - Duration::minutes(1),
                                 "admission_per_minute": ROOM.admission_per_minute}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Both places are still there, under the new start.
    for buyer in [&early, &late] {
        let (status, place) = app.place(event_id, &buyer.token).await;
        assert_eq!(
            (status, place["phase"].clone()),
            (StatusCode::OK, json!("pre_queue")),
            "{place}"
        );
        let shown = chrono::DateTime::parse_from_rfc3339(&string(&place["sale_starts_at"]))
            .unwrap_or_else(|e| panic!("{e}: {place}"));
        assert!(
            (shown.timestamp() - starts.timestamp()).abs() <= 1,
            "{place}"
        );
    }
    let stats = app
        .rooms
        .stats(event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.waiting, 2, "{stats:?}");

    // The socket opened before the move hears of the admission the moment it happens.
    app.start_sale();
    app.admit_pass(event_id).await;
    let news = loop {
        let news = next_message(&mut socket).await;
        if news["state"] == "admitted" {
            break news;
        }
    };
    assert!(news["admission_token"].is_string(), "{news}");
}
