//! The one error type of the HTTP layer. Every error answer is
//! `{"error": {"code": "<snake_case>", "message": "<for a person>", ...details}}`.
//!
//! Unexpected failures are logged with their cause and answered with a bare 500: details
//! of an internal failure never leave the server.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::FieldErrors;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 for a body or query that could not be read, 422 for values that break a rule.
    #[error("validation failed: {message}")]
    Validation {
        status: StatusCode,
        message: String,
        fields: BTreeMap<String, String>,
    },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: the request is well-formed but the resource's state refuses it.
    #[error("{code}: {message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Map<String, Value>,
    },
    /// Any other answer with its own status and code (413, 415, 402, 502, …).
    #[error("{code}: {message}")]
    Other {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Map<String, Value>,
    },
    #[error("rate limited; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    /// 422 naming each field that broke a rule.
    pub fn invalid(fields: FieldErrors) -> ApiError {
        ApiError::Validation {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "some fields are invalid".into(),
            fields: fields.into_inner(),
        }
    }

    /// 422 for one field.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::invalid(FieldErrors::single(field, reason))
    }

    /// 400: the request could not be read at all.
    pub fn malformed(message: impl Into<String>, fields: BTreeMap<String, String>) -> ApiError {
        ApiError::Validation {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            fields,
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            code,
            message: message.into(),
            details: Map::new(),
        }
    }

    /// An answer with its own status and code, and no details.
    pub fn coded(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Other {
            status,
            code,
            message: message.into(),
            details: Map::new(),
        }
    }

    /// 503 `owner_unavailable` (with `Retry-After`): the on-sale is changing nodes, or its
    /// owner did not answer; nothing was done, and the client retries.
    pub fn owner_unavailable() -> ApiError {
        ApiError::coded(
            StatusCode::SERVICE_UNAVAILABLE,
            "owner_unavailable",
            "the node running this on-sale is changing; nothing was done, retry in a moment",
        )
    }

    /// Adds a detail field beside `code` and `message` (e.g. `seat_ids`, `reason`).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        if let ApiError::Conflict { details, .. } | ApiError::Other { details, .. } = &mut self {
            details.insert(key.to_owned(), value.into());
        }
        self
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_failed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } | ApiError::Other { code, .. } => code,
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unexpected(_) => "internal_error",
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(fields: FieldErrors) -> Self {
        ApiError::invalid(fields)
    }
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: what clients branch on.
    pub code: String,
    /// For a person.
    pub message: String,
    /// With `validation_failed`: each bad field and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { status, .. } | ApiError::Other { status, .. } => *status,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
        }
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            let seconds = match self {
                ApiError::Other { details, .. } => details
                    .get("retry_after_seconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(1),
                _ => 1,
            };
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        let mut answer = response.json(serde_json::json!({ "error": self.body() }));
        answer
            .extensions_mut()
            .insert(super::trace::ErrorCode(self.code()));
        answer
    }
}

impl ApiError {
    /// The `error` object of the answer: code, message and details (also sent on sockets).
    pub fn body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("code".into(), Value::from(self.code()));
        let message = match self {
            ApiError::Validation {
                message, fields, ..
            } => {
                body.insert(
                    "fields".into(),
                    serde_json::to_value(fields).unwrap_or_default(),
                );
                message.clone()
            }
            ApiError::Unauthorized(m) | ApiError::Forbidden(m) | ApiError::NotFound(m) => m.clone(),
            ApiError::Conflict {
                message, details, ..
            } => {
                body.extend(details.clone());
                message.clone()
            }
            ApiError::Other {
                message, details, ..
            } => {
                body.extend(details.clone());
                message.clone()
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                body.insert("retry_after_seconds".into(), Value::from(*retry_after_secs));
                "too many requests; slow down".into()
            }
            ApiError::Unexpected(error) => {
                tracing::error!(error = ?error, "request failed unexpectedly");
                "something went wrong on our side".into()
            }
        };
        body.insert("message".into(), Value::from(message));
        body
    }
}

impl From<crate::actors::EngineError> for ApiError {
    fn from(error: crate::actors::EngineError) -> Self {
        use crate::actors::EngineError as E;
        match error {
            E::Hold(refusal) => refusal.into(),
            E::PaymentDeclined(reason) => ApiError::coded(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                "the card was declined; the seats stay held until the hold's deadline",
            )
            .with("reason", reason),
            E::PaymentFailed(why) => {
                tracing::warn!(%why, "payment failed");
                ApiError::coded(
                    StatusCode::BAD_GATEWAY,
                    "payment_failed",
                    "the payment could not be completed; nothing was charged",
                )
            }
            E::Unavailable => ApiError::coded(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the on-sale engine is restarting; retry",
            ),
            E::PaymentUnavailable(retry_after) => ApiError::coded(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment_unavailable",
                "card payments are slow right now; nothing was charged and your seats stay held: try again in a moment",
            )
            .with("retryable", true)
            .with("retry_after_seconds", retry_after.as_secs().max(1)),
            E::OrdersBusy => ApiError::coded(
                StatusCode::SERVICE_UNAVAILABLE,
                "orders_busy",
                "too many orders are being written right now; nothing was charged and your seats stay held: try again in a moment",
            )
            .with("retryable", true),
            E::OwnerUnavailable => ApiError::owner_unavailable(),
            E::Unexpected(error) => ApiError::Unexpected(error),
        }
    }
}

