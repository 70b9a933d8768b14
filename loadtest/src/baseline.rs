//! The seed design, measured beside boxoffice: each hold is one Postgres transaction that
//! locks the rows it changes with `SELECT … FOR UPDATE`, checks, updates, and inserts a
//! PENDING order (seed 000's `reserve_tickets` for tiers, seed 001's `hold_seats` for
//! seats); payment is seed 001's `confirm_order` (lock the order, charge, mark the seats
//! sold, write the tickets, one transaction) and expired holds go back on sale by its
//! 60-second sweep. Same workload, same concurrency, same machine, in the same run.
//!
//! Where the seeds leave a step open, the baseline takes the strongest reading: "best
//! available" locks the first free seats with `FOR UPDATE SKIP LOCKED` (so concurrent
//! buyers do not queue on the same rows), and a partial index serves it.

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

/// The URL of database `name` on the server of `admin_url`.
pub fn database_url(admin_url: &str, name: &str) -> String {
    match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{admin_url}/{name}"),
    }
}

/// Drops and creates database `name`.
pub async fn recreate_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url)
        .await
        .context("connecting to Postgres")?;
    conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await?;
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await?;
    Ok(())
}

const SCHEMA: &str = "
CREATE TABLE ticket_tiers (tier_id UUID PRIMARY KEY, price_cents BIGINT NOT NULL, total_quantity INT NOT NULL,
    sold_quantity INT NOT NULL, available_quantity INT NOT NULL, max_per_order INT NOT NULL,
    sale_start TIMESTAMPTZ NOT NULL, sale_end TIMESTAMPTZ NOT NULL);
CREATE TABLE seats (seat_id UUID PRIMARY KEY, section_id UUID NOT NULL, row_label TEXT NOT NULL, seat_number INT NOT NULL,
    price_cents BIGINT NOT NULL, status TEXT NOT NULL, held_by_session_id UUID, held_until TIMESTAMPTZ);
CREATE INDEX seats_free ON seats (section_id, row_label, seat_number) WHERE status = 'AVAILABLE';
CREATE TABLE orders (order_id UUID PRIMARY KEY, buyer_id UUID NOT NULL, status TEXT NOT NULL, total_amount BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), expires_at TIMESTAMPTZ NOT NULL, payment_id TEXT);
CREATE TABLE order_items (item_id UUID PRIMARY KEY, order_id UUID NOT NULL REFERENCES orders (order_id), tier_id UUID,
    seat_id UUID, quantity INT NOT NULL, unit_price BIGINT NOT NULL, subtotal BIGINT NOT NULL);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE TABLE tickets (ticket_id UUID PRIMARY KEY, order_id UUID NOT NULL REFERENCES orders (order_id),
    seat_id UUID, barcode TEXT NOT NULL UNIQUE, is_valid BOOLEAN NOT NULL);
";

/// How seed 001's `confirm_order` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    Paid,
    Declined,
    /// The order was no longer PENDING (released, or expired and swept).
    NotPending,
    /// Its deadline had passed: cancelled, seats back on sale.
    Expired,
}

/// What the seed design's database says after a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SeatCounts {
    pub sold: i64,
    pub held: i64,
    pub available: i64,
    /// Valid tickets, and the distinct seats they are for (equal unless a seat sold twice).
    pub tickets: i64,
    pub ticketed_seats: i64,
}

pub struct Baseline {
    pool: PgPool,
}

impl Baseline {
    /// The seed design's database, for scenarios with tables of their own.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A fresh database `name` with the seed schema and a pool of `connections`.
    pub async fn create(admin_url: &str, name: &str, connections: u32) -> anyhow::Result<Baseline> {
        recreate_database(admin_url, name).await?;
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .connect(&database_url(admin_url, name))
            .await?;
        pool.execute(SCHEMA)
            .await
            .context("creating the seed schema")?;
        Ok(Baseline { pool })
    }

