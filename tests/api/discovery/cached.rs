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

    // The browser's copy is revalidated by its ETag (once the sale's opening has been
    // written behind: it changes the page, as it should).
    let pool = app.pool.clone();
    app.eventually("the event is written ON_SALE", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM events WHERE event_id = $1")
                .bind(event)
                .fetch_one(&pool)
                .await
                .is_ok_and(|s| s == "ON_SALE")
        }
    })
    .await;
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

/// The event page is cached under the catalog's version: a change that skips the version
/// is not seen (so it is cached), any change an organizer makes is seen at once, tickets
/// left come live from the engine, and a draft cached for its organizer stays hidden.
#[actix_web::test]
async fn the_event_page_is_cached_until_its_event_changes_and_counts_stay_live() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (venue, event) = app.on_sale_event(&organizer.token).await;
    let path = format!("/api/v1/events/{event}");
    let (status, first) = app.get(&path, None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let price_of_a = |detail: &serde_json::Value| {
        detail["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["section_id"] == venue.seated[0].to_string())
            .map(|s| s["price_cents"].clone())
            .unwrap_or_default()
    };
    assert_eq!(price_of_a(&first), 8000);

    // Switched off, the trigger does not move the version: the old price is still served.
    let reprice = |cents: i64| {
        sqlx::query(
            "UPDATE section_prices SET price_cents = $3 WHERE event_id = $1 AND section_id = $2",
        )
        .bind(event)
        .bind(venue.seated[0])
        .bind(cents)
    };
    let trigger = |on: &str| {
        format!("ALTER TABLE section_prices {on} TRIGGER section_prices_catalog_changed")
    };
    let run = |sql: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query(&sql)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    run(trigger("DISABLE")).await;
    reprice(7000)
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, cached) = app.get(&path, None).await;
    assert_eq!(price_of_a(&cached), 8000, "served from the cache");
    run(trigger("ENABLE")).await;
    reprice(6500)
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, seen) = app.get(&path, None).await;
    assert_eq!(price_of_a(&seen), 6500, "a repricing is seen at once");

    // The refund policy through the API: seen by the next request.
    let policy = json!({"buyer_cancel_until_hours": 24, "fee_cents": 0, "fee_percent": 5});
    let (status, body) = app
        .put(
            &format!("{path}/refund-policy"),
            Some(&organizer.token),
            &policy,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, seen) = app.get(&path, None).await;
    assert_eq!(seen["refund_policy"]["fee_percent"], 5.0, "{seen}");

    // Tickets left are the engine's, not the cache's.
    let before = seen["available"].as_i64().unwrap_or_default();
    let buyer = app.buyer().await;
    app.bought(&buyer, event, 2).await;
    let (_, after) = app.get(&path, None).await;
    assert_eq!(after["available"].as_i64(), Some(before - 2), "{after}");

    // Browsers and a CDN revalidate by the ETag.
    let client = reqwest::Client::new();
    let answer = client
        .get(app.url(&path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answer
        .headers()
        .get("cache-control")
        .is_some_and(|v| v == "public, max-age=2"));
    let tag = answer
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let again = client
        .get(app.url(&path))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A draft read (and cached) by its organizer is still nobody else's to see.
    let draft = app.draft_event(&organizer.token, venue.venue_id, 12).await;
    let draft_path = format!("/api/v1/events/{draft}");
    let (status, _) = app.get(&draft_path, Some(&organizer.token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get(&draft_path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app.get(&draft_path, Some(&buyer.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
