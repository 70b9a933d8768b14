//! On-sale leases and the nodes that hold them. Every statement runs on the database's
//! clock (`now()`), so no node's wall clock decides who owns a sale.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A lease as Postgres has it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeaseRow {
    pub event_id: Uuid,
    pub node_id: String,
    pub node_url: String,
    pub epoch: i64,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether `expires_at` is still ahead of the database's clock.
    pub live: bool,
}

/// A node as Postgres has it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NodeRow {
    pub node_id: String,
    pub node_url: String,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

const LEASE_COLUMNS: &str =
    "event_id, node_id, node_url, epoch, acquired_at, renewed_at, expires_at, expires_at > now() AS live";

/// Takes the event's lease for `node` when nobody holds it, it has lapsed, or `node` holds
/// it already (a restarted process with the same id); every take raises the epoch. Returns
/// the new epoch, or `None` while another node's lease is live. The event must exist.
pub async fn acquire(
    pool: &PgPool,
    event_id: Uuid,
    node: &str,
    url: &str,
    ttl_ms: i64,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO onsale_leases (event_id, node_id, node_url, epoch, expires_at) \
         VALUES ($1, $2, $3, 1, now() + make_interval(secs => $4::float8 / 1000)) \
         ON CONFLICT (event_id) DO UPDATE SET node_id = EXCLUDED.node_id, node_url = EXCLUDED.node_url, \
           epoch = onsale_leases.epoch + 1, acquired_at = now(), renewed_at = now(), \
           expires_at = EXCLUDED.expires_at \
         WHERE onsale_leases.expires_at <= now() OR onsale_leases.node_id = EXCLUDED.node_id \
         RETURNING epoch",
    )
    .bind(event_id)
    .bind(node)
    .bind(url)
    .bind(ttl_ms)
    .fetch_optional(pool)
    .await
    .context("taking an on-sale lease")
}

/// Extends the leases `node` holds at these epochs; returns the events whose lease was
/// extended (the others were lost: taken over at a higher epoch).
pub async fn renew(
    pool: &PgPool,
    node: &str,
    held: &[(Uuid, i64)],
    ttl_ms: i64,
) -> anyhow::Result<Vec<Uuid>> {
    let (events, epochs): (Vec<Uuid>, Vec<i64>) = held.iter().copied().unzip();
    sqlx::query_scalar(
        "UPDATE onsale_leases l SET expires_at = now() + make_interval(secs => $4::float8 / 1000), renewed_at = now() \
         FROM UNNEST($2::uuid[], $3::int8[]) AS h(e, ep) \
         WHERE l.event_id = h.e AND l.epoch = h.ep AND l.node_id = $1 \
         RETURNING l.event_id",
    )
    .bind(node)
    .bind(&events)
    .bind(&epochs)
    .bind(ttl_ms)
    .fetch_all(pool)
    .await
    .context("renewing on-sale leases")
}

/// Gives a lease up at once (shutdown, or an on-sale nobody uses), so another node may take
/// it without waiting for it to lapse. The epoch stays: the next owner raises it.
pub async fn release(pool: &PgPool, node: &str, held: &[(Uuid, i64)]) -> anyhow::Result<()> {
    let (events, epochs): (Vec<Uuid>, Vec<i64>) = held.iter().copied().unzip();
    sqlx::query(
        "UPDATE onsale_leases l SET expires_at = now() FROM UNNEST($2::uuid[], $3::int8[]) AS h(e, ep) \
         WHERE l.event_id = h.e AND l.epoch = h.ep AND l.node_id = $1",
    )
    .bind(node)
    .bind(&events)
    .bind(&epochs)
    .execute(pool)
    .await
    .context("releasing on-sale leases")?;
    Ok(())
}

/// The event's lease, live or not.
pub async fn find(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Option<LeaseRow>> {
    sqlx::query_as(&format!(
        "SELECT {LEASE_COLUMNS} FROM onsale_leases WHERE event_id = $1"
    ))
    .bind(event_id)
    .fetch_optional(pool)
    .await
    .context("reading an on-sale lease")
}

/// Every lease, for the operator's view.
pub async fn all(pool: &PgPool) -> anyhow::Result<Vec<LeaseRow>> {
    sqlx::query_as(&format!(
        "SELECT {LEASE_COLUMNS} FROM onsale_leases ORDER BY expires_at DESC LIMIT 1000"
    ))
    .fetch_all(pool)
    .await
    .context("reading on-sale leases")
}

/// The fencing check of a durable write: inside the writer's transaction, locks the leases
/// of these events against a takeover until it commits and returns the (event, epoch) of
/// those that `node` holds. A takeover's `UPDATE` waits for this share lock, so a write that
/// passed the check commits before any new owner starts, and one that comes after sees the
/// raised epoch and is refused.
pub async fn lock_current<'e>(
    executor: impl PgExecutor<'e>,
    node: &str,
    events: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, epoch FROM onsale_leases WHERE event_id = ANY($1) AND node_id = $2 \
         ORDER BY event_id FOR SHARE",
    )
    .bind(events)
    .bind(node)
    .fetch_all(executor)
    .await
}

