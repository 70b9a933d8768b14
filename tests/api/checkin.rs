//! At the door: scanners with tokens of their own event, a ticket let in once whatever
//! races, every refusal named, and a retried scan answered as it was the first time.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app, spawn_app_sharing, string, Account, TestApp};

impl TestApp {
    /// A scanner of `event_id` at `gate`: its id and token.
    pub(crate) async fn scanner(
        &self,
        organizer: &Account,
        event_id: Uuid,
        gate: &str,
    ) -> (String, String) {
        let (status, body) = self
            .post(
                &format!("/api/v1/events/{event_id}/scanners"),
                Some(&organizer.token),
                &json!({"name": format!("Scanner at {gate}"), "gate": gate}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(string(&body["token"]).starts_with("bxs_"), "{body}");
        (string(&body["scanner_id"]), string(&body["token"]))
    }

    pub(crate) async fn scan(
        &self,
        token: &str,
        event_id: Uuid,
        qr: &Value,
        nonce: &str,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/events/{event_id}/checkins"),
            Some(token),
            &json!({"qr": qr, "nonce": nonce}),
        )
        .await
    }
}

fn nonce() -> String {
    Uuid::new_v4().to_string()
}

#[actix_web::test]
async fn a_ticket_is_let_in_once_and_every_other_scan_says_why_not() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (_, other_event) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let tickets = app.bought(&buyer, event_id, 3).await;
    let elsewhere = app.bought(&buyer, other_event, 1).await;
    let (_, north) = app.scanner(&organizer, event_id, "North").await;

    let first = nonce();
    let (status, admit) = app
        .scan(&north, event_id, &tickets[0]["qr_token"], &first)
        .await;
    assert_eq!(status, StatusCode::OK, "{admit}");
    assert_eq!(admit["result"], "ADMIT");
    assert_eq!(admit["ticket_id"], tickets[0]["ticket_id"]);
    assert_eq!(admit["seat_label"], tickets[0]["label"]);

    // The same nonce again is the same answer; a new scan of the ticket is not let in.
    let (_, again) = app
        .scan(&north, event_id, &tickets[0]["qr_token"], &first)
        .await;
    assert_eq!(again, admit);
    let (_, twice) = app
        .scan(&north, event_id, &tickets[0]["qr_token"], &nonce())
        .await;
    assert_eq!(twice["result"], "ALREADY_ADMITTED", "{twice}");
    assert_eq!(twice["first_scan"]["gate"], "North", "{twice}");

    // Unknown, transferred away, another event's.
    let (_, unknown) = app
        .scan(
            &north,
            event_id,
            &json!("no-such-code-0123456789"),
            &nonce(),
        )
        .await;
    assert_eq!(
        (unknown["result"].clone(), unknown["reason"].clone()),
        (json!("INVALID"), json!("unknown"))
    );
    let (status, moved) = app
        .transfer(&buyer.token, &tickets[1]["ticket_id"], "guest@example.com")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{moved}");
    let (_, gone) = app
        .scan(&north, event_id, &tickets[1]["qr_token"], &nonce())
        .await;
    assert_eq!(
        (gone["result"].clone(), gone["reason"].clone()),
        (json!("INVALID"), json!("transferred")),
        "{gone}"
    );
    let (_, fresh) = app
        .scan(&north, event_id, &moved["ticket"]["qr_token"], &nonce())
        .await;
    assert_eq!(
        fresh["result"], "ADMIT",
        "the new code lets its holder in: {fresh}"
    );
    let (_, wrong) = app
        .scan(&north, event_id, &elsewhere[0]["qr_token"], &nonce())
        .await;
    assert_eq!(wrong["result"], "WRONG_EVENT", "{wrong}");

