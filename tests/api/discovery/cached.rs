//! The list's cache and trending in Redis: a page is kept until the catalog's version
//! moves; what sold is counted once per order however often the relay sends it, and
//! rebuilt after Redis lost it.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{ids, Listing, LYON, PARIS};
use crate::helpers::{spawn_app, uuid};

/// Deletes every Redis key under `prefix`: as a flush would, and at the end of a test.
fn forget(prefix: &str) {
    let Ok(client) = redis::Client::open(crate::helpers::redis_url()) else {
        return;
    };
    if let Ok(mut conn) = client.get_connection() {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

#[actix_web::test]
async fn trending_in_redis_is_counted_once_per_order_and_rebuilt_after_a_flush() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let keys = prefix.clone();
    let app = crate::helpers::spawn_app_with(move |s| {
        s.redis_url = Some(crate::helpers::redis_url());
        s.redis_prefix = keys;
    })
    .await;
    let organizer = app.organizer().await;
    let lyon = app.venue_at(&organizer, "Lyon", LYON, "Europe/Paris").await;
    let paris = app
        .venue_at(&organizer, "Paris", PARIS, "Europe/Paris")
        .await;
    let small = app.listed(&organizer, &lyon, Listing::default()).await;
    let big = app.listed(&organizer, &paris, Listing::default()).await;
    let buyer = app.buyer().await;
    app.buy_tier(&buyer, big, 4).await;
    app.buy_tier(&buyer, big, 1).await;
    app.buy_tier(&buyer, small, 2).await;
    let top = || async {
        let (status, body) = app.get("/api/v1/trending", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| (uuid(&e["event_id"]), e["sold_24h"].as_i64().unwrap_or(-1)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // The relay counts each order as it relays it.
    app.relay_settled().await;
    assert_eq!(top().await, vec![(big, 5), (small, 2)]);
    // The same rows relayed again (as after a crash between send and mark) count nothing.
    sqlx::query("UPDATE outbox SET processed_at = NULL, claimed_until = NULL WHERE kind = 'order.confirmed'")
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.relay_settled().await;
    assert_eq!(top().await, vec![(big, 5), (small, 2)]);
    // Redis loses everything: the next read rebuilds the day from Postgres, and a sale
    // after it is counted once.
    forget(&prefix);
    assert_eq!(top().await, vec![(big, 5), (small, 2)]);
    app.buy_tier(&buyer, small, 6).await;
    app.relay_settled().await;
    assert_eq!(top().await, vec![(small, 8), (big, 5)]);
    let (_, in_paris) = app.get("/api/v1/trending?city=PARIS", None).await;
    assert_eq!(ids(&in_paris), vec![big]);
    forget(&prefix);
}

#[actix_web::test]
async fn pages_are_cached_until_the_catalog_changes_and_revalidated_by_etag() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let place = app.venue_at(&organizer, "Lyon", LYON, "Europe/Paris").await;
    let event = app
        .listed(
            &organizer,
            &place,
            Listing {
                title: "Old Tunes",
                ..Listing::default()
            },
        )
        .await;
    let titles = || async {
        let (_, body) = app.get("/api/v1/events", None).await;
        body["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["title"].as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(titles().await, ["Old Tunes"]);
    // A change that does not move the catalog's version (its trigger switched off) is not
    // seen: the page is cached.
    let rename = |title: &'static str| {
        sqlx::query("UPDATE events SET title = $2 WHERE event_id = $1")
            .bind(event)
            .bind(title)
    };
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_catalog_changed")
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    rename("Quiet Change")
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(titles().await, ["Old Tunes"]);
    // A change that does is seen by the next request, on any node.
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_catalog_changed")
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    rename("New Tunes")
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(titles().await, ["New Tunes"]);
    let other = crate::helpers::spawn_app_sharing(&app, |_| {}).await;
    let (_, there) = other.get("/api/v1/events", None).await;
    assert_eq!(there["events"][0]["title"], "New Tunes");
    // An edit through the API, then the list at once.
    let (status, body) = app
        .patch(
            &format!("/api/v1/events/{event}"),
            Some(&organizer.token),
            &json!({"title": "Newer Tunes"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(titles().await, ["Newer Tunes"]);
    assert_eq!(app.found("q=newer%20tunes", None).await, vec![event]);

    // The browser's copy is revalidated by its ETag.
    let url = app.url("/api/v1/events");
    let client = reqwest::Client::new();
    let first = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tag = first
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(tag.starts_with('"'), "{:?}", first.headers());
    assert!(first
        .headers()
        .get("cache-control")
        .is_some_and(|v| v == "public, max-age=5"));
    let again = client
        .get(&url)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}
