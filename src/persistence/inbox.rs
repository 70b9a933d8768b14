//! The engine's inbox: notes for an on-sale's owner, written by whichever node commits what
//! the owner must hear of, in the same transaction. Numbers come from `events.inbox_seq`
//! under the event row's lock, so a later number never commits before an earlier one: an
//! owner that took every note up to `n` takes the rest by asking for those above `n`.

use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::holds::Note;

/// Writes a note for the event's owner as part of the caller's transaction; its number.
pub async fn post(tx: &mut PgConnection, event_id: Uuid, note: &Note) -> anyhow::Result<i64> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE events SET inbox_seq = inbox_seq + 1 WHERE event_id = $1 RETURNING inbox_seq",
    )
    .bind(event_id)
    .fetch_one(&mut *tx)
    .await
    .context("numbering an engine note")?;
    sqlx::query("INSERT INTO engine_inbox (event_id, seq, note) VALUES ($1, $2, $3)")
        .bind(event_id)
        .bind(seq)
        .bind(sqlx::types::Json(note))
        .execute(&mut *tx)
        .await
        .context("writing an engine note")?;
    Ok(seq)
}

/// The event's notes numbered above `seq`, in order (at most `limit`).
pub async fn since(
    pool: &PgPool,
    event_id: Uuid,
    seq: i64,
    limit: i64,
) -> anyhow::Result<Vec<(i64, Note)>> {
    let rows: Vec<(i64, sqlx::types::Json<Note>)> = sqlx::query_as(
        "SELECT seq, note FROM engine_inbox WHERE event_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(event_id)
    .bind(seq)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("reading engine notes")?;
    Ok(rows.into_iter().map(|(seq, note)| (seq, note.0)).collect())
}

/// The last note's number.
pub async fn last(db: impl sqlx::PgExecutor<'_>, event_id: Uuid) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT inbox_seq FROM events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(db)
            .await
            .context("reading the engine's last note")?
            .unwrap_or(0),
    )
}
