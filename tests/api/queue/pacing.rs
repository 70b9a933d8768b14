//! Pacing: the pre-queue drawn at random, the organizer's rate, back-pressure from the inventory left, sold-out news, and shoppers counted at what they may still buy.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

use super::*;

#[actix_web::test]
async fn the_pre_queue_is_shuffled_at_the_start_and_later_arrivals_queue_in_order() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app.room_event(&organizer, ROOM).await;
    let early = app.quick_buyers(1000).await;
    for buyer in &early {
        let (status, place) = app.join(event_id, &buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["state"], "waiting");
        assert_eq!(place["phase"], "pre_queue");
        assert!(
            place.get("position").is_none(),
            "no place before the draw: {place}"
        );
    }
    // Joining again (another tab) keeps the one place.
    let (_, again) = app.join(event_id, &early[0].token).await;
    assert_eq!(again["waiting"], 1000);

    // The sale starts; admission is paused so the whole order can be read first.
    app.control(&organizer, event_id, json!({"paused": true}))
        .await;
    app.start_sale();
    assert_eq!(app.admit_pass(event_id).await, 0);
    let mut positions = Vec::with_capacity(early.len());
    for buyer in &early {
        let (status, place) = app.place(event_id, &buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{place}");
        assert_eq!(place["phase"], "line");
        assert_eq!(place["ahead"].as_u64(), Some(position(&place) - 1));
        positions.push(position(&place));
    }
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=1000).collect::<Vec<u64>>(), "a permutation");
    // Spearman's rank correlation between join order and place: about 0 for a fair shuffle
    // (its standard deviation is 1/sqrt(999) = 0.032); 1 for first come, first served.
    let n = early.len() as f64;
    let d2: f64 = positions
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64 + 1.0 - *p as f64).powi(2))
        .sum();
    let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
    assert!(
        rho.abs() < 0.15,
        "join order predicts the place: rho = {rho}"
    );
    let first_tenth_early = positions[..100].iter().filter(|p| **p <= 100).count();
    assert!(
        first_tenth_early < 30,
        "the first 100 to join took {first_tenth_early} of the first 100 places"
    );

    let late = app.quick_buyers(50).await;
    for (i, buyer) in late.iter().enumerate() {
        let (_, place) = app.join(event_id, &buyer.token).await;
        assert_eq!(
            position(&place),
            1001 + i as u64,
            "after the start: first in, first out"
        );
    }

    // Admission follows the places exactly.
    app.control(&organizer, event_id, json!({"paused": false}))
        .await;
    app.clock.advance(Duration::seconds(10));
    let admitted = app.admit_pass(event_id).await;
    assert!(admitted > 0 && admitted < 1000, "admitted {admitted}");
    for (buyer, place) in early.iter().zip(&positions) {
        let (_, now) = app.place(event_id, &buyer.token).await;
        let expected = if *place <= admitted {
            "admitted"
        } else {
            "waiting"
        };
        assert_eq!(
            now["state"], expected,
            "place {place} after {admitted} admitted: {now}"
        );
    }
    let (_, last) = app.place(event_id, &late[49].token).await;
    assert_eq!(position(&last), 1050 - admitted);
}

#[actix_web::test]
async fn admission_follows_the_organizers_rate_pause_and_resume() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(
            &organizer,
            Room {
                admission_per_minute: 60,
                max_per_order: 1,
                tiny: false,
            },
        )
        .await;
    let buyers = app.quick_buyers(200).await;
    for buyer in &buyers {
        app.join(event_id, &buyer.token).await;
    }
    app.start_sale();
    let first = app.admit_pass(event_id).await;
    assert!(first <= 2, "a second into the sale at 1/s: {first}");
    // Thirty seconds at 60 a minute: thirty (one more for the time the test itself takes).
    app.clock.advance(Duration::seconds(30));
    let batch = app.admit_pass(event_id).await;
    assert!((30..=31).contains(&batch), "admitted {batch}");

    let stats = app
        .control(&organizer, event_id, json!({"paused": true}))
        .await;
    assert_eq!(stats["paused"], true);
    app.clock.advance(Duration::seconds(30));
    assert_eq!(app.admit_pass(event_id).await, 0, "nobody while paused");
    let (_, place) = app.place(event_id, &buyers[199].token).await;
    assert!(
        place.get("eta_seconds").is_none(),
        "no estimate while paused: {place}"
    );

    let stats = app
        .control(
            &organizer,
            event_id,
            json!({"paused": false, "admission_per_minute": 120}),
        )
        .await;
    assert_eq!(stats["admission_per_minute"], 120);
    app.clock.advance(Duration::seconds(15));
    let resumed = app.admit_pass(event_id).await;
    assert!((30..=31).contains(&resumed), "15 s at 120/min: {resumed}");

    let total = first + batch + resumed;
    let stats = app.room_stats(&organizer, event_id).await;
    assert_eq!(stats["phase"], "selling");
    assert_eq!(stats["admitted_total"], total);
    assert_eq!(stats["admitted"], total);
    assert_eq!(stats["shopping"], total);
    assert_eq!(stats["waiting"], 200 - total);
    assert!(
        stats["eta_drain_seconds"].as_u64().is_some_and(|s| s > 0),
        "{stats}"
    );
    let (_, place) = app.place(event_id, &buyers[199].token).await;
    assert_eq!(position(&place), 200 - total);
    assert!(
        place["eta_seconds"].as_u64().is_some_and(|s| s > 0),
        "{place}"
    );
    // The settings stick: Postgres has them.
    let (paused, rate): (bool, i32) = sqlx::query_as(
        "SELECT admission_paused, admission_per_minute FROM onsales WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((paused, rate), (false, 120));
}

