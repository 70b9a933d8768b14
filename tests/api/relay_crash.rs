//! The outbox relay killed (SIGKILL, a real process) after it sent a row's e-mail and
//! before it marked the row: after a restart the row is sent again and marked. That is the
//! one way a message goes out twice, and both copies carry the same Message-ID; the row's
//! webhook is queued and delivered once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use boxoffice_loadtest::smtp_sink;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::process::{free_port, ChildServer};
use crate::webhooks::{receiver, seen_count, subscribe};

fn message_id(message: &str) -> Option<&str> {
    message
        .lines()
        .find_map(|line| line.strip_prefix("Message-ID: "))
}

#[actix_web::test]
async fn a_row_whose_relay_was_killed_mid_send_is_sent_after_the_restart() {
    // The in-process app only sets things up: it relays nothing.
    let app = spawn_app_with(|s| {
        s.relay = false;
        s.webhook_allow_private = true;
    })
    .await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (url, seen) = receiver(Vec::new()).await;
    let (status, hook) = subscribe(&app, &organizer.token, &url, json!(["order.confirmed"])).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let buyer = app.buyer().await;
    app.bought(&buyer, event_id, 1).await;
    let row: i64 = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE kind = 'order.confirmed' AND payload->>'event_id' = $1",
    )
    .bind(event_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("the order's outbox row: {e}"));
    app.stop_owning().await;

    // The sink takes the message and never answers: the relay waits, the row claimed.
    let stall = Arc::new(AtomicBool::new(true));
    let (port, inbox) = smtp_sink::start_stalling(stall.clone()).await;
    let inbox_len = || {
        inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    };
    let smtp = format!("smtp://127.0.0.1:{port}");
    let env = [
        ("BOXOFFICE_SMTP_URL", smtp.as_str()),
        ("BOXOFFICE_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("BOXOFFICE_OUTBOX_CLAIM_SECONDS", "3"),
    ];
    let database_url = app.database_url();
    let mut first = ChildServer::start(&database_url, free_port(), &env, None).await;
    app.eventually("the first relay sends the confirmation", || async {
        inbox_len() == 1
    })
    .await;
    let state = || async {
        sqlx::query_as::<_, (bool, bool)>(
            "SELECT processed_at IS NOT NULL, COALESCE(claimed_until > now(), false) FROM outbox WHERE id = $1",
        )
        .bind(row)
        .fetch_one(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("reading the row: {e}"))
    };
    assert_eq!(state().await, (false, true), "sent, claimed, not marked");
    first.kill();
    assert_eq!(seen_count(&seen), 0, "the webhook is queued with the mark");

    // A new process: the claim lapses, the row is sent again, marked, its webhook queued.
    stall.store(false, Ordering::SeqCst);
    let _second = ChildServer::start(&database_url, free_port(), &env, None).await;
    app.eventually("the row is marked after the restart", || async {
        state().await.0
    })
    .await;
    app.eventually("the webhook is delivered", || async {
        seen_count(&seen) >= 1
    })
    .await;
    let messages: Vec<String> = inbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(_, to, message)| {
            assert!(to.iter().any(|r| r.contains(&buyer.email)), "{to:?}");
            message.clone()
        })
        .collect();
    assert_eq!(
        messages.len(),
        2,
        "the unanswered copy and the one after the restart"
    );
    let ids: Vec<Option<&str>> = messages.iter().map(|m| message_id(m)).collect();
    assert_eq!(ids[0], ids[1], "both copies carry one Message-ID");
    assert!(
        ids[0].is_some_and(|id| id.starts_with(&format!("<outbox-{row}.order.confirmed@"))),
        "{ids:?}"
    );
    let deliveries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE outbox_id = $1")
            .bind(row)
            .fetch_one(&app.pool)
            .await
            .unwrap_or(-1);
    assert_eq!((deliveries, seen_count(&seen)), (1, 1), "one delivery");
}