    // A transferred ticket's history ends with its use at the door.
    let (_, history) = app
        .history(&organizer.token, &tickets[0]["ticket_id"])
        .await;
    let last = history["entries"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (last["kind"].clone(), last["gate"].clone()),
        (json!("USED"), json!("North")),
        "{history}"
    );
    let (_, mine) = app.get("/api/v1/me/tickets", Some(&buyer.token)).await;
    assert!(
        mine["tickets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["ticket_id"] == tickets[0]["ticket_id"] && t["status"] == "USED"),
        "{mine}"
    );

    // Bad scans are 422s naming the field.
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{event_id}/checkins"),
            Some(&north),
            &json!({"qr": "", "nonce": ""}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        body["error"]["fields"]["qr"].is_string() && body["error"]["fields"]["nonce"].is_string(),
        "{body}"
    );
}

#[actix_web::test]
async fn a_scanner_token_opens_its_own_events_door_and_nothing_else() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (_, other_event) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let tickets = app.bought(&buyer, event_id, 1).await;
    let (scanner_id, token) = app.scanner(&organizer, event_id, "East").await;

    let (status, body) = app
        .scan(&token, other_event, &tickets[0]["qr_token"], &nonce())
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    for path in [
        "/api/v1/me/tickets".to_owned(),
        format!("/api/v1/events/{event_id}/scanners"),
    ] {
        let (status, _) = app.get(&path, Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, body) = app
        .scan(&buyer.token, event_id, &tickets[0]["qr_token"], &nonce())
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let stranger = app.organizer().await;
    let (status, _) = app
        .post(
            &format!("/api/v1/events/{event_id}/scanners"),
            Some(&stranger.token),
            &json!({"name": "x", "gate": "y"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Control characters (a NUL that Postgres cannot store) are a 422, not a 500.
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{event_id}/scanners"),
            Some(&organizer.token),
            &json!({"name": "ok", "gate": "\u{0}x"}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .scan(&token, event_id, &json!("qr\u{0}"), "n\u{0}")
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    let (_, list) = app
        .get(
            &format!("/api/v1/events/{event_id}/scanners"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(list["scanners"][0]["scanner_id"], json!(scanner_id));
    assert!(
        list["scanners"][0].get("token").is_none(),
        "never the token again: {list}"
    );
    let (status, _) = app
        .delete(
            &format!("/api/v1/events/{event_id}/scanners/{scanner_id}"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .scan(&token, event_id, &tickets[0]["qr_token"], &nonce())
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // The organizer narrows the door: scans before it opens are refused, not judged.
    let (_, gate) = app.scanner(&organizer, event_id, "West").await;
    let opens = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, body) = app
        .put(
            &format!("/api/v1/events/{event_id}/door"),
            Some(&organizer.token),
            &json!({"checkin_opens_at": opens}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .scan(&gate, event_id, &tickets[0]["qr_token"], &nonce())
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "checkin_closed");
    app.clock.advance(chrono::Duration::hours(2));
    let (_, admit) = app
        .scan(&gate, event_id, &tickets[0]["qr_token"], &nonce())
        .await;
    assert_eq!(admit["result"], "ADMIT", "{admit}");
}

/// Two gates on two server instances (each with its own memory of the door) scan the same
/// tickets at the same moment: each ticket is let in exactly once, and Postgres agrees.
#[actix_web::test]
async fn racing_gates_on_two_nodes_let_each_ticket_in_exactly_once() {
    let one = spawn_app().await;
    let two = spawn_app_sharing(&one, |_| {}).await;
    let organizer = one.organizer().await;
    let (_, event_id) = one.on_sale_event(&organizer.token).await;
    let buyer = one.buyer().await;
    let tickets = one.bought(&buyer, event_id, 6).await;
    let (_, north) = one.scanner(&organizer, event_id, "North").await;
    let (_, south) = one.scanner(&organizer, event_id, "South").await;

    let scans = tickets.iter().flat_map(|t| {
        let qr = t["qr_token"].clone();
        [
            (&one, north.clone(), qr.clone()),
            (&two, south.clone(), qr.clone()),
            (&two, north.clone(), qr),
        ]
    });
    let answers =
        futures_util::future::join_all(scans.map(|(app, token, qr)| async move {
            app.scan(&token, event_id, &qr, &nonce()).await
        }))
        .await;
    for ticket in &tickets {
        let of_it: Vec<&Value> = answers
            .iter()
            .filter(|(_, a)| a["ticket_id"] == ticket["ticket_id"])
            .map(|(_, a)| a)
            .collect();
        assert_eq!(of_it.len(), 3, "{answers:?}");
        let admitted = of_it.iter().filter(|a| a["result"] == "ADMIT").count();
        assert_eq!(admitted, 1, "{of_it:?}");
        assert!(
            of_it
                .iter()
                .all(|a| a["result"] == "ADMIT" || a["result"] == "ALREADY_ADMITTED"),
            "{of_it:?}"
        );
    }
    let (used, ledger, admits): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tickets WHERE event_id = $1 AND status = 'USED'), \
                (SELECT count(*) FROM ticket_ledger l JOIN tickets t USING (ticket_id) WHERE t.event_id = $1 AND l.kind = 'USED'), \
                (SELECT count(*) FROM checkins WHERE event_id = $1 AND result = 'ADMIT')",
    )
    .bind(event_id)
    .fetch_one(&one.pool)
    .await
    .unwrap_or_default();
    assert_eq!((used, ledger, admits), (6, 6, 6));
}

/// The signed code a ticket's QR shows, as its holder's ticket list gives it.
async fn signed_codes(app: &TestApp, holder: &Account) -> Vec<(Value, Value)> {
    let (_, mine) = app.get("/api/v1/me/tickets", Some(&holder.token)).await;
    mine["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["ticket_id"].clone(), t["signed_qr"].clone()))
        .collect()
}

#[actix_web::test]
async fn signed_codes_are_checked_with_the_events_public_key_and_offline_scans_sync_with_conflicts()
{
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let (_, other_event) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    let tickets = app.bought(&buyer, event_id, 3).await;
    app.bought(&buyer, other_event, 1).await;
    let (_, north) = app.scanner(&organizer, event_id, "North").await;
    let codes = signed_codes(&app, &buyer).await;
    let code_of = |ticket: &Value| {
        codes
            .iter()
            .find(|(id, _)| *id == ticket["ticket_id"])
            .map(|(_, code)| code.clone())
            .unwrap_or_default()
    };

    // The bundle: the public key, every ticket of the event with its label, no secret.
    let (status, bundle) = app
        .get(
            &format!("/api/v1/events/{event_id}/checkin/bundle"),
            Some(&north),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    assert_eq!(bundle["algorithm"], "ed25519");
    assert_eq!(
        bundle["tickets"].as_array().map(Vec::len),
        Some(3),
        "{bundle}"
    );
    let public_key = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        bundle["public_key"].as_str().unwrap_or_default(),
    )
    .unwrap_or_default();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public_key.try_into().unwrap_or([0; 32]))
        .unwrap_or_else(|e| panic!("a public key: {e}"));

    // Offline, the public key alone tells a real code from a forged one.
    let code = code_of(&tickets[0]);
    let claim = boxoffice::domain::signed_ticket::verify(code.as_str().unwrap_or_default(), &key)
        .unwrap_or_else(|e| panic!("a signed ticket: {e:?}"));
    assert_eq!(json!(claim.ticket_id), tickets[0]["ticket_id"]);
    assert_eq!(claim.event_id, event_id);
    let text = code.as_str().unwrap_or_default();
    let tampered = format!(
        "{}{}",
        &text[..10],
        if &text[10..11] == "A" { "B" } else { "A" }
    ) + &text[11..];
    assert!(boxoffice::domain::signed_ticket::verify(&tampered, &key).is_err());

    // Online, the signed code is let in like the token; a forged one is INVALID.
    let (_, forged) = app.scan(&north, event_id, &json!(tampered), &nonce()).await;
    assert_eq!(
        (forged["result"].clone(), forged["reason"].clone()),
        (json!("INVALID"), json!("forged")),
        "{forged}"
    );
    let (_, admit) = app.scan(&north, event_id, &code, &nonce()).await;
    assert_eq!(admit["result"], "ADMIT", "{admit}");
    let (_, again) = app
        .scan(&north, event_id, &tickets[0]["qr_token"], &nonce())
        .await;
    assert_eq!(
        again["result"], "ALREADY_ADMITTED",
        "the token and the code are one ticket: {again}"
    );
    let other_code = codes.iter().map(|(_, c)| c.clone()).find(|c| {
        boxoffice::domain::signed_ticket::event_of(c.as_str().unwrap_or_default()).ok()
            == Some(other_event)
    });
    let (_, wrong) = app
        .scan(&north, event_id, &other_code.unwrap_or_default(), &nonce())
        .await;
    assert_eq!(wrong["result"], "WRONG_EVENT", "{wrong}");

    // A transfer revokes: the old ticket is on the bundle's revocation list.
    let (status, _) = app
        .transfer(&buyer.token, &tickets[2]["ticket_id"], "pal@example.com")
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, bundle) = app
        .get(
            &format!("/api/v1/events/{event_id}/checkin/bundle"),
            Some(&north),
        )
        .await;
    assert!(
        bundle["revoked"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|id| *id == tickets[2]["ticket_id"]),
        "{bundle}"
    );

    // Two gates were offline: both let ticket 1 in, and one let ticket 0 in again. The
    // earlier scan of ticket 1 wins; the others are conflicts.
    let at = |minutes: i64| chrono::Utc::now() - chrono::Duration::minutes(minutes);
    let (_, south) = app.scanner(&organizer, event_id, "South").await;
    let (status, synced) = app
        .post(
            &format!("/api/v1/events/{event_id}/checkins/sync"),
            Some(&south),
            &json!({"scans": [
                {"qr": code_of(&tickets[1]), "gate": "South 2", "scanned_at": at(3), "nonce": "s-1"},
                {"qr": tickets[1]["qr_token"], "gate": "South 1", "scanned_at": at(5), "nonce": "s-2"},
                {"qr": code, "gate": "South 1", "scanned_at": at(1), "nonce": "s-3"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{synced}");
    let result_of = |nonce: &str| {
        synced["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["nonce"] == nonce)
            .map(|r| r["result"].clone())
    };
    assert_eq!(
        result_of("s-2"),
        Some(json!("ADMIT")),
        "the earliest scan wins: {synced}"
    );
    assert_eq!(result_of("s-1"), Some(json!("ALREADY_ADMITTED")));
    assert_eq!(result_of("s-3"), Some(json!("ALREADY_ADMITTED")));
    let conflicts = synced["conflicts"].as_array().cloned().unwrap_or_default();
    assert_eq!(conflicts.len(), 2, "{synced}");
    assert!(
        conflicts
            .iter()
            .any(|c| c["ticket_id"] == tickets[1]["ticket_id"]
                && c["first_scan"]["gate"] == "South 1"
                && c["gate"] == "South 2"),
        "{synced}"
    );
    let offline: i64 =
        sqlx::query_scalar("SELECT count(*) FROM checkins WHERE event_id = $1 AND offline")
            .bind(event_id)
            .fetch_one(&app.pool)
            .await
            .unwrap_or_default();
    assert_eq!(offline, 3);
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"qr": "x", "gate": "G", "scanned_at": at(1), "nonce": format!("n-{i}")}))
        .collect();
    let (status, body) = app
        .post(
            &format!("/api/v1/events/{event_id}/checkins/sync"),
            Some(&south),
            &json!({"scans": too_many}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // The organizer's figures say the same.
    let (status, stats) = app
        .get(
            &format!("/api/v1/events/{event_id}/checkins/stats"),
            Some(&organizer.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        (stats["tickets"].clone(), stats["admitted"].clone()),
        (json!(3), json!(2)),
        "{stats}"
    );
    assert_eq!(stats["conflicts"], 2, "{stats}");
    assert_eq!(stats["refused"], 2, "forged and wrong event: {stats}");
    let gates: Vec<(Value, Value)> = stats["per_gate"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (g["gate"].clone(), g["admitted"].clone()))
        .collect();
    assert_eq!(
        gates,
        [(json!("North"), json!(1)), (json!("South 1"), json!(1))],
        "{stats}"
    );
    let (status, _) = app
        .get(
            &format!("/api/v1/events/{event_id}/checkins/stats"),
            Some(&north),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a scanner sees no figures"
    );
}
