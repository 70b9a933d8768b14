//! The door scanner page in a real browser: a fake camera shows a ticket's QR code and the
//! page lets it in; offline, a signed code is checked with the bundle's public key and
//! queued; back online, the queue syncs and Postgres has both admissions.

use std::io::Write;
use std::path::Path;
use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, string};

/// A Y4M video (what Chromium's fake camera plays) of one QR code, `frames` frames.
fn qr_video(text: &str, path: &Path) {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .unwrap_or_else(|e| panic!("a QR code: {e}"));
    let (modules, scale, quiet) = (code.width(), 6, 4);
    let side = (modules + 2 * quiet) * scale;
    let side = side + side % 2;
    let colors = code.to_colors();
    let mut luma = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == qrcode::Color::Dark {
                for dy in 0..scale {
                    let row = (quiet + y) * scale + dy;
                    let start = row * side + (quiet + x) * scale;
                    luma[start..start + scale].fill(0);
                }
            }
        }
    }
    let chroma = vec![128u8; (side / 2) * (side / 2)];
    let mut file = std::fs::File::create(path).unwrap_or_else(|e| panic!("the video: {e}"));
    let mut write = |bytes: &[u8]| {
        file.write_all(bytes)
            .unwrap_or_else(|e| panic!("the video: {e}"))
    };
    write(format!("YUV4MPEG2 W{side} H{side} F10:1 Ip A1:1 C420jpeg\n").as_bytes());
    for _ in 0..10 {
        write(b"FRAME\n");
        write(&luma);
        write(&chroma);
        write(&chroma);
    }
}

#[actix_web::test]
async fn the_scanner_page_reads_a_ticket_from_the_camera_and_keeps_working_offline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir() && Path::new(&chromium).exists(),
        "the browser tests need Node.js, `npm ci --prefix e2e` and Chromium at {chromium}: run scripts/test"
    );
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let (_, event_id) = app.on_sale_event(&organizer.token).await;
    let buyer = app.buyer().await;
    app.bought(&buyer, event_id, 2).await;
    let (_, mine) = app.get("/api/v1/me/tickets", Some(&buyer.token)).await;
    let codes: Vec<String> = mine["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| string(&t["signed_qr"]))
        .collect();
    assert_eq!(codes.len(), 2, "{mine}");
    let (status, scanner) = app
        .post(
            &format!("/api/v1/events/{event_id}/scanners"),
            Some(&organizer.token),
            &json!({"name": "Phone", "gate": "Camera gate"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{scanner}");

    let video = std::env::temp_dir().join(format!("boxoffice-qr-{event_id}.y4m"));
    qr_video(&codes[0], &video);
    let run = tokio::process::Command::new("node")
        .arg(root.join("e2e/scan.mjs"))
        .env("BASE_URL", &app.address)
        .env("EVENT_ID", event_id.to_string())
        .env("SCANNER_TOKEN", string(&scanner["token"]))
        .env("OFFLINE_CODE", &codes[1])
        .env("VIDEO", &video)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(StdDuration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("the scanner page took over 2 minutes"))
        .unwrap_or_else(|e| panic!("running node: {e}"));
    let _ = std::fs::remove_file(&video);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let results: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "no results:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(results["failure"].is_null(), "{results}");
    assert_eq!(results["token_kept_out_of_the_address"], true, "{results}");
    assert!(string(&results["camera"]).starts_with("ADMIT"), "{results}");
    assert_eq!(results["camera_held"], "ADMIT", "{results}");
    assert_eq!(results["offline"], "ADMIT", "{results}");
    assert!(
        string(&results["offline_text"]).contains("offline"),
        "{results}"
    );
    assert_eq!(results["admitted_here"], "2", "{results}");
    assert_eq!(results["errors"], json!([]), "{results}");

    // Postgres has both: the camera's online, and the offline one synced.
    let (used, offline): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tickets WHERE event_id = $1 AND status = 'USED'), \
                (SELECT count(*) FROM checkins WHERE event_id = $1 AND offline AND result = 'ADMIT')",
    )
    .bind(event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_default();
    assert_eq!((used, offline), (2, 1));
}
