//! Builds and runs the application: database, shared state, and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use sqlx::PgPool;
use tracing_actix_web::TracingLogger;

use crate::actors::live_bus::LiveBus;
use crate::actors::mirror::HoldMirror;
use crate::actors::registry::EngineConfig;
use crate::actors::Engine;
use crate::clock::{Clock, SystemClock};
use crate::cluster::invalidate::{self, Change};
use crate::cluster::{Cluster, LeaseHolder, LeaseTiming};
use crate::config::Settings;
use crate::http::{self, extract, forward, AppState};
use crate::payments::{PaymentGateway, SimulatedGateway};
use crate::persistence;
use crate::queue::actor::RoomConfig;
use crate::queue::store::QueueStore;
use crate::queue::WaitingRooms;
use crate::security::{TokenKeys, VisitorKeys};

/// What the application runs on that tests may replace: the clock, the card processor, and
/// the waiting rooms' random seed.
pub struct Dependencies {
    pub clock: Arc<dyn Clock>,
    pub gateway: Arc<dyn PaymentGateway>,
    /// Seeds the waiting rooms' random draws; `None` seeds from the OS (production).
    pub queue_seed: Option<u64>,
}

impl Dependencies {
    /// The wall clock and the simulated processor with the configured latency.
    pub fn from_settings(settings: &Settings) -> Dependencies {
        Dependencies {
            clock: Arc::new(SystemClock),
            gateway: Arc::new(SimulatedGateway::new(settings.payment_latency)),
            queue_seed: None,
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    pool: PgPool,
    engine: Arc<Engine>,
    rooms: Arc<WaitingRooms>,
    cluster: Arc<Cluster>,
    server: Server,
    /// On SIGTERM: serve this long while `/readyz` says draining, then stop.
    drain: Duration,
}

/// What runs the on-sales of this node, as the lease keeper sees it.
struct OnSales {
    engine: Arc<Engine>,
    rooms: Arc<WaitingRooms>,
}

impl LeaseHolder for OnSales {
    fn lost(&self, event_id: uuid::Uuid) {
        self.engine.stop_moved(event_id);
        self.rooms.forget(event_id);
    }

    fn running(&self, event_id: uuid::Uuid) -> bool {
        self.engine.is_running(event_id) || self.rooms.is_running(event_id)
    }
}

impl Application {
    /// Connects to Postgres (creating the database if needed), applies migrations, binds the
    /// listener and builds the server. Port 0 in `settings.bind` picks a free port.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let dependencies = Dependencies::from_settings(&settings);
        Self::build_with(settings, dependencies).await
    }

    /// [`Application::build`] with a chosen clock and payment gateway.
    pub async fn build_with(
        settings: Settings,
        dependencies: Dependencies,
    ) -> anyhow::Result<Application> {
        let pool =
            persistence::connect(&settings.database_url, settings.db_max_connections).await?;
        persistence::migrate(&pool).await?;
        dependencies.gateway.use_database(&pool);
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let port = bound.port();
        let url = internal_url(&settings, bound);
        // Leases get a small pool of their own: renewals must never queue behind orders.
        let lease_pool = persistence::connect(&settings.database_url, 3).await?;
        refuse_random_secret_beside_others(&settings, &lease_pool).await?;
        let cluster = Arc::new(Cluster::new(
            lease_pool,
            settings.node_id.clone(),
            url.clone(),
            LeaseTiming::from_ttl(settings.lease),
        )?);
        tracing::info!(node = %settings.node_id, %url, lease_ms = settings.lease.as_millis() as u64, "node starting");
        let mirror = match &settings.redis_url {
            Some(url) => Some(
                HoldMirror::connect(
                    url,
                    &settings.redis_prefix,
                    cluster.clone(),
                    dependencies.clock.clone(),
                )
                .await?,
            ),
            None => None,
        };
        let queues = match &settings.redis_url {
            Some(url) => {
                Some(QueueStore::connect(url, &settings.redis_prefix, cluster.clone()).await?)
            }
            None => None,
        };
        let bus = match &settings.redis_url {
            Some(url) => {
                Some(LiveBus::connect(url, &settings.redis_prefix, &settings.node_id).await?)
            }
            None => None,
        };
        // The processor behind its breaker, every call timed (`payments::breaker`).
        let gateway: Arc<dyn crate::payments::PaymentGateway> = Arc::new(
            crate::payments::breaker::Guarded::new(dependencies.gateway, &settings.degrade)?,
        );
        let engine = Arc::new(Engine::new(
            pool.clone(),
            dependencies.clock.clone(),
            gateway,
            EngineConfig {
                max_holds_per_buyer: settings.max_holds_per_buyer,
                threads: settings.engine_threads,
                live: settings.live.clone(),
                order_queue: settings.order_queue,
                degraded_hold_extension: settings.degrade.hold_extension,
            },
            settings.payment_timeout,
            mirror,
            bus,
            cluster.clone(),
        ));
        let pow = Arc::new(
            crate::pow::ProofOfWork::new(
                &settings.jwt_secret,
                settings.pow,
                dependencies.clock.clone(),
                settings.redis_url.as_deref(),
                &settings.redis_prefix,
            )
            .await?,
        );
        let rooms = Arc::new(WaitingRooms::new(
            pool.clone(),
            engine.clone(),
            dependencies.clock,
            &settings.jwt_secret,
            RoomConfig {
                window: chrono::Duration::from_std(settings.admission_window)
                    .unwrap_or(chrono::Duration::minutes(15)),
                abandon_after: chrono::Duration::from_std(settings.queue_abandon_after)
                    .unwrap_or(chrono::Duration::minutes(2)),
                tick: settings.queue_tick,
                degraded_admission_percent: settings.degrade.admission_percent,
            },
            queues,
            dependencies.queue_seed,
        ));
        cluster.set_holder(Arc::new(OnSales {
            engine: engine.clone(),
            rooms: rooms.clone(),
        }));
        cluster.spawn_keeper();
        let (changed_engine, changed_rooms) = (engine.clone(), rooms.clone());
        invalidate::spawn_listener(
            pool.clone(),
            Arc::new(move |change| match change {
                // Settings change only before the sale: the engine reads them again.
                Some((event_id, Change::Settings)) => {
                    let rooms = changed_rooms.clone();
                    actix::spawn(async move { rooms.reread(event_id).await });
                    changed_engine.stop_moved(event_id);
                }
                Some((event_id, Change::Cancelled)) => {
                    changed_engine.stop_event(event_id);
                    changed_rooms.close(event_id);
                }
                Some((event_id, Change::Inbox)) => {
                    let engine = changed_engine.clone();
                    actix::spawn(async move { engine.catch_up(event_id).await });
                }
                None => {
                    changed_rooms.forget_absent();
                    let engine = changed_engine.clone();
                    actix::spawn(async move { engine.catch_up_all().await });
                }
            }),
        );
        let doors = Arc::new(crate::doors::Doors::new(
            pool.clone(),
            engine.clock().clone(),
        ));
        let refunds = Arc::new(crate::refunds::Refunds::new(
            engine.clone(),
            doors.clone(),
            settings.payment_timeout,
        ));
        spawn_background(engine.clone(), rooms.clone(), refunds.clone(), &settings);
        let mailer = crate::mail::Mailer::from_settings(
            settings.smtp_url.as_deref(),
            settings.mail_dir.as_deref(),
            &settings.mail_from,
            &settings.public_url,
            pool.clone(),
            doors.clone(),
        )?;
        if mailer.is_none() {
            tracing::info!("no BOXOFFICE_SMTP_URL or BOXOFFICE_MAIL_DIR: e-mail is off");
        }
        let trending = Arc::new(
            crate::trending::Trending::new(
                pool.clone(),
                settings
                    .redis_url
                    .as_deref()
                    .map(|url| (url, settings.redis_prefix.as_str())),
            )
            .await?,
        );
        let relay = Arc::new(
            crate::webhooks::Relay::new(
                pool.clone(),
                engine.clock().clone(),
                settings.webhook_allow_private,
                settings.outbox_claim,
                mailer,
            )?
            .counting_sales(trending.clone()),
        );
        if settings.relay {
            spawn_relay(relay.clone());
        } else {
            tracing::info!("BOXOFFICE_RELAY=false: this node does not relay the outbox");
        }
        let drain = settings.drain;
        let server = run(
            listener,
            pool.clone(),
            (engine.clone(), rooms.clone(), relay),
            (doors, refunds, trending),
            pow,
            settings,
        )?;
        Ok(Application {
            port,
            pool,
            engine,
            rooms,
            cluster,
            server,
            drain,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn rooms(&self) -> &Arc<WaitingRooms> {
        &self.rooms
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Serves until SIGINT/SIGTERM; then drains (`/readyz` says not ready while the node
    /// still serves, `BOXOFFICE_DRAIN_SECONDS`), stops accepting connections and lets
    /// in-flight requests finish (for up to `BOXOFFICE_SHUTDOWN_SECONDS`).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let (cluster, drain) = (self.cluster.clone(), self.drain);
        actix_web::rt::spawn(async move {
            if let Err(error) = shutdown_signal().await {
                tracing::error!(%error, "cannot listen for shutdown signals");
                return;
            }
            cluster.drain();
            if !drain.is_zero() {
                tracing::info!(
                    seconds = drain.as_secs(),
                    "draining: not ready, still serving"
                );
                tokio::time::sleep(drain).await;
            }
            tracing::info!("shutting down: finishing in-flight requests");
            handle.stop(true).await;
        });
        let served = self.server.await.context("running the HTTP server");
        // In-flight requests are done: give the leases back so other nodes take over now.
        self.cluster.shut_down().await;
        served
    }
}

/// How other nodes reach this one: `BOXOFFICE_INTERNAL_URL`, or the address and port bound.
fn internal_url(settings: &Settings, bound: std::net::SocketAddr) -> String {
    if let Some(url) = &settings.internal_url {
        return url.clone();
    }
    let ip = if bound.ip().is_unspecified() {
        tracing::warn!("bound to an unspecified address: other nodes will use 127.0.0.1; set BOXOFFICE_INTERNAL_URL when they run elsewhere");
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        bound.ip()
    };
    format!("http://{}", std::net::SocketAddr::new(ip, bound.port()))
}

/// A random signing key is fine for one node; beside other nodes, tokens signed by one
/// would be refused by the others, so such a node does not start.
async fn refuse_random_secret_beside_others(
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<()> {
    if !settings.jwt_secret_generated {
        return Ok(());
    }
    if settings.internal_url.is_some() {
        anyhow::bail!("BOXOFFICE_INTERNAL_URL is set (several nodes) but BOXOFFICE_JWT_SECRET is not: every node must sign with the same key; set it (32 bytes or more) on every node");
    }
    let others = persistence::leases::others_alive(pool, &settings.node_id, 10_000).await?;
    if others > 0 {
        anyhow::bail!("{others} other node(s) share this database but BOXOFFICE_JWT_SECRET is not set: every node must sign with the same key; set it (32 bytes or more) on every node");
    }
    tracing::warn!("BOXOFFICE_JWT_SECRET is not set: a random key signs tokens, and they will not survive a restart; fine for one node only");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        result = tokio::signal::ctrl_c() => result?,
    }
    Ok(())
}

/// The engine's housekeeping: on-sales open and events complete on time (every 2 s), the
/// payment reconciler and the refund retries run (every `reconcile_every`), and cancelled
/// events' refunds go on (batches of 100, every second while there are any). All stop with
/// the actix system.
fn spawn_background(
    engine: Arc<Engine>,
    rooms: Arc<WaitingRooms>,
    refunds: Arc<crate::refunds::Refunds>,
    settings: &Settings,
) {
    let reconcile_every = settings.reconcile_every;
    let grace = chrono::Duration::from_std(settings.reconcile_grace)
        .unwrap_or(chrono::Duration::minutes(2));
    let lifecycle = engine.clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if let Err(error) = lifecycle.lifecycle_tick().await {
                tracing::warn!(?error, "on-sale lifecycle pass failed");
            }
            if let Err(error) = rooms.open_due().await {
                tracing::warn!(?error, "waiting-room pass failed");
            }
            // Venue requests unpaid past their time free it (a new request for the same
            // time lapses them itself first; this keeps calendars and bookings true).
            let now = lifecycle.clock().now();
            if let Err(error) =
                crate::persistence::bookings::lapse(lifecycle.pool(), None, now).await
            {
                tracing::warn!(?error, "lapsing booking requests failed");
            }
        }
    });
    let retries = refunds.clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(reconcile_every);
        loop {
            tick.tick().await;
            if let Err(error) = engine.reconcile(grace).await {
                tracing::warn!(?error, "payment reconciliation failed");
            }
            if let Err(error) = retries.retry_pending(grace).await {
                tracing::warn!(?error, "retrying pending refunds failed");
            }
        }
    });
    let parallel = settings.refund_parallelism;
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            loop {
                match refunds.cancellation_pass(100, parallel).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(?error, "a cancellation pass failed");
                        break;
                    }
                }
            }
        }
    });
}

