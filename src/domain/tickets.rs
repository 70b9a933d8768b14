//! A ticket's life after the sale, as rules: the ledger's kinds of entry, who may transfer
//! a ticket and when, and what a scan at the door answers.
//!
//! Plain functions and data of what was read; the persistence layer writes what they
//! decide (a ticket is never changed without its ledger entry in the same transaction),
//! and the door service (`crate::doors`) keeps a [`DoorBook`] per event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::event::EventStatus;
use super::orders::TicketStatus;
use super::text_enum::text_enum;

/// One entry of a ticket's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerKind {
    Issued,
    TransferredOut,
    TransferredIn,
    Used,
    Cancelled,
    Refunded,
}

text_enum!(LedgerKind, "ledger entry kind" {
    Issued => "ISSUED",
    TransferredOut => "TRANSFERRED_OUT",
    TransferredIn => "TRANSFERRED_IN",
    Used => "USED",
    Cancelled => "CANCELLED",
    Refunded => "REFUNDED",
});

/// What a transfer needs to know of the ticket and its event.
#[derive(Debug, Clone, Copy)]
pub struct Transferable {
    pub status: TicketStatus,
    /// The ticket was made by a transfer (a ticket moves once).
    pub from_transfer: bool,
    pub transfers_allowed: bool,
    /// When transfers close: the organizer's time, or the event's start.
    pub transfers_close_at: DateTime<Utc>,
}

/// Whether a ticket may be transferred at `now`, and if not, why (for the 409's message).
pub fn may_transfer(ticket: Transferable, now: DateTime<Utc>) -> Result<(), &'static str> {
    if ticket.from_transfer {
        return Err("this ticket was transferred to you: a ticket is transferred once");
    }
    match ticket.status {
        TicketStatus::Valid => {}
        TicketStatus::Transferred => return Err("this ticket was already transferred"),
        TicketStatus::Used => return Err("this ticket was used at the door"),
        TicketStatus::Cancelled => return Err("this ticket was cancelled"),
    }
    if !ticket.transfers_allowed {
        return Err("the organizer does not allow transfers for this event");
    }
    if now >= ticket.transfers_close_at {
        return Err("transfers are closed for this event");
    }
    Ok(())
}

/// When an event's door takes scans: from publication until the event ends, unless the
/// organizer narrowed it (`opens_at`, `closes_at`).
#[derive(Debug, Clone, Copy)]
pub struct DoorHours {
    pub status: EventStatus,
    pub end_time: DateTime<Utc>,
    pub opens_at: Option<DateTime<Utc>>,
    pub closes_at: Option<DateTime<Utc>>,
}

/// Whether the door takes scans at `now`; if not, why.
pub fn door_open(hours: DoorHours, now: DateTime<Utc>) -> Result<(), String> {
    match hours.status {
        EventStatus::Draft => return Err("the event is not published".into()),
        EventStatus::Cancelled => return Err("the event is cancelled".into()),
        _ => {}
    }
    if let Some(opens) = hours.opens_at.filter(|opens| now < *opens) {
        return Err(format!("check-in opens at {}", opens.to_rfc3339()));
    }
    let closes = hours.closes_at.unwrap_or(hours.end_time);
    if now >= closes {
        return Err(format!("check-in closed at {}", closes.to_rfc3339()));
    }
    Ok(())
}

/// What a scan is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanResult {
    Admit,
    AlreadyAdmitted,
    Invalid,
    WrongEvent,
}

text_enum!(ScanResult, "scan result" {
    Admit => "ADMIT",
    AlreadyAdmitted => "ALREADY_ADMITTED",
    Invalid => "INVALID",
    WrongEvent => "WRONG_EVENT",
});

/// Where and when a ticket was first let in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FirstScan {
    pub at: DateTime<Utc>,
    pub gate: String,
}

/// The answer to one scan, as the scanner shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScanAnswer {
    pub result: ScanResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_scan: Option<FirstScan>,
    /// Why a ticket is INVALID: unknown, cancelled, transferred, refunded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ScanAnswer {
    /// INVALID for a code that names no ticket we can trust (unreadable, forged).
    pub fn refused(reason: &str) -> ScanAnswer {
        ScanAnswer::invalid(None, reason)
    }

    /// WRONG_EVENT for a ticket of another event.
    pub fn wrong_event(ticket_id: Option<Uuid>) -> ScanAnswer {
        ScanAnswer {
            result: ScanResult::WrongEvent,
            ticket_id,
            seat_label: None,
            first_scan: None,
            reason: Some("this ticket is for another event".into()),
        }
    }

    fn invalid(ticket: Option<&DoorTicket>, reason: &str) -> ScanAnswer {
        ScanAnswer {
            result: ScanResult::Invalid,
            ticket_id: ticket.map(|t| t.ticket_id),
            seat_label: ticket.map(|t| t.label.clone()),
            first_scan: None,
            reason: Some(reason.to_owned()),
        }
    }
}

