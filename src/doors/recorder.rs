//! The recorder of refused scans: a task that takes what the door queued, writes it in
//! batches of up to [`RECORDS_PER_BATCH`] (one statement each), and answers the flushes
//! queued behind them. An ADMIT never goes through it: that is committed before it is
//! answered.

use sqlx::PgPool;

use crate::persistence::tickets;

/// Refused scans waiting for the recorder; a full queue makes scans wait (never drops).
pub(super) const RECORDS_QUEUED: usize = 10_000;
/// The most refused scans one statement writes.
const RECORDS_PER_BATCH: usize = 500;

pub(super) enum Record {
    Scan(Box<tickets::Refusal>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The recorder: takes what is queued (up to a batch), writes it in one statement, and
/// answers the flushes that were queued behind it.
pub(super) async fn write_refusals(pool: PgPool, mut records: tokio::sync::mpsc::Receiver<Record>) {
    let mut batch = Vec::with_capacity(RECORDS_PER_BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = records.recv().await {
        let mut next = Some(first);
        while let Some(record) = next.take() {
            match record {
                Record::Scan(scan) => batch.push(*scan),
                Record::Flush(done) => flushes.push(done),
            }
            if batch.len() < RECORDS_PER_BATCH {
                next = records.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(error) = tickets::record_refusals(&pool, &batch).await {
                tracing::warn!(%error, scans = batch.len(), "could not record refused scans");
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
