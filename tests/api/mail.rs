//! E-mail over SMTP to a sink on loopback: a checkout sends one confirmation with every
//! ticket (an inline QR image each and a PDF of the e-tickets that parses); a refund sends
//! its notice.

use base64::Engine as _;
use boxoffice_loadtest::smtp_sink::{self, Inbox};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, string, TestApp};

fn messages(inbox: &Inbox) -> Vec<(Vec<String>, String)> {
    inbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(_, to, m)| (to.clone(), m.clone()))
        .collect()
}

/// The base64 body of the MIME part whose headers contain `content_type`.
fn parts(message: &str, content_type: &str) -> Vec<Vec<u8>> {
    message
        .split("\r\n\r\n")
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| {
            w[0].to_ascii_lowercase().contains(content_type)
                && w[0].to_ascii_lowercase().contains("base64")
        })
        .filter_map(|w| {
            let body: String = w[1]
                .split("\r\n--")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            base64::engine::general_purpose::STANDARD.decode(body).ok()
        })
        .collect()
}

async fn app_with_sink() -> (TestApp, Inbox) {
    let (port, inbox) = smtp_sink::start().await;
    let app = spawn_app_with(move |s| s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))).await;
    (app, inbox)
}

#[actix_web::test]
async fn a_checkout_sends_one_confirmation_with_every_ticket_and_a_pdf() {
    let (app, inbox) = app_with_sink().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let order = app.order_of(&buyer, event_id, 2).await;
    app.eventually("the confirmation reaches the sink", || async {
        !messages(&inbox).is_empty()
    })
    .await;
    // Nothing else comes for this order.
    app.eventually("the outbox is relayed", || async {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
                .fetch_one(&app.pool)
                .await
                .unwrap_or(-1);
        left == 0
    })
    .await;
    let got = messages(&inbox);
    assert_eq!(got.len(), 1, "one confirmation");
    let (to, message) = &got[0];
    assert!(to.iter().any(|r| r.contains(&buyer.email)), "{to:?}");
    assert!(
        message.contains("Subject: Your tickets: Test Night"),
        "{message}"
    );
    assert!(message.contains("text/plain") && message.contains("text/html"));
    let pngs = parts(message, "image/png");
    assert_eq!(pngs.len(), 2, "one QR image per ticket");
    assert!(pngs.iter().all(|p| p.starts_with(b"\x89PNG")));
    let pdfs = parts(message, "application/pdf");
    assert_eq!(pdfs.len(), 1, "one PDF");
    let pdf = lopdf::Document::load_mem(&pdfs[0])
        .unwrap_or_else(|e| panic!("the PDF does not parse: {e}"));
    assert_eq!(pdf.get_pages().len(), 2, "a page per ticket");
    let text = pdf.extract_text(&[1]).unwrap_or_default();
    assert!(text.contains("Test Night"), "{text}");
    let label = string(&order["tickets"][0]["label"]);
    assert!(message.contains(&label), "the plain text names {label}");

    // "Send my tickets again": once, then not again within five minutes.
    let resend = format!("/api/v1/orders/{}/resend", string(&order["order_id"]));
    let (status, _) = app.post(&resend, Some(&buyer.token), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = app.post(&resend, Some(&buyer.token), &json!({})).await;
    crate::helpers::assert_error(status, &body, StatusCode::CONFLICT, "resent_recently");
    let stranger = app.buyer().await;
    let (status, _) = app.post(&resend, Some(&stranger.token), &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.eventually("the tickets come again", || async {
        messages(&inbox).len() >= 2
    })
    .await;
    assert_eq!(parts(&messages(&inbox)[1].1, "application/pdf").len(), 1);

    // A refund sends its notice.
    let (status, body) = app
        .refund(
            &organizer.token,
            &string(&order["order_id"]),
            None,
            &json!({"reason": "Sorry"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.eventually("the refund notice reaches the sink", || async {
        messages(&inbox).len() >= 3
    })
    .await;
    let refund = &messages(&inbox)[2].1;
    assert!(
        refund.contains("Subject: Your refund: Test Night"),
        "{refund}"
    );
    assert!(refund.contains("EUR 160.00"), "{refund}");
    app.relay_settled().await;
}
