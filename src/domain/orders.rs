//! The states of what a sale leaves behind: orders, their tickets, and the payments that
//! paid for them, each stored as TEXT (the migrations' CHECK constraints list the same
//! spellings) and read through one parse point.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text_enum::text_enum;

/// Where an order stands. Orders are written CONFIRMED, once their payment is authorized
/// and their tickets exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Cancelled,
    Refunded,
    PartiallyRefunded,
    Expired,
}

text_enum!(OrderStatus, "order status" {
    Pending => "PENDING",
    Confirmed => "CONFIRMED",
    Cancelled => "CANCELLED",
    Refunded => "REFUNDED",
    PartiallyRefunded => "PARTIALLY_REFUNDED",
    Expired => "EXPIRED",
});

/// Where a ticket stands: VALID until it is used at the door, cancelled, or transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    Valid,
    Used,
    Cancelled,
    Transferred,
}

text_enum!(TicketStatus, "ticket status" {
    Valid => "VALID",
    Used => "USED",
    Cancelled => "CANCELLED",
    Transferred => "TRANSFERRED",
});

/// Where a payment stands: PENDING before the card is asked, AUTHORIZED, then CAPTURED once
/// its order is durable, or VOIDED when no order came of it; DECLINED and FAILED end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Pending,
    Authorized,
    Captured,
    Voided,
    Refunded,
    PartiallyRefunded,
    Declined,
    Failed,
}

text_enum!(PaymentStatus, "payment status" {
    Pending => "PENDING",
    Authorized => "AUTHORIZED",
    Captured => "CAPTURED",
    Voided => "VOIDED",
    Refunded => "REFUNDED",
    PartiallyRefunded => "PARTIALLY_REFUNDED",
    Declined => "DECLINED",
    Failed => "FAILED",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_as_written_and_an_unknown_one_is_an_error() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Refunded,
        ] {
            assert_eq!(OrderStatus::parse(status.as_str()), Ok(status));
        }
        assert_eq!(TicketStatus::parse("USED"), Ok(TicketStatus::Used));
        assert_eq!(PaymentStatus::parse("VOIDED"), Ok(PaymentStatus::Voided));
        assert!(
            TicketStatus::parse("valid").is_err(),
            "no silent default, no case folding"
        );
    }
}