impl From<crate::domain::holds::HoldError> for ApiError {
    fn from(error: crate::domain::holds::HoldError) -> Self {
        use crate::domain::holds::HoldError as E;
        match error {
            E::EventNotFound => ApiError::NotFound("no such event".into()),
            E::SaleNotOpen(why) => ApiError::conflict("sale_not_open", why),
            E::SeatUnavailable(ids) => ApiError::conflict("seat_unavailable", "some of these seats are taken or not on sale")
                .with("seat_ids", serde_json::json!(ids)),
            E::SoldOut => ApiError::conflict("sold_out", "not enough tickets are left for this request"),
            E::MaxPerOrderExceeded(max) => {
                ApiError::coded(StatusCode::UNPROCESSABLE_ENTITY, "max_per_order_exceeded", format!("at most {max} tickets per order"))
                    .with("max_per_order", max)
            }
            E::BuyerLimitExceeded { limit, has } => ApiError::coded(
                StatusCode::UNPROCESSABLE_ENTITY,
                "buyer_limit_exceeded",
                format!("at most {limit} tickets per buyer for this event, counting those bought and held; you have {has}"),
            )
            .with("max_per_buyer", limit)
            .with("tickets", has),
            E::TooManyHolds(max) => ApiError::conflict("too_many_holds", format!("at most {max} active holds per buyer; release or buy one first"))
                .with("max_holds", max),
            E::Invalid(fields) => ApiError::invalid(fields),
            E::HoldNotFound => ApiError::coded(StatusCode::NOT_FOUND, "hold_not_found", "no such hold (it may have been released)"),
            E::HoldExpired => ApiError::conflict("hold_expired", "the hold expired and its seats went back on sale; nothing was charged"),
            E::NotYourHold => ApiError::Forbidden("this hold belongs to another buyer".into()),
            E::CheckoutInProgress => ApiError::conflict("checkout_in_progress", "a payment for this hold is in progress; retry with the same Idempotency-Key to get its result"),
            E::AlreadyPurchased(order_id) => {
                ApiError::conflict("hold_purchased", "this hold was already bought").with("order_id", order_id.to_string())
            }
        }
    }
}

impl From<crate::pow::PowError> for ApiError {
    fn from(error: crate::pow::PowError) -> Self {
        match error {
            crate::pow::PowError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "could not redeem a proof of work");
                ApiError::coded(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the proof of work could not be checked just now; retry",
                )
            }
            other => ApiError::coded(
                StatusCode::FORBIDDEN,
                "proof_of_work_invalid",
                other.to_string(),
            )
            .with("reason", other.reason()),
        }
    }
}

impl From<crate::sale::SaleError> for ApiError {
    fn from(error: crate::sale::SaleError) -> Self {
        match error {
            crate::sale::SaleError::Room(error) => error.into(),
            crate::sale::SaleError::Engine(error) => error.into(),
        }
    }
}

impl From<crate::queue::QueueError> for ApiError {
    fn from(error: crate::queue::QueueError) -> Self {
        use crate::queue::QueueError as E;
        let message = error.to_string();
        match error {
            E::EventNotFound => ApiError::NotFound("no such event".into()),
            E::NoWaitingRoom => ApiError::conflict("no_waiting_room", message),
            E::NotOpenYet(at) => ApiError::conflict("queue_not_open", message)
                .with("queue_opens_at", at.to_rfc3339()),
            E::NotInQueue => ApiError::coded(StatusCode::NOT_FOUND, "not_in_queue", message),
            E::AdmissionRequired => {
                ApiError::coded(StatusCode::UNAUTHORIZED, "admission_required", message)
            }
            E::AdmissionInvalid(why) => {
                ApiError::coded(StatusCode::FORBIDDEN, "admission_invalid", message)
                    .with("reason", why.reason())
            }
            E::OwnerUnavailable => ApiError::owner_unavailable(),
            E::ClaimTooLate => ApiError::conflict("claim_too_late", message),
            E::ProofRequired => {
                ApiError::coded(StatusCode::FORBIDDEN, "proof_of_work_required", message)
            }
            E::Unavailable(_) => ApiError::coded(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the waiting room is restarting; retry",
            ),
            E::Invalid(fields) => ApiError::invalid(fields),
            E::Unexpected(error) => ApiError::Unexpected(error),
        }
    }
}
