//! Tickets after the sale: who holds them, their ledger, transfers, and what the door reads
//! and writes. Every change of a ticket writes its ledger entry in the same transaction.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::orders::{TicketRow, TICKET_QUERY};
use crate::domain::orders::TicketStatus;
use crate::domain::tickets::{DoorTicket, FirstScan, LedgerKind, ScanAnswer, Transferable};

/// A held ticket with its event, for the holder's list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldTicket {
    #[sqlx(flatten)]
    pub ticket: TicketRow,
    pub event_title: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// Whether account `$U` holds ticket row `t`: it is the holder, or the ticket was
/// transferred to its address before the account existed (no row is changed when that
/// account appears: a ticket changes only with a ledger entry).
const HELD_BY: &str =
    "COALESCE(t.holder_id = $U OR (t.holder_id IS NULL AND lower(t.holder_email) = \
     (SELECT lower(email) FROM users WHERE user_id = $U)), false)";

fn held_by_sql(param: &str) -> String {
    HELD_BY.replace("$U", param)
}

/// The tickets `holder` holds (or held and transferred away), newest event first.
#[tracing::instrument(skip(pool))]
pub async fn held_by(pool: &PgPool, holder: Uuid) -> anyhow::Result<Vec<HeldTicket>> {
    sqlx::query_as(&format!(
        "SELECT * FROM ({TICKET_QUERY} WHERE {}) t \
         CROSS JOIN LATERAL (SELECT title AS event_title, start_time, end_time FROM events e WHERE e.event_id = t.event_id) e \
         ORDER BY e.start_time DESC, t.ticket_id",
        held_by_sql("$1")
    ))
    .bind(holder)
    .fetch_all(pool)
    .await
    .context("loading the tickets a holder holds")
}

/// A ticket's holder and the organizer of its event, for who may see or move it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Owners {
    pub ticket_id: Uuid,
    pub event_id: Uuid,
    /// Whether the caller holds it.
    pub held: bool,
    pub organizer_id: Uuid,
    pub qr_token: String,
    /// The seat, or the tier (or section) of a standing ticket.
    pub place_id: Uuid,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

#[tracing::instrument(skip(pool))]
pub async fn owners(
    pool: &PgPool,
    ticket_id: Uuid,
    caller: Uuid,
) -> anyhow::Result<Option<Owners>> {
    sqlx::query_as(&format!(
        "SELECT t.ticket_id, t.event_id, {} AS held, e.organizer_id, t.qr_token, \
         COALESCE(t.seat_id, t.tier_id, t.section_id) AS place_id, e.start_time, e.end_time \
         FROM tickets t JOIN events e USING (event_id) WHERE t.ticket_id = $1",
        held_by_sql("$2")
    ))
    .bind(ticket_id)
    .bind(caller)
    .fetch_optional(pool)
    .await
    .context("loading a ticket's holder")
}

/// One entry of a ticket's ledger.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerRow {
    pub kind: LedgerKind,
    pub at: DateTime<Utc>,
    pub from_holder: Option<String>,
    pub to_holder: Option<String>,
    pub gate: Option<String>,
    pub reason: Option<String>,
    pub other_ticket: Option<Uuid>,
}

#[tracing::instrument(skip(pool))]
pub async fn history(pool: &PgPool, ticket_id: Uuid) -> anyhow::Result<Vec<LedgerRow>> {
    sqlx::query_as(
        "SELECT kind, at, from_holder, to_holder, gate, reason, other_ticket \
         FROM ticket_ledger WHERE ticket_id = $1 ORDER BY entry_id",
    )
    .bind(ticket_id)
    .fetch_all(pool)
    .await
    .context("loading a ticket's ledger")
}

/// Appends a ledger entry inside `tx`.
#[allow(clippy::too_many_arguments)]
async fn append(
    tx: &mut Transaction<'_, Postgres>,
    ticket_id: Uuid,
    kind: LedgerKind,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    from_holder: Option<&str>,
    to_holder: Option<&str>,
    gate: Option<&str>,
    other_ticket: Option<Uuid>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO ticket_ledger (ticket_id, kind, at, actor_id, from_holder, to_holder, gate, other_ticket) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(ticket_id)
    .bind(kind)
    .bind(at)
    .bind(actor_id)
    .bind(from_holder)
    .bind(to_holder)
    .bind(gate)
    .bind(other_ticket)
    .execute(&mut **tx)
    .await
    .context("appending to the ticket ledger")?;
    Ok(())
}

