//! The door's endpoints: the organizer's scanners and door settings, and check-in with a
//! scanner's token (accepted by these endpoints of its own event and nowhere else).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{json, Did, Trail};
use super::auth::Organizer;
use super::error::{ApiError, ErrorBody};
use super::events::owned;
use super::extract::Json;
use super::AppState;
use crate::domain::tickets::ScanAnswer;
use crate::domain::FieldErrors;
use crate::doors::{DoorError, ScanAsk};
use crate::persistence::scanners::{self, DoorSettings, ScannerRow};

/// A request made with a live scanner's token.
pub struct Scanner(pub ScannerRow);

impl FromRequest for Scanner {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Scanner, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = match super::auth::bearer_token(req) {
            Ok(token) => token.map(str::to_owned),
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::Unexpected(anyhow::anyhow!("application state is missing"))
            })?;
            let token = token.ok_or_else(|| {
                ApiError::Unauthorized(
                    "a scanner token is required (Authorization: Bearer bxs_…)".into(),
                )
            })?;
            match state.doors.scanner(&token).await? {
                Some(scanner) => Ok(Scanner(scanner)),
                None => Err(ApiError::Unauthorized(
                    "the scanner token is unknown or was revoked".into(),
                )),
            }
        })
    }
}

impl Scanner {
    /// The scanner, if it belongs to `event_id`.
    fn of(self, event_id: Uuid) -> Result<ScannerRow, ApiError> {
        if self.0.event_id != event_id {
            return Err(ApiError::Forbidden(
                "this scanner belongs to another event".into(),
            ));
        }
        Ok(self.0)
    }
}