/// A ticket of the event as the door knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorTicket {
    pub ticket_id: Uuid,
    pub event_id: Uuid,
    pub label: String,
    pub status: TicketStatus,
    /// The ledger says why a CANCELLED ticket is: refunded or cancelled.
    pub refunded: bool,
    pub first_scan: Option<FirstScan>,
}

/// What a scan comes to before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answer this (nothing to write but the scan).
    Answer(ScanAnswer),
    /// Let this ticket in, if Postgres agrees it is still VALID (the write decides).
    Admit(Uuid),
}

/// The door of one event: its tickets by QR code and by id, kept in memory so that a scan
/// is decided without reading Postgres. A ticket it has never seen is looked up once (a
/// sale at the door, a transfer) and added. Its knowledge can only be behind Postgres's
/// in one direction — a ticket it thinks VALID may have been cancelled or transferred
/// since — so an ADMIT is always confirmed by a conditional write (`status = 'VALID'`), and
/// what that write finds is put back here ([`DoorBook::learn`]).
#[derive(Debug, Default)]
pub struct DoorBook {
    event_id: Uuid,
    by_qr: HashMap<String, Uuid>,
    tickets: HashMap<Uuid, DoorTicket>,
}

impl DoorBook {
    pub fn new(event_id: Uuid) -> DoorBook {
        DoorBook {
            event_id,
            ..DoorBook::default()
        }
    }

