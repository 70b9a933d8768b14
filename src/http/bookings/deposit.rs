//! Paying a booking's deposit through the gateway: the attempt's row first, the gateway
//! asked with keys made from it, the outcome and the confirmation written together (see
//! `persistence::deposits`).

use actix_web::{web, HttpRequest, HttpResponse};
use uuid::Uuid;

use super::{own_booking, recorded, view, BookingView, DepositBody};
use crate::domain::booking::BookingStatus;
use crate::http::audit::Trail;
use crate::http::auth::Organizer;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Json;
use crate::http::AppState;
use crate::payments::{AuthorizeRequest, PaymentError};
use crate::persistence::deposits::{self, Outcome, Start};

/// Pays the booking's deposit; the booking is CONFIRMED when it is captured. Needs an
/// `Idempotency-Key`: the same key again answers as the first time and never pays twice.
#[utoipa::path(post, path = "/api/v1/bookings/{booking_id}/deposit", tag = "back office", security(("bearer" = [])),
    params(("booking_id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "unique per payment attempt (1 to 200 characters)", pattern = r"\S", max_length = 200)),
    request_body = DepositBody,
    responses((status = 200, body = BookingView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 402, description = "payment_declined", body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "booking_confirmed, booking_cancelled, booking_lapsed, deposit_in_progress", body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 502, description = "payment_failed", body = ErrorBody),
              (status = 503, description = "payment_unavailable: the card processor is degraded; nothing was asked, retry after Retry-After", body = ErrorBody)))]
pub async fn pay_deposit(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: Json<DepositBody>,
) -> Result<HttpResponse, ApiError> {
    let key = crate::http::holds::idempotency_key(&req)?;
    let token = body.0.payment_token.trim();
    if token.is_empty() || body.0.payment_token.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            "payment_token",
            "must be 1 to 200 characters",
        ));
    }
    let booking = own_booking(&state, organizer, *path).await?;
    let gateway = state.engine.gateway();
    let attempt = match deposits::begin(
        &state.pool,
        booking.booking_id,
        key,
        gateway.name(),
        state.now(),
        in_flight(state.settings.payment_timeout),
    )
    .await?
    {
        Start::Pay(attempt) => attempt,
        Start::Done(done) => return answered(&state, organizer, booking.booking_id, done).await,
        Start::InProgress => {
            return Err(ApiError::conflict(
                "deposit_in_progress",
                "another payment of this deposit is under way; retry with its Idempotency-Key",
            ))
        }
        Start::Closed(BookingStatus::Confirmed) => {
            return Err(ApiError::conflict(
                "booking_confirmed",
                "the deposit is paid already",
            ))
        }
        Start::Closed(_) => {
            return Err(ApiError::conflict(
                "booking_cancelled",
                "the booking is cancelled",
            ))
        }
        Start::Lapsed => {
            return Err(ApiError::conflict(
                "booking_lapsed",
                "the request lapsed unpaid; request the venue again (POST /events/{id}/booking)",
            ))
        }
    };
    // The gateway's keys come from the attempt's row: a retry asks with the same ones.
    let authorize_key = format!("deposit:{}", attempt.deposit_id);
    let request = AuthorizeRequest {
        payment_token: token.to_owned(),
        amount_cents: attempt.amount_cents,
        currency: attempt.currency.clone(),
        idempotency_key: authorize_key.clone(),
    };
    // Each call is bounded, so an attempt is never PENDING longer than `in_flight` while
    // its request is alive.
    let limit = state.settings.payment_timeout;
    let paid = match bounded(limit, gateway.authorize(&request)).await {
        Ok(authorization) => bounded(
            limit,
            gateway.capture(
                &authorization.authorization_id,
                &format!("{authorize_key}:capture"),
            ),
        )
        .await
        .map(|()| authorization.authorization_id),
        Err(error) => Err(error),
    };
    let outcome = match &paid {
        Ok(reference) => Outcome::Captured {
            gateway_ref: reference,
        },
        Err(PaymentError::Declined { reason }) => Outcome::Declined { reason },
        Err(_) => {
            // Nothing known to be taken: release whatever may have been reserved.
            if let Err(error) = gateway.void(&authorize_key).await {
                tracing::warn!(?error, "voiding a failed deposit");
            }
            Outcome::Failed
        }
    };
    deposits::settle(
        &state.pool,
        booking.booking_id,
        attempt.deposit_id,
        outcome,
        state.now(),
    )
    .await?;
    match paid {
        Ok(_) => {
            recorded(
                &state,
                organizer,
                trail,
                booking.booking_id,
                "booking.deposit_paid",
            )
            .await
        }
        Err(PaymentError::Declined { reason }) => Err(declined(&reason)),
        Err(PaymentError::Unavailable { retry_after }) => {
            Err(crate::actors::EngineError::PaymentUnavailable(retry_after).into())
        }
        Err(error) => {
            tracing::warn!(?error, "a deposit payment failed");
            Err(failed())
        }
    }
}

/// How long a PENDING attempt counts as being asked by a live request: its two gateway
/// calls, each bounded by the payment timeout, and the writes around them.
fn in_flight(payment_timeout: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(payment_timeout * 2).unwrap_or(chrono::Duration::MAX)
        + chrono::Duration::seconds(5)
}

async fn bounded<T>(
    limit: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, PaymentError>>,
) -> Result<T, PaymentError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(PaymentError::Timeout))
}

fn declined(reason: &str) -> ApiError {
    ApiError::coded(
        actix_web::http::StatusCode::PAYMENT_REQUIRED,
        "payment_declined",
        "the card was declined; the booking stays requested until it lapses",
    )
    .with("reason", reason)
}

fn failed() -> ApiError {
    ApiError::coded(
        actix_web::http::StatusCode::BAD_GATEWAY,
        "payment_failed",
        "the payment could not be completed; nothing was charged",
    )
}

/// The answer an attempt already had, given again.
async fn answered(
    state: &AppState,
    organizer: Organizer,
    booking_id: Uuid,
    done: deposits::DepositRow,
) -> Result<HttpResponse, ApiError> {
    match done.status.as_str() {
        "CAPTURED" => {
            let booking = own_booking(state, organizer, booking_id).await?;
            Ok(HttpResponse::Ok().json(view(state, booking).await?))
        }
        "DECLINED" => Err(declined(
            done.decline_reason.as_deref().unwrap_or("declined"),
        )),
        _ => Err(failed()),
    }
}