/// The outbox relay and webhook deliveries, every second (at once again while there is
/// more to do); they stop with the actix system.
fn spawn_relay(relay: Arc<crate::webhooks::Relay>) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            loop {
                match relay.pass().await {
                    Ok((0, 0)) => break,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(?error, "an outbox relay pass failed");
                        break;
                    }
                }
            }
        }
    });
}

fn run(
    listener: TcpListener,
    pool: PgPool,
    (engine, rooms, relay): (Arc<Engine>, Arc<WaitingRooms>, Arc<crate::webhooks::Relay>),
    (doors, refunds, trending): (
        Arc<crate::doors::Doors>,
        Arc<crate::refunds::Refunds>,
        Arc<crate::trending::Trending>,
    ),
    pow: Arc<crate::pow::ProofOfWork>,
    settings: Settings,
) -> anyhow::Result<Server> {
    let metrics = http::metrics::Metrics::new()?;
    engine.cluster().metrics.register(&metrics.registry)?;
    relay.metrics.register(&metrics.registry)?;
    crate::metrics::figures().register(&metrics.registry)?;
    for collector in engine.gateway().collectors() {
        metrics.registry.register(collector)?;
    }
    let forwarder = forward::Forwarder::new(
        &settings.jwt_secret,
        settings.forward_timeout,
        settings.lease,
    )?;
    let clock = engine.clock().clone();
    let catalog = Arc::new(http::catalog_cache::CatalogCache::new(
        settings.search_concurrency,
    ));
    let state = web::Data::new(AppState {
        forwarder,
        tokens: TokenKeys::new(&settings.jwt_secret, settings.token_ttl).with_clock(clock.clone()),
        metrics,
        auth_limiter: http::ratelimit::IpLimiter::per_minute(settings.auth_rate_per_minute),
        passwords: crate::passwords::PasswordPool::new(settings.password_threads),
        login_limiter: http::ratelimit::Limiter::per_minute(settings.login_rate_per_account),
        rooms,
        visitors: VisitorKeys::new(&settings.jwt_secret, settings.visitor_ttl).with_clock(clock),
        engine,
        sale_limits: http::ratelimit::SaleLimits::new(
            settings.ip_rate_per_minute,
            settings.buyer_rate_per_minute,
        ),
        layouts: crate::persistence::layouts::LayoutCache::new(settings.seatmap_cache_seats),
        pow,
        doors,
        refunds,
        trending,
        catalog: catalog.clone(),
        pool,
        settings: settings.clone(),
    });
    let max_body = settings.max_body_bytes;
    let web_dir = settings.web_dir.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .wrap(from_fn(forward::to_owner))
            .wrap(from_fn(http::headers::secure))
            .wrap(from_fn(http::metrics::record))
            .wrap(actix_web::middleware::Compress::default())
            .wrap(TracingLogger::<http::trace::RedactedSpan>::new())
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::PathConfig::default().error_handler(extract::path_error))
            .app_data(web::QueryConfig::default().error_handler(extract::query_error))
            .configure(http::routes);
        if web_dir.is_dir() {
            app = app.service(actix_files::Files::new("/", &web_dir).index_file("index.html"));
        }
        app.default_service(web::to(http::not_found))
    })
    .workers(settings.workers)
    .shutdown_timeout(settings.shutdown_timeout.as_secs())
    // Signals are handled in `run_until_stopped`, the same way on every runtime.
    .disable_signals()
    .listen(listener)
    .context("listening")?
    .run();
    Ok(server)
}
