//! The live map in order: holds, releases, expiry and sales as numbered deltas, hold news for the holder, and exact catch-up on reconnect.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

use super::*;

#[actix_web::test]
async fn a_viewer_sees_holds_releases_expiry_and_sales_in_order_and_the_holder_hears_of_each() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let a = app.seat_ids(event_id, 0).await;
    let buyer = app.buyer().await;

    let mut viewer = Watcher::connect(&app, event_id, "").await;
    assert!(a.iter().all(|id| viewer.seat(*id) == "available"));
    assert_eq!(viewer.sections[&venue.seated[0]], 12);
    assert_eq!(
        viewer.sections[&venue.floor], 100,
        "a GA section counts its tiers"
    );
    let mut holder = Watcher::connect(&app, event_id, &format!("?token={}", buyer.token)).await;

    // Held, then released.
    let (status, first) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    viewer
        .until("a[0] shows held", |w| w.seat(a[0]) == "held")
        .await;
    assert_eq!(
        viewer.sections[&venue.seated[0]], 11,
        "section counts ride along"
    );
    release(&app, &buyer.token, &first).await;
    viewer
        .until("a[0] shows available", |w| w.seat(a[0]) == "available")
        .await;
    assert_eq!(viewer.sections[&venue.seated[0]], 12);

    // Held, warned, then expired.
    let (status, second) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    viewer
        .until("a[1] shows held", |w| w.seat(a[1]) == "held")
        .await;
    app.clock
        .advance(Duration::minutes(7) + Duration::seconds(30));
    holder
        .until("the holder is warned", |w| {
            w.hold_news(&second["hold_id"])
                .contains(&"EXPIRING_SOON".to_owned())
        })
        .await;
    app.clock.advance(Duration::minutes(1));
    viewer
        .until("a[1] expires", |w| w.seat(a[1]) == "available")
        .await;

    // Held, paid for, sold.
    let (status, third) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[2]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    viewer
        .until("a[2] shows held", |w| w.seat(a[2]) == "held")
        .await;
    let (status, order) = app
        .checkout(&buyer.token, &third["hold_id"], "live-1", "tok_ok")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    viewer
        .until("a[2] shows sold", |w| w.seat(a[2]) == "sold")
        .await;

    // GA: the tier's count goes down.
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), None).await;
    let general = uuid(&detail["tiers"][0]["tier_id"]);
    let (status, _) = app
        .hold(
            &buyer.token,
            event_id,
            &json!({"tier_id": general, "quantity": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    viewer
        .until("the tier shows 77 left", |w| {
            w.tiers.get(&general) == Some(&77)
        })
        .await;
    assert_eq!(viewer.sections[&venue.floor], 97);

    assert_eq!(viewer.changes_of(a[0]), ["held", "available"]);
    assert_eq!(viewer.changes_of(a[1]), ["held", "available"]);
    assert_eq!(viewer.changes_of(a[2]), ["held", "sold"]);
    assert_eq!(viewer.snapshots, 1);
    assert!(
        viewer.holds.is_empty(),
        "an anonymous viewer hears no hold news"
    );

    holder
        .until("the holder hears of the sale", |w| {
            w.hold_news(&third["hold_id"])
                .contains(&"CONFIRMED".to_owned())
        })
        .await;
    assert_eq!(holder.hold_news(&first["hold_id"]), ["HELD", "RELEASED"]);
    assert_eq!(
        holder.hold_news(&second["hold_id"]),
        ["HELD", "EXPIRING_SOON", "EXPIRED"]
    );
    assert_eq!(
        holder.hold_news(&third["hold_id"]),
        ["HELD", "PAYMENT_PENDING", "CONFIRMED"]
    );
    let held = holder
        .holds
        .iter()
        .find(|h| h["hold_id"] == first["hold_id"]);
    assert_eq!(
        held.map(|h| h["expires_at"].clone()),
        Some(first["expires_at"].clone()),
        "hold news carries the deadline for a countdown"
    );
    let confirmed = holder
        .holds
        .iter()
        .find(|h| h["hold_id"] == third["hold_id"] && h["status"] == "CONFIRMED");
    assert_eq!(
        confirmed.map(|h| h["order_id"].clone()),
        Some(order["order_id"].clone())
    );

    // Another buyer's socket hears none of it.
    let other = app.buyer().await;
    let mut stranger = Watcher::connect(&app, event_id, &format!("?token={}", other.token)).await;
    let (status, fourth) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[3]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fourth}");
    stranger
        .until("a[3] shows held", |w| w.seat(a[3]) == "held")
        .await;
    holder
        .until("the holder hears of a[3]", |w| {
            !w.hold_news(&fourth["hold_id"]).is_empty()
        })
        .await;
    assert!(
        stranger.holds.is_empty(),
        "hold news goes to the holder only"
    );
}

#[actix_web::test]
async fn a_reconnecting_viewer_gets_exactly_what_it_missed_or_a_snapshot() {
    let app = spawn_app_with(|s| s.live.ring = 3).await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let a = app.seat_ids(event_id, 0).await;
    let buyer = app.buyer().await;
    // A witness that stays connected shows when each change has gone out in its batch.
    let mut witness = Watcher::connect(&app, event_id, "").await;
    let left = Watcher::connect(&app, event_id, "").await;
    let since = left.seq;
    drop(left);

    let mut holds = Vec::new();
    for seat in &a[..2] {
        let (status, hold) = app
            .hold(&buyer.token, event_id, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        witness
            .until("the hold goes out", |w| w.seat(*seat) == "held")
            .await;
        holds.push(hold);
    }
    release(&app, &buyer.token, &holds[0]).await;
    witness
        .until("the release goes out", |w| w.seat(a[0]) == "available")
        .await;
    assert_eq!(
        witness.seq,
        since + 3,
        "three batches since the viewer left"
    );

    // Back with its number: exactly the three batches, then the next change in order.
    let mut back = open(&app, event_id, &format!("?since={since}")).await;
    for expected in since + 1..=since + 3 {
        let frame = next_frame(&mut back).await;
        assert_eq!(frame["type"], "delta", "{frame}");
        assert_eq!(frame["seq"], expected);
    }
    let (status, _) = app
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[5]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let frame = next_frame(&mut back).await;
    assert_eq!(
        (frame["type"].clone(), frame["seq"].clone()),
        (json!("delta"), json!(since + 4))
    );
    witness
        .until("a[5] goes out", |w| w.seat(a[5]) == "held")
        .await;

    // Up to date already: nothing until the next batch.
    let mut current = open(&app, event_id, &format!("?since={}", since + 4)).await;
    release(&app, &buyer.token, &holds[1]).await;
    let frame = next_frame(&mut current).await;
    assert_eq!(
        (frame["type"].clone(), frame["seq"].clone()),
        (json!("delta"), json!(since + 5))
    );
    witness
        .until("a[1] goes out", |w| w.seat(a[1]) == "available")
        .await;

    // Too far behind for the ring of three, or a number from the future: a snapshot that
    // shows the state now.
    for stale in [since, since + 1, since + 1_000_000, u64::MAX] {
        let socket = open(&app, event_id, &format!("?since={stale}")).await;
        let mut late = Watcher::new(socket, witness.layout.clone());
        let frame = next_frame(&mut late.socket).await;
        assert_eq!(frame["type"], "snapshot", "since {stale}: {frame}");
        late.apply(&frame);
        assert_eq!(late.seq, witness.seq);
        assert_eq!(late.seats, witness.seats, "the snapshot is the state now");
    }

    // Bad numbers are refused before the upgrade.
    for query in [
        "?since=abc",
        "?since=-1",
        "?since=18446744073709551616",
        "?since=1.5",
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/events/{event_id}/live{query}"), None)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    }
}
