//! The OpenAPI document is the contract: schemathesis generates requests from it (valid
//! ones, and ones that break each rule it states), sends them to a server of the test's
//! own, and checks every answer against the document — status codes, bodies, headers,
//! content types, 405 with `Allow` for undeclared methods, 401 without credentials, data
//! the schema allows being accepted and data it forbids being refused — once signed in as
//! an organizer and once as a buyer, with a fixed seed and a bounded number of examples.
//! Any failure fails the test, with schemathesis's report of it.
//!
//! Needs schemathesis from `tests/contract/requirements.txt` in `target/schemathesis`
//! (or `SCHEMATHESIS` naming its command): `scripts/test` installs it. Its settings are in
//! `tests/contract/schemathesis.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, string, Account, TestApp};

/// Examples per operation and phase: enough to reach each rule, bounded in time.
const EXAMPLES: &str = "20";
const SEED: &str = "1";

fn schemathesis() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let command = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/schemathesis/bin/schemathesis"));
    assert!(
        command.exists(),
        "the contract test needs schemathesis at {} (or SCHEMATHESIS): run scripts/test",
        command.display()
    );
    command
}

/// What the fuzzer starts from: real ids, so operations reach their rules, not a 404.
struct Fixture {
    venue_id: String,
    event_id: String,
    hold_id: String,
    order_id: String,
    ticket_id: String,
}

/// A venue and an event on sale of `organizer`; a paid order and a live hold of `buyer`.
async fn fixture(app: &TestApp, organizer: &Account, buyer: &Account) -> Fixture {
    let (venue, event_id) = app.on_sale_event(&organizer.token).await;
    let seats = app.seat_ids(event_id, 0).await;
    let mut holds = Vec::new();
    for seat in &seats[..2] {
        let (status, hold) = app
            .hold(&buyer.token, event_id, &json!({"seat_ids": [seat]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        holds.push(hold);
    }
    let (status, order) = app
        .checkout(
            &buyer.token,
            &holds[0]["hold_id"],
            "contract-order",
            "tok_ok",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    Fixture {
        venue_id: venue.venue_id.to_string(),
        event_id: event_id.to_string(),
        hold_id: string(&holds[1]["hold_id"]),
        order_id: string(&order["order_id"]),
        ticket_id: string(&order["tickets"][0]["ticket_id"]),
    }
}

/// Runs schemathesis against `app` with `token`; answers whether it passed, and its report.
async fn fuzz(app: &TestApp, token: &str, ids: &Fixture) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(root.join("tests/contract/schemathesis.toml"))
        .arg("run")
        .arg(app.url("/api/openapi.json"))
        .args([
            "--checks",
            "all",
            "--seed",
            SEED,
            "--max-examples",
            EXAMPLES,
        ])
        // One worker: schemathesis's threads trip a CPython 3.11 parser bug otherwise.
        .args(["--workers", "1", "--request-timeout", "20", "--no-color"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .env("BOXOFFICE_CONTRACT_VENUE", &ids.venue_id)
        .env("BOXOFFICE_CONTRACT_EVENT", &ids.event_id)
        .env("BOXOFFICE_CONTRACT_HOLD", &ids.hold_id)
        .env("BOXOFFICE_CONTRACT_ORDER", &ids.order_id)
        .env("BOXOFFICE_CONTRACT_TICKET", &ids.ticket_id)
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(StdDuration::from_secs(600), run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis took over 10 minutes"))
        .unwrap_or_else(|e| panic!("running schemathesis: {e}"));
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

#[actix_web::test]
async fn the_api_answers_as_its_openapi_document_says_to_an_organizer_and_to_a_buyer() {
    schemathesis();
    let settings = |s: &mut boxoffice::config::Settings| {
        s.operator_token = Some("contract-operator-token".into());
        s.login_rate_per_account = 1_000_000;
    };
    // One server per role, so neither run changes what the other one meets.
    let (for_organizer, for_buyer) = (
        spawn_app_with(settings).await,
        spawn_app_with(settings).await,
    );
    let organizer = for_organizer.organizer().await;
    let buyer = for_organizer.buyer().await;
    let organizers_ids = fixture(&for_organizer, &organizer, &buyer).await;
    let (other_organizer, the_buyer) = (for_buyer.organizer().await, for_buyer.buyer().await);
    let buyers_ids = fixture(&for_buyer, &other_organizer, &the_buyer).await;

    let ((organizer_passed, organizer_report), (buyer_passed, buyer_report)) = tokio::join!(
        fuzz(&for_organizer, &organizer.token, &organizers_ids),
        fuzz(&for_buyer, &the_buyer.token, &buyers_ids),
    );
    assert!(organizer_passed, "as an organizer:\n{organizer_report}");
    assert!(buyer_passed, "as a buyer:\n{buyer_report}");
    for report in [&organizer_report, &buyer_report] {
        assert!(
            report.contains(" passed"),
            "schemathesis ran no test:\n{report}"
        );
    }
}
