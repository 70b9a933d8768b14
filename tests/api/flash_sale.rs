//! The load-test harness's flash sale, short, against a server of the test's own: 150
//! browsers through the waiting room, the live map, holds (a third of them fighting over one
//! block) and payment, then every invariant checked in Postgres and the API. (As many
//! browsers as the waiting room lets in at once: the ones it holds back would wait for the
//! shopping windows of those who left without buying, 15 minutes.)

use std::time::Duration as StdDuration;

use boxoffice_loadtest::flash_sale::{run_sale, Plan};
use boxoffice_loadtest::Common;
use chrono::{Duration, Utc};

use crate::helpers::{spawn_app_with, TEST_SECRET};

#[actix_web::test]
async fn a_short_flash_sale_keeps_every_invariant() {
    let app = spawn_app_with(|s| {
        s.queue_tick = StdDuration::from_millis(100);
        s.db_max_connections = 10;
    })
    .await;
    let common = Common {
        clients: 32,
        seconds: 120,
        max_requests: 1_000_000,
        url: Some(app.address.clone()),
        server_bin: String::new(),
        database_url: String::new(),
        out: None,
        skip_baseline: true,
        server_database_url: Some(app.database_url()),
        server_jwt_secret: Some(TEST_SECRET.into()),
    };
    let plan = Plan {
        browsers: 150,
        sections: 2,
        rows: 10,
        seats_per_row: 30,
        admission_per_minute: 60_000,
        lead_seconds: 2,
        popular_share: 0.35,
        decline_share: 0.05,
        abandon_share: 0.05,
        release_share: 0.05,
        hold_minutes: 1,
        admission_window_minutes: 15,
        slow_payments_at: 0,
        slow_payments_for: 30,
        slow_payments_ms: 2_000,
        no_breaker: false,
    };
    let sale = run_sale(&common, &plan)
        .await
        .unwrap_or_else(|e| panic!("the sale: {e:#}"));
    let endings = &sale.report.extra["endings"];
    assert!(endings["bought"].as_u64().unwrap_or(0) > 50, "{endings}");
    for ending in ["not_admitted", "payment_failed", "error"] {
        assert_eq!(endings[ending].as_u64().unwrap_or(0), 0, "{endings}");
    }
    assert!(
        endings["abandoned"].as_u64().unwrap_or(0) > 0,
        "some holds were left to expire: {endings}"
    );

    // Move the server's clock past every abandoned hold's deadline: the sweep must free
    // them, and every other invariant must hold.
    let event_id = sale
        .event_id
        .parse()
        .unwrap_or_else(|e| panic!("event id: {e}"));
    app.pass_time(event_id, Duration::minutes(2)).await;
    let now = Utc::now() + Duration::minutes(2);
    let verdict = sale
        .verify(now)
        .await
        .unwrap_or_else(|e| panic!("checking: {e:#}"))
        .unwrap_or_else(|| panic!("the harness could not reach the database"));
    assert!(verdict.ok(), "{:?}", verdict.failures());
    let stuck_check = verdict
        .checks
        .iter()
        .find(|c| c.name == "no_hold_past_deadline")
        .map(|c| c.detail.clone())
        .unwrap_or_default();
    assert!(
        !stuck_check.starts_with("0 "),
        "abandoned holds were checked: {stuck_check}"
    );
}