    pub fn len(&self) -> usize {
        self.tickets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// Adds or replaces what the door knows of a ticket (any event's: a ticket of another
    /// event is remembered so that its scans answer WRONG_EVENT at once).
    pub fn learn(&mut self, qr: &str, ticket: DoorTicket) {
        self.by_qr.insert(qr.to_owned(), ticket.ticket_id);
        self.tickets.insert(ticket.ticket_id, ticket);
    }

    /// The ticket a QR code names, if the door knows it.
    pub fn by_qr(&self, qr: &str) -> Option<&DoorTicket> {
        self.by_qr.get(qr).and_then(|id| self.tickets.get(id))
    }

    pub fn by_id(&self, ticket_id: Uuid) -> Option<&DoorTicket> {
        self.tickets.get(&ticket_id)
    }

    /// The event's own tickets.
    pub fn tickets(&self) -> impl Iterator<Item = &DoorTicket> {
        let event_id = self.event_id;
        self.tickets
            .values()
            .filter(move |t| t.event_id == event_id)
    }

    /// Decides a scan of a ticket the door knows (`None`: unknown everywhere).
    pub fn judge(&self, ticket: Option<&DoorTicket>) -> Verdict {
        let Some(ticket) = ticket else {
            return Verdict::Answer(ScanAnswer::invalid(None, "unknown"));
        };
        if ticket.event_id != self.event_id {
            return Verdict::Answer(ScanAnswer::wrong_event(Some(ticket.ticket_id)));
        }
        match ticket.status {
            TicketStatus::Valid => Verdict::Admit(ticket.ticket_id),
            TicketStatus::Used => Verdict::Answer(ScanAnswer {
                result: ScanResult::AlreadyAdmitted,
                ticket_id: Some(ticket.ticket_id),
                seat_label: Some(ticket.label.clone()),
                first_scan: ticket.first_scan.clone(),
                reason: None,
            }),
            TicketStatus::Transferred => {
                Verdict::Answer(ScanAnswer::invalid(Some(ticket), "transferred"))
            }
            TicketStatus::Cancelled if ticket.refunded => {
                Verdict::Answer(ScanAnswer::invalid(Some(ticket), "refunded"))
            }
            TicketStatus::Cancelled => {
                Verdict::Answer(ScanAnswer::invalid(Some(ticket), "cancelled"))
            }
        }
    }

    /// The answer that lets `ticket_id` in (once Postgres has agreed).
    pub fn admit_answer(&self, ticket_id: Uuid) -> ScanAnswer {
        ScanAnswer {
            result: ScanResult::Admit,
            ticket_id: Some(ticket_id),
            seat_label: self.tickets.get(&ticket_id).map(|t| t.label.clone()),
            first_scan: None,
            reason: None,
        }
    }

    /// The ticket was let in at `at`, at `gate`.
    pub fn admitted(&mut self, ticket_id: Uuid, at: DateTime<Utc>, gate: &str) {
        if let Some(ticket) = self.tickets.get_mut(&ticket_id) {
            ticket.status = TicketStatus::Used;
            ticket.first_scan = Some(FirstScan {
                at,
                gate: gate.to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, 19, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn transferable() -> Transferable {
        Transferable {
            status: TicketStatus::Valid,
            from_transfer: false,
            transfers_allowed: true,
            transfers_close_at: now() + Duration::hours(1),
        }
    }

    #[test]
    fn a_valid_ticket_moves_once_before_transfers_close() {
        assert_eq!(may_transfer(transferable(), now()), Ok(()));
        let again = Transferable {
            from_transfer: true,
            ..transferable()
        };
        assert!(may_transfer(again, now()).is_err());
        for status in [
            TicketStatus::Transferred,
            TicketStatus::Used,
            TicketStatus::Cancelled,
        ] {
            let ticket = Transferable {
                status,
                ..transferable()
            };
            assert!(may_transfer(ticket, now()).is_err(), "{status:?}");
        }
        let late = now() + Duration::hours(1);
        assert_eq!(
            may_transfer(transferable(), late),
            Err("transfers are closed for this event")
        );
        let closed = Transferable {
            transfers_allowed: false,
            ..transferable()
        };
        assert!(may_transfer(closed, now()).is_err());
    }

    #[test]
    fn the_door_is_open_from_publication_until_the_end_unless_narrowed() {
        let hours = DoorHours {
            status: EventStatus::OnSale,
            end_time: now() + Duration::hours(3),
            opens_at: None,
            closes_at: None,
        };
        assert!(door_open(hours, now()).is_ok());
        assert!(door_open(hours, now() + Duration::hours(3)).is_err());
        for status in [EventStatus::Draft, EventStatus::Cancelled] {
            assert!(
                door_open(DoorHours { status, ..hours }, now()).is_err(),
                "{status:?}"
            );
        }
        let narrowed = DoorHours {
            opens_at: Some(now() + Duration::minutes(30)),
            closes_at: Some(now() + Duration::hours(1)),
            ..hours
        };
        assert!(door_open(narrowed, now()).is_err());
        assert!(door_open(narrowed, now() + Duration::minutes(30)).is_ok());
        assert!(door_open(narrowed, now() + Duration::hours(1)).is_err());
    }

    fn ticket(event_id: Uuid, status: TicketStatus) -> DoorTicket {
        DoorTicket {
            ticket_id: Uuid::new_v4(),
            event_id,
            label: "A A-1".into(),
            status,
            refunded: false,
            first_scan: None,
        }
    }

    #[test]
    fn a_scan_is_judged_by_what_the_door_knows_and_admitting_remembers_where() {
        let event = Uuid::new_v4();
        let mut door = DoorBook::new(event);
        let valid = ticket(event, TicketStatus::Valid);
        door.learn("qr-1", valid.clone());
        assert_eq!(
            door.judge(door.by_qr("qr-1")),
            Verdict::Admit(valid.ticket_id)
        );
        let answer = door.admit_answer(valid.ticket_id);
        door.admitted(valid.ticket_id, now(), "north");
        assert_eq!(answer.result, ScanResult::Admit);
        assert_eq!(answer.seat_label.as_deref(), Some("A A-1"));
        let Verdict::Answer(again) = door.judge(door.by_qr("qr-1")) else {
            panic!("a used ticket is not let in twice");
        };
        assert_eq!(again.result, ScanResult::AlreadyAdmitted);
        assert_eq!(
            again.first_scan,
            Some(FirstScan {
                at: now(),
                gate: "north".into()
            })
        );
    }

    #[test]
    fn every_reason_to_refuse_is_named() {
        let event = Uuid::new_v4();
        let door = DoorBook::new(event);
        let reason = |ticket: Option<&DoorTicket>| match door.judge(ticket) {
            Verdict::Answer(answer) => (answer.result, answer.reason.unwrap_or_default()),
            Verdict::Admit(_) => (ScanResult::Admit, String::new()),
        };
        assert_eq!(reason(None), (ScanResult::Invalid, "unknown".into()));
        let gone = ticket(event, TicketStatus::Transferred);
        assert_eq!(
            reason(Some(&gone)),
            (ScanResult::Invalid, "transferred".into())
        );
        let cancelled = ticket(event, TicketStatus::Cancelled);
        assert_eq!(
            reason(Some(&cancelled)),
            (ScanResult::Invalid, "cancelled".into())
        );
        let refunded = DoorTicket {
            refunded: true,
            ..cancelled
        };
        assert_eq!(
            reason(Some(&refunded)),
            (ScanResult::Invalid, "refunded".into())
        );
        let elsewhere = ticket(Uuid::new_v4(), TicketStatus::Valid);
        assert_eq!(reason(Some(&elsewhere)).0, ScanResult::WrongEvent);
    }
}