/// Says this node is alive (and where it answers).
pub async fn heartbeat(pool: &PgPool, node: &str, url: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO cluster_nodes (node_id, node_url) VALUES ($1, $2) \
         ON CONFLICT (node_id) DO UPDATE SET node_url = EXCLUDED.node_url, last_seen = now(), stopped_at = NULL",
    )
    .bind(node)
    .bind(url)
    .execute(pool)
    .await
    .context("recording this node's heartbeat")?;
    Ok(())
}

/// Records that this node stopped (clean shutdown).
pub async fn stopped(pool: &PgPool, node: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE cluster_nodes SET stopped_at = now() WHERE node_id = $1")
        .bind(node)
        .execute(pool)
        .await
        .context("recording this node's stop")?;
    Ok(())
}

/// Other nodes seen alive within `within_ms`.
pub async fn others_alive(pool: &PgPool, node: &str, within_ms: i64) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM cluster_nodes WHERE node_id <> $1 AND stopped_at IS NULL \
         AND last_seen > now() - make_interval(secs => $2::float8 / 1000)",
    )
    .bind(node)
    .bind(within_ms)
    .fetch_one(pool)
    .await
    .context("counting live nodes")
}

/// Nodes seen in the last day, newest first.
pub async fn nodes(pool: &PgPool) -> anyhow::Result<Vec<NodeRow>> {
    sqlx::query_as(
        "SELECT node_id, node_url, started_at, last_seen, stopped_at FROM cluster_nodes \
         WHERE last_seen > now() - interval '1 day' ORDER BY last_seen DESC LIMIT 1000",
    )
    .fetch_all(pool)
    .await
    .context("reading cluster nodes")
}

/// The event whose id starts with these eight bytes (hold ids carry them; see
/// `domain::onsale::hold_id_for`).
pub async fn event_with_prefix(pool: &PgPool, prefix: [u8; 8]) -> anyhow::Result<Option<Uuid>> {
    let mut low = [0u8; 16];
    low[..8].copy_from_slice(&prefix);
    let mut high = [0xffu8; 16];
    high[..8].copy_from_slice(&prefix);
    let found: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM events WHERE event_id BETWEEN $1 AND $2 LIMIT 2")
            .bind(Uuid::from_bytes(low))
            .bind(Uuid::from_bytes(high))
            .fetch_all(pool)
            .await
            .context("finding a hold's event")?;
    Ok(match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// A status change of an on-sale's owner: `from` one of these `to` that, `at` that time.
pub struct StatusChange<'a> {
    pub event_id: Uuid,
    pub epoch: i64,
    pub from: &'a [&'a str],
    pub to: &'a str,
    pub at: DateTime<Utc>,
}

/// Event status written by an on-sale's owner: only while `epoch` is still the lease's.
/// Selling out writes an `event.sold_out` outbox row in the same transaction.
pub async fn fenced_status(
    pool: &PgPool,
    change: StatusChange<'_>,
) -> anyhow::Result<FencedOutcome> {
    let StatusChange {
        event_id,
        epoch,
        from,
        to,
        at,
    } = change;
    let mut tx = pool.begin().await.context("starting a status change")?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT epoch FROM onsale_leases WHERE event_id = $1 FOR SHARE")
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await
            .context("checking the lease")?;
    if current != Some(epoch) {
        return Ok(FencedOutcome::Fenced);
    }
    let moved = sqlx::query(
        "UPDATE events SET status = $3, updated_at = now() WHERE event_id = $1 AND status = ANY($2)",
    )
    .bind(event_id)
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .context("changing an event's status")?
    .rows_affected();
    if moved == 1 && to == "SOLD_OUT" {
        sqlx::query(
            "INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, created_at) \
             SELECT 'event', event_id, 'event.sold_out', \
                    jsonb_build_object('event_id', event_id, 'title', title, 'sold_out_at', $2::timestamptz), $2 \
             FROM events WHERE event_id = $1",
        )
        .bind(event_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("writing the sold-out notice")?;
    }
    tx.commit().await.context("committing a status change")?;
    Ok(if moved == 1 {
        FencedOutcome::Written
    } else {
        FencedOutcome::Unchanged
    })
}

/// What a fenced write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencedOutcome {
    Written,
    /// Nothing matched (already changed).
    Unchanged,
    /// The epoch is stale: another node owns the on-sale now.
    Fenced,
}
