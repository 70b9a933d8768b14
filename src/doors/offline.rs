//! What a scanner takes offline and brings back: the bundle (the event's public key, the
//! revoked tickets, the ticket list), the scans made offline, and what their sync answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::orders::TicketStatus;
use crate::domain::tickets::{FirstScan, ScanAnswer};

/// What a ticket's signed code is made of.
pub struct SignedFor {
    pub ticket_id: Uuid,
    pub event_id: Uuid,
    /// The seat, or the tier (or section) of a standing ticket.
    pub place_id: Uuid,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// What a scanner takes offline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bundle {
    /// Always `ed25519`.
    pub algorithm: &'static str,
    /// The event's public key, base64url (32 bytes).
    pub public_key: String,
    pub generated_at: DateTime<Utc>,
    /// Tickets that must not be let in (cancelled, transferred, refunded).
    pub revoked: Vec<Uuid>,
    pub tickets: Vec<BundleTicket>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleTicket {
    pub ticket_id: Uuid,
    pub label: String,
    pub status: TicketStatus,
}

/// A scan made offline.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineScan {
    #[schema(format = "text", max_length = 2000)]
    pub qr: String,
    #[schema(format = "text", max_length = 100)]
    pub gate: String,
    pub scanned_at: DateTime<Utc>,
    #[schema(format = "text", max_length = 100)]
    pub nonce: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResult {
    pub nonce: String,
    #[serde(flatten)]
    pub answer: ScanAnswer,
}

/// A ticket let in twice: first at `first_scan`, again offline at `gate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conflict {
    pub ticket_id: Uuid,
    pub first_scan: FirstScan,
    pub gate: String,
    pub scanned_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Synced {
    pub results: Vec<SyncResult>,
    pub conflicts: Vec<Conflict>,
}