#[actix_web::test]
async fn admission_is_held_back_by_inventory_waits_while_all_is_held_and_sold_out_is_told_at_once()
{
    let app = spawn_app_with(|s| s.admission_window = std::time::Duration::from_secs(60)).await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(&organizer, Room { tiny: true, ..ROOM })
        .await;
    let buyers = app.quick_buyers(10).await;
    let order = app.line_up(&organizer, event_id, &buyers).await;
    app.clock.advance(Duration::seconds(10));

    // 12 tickets, up to 6 each: two shoppers could take everything.
    assert_eq!(app.admit_pass(event_id).await, 2);
    app.clock.advance(Duration::seconds(10));
    assert_eq!(
        app.admit_pass(event_id).await,
        0,
        "held back: 2 shoppers x 6 >= 12 left"
    );
    let tier = app.general_tier(event_id).await;

    // The first buys 6; the second may still take the other 6, so nobody else comes in yet.
    let (first, second) = (&order[0], &order[1]);
    let pass1 = app.admission(event_id, &first.token).await;
    let (status, hold) = app
        .admitted_hold(
            &first.token,
            Some(&pass1),
            event_id,
            &json!({"tier_id": tier, "quantity": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, order1) = app
        .admitted_checkout(&first.token, Some(&pass1), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order1}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0);

    // A waiting buyer watches their place over a socket.
    let watcher = &order[2];
    let mut socket = watch(&app, event_id, &watcher.token).await;
    let hello = next_message(&mut socket).await;
    assert_eq!(hello["type"], "queue");
    assert_eq!(hello["state"], "waiting");
    assert_eq!(hello["position"], 1);

    // The second holds the last 6. Nothing is free, but a hold may still come back: the
    // line waits rather than being sent home.
    let pass2 = app.admission(event_id, &second.token).await;
    let (status, last) = app
        .admitted_hold(
            &second.token,
            Some(&pass2),
            event_id,
            &json!({"tier_id": tier, "quantity": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{last}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0);
    let (_, place) = app.place(event_id, &watcher.token).await;
    assert_eq!(
        place["state"], "waiting",
        "all held is not sold out: {place}"
    );

    // The second's hold ends with their shopping window (a minute): the tickets come back
    // and go to the next in line.
    app.pass_time(event_id, Duration::seconds(61)).await;
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    assert_eq!(
        detail["tiers"][0]["available"], 6,
        "the expired hold's tickets are back"
    );
    assert_eq!(app.admit_pass(event_id).await, 1);
    loop {
        let news = next_message(&mut socket).await;
        if news["state"] == "admitted" {
            break;
        }
        assert_eq!(news["state"], "waiting", "{news}");
    }

    // The watcher buys the last 6: sold out for good. Everyone still waiting hears it at once.
    let mut other = watch(&app, event_id, &order[3].token).await;
    assert_eq!(next_message(&mut other).await["state"], "waiting");
    let pass3 = app.admission(event_id, &watcher.token).await;
    let (status, hold) = app
        .admitted_hold(
            &watcher.token,
            Some(&pass3),
            event_id,
            &json!({"tier_id": tier, "quantity": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, paid) = app
        .admitted_checkout(&watcher.token, Some(&pass3), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(app.admit_pass(event_id).await, 0);
    loop {
        let news = next_message(&mut other).await;
        if news["state"] == "sold_out" {
            break;
        }
        assert_eq!(news["state"], "waiting", "{news}");
    }
    let (_, place) = app.place(event_id, &order[9].token).await;
    assert_eq!(place["state"], "sold_out");
    let stats = app.room_stats(&organizer, event_id).await;
    assert_eq!(stats["phase"], "sold_out");
    assert_eq!(stats["waiting"], 0, "places are released");
    let newcomer = app.quick_buyers(1).await;
    let (status, joined) = app.join(event_id, &newcomer[0].token).await;
    assert_eq!(
        (status, joined["state"].clone()),
        (StatusCode::OK, json!("sold_out"))
    );
}

#[actix_web::test]
async fn a_shopper_counts_at_what_they_may_still_buy_until_their_session_ends() {
    let app = spawn_app_with(|s| s.admission_window = std::time::Duration::from_secs(60)).await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(&organizer, Room { tiny: true, ..ROOM })
        .await;
    let buyers = app.quick_buyers(4).await;
    let order = app.line_up(&organizer, event_id, &buyers).await;
    app.clock.advance(Duration::seconds(10));
    // 12 tickets, up to 6 a buyer (max_per_buyer defaults to max_per_order): two shoppers
    // could take everything.
    assert_eq!(app.admit_pass(event_id).await, 2);
    app.clock.advance(Duration::seconds(10));
    assert_eq!(app.admit_pass(event_id).await, 0);

    // The first holds 2: 10 left, and the two shoppers may still take 4 and 6 of them.
    let first = &order[0];
    let pass = app.admission(event_id, &first.token).await;
    let tier = app.general_tier(event_id).await;
    let (status, hold) = app
        .admitted_hold(
            &first.token,
            Some(&pass),
            event_id,
            &json!({"tier_id": tier, "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0, "10 left, 4 + 6 promised");

    // Buying does not end the session: the first may buy 4 more in another order, so
    // the room still keeps them for it.
    let (status, paid) = app
        .admitted_checkout(&first.token, Some(&pass), &hold["hold_id"])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(
        app.admit_pass(event_id).await,
        0,
        "10 left, still 4 + 6 promised after the purchase"
    );

    // Once the first is done (leaves the room), only the second's 6 are promised: room
    // for one more shopper.
    let queue = format!("/api/v1/events/{event_id}/queue");
    let (status, body) = app
        .call(Method::DELETE, &queue, Some(&first.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 1, "10 left - 6 promised");
    app.clock.advance(Duration::seconds(5));
    assert_eq!(app.admit_pass(event_id).await, 0, "10 left, 6 + 6 promised");
}

#[actix_web::test]
async fn leaving_frees_the_place_or_the_shopping_slot_for_the_next_buyer() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let event_id = app
        .room_event(&organizer, Room { tiny: true, ..ROOM })
        .await;
    let buyers = app.quick_buyers(4).await;
    let order = app.line_up(&organizer, event_id, &buyers).await;
    app.clock.advance(Duration::seconds(10));
    // 12 tickets, up to 6 each: two shoppers, then the room holds back.
    assert_eq!(app.admit_pass(event_id).await, 2);
    app.clock.advance(Duration::seconds(10));
    assert_eq!(app.admit_pass(event_id).await, 0);

    // A shopper leaves without buying: their token stops working, and the next buyer in
    // line is let in at the next pass.
    let leaver = &order[0];
    let pass = app.admission(event_id, &leaver.token).await;
    let queue = format!("/api/v1/events/{event_id}/queue");
    let (status, body) = app
        .call(Method::DELETE, &queue, Some(&leaver.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let tier = app.general_tier(event_id).await;
    let (status, body) = app
        .admitted_hold(
            &leaver.token,
            Some(&pass),
            event_id,
            &json!({"tier_id": tier, "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.place(event_id, &leaver.token).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    app.clock.advance(Duration::seconds(10));
    assert_eq!(
        app.admit_pass(event_id).await,
        1,
        "the freed slot goes to the next buyer"
    );
    let (_, next) = app.place(event_id, &order[2].token).await;
    assert_eq!(next["state"], "admitted", "{next}");

    // A waiting buyer leaves: nobody is left behind them, and leaving twice is refused.
    let (_, before) = app.place(event_id, &order[3].token).await;
    assert_eq!(before["position"], 1, "{before}");
    let (status, _) = app
        .call(Method::DELETE, &queue, Some(&order[3].token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(Method::DELETE, &queue, Some(&order[3].token), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_in_queue");
    let stats = app
        .rooms
        .stats(event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((stats.waiting, stats.shopping), (0, 2), "{stats:?}");
    let (status, body) = app.call(Method::DELETE, &queue, None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}
