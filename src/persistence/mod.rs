//! Postgres access, grouped by aggregate. Nothing here knows about HTTP.
//!
//! Queries are plain `sqlx::query_as` with runtime binding; every one of them is exercised
//! by the black-box tests in `tests/`.

pub mod accounts;
pub mod audit;
pub mod blocked;
pub mod bookings;
pub mod cancellations;
pub mod catalog;
pub mod deposits;
pub mod discovery;
pub mod events;
pub mod inbox;
pub mod layouts;
pub mod leases;
pub mod onsale;
pub mod orders;
pub mod payments;
pub mod refunds;
pub mod reports;
pub mod scanners;
pub mod tickets;
pub mod venues;
pub mod waitlist;
pub mod webhooks;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// Opens a pool on `database_url`, creating the database first if it does not exist.
pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    if !Postgres::database_exists(database_url)
        .await
        .context("checking that the database exists")?
    {
        Postgres::create_database(database_url)
            .await
            .context("creating the database")?;
    }
    let options = PgConnectOptions::from_str(database_url).context("parsing DATABASE_URL")?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .context("connecting to Postgres")
}

/// Applies the migrations in `migrations/` that have not run yet.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("applying migrations")
}

/// The name of the constraint a statement broke, when it broke a unique or exclusion one.
pub fn violated_constraint(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db)
            if db.is_unique_violation() || db.code().as_deref() == Some("23P01") =>
        {
            db.constraint().map(str::to_owned)
        }
        _ => None,
    }
}

/// Failures of a write that the caller can answer precisely.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A unique or exclusion constraint refused the write.
    #[error("constraint {0} was violated")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl WriteError {
    /// Sorts a sqlx error into a conflict or an unexpected failure with `context`.
    pub fn from_sqlx(error: sqlx::Error, context: &'static str) -> WriteError {
        match violated_constraint(&error) {
            Some(constraint) => WriteError::Conflict(constraint),
            None => WriteError::Other(anyhow::Error::new(error).context(context)),
        }
    }
}
