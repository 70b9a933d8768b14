//! The door: scanners and their tokens, and check-in. One [`DoorBook`] per event per node,
//! loaded from Postgres at the event's first scan here (every ticket of the event with its
//! QR token, state and first scan: one query), answers most scans from memory —
//! ALREADY_ADMITTED, INVALID, WRONG_EVENT, and a scanner's retried nonce.
//!
//! An ADMIT is decided by Postgres, not by memory: a conditional write (`status =
//! 'VALID'`) in one transaction with the USED ledger entry and the scan, committed before
//! the answer is sent. So two gates scanning one ticket at the same moment — on one node
//! or on two — get one ADMIT (the row lock orders them; the second write finds the ticket
//! USED and is answered ALREADY_ADMITTED with the first scan), and a crash never loses an
//! ADMIT that was answered. A book can only be behind Postgres (a ticket sold at the door,
//! transferred or refunded since it was loaded): an unknown QR is looked up once, and a
//! refused write reloads the ticket.
//!
//! Called by the check-in handlers; knows nothing of HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

mod offline;
mod recorder;

pub use offline::{Bundle, BundleTicket, Conflict, OfflineScan, SignedFor, SyncResult, Synced};
use recorder::{write_refusals, Record, RECORDS_QUEUED};

use crate::clock::Clock;
use crate::domain::orders::TicketStatus;
use crate::domain::signed_ticket::{self, TicketClaim};
use crate::domain::tickets::{door_open, DoorBook, DoorHours, ScanAnswer, ScanResult, Verdict};
use crate::persistence::scanners::{self, ScannerRow};
use crate::persistence::tickets::{self, Scan};

/// A scanner token starts with this, so that a stray one is recognised in a log or a form.
pub const TOKEN_PREFIX: &str = "bxs_";
/// How long a node trusts what it read of a scanner (a revocation on another node reaches
/// this one within it; on the revoking node at once).
const SCANNER_FRESH: Duration = Duration::from_secs(5);
/// How long a node trusts what it read of an event's door hours.
const HOURS_FRESH: Duration = Duration::from_secs(5);
/// Answers kept per door for scanners' retries (older retries are answered from Postgres).
const NONCES_KEPT: usize = 100_000;