impl From<DoorError> for ApiError {
    fn from(error: DoorError) -> Self {
        match error {
            DoorError::EventNotFound => ApiError::NotFound("no such event".into()),
            DoorError::Closed(why) => {
                ApiError::conflict("checkin_closed", format!("check-in is closed: {why}"))
            }
            DoorError::Unexpected(error) => ApiError::Unexpected(error),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScanner {
    /// What the organizer calls the device (1 to 100 characters).
    #[schema(format = "text", max_length = 100)]
    pub name: String,
    /// The gate it scans at unless a scan says otherwise (1 to 100 characters).
    #[schema(format = "text", max_length = 100)]
    pub gate: String,
}

#[derive(Serialize, ToSchema)]
pub struct ScannerView {
    pub scanner_id: Uuid,
    pub name: String,
    pub gate: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct NewScannerView {
    pub scanner_id: Uuid,
    pub name: String,
    pub gate: String,
    /// The bearer token for this event's check-in endpoints: shown once.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct ScannerList {
    pub scanners: Vec<ScannerView>,
}

fn text(errors: &mut FieldErrors, field: &str, value: &str) -> String {
    errors
        .take(field, crate::domain::validation::text(value, 100))
        .unwrap_or_default()
}

/// A scanned code or a nonce: one line, trimmed, 1 to `max` characters.
fn line(errors: &mut FieldErrors, field: &str, value: &str, max: usize) -> String {
    let value = value.trim();
    errors.check(
        (1..=max).contains(&value.chars().count()) && !value.chars().any(char::is_control),
        field,
        format!("must be 1 to {max} characters, without control characters"),
    );
    value.to_owned()
}

/// Makes a scanner for the event's door; its token is shown this once.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/scanners", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = NewScanner,
    responses((status = 201, body = NewScannerView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn create_scanner(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<NewScanner>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let mut errors = FieldErrors::new();
    let name = text(&mut errors, "name", &body.0.name);
    let gate = text(&mut errors, "gate", &body.0.gate);
    errors.finish(()).map_err(ApiError::invalid)?;
    let (token, hash) = crate::doors::new_token();
    let scanner = ScannerRow {
        scanner_id: Uuid::new_v4(),
        event_id: event.event_id,
        name,
        gate,
        created_at: state.now(),
        revoked_at: None,
    };
    scanners::create(&state.pool, &scanner, &hash).await?;
    let made = serde_json::json!({"name": scanner.name, "gate": scanner.gate});
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(
                event.event_id,
                "scanner",
                Some(scanner.scanner_id),
                "scanner.created",
            )
            .changed(None, Some(made)),
        )
        .await;
    Ok(HttpResponse::Created().json(NewScannerView {
        scanner_id: scanner.scanner_id,
        name: scanner.name,
        gate: scanner.gate,
        token,
    }))
}

/// The event's scanners, revoked ones included (never their tokens).
#[utoipa::path(get, path = "/api/v1/events/{event_id}/scanners", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = ScannerList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn list_scanners(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let scanners = scanners::of_event(&state.pool, event.event_id)
        .await?
        .into_iter()
        .map(|s| ScannerView {
            scanner_id: s.scanner_id,
            name: s.name,
            gate: s.gate,
            created_at: s.created_at,
            revoked_at: s.revoked_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ScannerList { scanners }))
}

/// Revokes a scanner: its token is refused from now on (on every node within seconds).
#[utoipa::path(delete, path = "/api/v1/events/{event_id}/scanners/{scanner_id}", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path), ("scanner_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn revoke_scanner(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (event_id, scanner_id) = path.into_inner();
    let event = owned(&state, organizer, event_id).await?;
    if !scanners::revoke(&state.pool, event.event_id, scanner_id, state.now()).await? {
        return Err(ApiError::NotFound(format!(
            "no scanner {scanner_id} at this event"
        )));
    }
    state.doors.forget_scanners();
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(
                event.event_id,
                "scanner",
                Some(scanner_id),
                "scanner.revoked",
            ),
        )
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// When the door takes scans and whether tickets may be transferred; null is the default
/// (check-in from publication until the event ends; transfers until it starts).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoorBody {
    #[serde(default)]
    pub checkin_opens_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub checkin_closes_at: Option<DateTime<Utc>>,
    #[serde(default = "yes")]
    pub transfers_allowed: bool,
    #[serde(default)]
    pub transfers_close_at: Option<DateTime<Utc>>,
}

fn yes() -> bool {
    true
}

/// Sets the event's check-in hours and transfer rule.
#[utoipa::path(put, path = "/api/v1/events/{event_id}/door", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = DoorBody,
    responses((status = 200, body = DoorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn set_door(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<DoorBody>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    let door = body.0;
    if let (Some(opens), Some(closes)) = (door.checkin_opens_at, door.checkin_closes_at) {
        if closes <= opens {
            return Err(ApiError::invalid_field(
                "checkin_closes_at",
                "must be after checkin_opens_at",
            ));
        }
    }
    let settings = DoorSettings {
        checkin_opens_at: Some(door.checkin_opens_at),
        checkin_closes_at: Some(door.checkin_closes_at),
        transfers_allowed: Some(door.transfers_allowed),
        transfers_close_at: Some(door.transfers_close_at),
    };
    scanners::set_door(&state.pool, event.event_id, &settings).await?;
    state.doors.forget(event.event_id);
    trail
        .record(
            &state,
            organizer.user_id,
            Did::on(event.event_id, "door", None, "event.door_set").changed(None, json(&door)),
        )
        .await;
    Ok(HttpResponse::Ok().json(door))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// What the ticket's QR code says (its `qr_token`).
    #[schema(format = "text", max_length = 2000)]
    pub qr: String,
    /// Where the scan happened (the scanner's own gate when left out).
    #[schema(format = "text", max_length = 100)]
    pub gate: Option<String>,
    /// Unique per scan on this scanner: a retry with the same nonce gets the same answer.
    #[schema(format = "text", max_length = 100)]
    pub nonce: String,
    /// When the scan happened, if not now (never later than the server's now).
    pub scanned_at: Option<DateTime<Utc>>,
}

/// Checks a ticket in: ADMIT once, then ALREADY_ADMITTED with the first scan; INVALID
/// (unknown, cancelled, transferred, refunded) or WRONG_EVENT. An ADMIT is answered only
/// once it is stored.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/checkins", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = ScanBody,
    responses((status = 200, body = ScanAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "checkin_closed", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, scanner, body))]
pub async fn checkin(
    state: web::Data<AppState>,
    scanner: Scanner,
    path: web::Path<Uuid>,
    body: Json<ScanBody>,
) -> Result<HttpResponse, ApiError> {
    let scanner = scanner.of(*path)?;
    let body = body.0;
    let mut errors = FieldErrors::new();
    let qr = line(&mut errors, "qr", &body.qr, 2000);
    let nonce = line(&mut errors, "nonce", &body.nonce, 100);
    let gate = match body.gate.as_deref().map(str::trim) {
        Some(gate) => text(&mut errors, "gate", gate),
        None => scanner.gate.clone(),
    };
    errors.finish(()).map_err(ApiError::invalid)?;
    let ask = ScanAsk {
        qr: &qr,
        gate: &gate,
        nonce: &nonce,
        scanned_at: body.scanned_at,
    };
    Ok(HttpResponse::Ok().json(state.doors.scan(&scanner, &ask).await?))
}

/// What the scanner takes offline: the event's public key (Ed25519), the revocation list
/// and the ticket list for display.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/checkin/bundle", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = crate::doors::Bundle), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, scanner))]
pub async fn bundle(
    state: web::Data<AppState>,
    scanner: Scanner,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let scanner = scanner.of(*path)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, no-store"))
        .json(state.doors.bundle(&scanner).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// At most 1,000 scans a request.
    #[schema(max_items = 1000)]
    pub scans: Vec<crate::doors::OfflineScan>,
}

/// Uploads scans made offline: judged in the order they happened (the first scan of a
/// ticket wins), each answered, and the tickets let in twice reported as conflicts.
#[utoipa::path(post, path = "/api/v1/events/{event_id}/checkins/sync", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)), request_body = SyncBody,
    responses((status = 200, body = crate::doors::Synced), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "checkin_closed", body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, scanner, body))]
pub async fn sync(
    state: web::Data<AppState>,
    scanner: Scanner,
    path: web::Path<Uuid>,
    body: Json<SyncBody>,
) -> Result<HttpResponse, ApiError> {
    let scanner = scanner.of(*path)?;
    let mut scans = body.0.scans;
    let mut errors = FieldErrors::new();
    errors.check(scans.len() <= 1000, "scans", "at most 1000 scans a request");
    for (i, scan) in scans.iter_mut().enumerate() {
        scan.qr = line(&mut errors, &format!("scans[{i}].qr"), &scan.qr, 2000);
        scan.nonce = line(&mut errors, &format!("scans[{i}].nonce"), &scan.nonce, 100);
        scan.gate = text(&mut errors, &format!("scans[{i}].gate"), &scan.gate);
    }
    errors.finish(()).map_err(ApiError::invalid)?;
    Ok(HttpResponse::Ok().json(state.doors.sync(&scanner, &mut scans).await?))
}

/// The door's figures: admitted of all tickets, per gate, per gate per minute over the
/// last hour, offline conflicts and refused scans.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/checkins/stats", tag = "door", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = scanners::CheckinStats), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn stats(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = owned(&state, organizer, *path).await?;
    // This node's refused scans are counted up to now.
    state.doors.flush().await;
    Ok(HttpResponse::Ok()
        .json(scanners::checkin_stats(&state.pool, event.event_id, state.now()).await?))
}