/// A transfer asked for.
pub struct TransferAsk<'a> {
    pub ticket_id: Uuid,
    pub from: Uuid,
    pub to_email: &'a str,
    pub new_ticket_id: Uuid,
    pub new_qr: &'a str,
    pub now: DateTime<Utc>,
}

/// How a transfer went.
pub enum Transferred {
    Done,
    NotFound,
    NotHolder,
    Refused(&'static str),
}

/// Moves a ticket to `to_email` in one transaction: the ticket (locked) is checked by
/// `rule`, turns TRANSFERRED, and a new VALID ticket with a new QR code is issued to the
/// recipient (their account if one has that address, else the address until one does),
/// with TRANSFERRED_OUT and TRANSFERRED_IN in the ledger.
#[tracing::instrument(skip(pool, ask, rule), fields(ticket_id = %ask.ticket_id))]
pub async fn transfer(
    pool: &PgPool,
    ask: &TransferAsk<'_>,
    rule: impl FnOnce(Transferable) -> Result<(), &'static str>,
) -> anyhow::Result<Transferred> {
    let mut tx = pool.begin().await?;
    type Row = (
        bool,
        TicketStatus,
        Option<Uuid>,
        bool,
        Option<DateTime<Utc>>,
        DateTime<Utc>,
    );
    let row: Option<Row> =
        sqlx::query_as(&format!(
            "SELECT {} AS held, t.status, t.transferred_from, e.transfers_allowed, e.transfers_close_at, e.start_time \
             FROM tickets t JOIN events e USING (event_id) WHERE t.ticket_id = $1 FOR UPDATE OF t",
            held_by_sql("$2")
        ))
        .bind(ask.ticket_id)
        .bind(ask.from)
        .fetch_optional(&mut *tx)
        .await
        .context("locking a ticket to transfer")?;
    let Some((holder, status, from_transfer, allowed, close_at, start)) = row else {
        return Ok(Transferred::NotFound);
    };
    if !holder {
        return Ok(Transferred::NotHolder);
    }
    let transferable = Transferable {
        status,
        from_transfer: from_transfer.is_some(),
        transfers_allowed: allowed,
        transfers_close_at: close_at.unwrap_or(start),
    };
    if let Err(why) = rule(transferable) {
        return Ok(Transferred::Refused(why));
    }
    let recipient: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM users WHERE lower(email) = lower($1)")
            .bind(ask.to_email)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query("UPDATE tickets SET status = 'TRANSFERRED' WHERE ticket_id = $1")
        .bind(ask.ticket_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO tickets (ticket_id, order_id, order_item_id, event_id, section_id, seat_id, tier_id, \
                              qr_token, holder_id, holder_email, transferred_from, issued_at) \
         SELECT $2, order_id, order_item_id, event_id, section_id, seat_id, tier_id, $3, $4, $5, ticket_id, $6 \
         FROM tickets WHERE ticket_id = $1",
    )
    .bind(ask.ticket_id)
    .bind(ask.new_ticket_id)
    .bind(ask.new_qr)
    .bind(recipient)
    .bind(ask.to_email)
    .bind(ask.now)
    .execute(&mut *tx)
    .await
    .context("issuing the transferred ticket")?;
    let (from, to) = (
        ask.from.to_string(),
        recipient.map_or_else(|| ask.to_email.to_owned(), |r| r.to_string()),
    );
    let actor = Some(ask.from);
    append(
        &mut tx,
        ask.ticket_id,
        LedgerKind::TransferredOut,
        ask.now,
        actor,
        Some(&from),
        Some(&to),
        None,
        Some(ask.new_ticket_id),
    )
    .await?;
    append(
        &mut tx,
        ask.new_ticket_id,
        LedgerKind::TransferredIn,
        ask.now,
        actor,
        Some(&from),
        Some(&to),
        None,
        Some(ask.ticket_id),
    )
    .await?;
    // Organizers' webhooks hear of it (the relay reads the outbox).
    sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, created_at) \
         SELECT 'ticket', $1, 'ticket.transferred', jsonb_build_object('event_id', event_id, 'ticket_id', $1::uuid, \
                'new_ticket_id', $2::uuid, 'to_registered', $3::uuid IS NOT NULL), $4 FROM tickets WHERE ticket_id = $1",
    )
    .bind(ask.ticket_id)
    .bind(ask.new_ticket_id)
    .bind(recipient)
    .bind(ask.now)
    .execute(&mut *tx)
    .await
    .context("writing the transfer notice")?;
    tx.commit().await?;
    Ok(Transferred::Done)
}

