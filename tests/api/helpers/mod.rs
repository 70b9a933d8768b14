//! `spawn_app()`: the server on a free port against a database of its own, dropped when the
//! test ends; and one helper per endpoint so tests read as the steps a person takes
//! ([`requests`]), request bodies and assertions ([`bodies`]), a payment gateway a test can
//! hold up ([`gateway`]) and waiting rooms ([`rooms`]).

mod bodies;
mod gateway;
mod requests;
mod rooms;

pub use bodies::*;
pub use gateway::GatedGateway;
pub use rooms::{position, Room, ROOM};

use std::sync::Once;

use std::sync::Arc;

use boxoffice::clock::ManualClock;
use boxoffice::config::Settings;
use boxoffice::payments::{PaymentGateway, SimulatedGateway};
use boxoffice::startup::{Application, Dependencies};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

static TRACING: Once = Once::new();
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// The server's clock: tests move it forward instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The simulated card processor the server pays with.
    pub gateway: Arc<SimulatedGateway>,
    /// The server's waiting rooms: tests run admission passes instead of waiting for ticks.
    pub rooms: Arc<boxoffice::queue::WaitingRooms>,
    /// The server's engine: tests read live-map figures from it.
    pub engine: Arc<boxoffice::actors::Engine>,
    /// The server's view of the nodes: tests make it give its on-sales up.
    pub cluster: Arc<boxoffice::cluster::Cluster>,
    db_name: String,
    owns_database: bool,
    server_url: String,
}

/// A signed-in account.
#[derive(Clone, Debug)]
pub struct Account {
    pub user_id: Uuid,
    pub token: String,
    pub email: String,
}

/// A venue made by [`TestApp::standard_venue`]: two seated sections and a standing floor.
#[derive(Clone, Debug)]
pub struct VenueFixture {
    pub venue_id: Uuid,
    pub seated: Vec<Uuid>,
    pub floor: Uuid,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the server with settings adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_paying_through(configure, None).await
}

/// Spawns the server paying through the given gateway, which wraps the given simulated
/// processor (the one `TestApp::gateway` shows).
pub async fn spawn_app_paying_through(
    configure: impl FnOnce(&mut Settings),
    gateway: Option<(Arc<SimulatedGateway>, Arc<dyn PaymentGateway>)>,
) -> TestApp {
    spawn(configure, gateway, None).await
}

/// A second server on the same database as `other` (another node, or the same node after
/// a restart); the database stays `other`'s to drop.
pub async fn spawn_app_sharing(other: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(configure, None, Some(other.db_name.clone())).await
}

/// Redis for the tests that use it: `REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn spawn(
    configure: impl FnOnce(&mut Settings),
    gateway: Option<(Arc<SimulatedGateway>, Arc<dyn PaymentGateway>)>,
    shared_database: Option<String>,
) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            boxoffice::telemetry::init(boxoffice::config::LogFormat::Pretty);
        }
    });
    let base = Settings::from_lookup(|name| match name {
        "BOXOFFICE_BIND" => Some("127.0.0.1:0".into()),
        "BOXOFFICE_WORKERS" => Some("2".into()),
        "BOXOFFICE_DB_MAX_CONNECTIONS" => Some("5".into()),
        "BOXOFFICE_AUTH_RATE_PER_MINUTE" => Some("100000".into()),
        "BOXOFFICE_IP_RATE_PER_MINUTE" | "BOXOFFICE_BUYER_RATE_PER_MINUTE" => {
            Some("100000000".into())
        }
        // Waiting rooms admit when a test says so (`admit_pass`), not on their own clock,
        // and keep places however far a test moves time.
        "BOXOFFICE_QUEUE_TICK_MS" => Some("60000".into()),
        "BOXOFFICE_QUEUE_ABANDON_SECONDS" => Some("86400".into()),
        "BOXOFFICE_JWT_SECRET" => Some(TEST_SECRET.into()),
        // Proofs of work a debug build solves in a few milliseconds.
        "BOXOFFICE_POW_MAX_NUMBER" => Some("2000".into()),
        "BOXOFFICE_WEB_DIR" => Some(concat!(env!("CARGO_MANIFEST_DIR"), "/web").into()),
        other => std::env::var(other).ok(),
    })
    .unwrap_or_else(|e| panic!("test settings: {e}"));
    let (db_name, owns_database) = match shared_database {
        Some(name) => (name, false),
        None => (format!("boxoffice_test_{}", Uuid::new_v4().simple()), true),
    };
    let mut settings = base.with_database(&db_name);
    // Redis only where a test asks for it (and then under a prefix of its own).
    settings.redis_url = None;
    configure(&mut settings);
    let server_url = settings.clone().with_database("postgres").database_url;

    let clock = Arc::new(ManualClock::new());
    let (simulated, gateway) = match gateway {
        Some(pair) => pair,
        None => {
            let simulated = Arc::new(SimulatedGateway::new(settings.payment_latency));
            (simulated.clone(), simulated as Arc<dyn PaymentGateway>)
        }
    };
    let dependencies = Dependencies {
        clock: clock.clone(),
        gateway,
        queue_seed: Some(7),
    };
    let application = Application::build_with(settings, dependencies)
        .await
        .unwrap_or_else(|e| panic!("building the app: {e:#}"));
    let port = application.port();
    let pool = application.pool().clone();
    let rooms = application.rooms().clone();
    let engine = application.engine().clone();
    let cluster = application.cluster().clone();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        pool,
        clock,
        gateway: simulated,
        rooms,
        engine,
        cluster,
        db_name,
        owns_database,
        server_url,
    }
}

impl Drop for TestApp {
    /// Drops the test's database, closing whatever connections are still open on it.
    fn drop(&mut self) {
        if !self.owns_database {
            return;
        }
        let url = self.server_url.clone();
        let name = self.db_name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(&url).await.ok()?;
                conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.db_name);
        }
    }
}
