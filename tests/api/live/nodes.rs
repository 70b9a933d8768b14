//! Two nodes sharing Redis: a hold on one appears on a viewer of the other.

use boxoffice::actors::broadcaster::GetStats;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::*;

#[actix_web::test]
async fn a_hold_on_one_node_appears_on_a_viewer_of_another() {
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let with_redis = |s: &mut boxoffice::config::Settings| {
        s.redis_url = Some(redis_url());
        s.redis_prefix = prefix.clone();
    };
    let node_a = spawn_app_with(|s| {
        with_redis(s);
        s.node_id = "node-a".into();
    })
    .await;
    let node_b = spawn_app_sharing(&node_a, |s| {
        with_redis(s);
        s.node_id = "node-b".into();
    })
    .await;
    let organizer = node_a.organizer().await;
    let (_, event_id) = node_a.on_sale_event(&organizer.token).await;
    let a = node_a.seat_ids(event_id, 0).await;
    let buyer = node_a.buyer().await;

    // The first hold starts the event's engine on node A, which takes the on-sale's lease:
    // the lease holder is the live map's source.
    let (status, first) = node_a
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[0]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let owner: Option<String> =
        sqlx::query_scalar("SELECT node_id FROM onsale_leases WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&node_a.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(owner.as_deref(), Some("node-a"));
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("{e}"));
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // A viewer on node B starts from A's map and follows A's batches.
    let mut viewer = Watcher::connect(&node_b, event_id, "").await;
    let mut holder = Watcher::connect(&node_b, event_id, &format!("?token={}", buyer.token)).await;
    assert_eq!(viewer.seat(a[0]), "held", "the snapshot comes from node A");
    let (status, second) = node_a
        .hold(&buyer.token, event_id, &json!({"seat_ids": [a[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    viewer
        .until("a[1] shows held on node B", |w| w.seat(a[1]) == "held")
        .await;
    release(&node_a, &buyer.token, &first).await;
    viewer
        .until("a[0] shows available on node B", |w| {
            w.seat(a[0]) == "available"
        })
        .await;
    holder
        .until("the holder on node B hears of the release", |w| {
            w.hold_news(&first["hold_id"]) == ["RELEASED"]
        })
        .await;
    assert!(holder
        .hold_news(&second["hold_id"])
        .contains(&"HELD".to_owned()));
    assert!(
        node_b.engine.counts(event_id).await.is_none(),
        "node B follows: it does not run the event's engine"
    );
    let stats = node_a
        .engine
        .live_map(event_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send(GetStats)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(viewer.seq, stats.seq, "both nodes number the batches alike");
    let _: () = redis::AsyncCommands::del(
        &mut redis,
        vec![
            format!("{prefix}:livesnap:{event_id}"),
            format!("{prefix}:epoch:{event_id}"),
        ],
    )
    .await
    .unwrap_or(());
}