/// The ticket `ticket_id` as the holder's list shows it.
#[tracing::instrument(skip(pool))]
pub async fn ticket(pool: &PgPool, ticket_id: Uuid) -> anyhow::Result<Option<TicketRow>> {
    sqlx::query_as(&format!("{TICKET_QUERY} WHERE t.ticket_id = $1"))
        .bind(ticket_id)
        .fetch_optional(pool)
        .await
        .context("loading a ticket")
}

/// What the door reads of tickets.
const DOOR_QUERY: &str = "SELECT t.ticket_id, t.event_id, t.qr_token, t.status, t.checked_in_at, t.checked_in_gate, \
     s.name AS section_name, st.row_label, st.seat_number, tt.name AS tier_name, \
     EXISTS (SELECT 1 FROM ticket_ledger l WHERE l.ticket_id = t.ticket_id AND l.kind = 'REFUNDED') AS refunded \
     FROM tickets t JOIN sections s ON s.section_id = t.section_id \
     LEFT JOIN seats st ON st.seat_id = t.seat_id LEFT JOIN ticket_tiers tt ON tt.tier_id = t.tier_id";

#[derive(sqlx::FromRow)]
struct DoorRow {
    ticket_id: Uuid,
    event_id: Uuid,
    qr_token: String,
    status: TicketStatus,
    checked_in_at: Option<DateTime<Utc>>,
    checked_in_gate: Option<String>,
    section_name: String,
    row_label: Option<String>,
    seat_number: Option<i32>,
    tier_name: Option<String>,
    refunded: bool,
}

impl DoorRow {
    fn into_door(self) -> (String, DoorTicket) {
        let label = crate::domain::venue::ticket_label(
            &self.section_name,
            self.row_label.as_deref(),
            self.seat_number,
            self.tier_name.as_deref(),
        );
        let first_scan = self.checked_in_at.map(|at| FirstScan {
            at,
            gate: self.checked_in_gate.unwrap_or_default(),
        });
        let ticket = DoorTicket {
            ticket_id: self.ticket_id,
            event_id: self.event_id,
            label,
            status: self.status,
            refunded: self.refunded,
            first_scan,
        };
        (self.qr_token, ticket)
    }
}

/// Every ticket of an event, for its door (with their QR tokens).
#[tracing::instrument(skip(pool))]
pub async fn door_tickets(
    pool: &PgPool,
    event_id: Uuid,
) -> anyhow::Result<Vec<(String, DoorTicket)>> {
    let rows: Vec<DoorRow> = sqlx::query_as(&format!("{DOOR_QUERY} WHERE t.event_id = $1"))
        .bind(event_id)
        .fetch_all(pool)
        .await
        .context("loading the door's tickets")?;
    Ok(rows.into_iter().map(DoorRow::into_door).collect())
}

/// One ticket for the door, by its QR token or its id.
#[tracing::instrument(skip(pool, qr))]
pub async fn door_ticket(
    pool: &PgPool,
    qr: Option<&str>,
    ticket_id: Option<Uuid>,
) -> anyhow::Result<Option<(String, DoorTicket)>> {
    let row: Option<DoorRow> = sqlx::query_as(&format!(
        "{DOOR_QUERY} WHERE t.qr_token = $1 OR t.ticket_id = $2 LIMIT 1"
    ))
    .bind(qr)
    .bind(ticket_id)
    .fetch_optional(pool)
    .await
    .context("looking a ticket up for the door")?;
    Ok(row.map(DoorRow::into_door))
}

/// A scan to write.
pub struct Scan<'a> {
    pub event_id: Uuid,
    pub scanner_id: Uuid,
    pub nonce: &'a str,
    pub ticket_id: Option<Uuid>,
    pub gate: &'a str,
    pub scanned_at: DateTime<Utc>,
    pub offline: bool,
}