/// Why a scan was not judged.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    #[error("no such event")]
    EventNotFound,
    #[error("check-in is closed: {0}")]
    Closed(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A new scanner's token, and the hash that is stored.
pub fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash(&token);
    (token, hash)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A scanner as last read (none: no such token), and when.
type Seen = (Option<ScannerRow>, Instant);

struct Door {
    book: OnceCell<Mutex<Book>>,
    hours: Mutex<Option<(DoorHours, Instant)>>,
    /// When a scanner last used it (an idle door's tickets leave memory).
    used: Mutex<Instant>,
}

/// A door nobody scanned at for this long is forgotten (loaded again at its next scan).
const DOOR_IDLE: Duration = Duration::from_secs(6 * 3600);

/// The tickets, and the answers given to scanners' nonces.
struct Book {
    tickets: DoorBook,
    answers: HashMap<(Uuid, String), ScanAnswer>,
}

pub struct Doors {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    doors: Mutex<HashMap<Uuid, Arc<Door>>>,
    keys: Mutex<HashMap<Uuid, SigningKey>>,
    recorder: tokio::sync::mpsc::Sender<Record>,
    /// What was read of each token (by its hash), and when.
    scanners: Mutex<HashMap<Vec<u8>, Seen>>,
}

/// One scan, as a scanner sends it.
pub struct ScanAsk<'a> {
    pub qr: &'a str,
    pub gate: &'a str,
    pub nonce: &'a str,
    /// When the scan happened, if the scanner says (never later than now).
    pub scanned_at: Option<DateTime<Utc>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Doors {
    /// The door service, with its scan recorder running on the current runtime.
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>) -> Doors {
        let (recorder, records) = tokio::sync::mpsc::channel(RECORDS_QUEUED);
        tokio::spawn(write_refusals(pool.clone(), records));
        Doors {
            recorder,
            pool,
            clock,
            doors: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            scanners: Mutex::new(HashMap::new()),
        }
    }

    /// The live scanner a bearer token names (none: unknown or revoked).
    pub async fn scanner(&self, token: &str) -> anyhow::Result<Option<ScannerRow>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let key = hash(token);
        if let Some((row, at)) = lock(&self.scanners).get(&key) {
            if at.elapsed() < SCANNER_FRESH {
                return Ok(row.clone().filter(|r| r.revoked_at.is_none()));
            }
        }
        let row = scanners::by_token(&self.pool, &key).await?;
        let mut cache = lock(&self.scanners);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (row.clone(), Instant::now()));
        Ok(row.filter(|r| r.revoked_at.is_none()))
    }

    /// Forgets what this node read of scanners (one was revoked here).
    pub fn forget_scanners(&self) {
        lock(&self.scanners).clear();
    }

    fn door(&self, event_id: Uuid) -> Arc<Door> {
        let mut doors = lock(&self.doors);
        if !doors.contains_key(&event_id) {
            // A new door opens: the ones idle for hours (their events are over) close.
            doors.retain(|_, door| lock(&door.used).elapsed() < DOOR_IDLE);
        }
        let door = doors
            .entry(event_id)
            .or_insert_with(|| {
                Arc::new(Door {
                    book: OnceCell::new(),
                    hours: Mutex::new(None),
                    used: Mutex::new(Instant::now()),
                })
            })
            .clone();
        *lock(&door.used) = Instant::now();
        door
    }

    async fn check_open(&self, event_id: Uuid, door: &Door) -> Result<(), DoorError> {
        let cached = *lock(&door.hours);
        let hours = match cached {
            Some((hours, at)) if at.elapsed() < HOURS_FRESH => hours,
            _ => {
                let hours = scanners::door_hours(&self.pool, event_id)
                    .await?
                    .ok_or(DoorError::EventNotFound)?;
                *lock(&door.hours) = Some((hours, Instant::now()));
                hours
            }
        };
        door_open(hours, self.clock.now()).map_err(DoorError::Closed)
    }

    async fn book<'d>(&self, event_id: Uuid, door: &'d Door) -> anyhow::Result<&'d Mutex<Book>> {
        let book = door
            .book
            .get_or_try_init(|| async {
                let mut tickets = DoorBook::new(event_id);
                for (qr, ticket) in tickets::door_tickets(&self.pool, event_id).await? {
                    tickets.learn(&qr, ticket);
                }
                tracing::info!(%event_id, tickets = tickets.len(), "the door's tickets are loaded");
                anyhow::Ok(Mutex::new(Book {
                    tickets,
                    answers: HashMap::new(),
                }))
            })
            .await?;
        Ok(book)
    }

    /// Judges a scan at `scanner`'s event; see the module's header for how an ADMIT is
    /// made exactly once.
    pub async fn scan(
        &self,
        scanner: &ScannerRow,
        ask: &ScanAsk<'_>,
    ) -> Result<ScanAnswer, DoorError> {
        self.scan_as(scanner, ask, false).await
    }

    async fn scan_as(
        &self,
        scanner: &ScannerRow,
        ask: &ScanAsk<'_>,
        offline: bool,
    ) -> Result<ScanAnswer, DoorError> {
        let event_id = scanner.event_id;
        let door = self.door(event_id);
        self.check_open(event_id, &door).await?;
        let book = self.book(event_id, &door).await?;
        let key = (scanner.scanner_id, ask.nonce.to_owned());
        if let Some(answer) = lock(book).answers.get(&key) {
            return Ok(answer.clone());
        }
        let now = self.clock.now();
        let scanned_at = ask.scanned_at.map_or(now, |at| at.min(now));
        let verdict = match self.identify(event_id, book, ask.qr).await? {
            Err(answer) => Verdict::Answer(answer),
            Ok(ticket_id) => {
                let book = lock(book);
                book.tickets
                    .judge(ticket_id.and_then(|id| book.tickets.by_id(id)))
            }
        };
        let ticket_id = match &verdict {
            Verdict::Admit(id) => Some(*id),
            Verdict::Answer(answer) => answer.ticket_id,
        };
        let scan = Scan {
            event_id,
            scanner_id: scanner.scanner_id,
            nonce: ask.nonce,
            ticket_id,
            gate: ask.gate,
            scanned_at,
            offline,
        };
        let answer = match verdict {
            Verdict::Admit(ticket_id) => {
                let admit = lock(book).tickets.admit_answer(ticket_id);
                if tickets::admit(&self.pool, ticket_id, &scan, &admit).await? {
                    lock(book).tickets.admitted(ticket_id, scanned_at, ask.gate);
                    admit
                } else {
                    // Someone let it in first (another gate, another node), or it changed
                    // since the door looked: what Postgres says now is the answer. (A retry
                    // of this very nonce that won the race has its answer stored.)
                    if let Some(answer) =
                        tickets::answered(&self.pool, scanner.scanner_id, ask.nonce).await?
                    {
                        return Ok(answer);
                    }
                    let fresh = tickets::door_ticket(&self.pool, None, Some(ticket_id)).await?;
                    let verdict = {
                        let mut book = lock(book);
                        if let Some((qr, ticket)) = fresh {
                            book.tickets.learn(&qr, ticket);
                        }
                        book.tickets.judge(book.tickets.by_id(ticket_id))
                    };
                    let answer = match verdict {
                        Verdict::Answer(answer) => answer,
                        // Still VALID by Postgres: the write was refused for no reason we
                        // know; never let it in on a guess.
                        Verdict::Admit(_) => {
                            return Err(
                                anyhow::anyhow!("ticket {ticket_id} could not be let in").into()
                            )
                        }
                    };
                    self.record(&scan, &answer).await;
                    answer
                }
            }
            Verdict::Answer(answer) => {
                // A retry of a scan that let the ticket in, the first answer lost with a
                // node: the answer it was given stands.
                if answer.result == ScanResult::AlreadyAdmitted {
                    if let Some(first) =
                        tickets::answered(&self.pool, scanner.scanner_id, ask.nonce).await?
                    {
                        return Ok(first);
                    }
                }
                self.record(&scan, &answer).await;
                answer
            }
        };
        let mut book = lock(book);
        if book.answers.len() >= NONCES_KEPT {
            book.answers.clear();
        }
        book.answers.insert(key, answer.clone());
        Ok(answer)
    }

    /// Records a scan that let nobody in, behind the answer: the recorder writes them in
    /// batches (a refusal is not a promise — a retried nonce is answered from memory, and
    /// after a crash the same answer is worked out again). Offline scans are written before
    /// the sync answers ([`Doors::flush`]).
    async fn record(&self, scan: &Scan<'_>, answer: &ScanAnswer) {
        let refusal = tickets::Refusal {
            event_id: scan.event_id,
            scanner_id: scan.scanner_id,
            nonce: scan.nonce.to_owned(),
            ticket_id: scan.ticket_id,
            gate: scan.gate.to_owned(),
            scanned_at: scan.scanned_at,
            offline: scan.offline,
            answer: answer.clone(),
        };
        if self
            .recorder
            .send(Record::Scan(Box::new(refusal)))
            .await
            .is_err()
        {
            tracing::warn!("the scan recorder has stopped; a refused scan is not recorded");
        }
    }

    /// Waits until every refused scan recorded before now is written.
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.recorder.send(Record::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// The ticket a scanned code names (none: no such ticket), or the answer for a code
    /// that names none we can trust. A signed code is checked with the event's key (a code
    /// of another event is WRONG_EVENT before any key is used); an old random token is
    /// looked up. A ticket the door does not know yet is read once and remembered.
    async fn identify(
        &self,
        event_id: Uuid,
        book: &Mutex<Book>,
        qr: &str,
    ) -> anyhow::Result<Result<Option<Uuid>, ScanAnswer>> {
        if signed_ticket::is_signed(qr) {
            match signed_ticket::event_of(qr) {
                Err(_) => return Ok(Err(ScanAnswer::refused("unreadable"))),
                Ok(other) if other != event_id => return Ok(Err(ScanAnswer::wrong_event(None))),
                Ok(_) => {}
            }
            let key = self.signing_key(event_id).await?.verifying_key();
            let claim = match signed_ticket::verify(qr, &key) {
                Ok(claim) => claim,
                Err(signed_ticket::Refused::Forged) => {
                    return Ok(Err(ScanAnswer::refused("forged")))
                }
                Err(signed_ticket::Refused::Malformed) => {
                    return Ok(Err(ScanAnswer::refused("unreadable")))
                }
            };
            if lock(book).tickets.by_id(claim.ticket_id).is_none() {
                if let Some((code, ticket)) =
                    tickets::door_ticket(&self.pool, None, Some(claim.ticket_id)).await?
                {
                    lock(book).tickets.learn(&code, ticket);
                }
            }
            let known = lock(book).tickets.by_id(claim.ticket_id).is_some();
            return Ok(Ok(known.then_some(claim.ticket_id)));
        }
        if lock(book).tickets.by_qr(qr).is_none() {
            if let Some((code, ticket)) = tickets::door_ticket(&self.pool, Some(qr), None).await? {
                lock(book).tickets.learn(&code, ticket);
            }
        }
        Ok(Ok(lock(book).tickets.by_qr(qr).map(|t| t.ticket_id)))
    }

    /// The event's Ed25519 key (made and stored the first time any node needs it).
    pub async fn signing_key(&self, event_id: Uuid) -> anyhow::Result<SigningKey> {
        if let Some(key) = lock(&self.keys).get(&event_id) {
            return Ok(key.clone());
        }
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let secret = scanners::event_key(&self.pool, event_id, fresh).await?;
        let key = SigningKey::from_bytes(&secret);
        lock(&self.keys).insert(event_id, key.clone());
        Ok(key)
    }

    /// The signed QR text of a ticket: valid from a day before the event starts until it
    /// ends.
    pub async fn signed_qr(&self, ticket: &SignedFor) -> anyhow::Result<String> {
        let key = self.signing_key(ticket.event_id).await?;
        let claim = TicketClaim {
            ticket_id: ticket.ticket_id,
            event_id: ticket.event_id,
            place_id: ticket.place_id,
            valid_from: ticket.start_time - chrono::Duration::days(1),
            valid_until: ticket.end_time,
        };
        Ok(signed_ticket::sign(&claim, &key))
    }

    /// What a scanner takes offline: the event's public key, the tickets it knows with
    /// their labels and states, and the revoked ones (cancelled, transferred, refunded).
    pub async fn bundle(&self, scanner: &ScannerRow) -> Result<Bundle, DoorError> {
        let event_id = scanner.event_id;
        let public_key = self.signing_key(event_id).await?.verifying_key().to_bytes();
        // Read fresh (a bundle is asked for when a scanner starts or refreshes, not per
        // scan): a revocation on any node is in it.
        let mut fresh = DoorBook::new(event_id);
        for (qr, ticket) in tickets::door_tickets(&self.pool, event_id).await? {
            fresh.learn(&qr, ticket);
        }
        let mut tickets: Vec<BundleTicket> = fresh
            .tickets()
            .map(|t| BundleTicket {
                ticket_id: t.ticket_id,
                label: t.label.clone(),
                status: t.status,
            })
            .collect();
        tickets.sort_by_key(|t| t.ticket_id);
        let revoked = tickets
            .iter()
            .filter(|t| {
                matches!(
                    t.status,
                    TicketStatus::Cancelled | TicketStatus::Transferred
                )
            })
            .map(|t| t.ticket_id)
            .collect();
        Ok(Bundle {
            algorithm: "ed25519",
            public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key),
            generated_at: self.clock.now(),
            revoked,
            tickets,
        })
    }

    /// Scans made offline, uploaded when the network returns: judged in the order they
    /// happened (the first scan of a ticket wins); a ticket let in at two gates offline —
    /// or offline after an online admission — is reported as a conflict.
    pub async fn sync(
        &self,
        scanner: &ScannerRow,
        scans: &mut [OfflineScan],
    ) -> Result<Synced, DoorError> {
        scans.sort_by_key(|s| s.scanned_at);
        let mut results = Vec::with_capacity(scans.len());
        let mut conflicts = Vec::new();
        for offline in scans.iter() {
            let ask = ScanAsk {
                qr: &offline.qr,
                gate: &offline.gate,
                nonce: &offline.nonce,
                scanned_at: Some(offline.scanned_at),
            };
            let answer = self.scan_as(scanner, &ask, true).await?;
            if answer.result == ScanResult::AlreadyAdmitted {
                if let (Some(ticket_id), Some(first)) =
                    (answer.ticket_id, answer.first_scan.clone())
                {
                    conflicts.push(Conflict {
                        ticket_id,
                        first_scan: first,
                        gate: offline.gate.clone(),
                        scanned_at: offline.scanned_at,
                    });
                }
            }
            results.push(SyncResult {
                nonce: offline.nonce.clone(),
                answer,
            });
        }
        self.flush().await;
        Ok(Synced { results, conflicts })
    }

    /// Tickets of `event_id` changed (a transfer, a refund): the door here reads them again
    /// if it has them loaded.
    pub async fn refresh(&self, event_id: Uuid, ticket_ids: &[Uuid]) -> anyhow::Result<()> {
        let door = self.door(event_id);
        let Some(book) = door.book.get() else {
            return Ok(());
        };
        for ticket_id in ticket_ids {
            if let Some((qr, ticket)) =
                tickets::door_ticket(&self.pool, None, Some(*ticket_id)).await?
            {
                lock(book).tickets.learn(&qr, ticket);
            }
        }
        Ok(())
    }

    /// Forgets an event's door (its tickets changed in a way scans must see at once, or it
    /// is over).
    pub fn forget(&self, event_id: Uuid) {
        lock(&self.doors).remove(&event_id);
    }
}