    /// The seed design's database for a run: as many connections as clients (64 at most).
    pub async fn for_run(common: &crate::Common) -> anyhow::Result<Baseline> {
        Baseline::create(
            &common.database_url,
            "boxoffice_loadtest_seed",
            common.clients.min(64) as u32,
        )
        .await
    }

    pub async fn add_tier(&self, quantity: i32) -> anyhow::Result<Uuid> {
        let tier_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO ticket_tiers VALUES ($1, 5000, $2, 0, $2, 4, now() - interval '1 minute', now() + interval '1 day')",
        )
        .bind(tier_id)
        .bind(quantity)
        .execute(&self.pool)
        .await?;
        Ok(tier_id)
    }

    /// A section of `rows` × `per_row` free seats; their ids in seat-map order (row, number).
    pub async fn add_section(&self, rows: i32, per_row: i32) -> anyhow::Result<Vec<Uuid>> {
        let section = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO seats (seat_id, section_id, row_label, seat_number, price_cents, status) \
             SELECT gen_random_uuid(), $1, lpad(r::text, 4, '0'), n, 5000, 'AVAILABLE' \
             FROM generate_series(1, $2) r, generate_series(1, $3) n",
        )
        .bind(section)
        .bind(rows)
        .bind(per_row)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_scalar(
            "SELECT seat_id FROM seats WHERE section_id = $1 ORDER BY row_label, seat_number",
        )
        .bind(section)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Seed 000's `reserve_tickets` for one tier: true when held, false when not enough left.
    pub async fn hold_tier(
        &self,
        tier_id: Uuid,
        buyer_id: Uuid,
        quantity: i32,
    ) -> anyhow::Result<bool> {
        Ok(self
            .hold_tier_order(tier_id, buyer_id, quantity)
            .await?
            .is_some())
    }

    /// The same, answering the PENDING order it made (none when not enough was left).
    pub async fn hold_tier_order(
        &self,
        tier_id: Uuid,
        buyer_id: Uuid,
        quantity: i32,
    ) -> anyhow::Result<Option<Uuid>> {
        let mut tx = self.pool.begin().await?;
        let (available, max_per_order, price): (i32, i32, i64) = sqlx::query_as(
            "SELECT available_quantity, max_per_order, price_cents FROM ticket_tiers \
             WHERE tier_id = $1 AND now() BETWEEN sale_start AND sale_end FOR UPDATE",
        )
        .bind(tier_id)
        .fetch_one(&mut *tx)
        .await?;
        if available < quantity || quantity > max_per_order {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE ticket_tiers SET available_quantity = available_quantity - $2, sold_quantity = sold_quantity + $2 WHERE tier_id = $1",
        )
        .bind(tier_id)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
        let order_id = Uuid::new_v4();
        sqlx::query("INSERT INTO orders VALUES ($1, $2, 'PENDING', $3, now(), now() + interval '15 minutes')")
            .bind(order_id)
            .bind(buyer_id)
            .bind(price * i64::from(quantity))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO order_items VALUES ($1, $2, $3, NULL, $4, $5, $6)")
            .bind(Uuid::new_v4())
            .bind(order_id)
            .bind(tier_id)
            .bind(quantity)
            .bind(price)
            .bind(price * i64::from(quantity))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(order_id))
    }

    /// Seed 001's `hold_seats` (for `minutes`): the PENDING order's id when every seat was
    /// held, none when one was taken. Rows are locked in id order so that two overlapping
    /// holds cannot deadlock.
    pub async fn hold_seats(
        &self,
        seat_ids: &[Uuid],
        buyer_id: Uuid,
        minutes: i32,
    ) -> anyhow::Result<Option<Uuid>> {
        let mut tx = self.pool.begin().await?;
        let seats: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT seat_id, status, price_cents FROM seats WHERE seat_id = ANY($1) ORDER BY seat_id FOR UPDATE",
        )
        .bind(seat_ids)
        .fetch_all(&mut *tx)
        .await?;
        if seats.len() != seat_ids.len() || seats.iter().any(|(_, status, _)| status != "AVAILABLE")
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let order_id = hold_locked(&mut tx, &seats, buyer_id, minutes).await?;
        tx.commit().await?;
        Ok(Some(order_id))
    }

    /// Best available, the strongest reading of the seeds: the first `quantity` free seats
    /// (section, row, number), locked with `SKIP LOCKED` so buyers do not wait on each
    /// other's rows. None when fewer than `quantity` are free.
    pub async fn hold_best(
        &self,
        quantity: i64,
        buyer_id: Uuid,
        minutes: i32,
    ) -> anyhow::Result<Option<Uuid>> {
        let mut tx = self.pool.begin().await?;
        let seats: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT seat_id, status, price_cents FROM seats WHERE status = 'AVAILABLE' \
             ORDER BY section_id, row_label, seat_number LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(quantity)
        .fetch_all(&mut *tx)
        .await?;
        if (seats.len() as i64) < quantity {
            tx.rollback().await?;
            return Ok(None);
        }
        let order_id = hold_locked(&mut tx, &seats, buyer_id, minutes).await?;
        tx.commit().await?;
        Ok(Some(order_id))
    }

    /// The states of some seats, as a browser reads the map (no lock).
    pub async fn seat_states(&self, seat_ids: &[Uuid]) -> anyhow::Result<Vec<(Uuid, String)>> {
        Ok(
            sqlx::query_as("SELECT seat_id, status FROM seats WHERE seat_id = ANY($1)")
                .bind(seat_ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Seed 001's `confirm_order`: lock the order, check it, charge (the simulated card:
    /// `tok_decline` declines, at no latency), mark its seats sold and write one ticket
    /// per seat, in one transaction.
    pub async fn confirm_order(
        &self,
        order_id: Uuid,
        payment_token: &str,
    ) -> anyhow::Result<Confirmed> {
        let mut tx = self.pool.begin().await?;
        let (status, expired): (String, bool) = sqlx::query_as(
            "SELECT status, now() > expires_at FROM orders WHERE order_id = $1 FOR UPDATE",
        )
        .bind(order_id)
        .fetch_one(&mut *tx)
        .await?;
        if status != "PENDING" {
            tx.rollback().await?;
            return Ok(Confirmed::NotPending);
        }
        if expired {
            cancel_locked(&mut tx, order_id).await?;
            tx.commit().await?;
            return Ok(Confirmed::Expired);
        }
        if payment_token == "tok_decline" {
            tx.rollback().await?;
            return Ok(Confirmed::Declined);
        }
        let seats: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE seats SET status = 'SOLD', held_by_session_id = NULL, held_until = NULL \
             WHERE seat_id IN (SELECT seat_id FROM order_items WHERE order_id = $1) RETURNING seat_id",
        )
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE orders SET status = 'CONFIRMED', payment_id = $2 WHERE order_id = $1")
            .bind(order_id)
            .bind(format!("ch_{}", Uuid::new_v4().simple()))
            .execute(&mut *tx)
            .await?;
        for seat_id in seats {
            sqlx::query("INSERT INTO tickets VALUES ($1, $2, $3, $4, true)")
                .bind(Uuid::new_v4())
                .bind(order_id)
                .bind(seat_id)
                .bind(Uuid::new_v4().simple().to_string())
                .execute(&mut *tx)
                .await?;
        }
        // A standing ticket per unit of a tier line (no seat).
        sqlx::query(
            "INSERT INTO tickets SELECT gen_random_uuid(), $1, NULL, md5(random()::text || clock_timestamp()::text || g::text), true \
             FROM order_items i, generate_series(1, i.quantity) g WHERE i.order_id = $1 AND i.tier_id IS NOT NULL",
        )
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Confirmed::Paid)
    }

    /// The buyer lets the hold go: the seats back on sale, the order cancelled.
    pub async fn release(&self, order_id: Uuid) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let status: String =
            sqlx::query_scalar("SELECT status FROM orders WHERE order_id = $1 FOR UPDATE")
                .bind(order_id)
                .fetch_one(&mut *tx)
                .await?;
        if status == "PENDING" {
            cancel_locked(&mut tx, order_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Seed 001's background job (every 60 seconds): expired holds back on sale, with the
    /// optimistic `AND status = 'HELD'`, and their pending orders cancelled. Returns the
    /// seats released.
    pub async fn sweep(&self) -> anyhow::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let released = sqlx::query(
            "UPDATE seats SET status = 'AVAILABLE', held_by_session_id = NULL, held_until = NULL \
             WHERE status = 'HELD' AND held_until < now()",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE orders SET status = 'CANCELLED' WHERE status = 'PENDING' AND expires_at < now()")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(released)
    }

    /// The seats by state and the tickets, to check the seed design did not oversell.
    pub async fn seat_counts(&self) -> anyhow::Result<SeatCounts> {
        let (sold, held, available, tickets, ticketed_seats): (i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT (SELECT count(*) FROM seats WHERE status = 'SOLD'), \
                    (SELECT count(*) FROM seats WHERE status = 'HELD'), \
                    (SELECT count(*) FROM seats WHERE status = 'AVAILABLE'), \
                    (SELECT count(*) FROM tickets WHERE is_valid), \
                    (SELECT count(DISTINCT seat_id) FROM tickets WHERE is_valid)",
            )
            .fetch_one(&self.pool)
            .await?;
        Ok(SeatCounts {
            sold,
            held,
            available,
            tickets,
            ticketed_seats,
        })
    }

    /// (sold, available) of a tier, to check the baseline did not oversell either.
    pub async fn tier_counts(&self, tier_id: Uuid) -> anyhow::Result<(i32, i32)> {
        Ok(sqlx::query_as(
            "SELECT sold_quantity, available_quantity FROM ticket_tiers WHERE tier_id = $1",
        )
        .bind(tier_id)
        .fetch_one(&self.pool)
        .await?)
    }
}

/// With `seats` locked and free: marks them held for `minutes` and writes the PENDING order
/// with one item per seat; returns the order's id.
async fn hold_locked(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    seats: &[(Uuid, String, i64)],
    buyer_id: Uuid,
    minutes: i32,
) -> anyhow::Result<Uuid> {
    let ids: Vec<Uuid> = seats.iter().map(|(id, _, _)| *id).collect();
    sqlx::query(
        "UPDATE seats SET status = 'HELD', held_by_session_id = $2, held_until = now() + make_interval(mins => $3) \
         WHERE seat_id = ANY($1)",
    )
    .bind(&ids)
    .bind(buyer_id)
    .bind(minutes)
    .execute(&mut **tx)
    .await?;
    let order_id = Uuid::new_v4();
    let total: i64 = seats.iter().map(|(_, _, p)| p).sum();
    sqlx::query("INSERT INTO orders VALUES ($1, $2, 'PENDING', $3, now(), now() + make_interval(mins => $4))")
        .bind(order_id)
        .bind(buyer_id)
        .bind(total)
        .bind(minutes)
        .execute(&mut **tx)
        .await?;
    for (seat_id, _, price) in seats {
        sqlx::query("INSERT INTO order_items VALUES ($1, $2, NULL, $3, 1, $4, $4)")
            .bind(Uuid::new_v4())
            .bind(order_id)
            .bind(seat_id)
            .bind(price)
            .execute(&mut **tx)
            .await?;
    }
    Ok(order_id)
}

/// With the order locked: its held seats back on sale, the order cancelled.
async fn cancel_locked(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    order_id: Uuid,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE seats SET status = 'AVAILABLE', held_by_session_id = NULL, held_until = NULL \
         WHERE status = 'HELD' AND seat_id IN (SELECT seat_id FROM order_items WHERE order_id = $1)",
    )
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE orders SET status = 'CANCELLED' WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