/// Lets a ticket in if it is still VALID, in one transaction with its USED ledger entry and
/// the scan; answers whether it was let in (if not, someone else let it in first, or it
/// was cancelled or transferred since the door last looked). Committed before the ADMIT
/// is answered: an answered ADMIT survives any crash.
#[tracing::instrument(skip(pool, scan, answer), fields(ticket_id = %ticket_id))]
pub async fn admit(
    pool: &PgPool,
    ticket_id: Uuid,
    scan: &Scan<'_>,
    answer: &ScanAnswer,
) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE tickets SET status = 'USED', checked_in_at = $2, checked_in_gate = $3 \
         WHERE ticket_id = $1 AND status = 'VALID'",
    )
    .bind(ticket_id)
    .bind(scan.scanned_at)
    .bind(scan.gate)
    .execute(&mut *tx)
    .await
    .context("letting a ticket in")?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    append(
        &mut tx,
        ticket_id,
        LedgerKind::Used,
        scan.scanned_at,
        Some(scan.scanner_id),
        None,
        None,
        Some(scan.gate),
        None,
    )
    .await?;
    insert_scan(&mut tx, scan, answer).await?;
    // Only written for an organizer who asked for it: doors make many of these.
    sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, created_at) \
         SELECT 'ticket', $1, 'ticket.checked_in', \
                jsonb_build_object('event_id', $2::uuid, 'ticket_id', $1::uuid, 'gate', $3::text, \
                                   'checked_in_at', $4::timestamptz, 'offline', $5::bool), $4 \
         WHERE EXISTS (SELECT 1 FROM webhooks w JOIN events e ON e.organizer_id = w.organizer_id \
                       WHERE e.event_id = $2 AND w.disabled_at IS NULL AND 'ticket.checked_in' = ANY(w.events))",
    )
    .bind(ticket_id)
    .bind(scan.event_id)
    .bind(scan.gate)
    .bind(scan.scanned_at)
    .bind(scan.offline)
    .execute(&mut *tx)
    .await
    .context("writing the check-in notice")?;
    tx.commit().await?;
    Ok(true)
}

async fn insert_scan(
    tx: &mut Transaction<'_, Postgres>,
    scan: &Scan<'_>,
    answer: &ScanAnswer,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO checkins (event_id, scanner_id, nonce, ticket_id, gate, scanned_at, result, answer, offline) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (scanner_id, nonce) DO NOTHING",
    )
    .bind(scan.event_id)
    .bind(scan.scanner_id)
    .bind(scan.nonce)
    .bind(scan.ticket_id)
    .bind(scan.gate)
    .bind(scan.scanned_at)
    .bind(answer.result)
    .bind(sqlx::types::Json(answer))
    .bind(scan.offline)
    .execute(&mut **tx)
    .await
    .context("recording a scan")?;
    Ok(())
}

/// The answer a scanner was given for `nonce`, if it was.
#[tracing::instrument(skip(pool, nonce))]
pub async fn answered(
    pool: &PgPool,
    scanner_id: Uuid,
    nonce: &str,
) -> anyhow::Result<Option<ScanAnswer>> {
    let answer: Option<sqlx::types::Json<ScanAnswer>> =
        sqlx::query_scalar("SELECT answer FROM checkins WHERE scanner_id = $1 AND nonce = $2")
            .bind(scanner_id)
            .bind(nonce)
            .fetch_optional(pool)
            .await
            .context("reading a scan's answer")?;
    Ok(answer.map(|a| a.0))
}

/// A scan that let nobody in, owned, for the write-behind recorder.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub event_id: Uuid,
    pub scanner_id: Uuid,
    pub nonce: String,
    pub ticket_id: Option<Uuid>,
    pub gate: String,
    pub scanned_at: DateTime<Utc>,
    pub offline: bool,
    pub answer: ScanAnswer,
}

/// Records many refused scans in one statement.
#[tracing::instrument(skip(pool, scans), fields(scans = scans.len()))]
pub async fn record_refusals(pool: &PgPool, scans: &[Refusal]) -> anyhow::Result<()> {
    let column = |f: fn(&Refusal) -> Uuid| scans.iter().map(f).collect::<Vec<_>>();
    let answers: Vec<sqlx::types::Json<&ScanAnswer>> =
        scans.iter().map(|s| sqlx::types::Json(&s.answer)).collect();
    sqlx::query(
        "INSERT INTO checkins (event_id, scanner_id, nonce, ticket_id, gate, scanned_at, result, answer, offline) \
         SELECT e, s, n, t, g, a, r, j, o FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], \
                $6::timestamptz[], $7::text[], $8::jsonb[], $9::bool[]) AS x(e, s, n, t, g, a, r, j, o) \
         ON CONFLICT (scanner_id, nonce) DO NOTHING",
    )
    .bind(column(|s| s.event_id))
    .bind(column(|s| s.scanner_id))
    .bind(scans.iter().map(|s| s.nonce.as_str()).collect::<Vec<_>>())
    .bind(scans.iter().map(|s| s.ticket_id).collect::<Vec<_>>())
    .bind(scans.iter().map(|s| s.gate.as_str()).collect::<Vec<_>>())
    .bind(scans.iter().map(|s| s.scanned_at).collect::<Vec<_>>())
    .bind(scans.iter().map(|s| s.answer.result.as_str()).collect::<Vec<_>>())
    .bind(answers)
    .bind(scans.iter().map(|s| s.offline).collect::<Vec<_>>())
    .execute(pool)
    .await
    .context("recording refused scans")?;
    Ok(())
}
