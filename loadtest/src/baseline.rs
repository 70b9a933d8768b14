//! The seed design, measured beside boxoffice: each hold is one Postgres transaction that
//! locks the rows it changes with `SELECT … FOR UPDATE`, checks, updates, and inserts a
//! PENDING order (seed 000's `reserve_tickets` for tiers, seed 001's `hold_seats` for
//! seats). Same workload, same concurrency, same machine, in the same run.

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
CREATE TABLE orders (order_id UUID PRIMARY KEY, buyer_id UUID NOT NULL, status TEXT NOT NULL, total_amount BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE order_items (item_id UUID PRIMARY KEY, order_id UUID NOT NULL REFERENCES orders (order_id), tier_id UUID,
    seat_id UUID, quantity INT NOT NULL, unit_price BIGINT NOT NULL, subtotal BIGINT NOT NULL);
";

pub struct Baseline {
    pool: PgPool,
}

impl Baseline {
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

    pub async fn add_section(&self, rows: i32, per_row: i32) -> anyhow::Result<Vec<Uuid>> {
        let section = Uuid::new_v4();
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO seats (seat_id, section_id, row_label, seat_number, price_cents, status) \
             SELECT gen_random_uuid(), $1, r::text, n, 5000, 'AVAILABLE' FROM generate_series(1, $2) r, generate_series(1, $3) n \
             RETURNING seat_id",
        )
        .bind(section)
        .bind(rows)
        .bind(per_row)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// Seed 000's `reserve_tickets` for one tier: true when held, false when not enough left.
    pub async fn hold_tier(
        &self,
        tier_id: Uuid,
        buyer_id: Uuid,
        quantity: i32,
    ) -> anyhow::Result<bool> {
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
            return Ok(false);
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
        Ok(true)
    }

    /// Seed 001's `hold_seats`: true when every seat was held, false when one was taken.
    /// Rows are locked in id order so that two overlapping holds cannot deadlock.
    pub async fn hold_seats(&self, seat_ids: &[Uuid], buyer_id: Uuid) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let seats: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, price_cents FROM seats WHERE seat_id = ANY($1) ORDER BY seat_id FOR UPDATE")
                .bind(seat_ids)
                .fetch_all(&mut *tx)
                .await?;
        if seats.len() != seat_ids.len() || seats.iter().any(|(status, _)| status != "AVAILABLE") {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE seats SET status = 'HELD', held_by_session_id = $2, held_until = now() + interval '10 minutes' WHERE seat_id = ANY($1)",
        )
        .bind(seat_ids)
        .bind(buyer_id)
        .execute(&mut *tx)
        .await?;
        let order_id = Uuid::new_v4();
        let total: i64 = seats.iter().map(|(_, p)| p).sum();
        sqlx::query("INSERT INTO orders VALUES ($1, $2, 'PENDING', $3, now(), now() + interval '10 minutes')")
            .bind(order_id)
            .bind(buyer_id)
            .bind(total)
            .execute(&mut *tx)
            .await?;
        for (seat_id, (_, price)) in seat_ids.iter().zip(&seats) {
            sqlx::query("INSERT INTO order_items VALUES ($1, $2, NULL, $3, 1, $4, $4)")
                .bind(Uuid::new_v4())
                .bind(order_id)
                .bind(seat_id)
                .bind(price)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
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
