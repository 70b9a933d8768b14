//! All settings, read from the environment once at start-up.
//!
//! Every setting has a documented default (see the README's Configuration table). A value
//! that is present but malformed stops start-up with one line naming the variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rand::RngCore;

/// A setting that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {name} {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `BOXOFFICE_BIND`: address and port to listen on. Port 0 picks a free port.
    pub bind: SocketAddr,
    /// `DATABASE_URL`: the PostgreSQL database (created if missing).
    pub database_url: String,
    /// `BOXOFFICE_DB_MAX_CONNECTIONS`: size of the connection pool.
    pub db_max_connections: u32,
    /// `REDIS_URL`: optional; enables hold mirroring, durable queues and cross-node fan-out.
    pub redis_url: Option<String>,
    /// `BOXOFFICE_REDIS_PREFIX`: prefix of every Redis key (several deployments, or tests,
    /// can share one Redis).
    pub redis_prefix: String,
    /// `BOXOFFICE_JWT_SECRET`: key that signs account and admission tokens (≥ 32 bytes).
    pub jwt_secret: Vec<u8>,
    /// Whether `jwt_secret` was generated at start-up (tokens will not survive a restart).
    pub jwt_secret_generated: bool,
    /// `BOXOFFICE_TOKEN_TTL_MINUTES`: lifetime of an account token.
    pub token_ttl: Duration,
    /// `BOXOFFICE_HOLD_MINUTES`: default hold duration for on-sales that do not set one.
    pub default_hold_minutes: i64,
    /// `BOXOFFICE_BOOKING_REQUEST_HOURS`: how long an unpaid venue request holds the time,
    /// for venues whose terms do not say.
    pub booking_request_hours: i64,
    /// `BOXOFFICE_WORKERS`: HTTP worker threads (default: one per core).
    pub workers: usize,
    /// `BOXOFFICE_MAX_BODY_BYTES`: the largest JSON body accepted.
    pub max_body_bytes: usize,
    /// `BOXOFFICE_AUTH_RATE_PER_MINUTE`: sign-up and login attempts allowed per client IP.
    pub auth_rate_per_minute: u32,
    /// `BOXOFFICE_PASSWORD_THREADS`: threads that hash and check passwords (the cores by
    /// default; 0 runs them on the runtime's blocking pool, unbounded, to compare against).
    pub password_threads: usize,
    /// `BOXOFFICE_SHUTDOWN_SECONDS`: how long in-flight requests get on SIGTERM.
    pub shutdown_timeout: Duration,
    /// `BOXOFFICE_DRAIN_SECONDS`: on SIGTERM, how long the node keeps serving while
    /// `/readyz` says not ready, before it stops taking connections (0).
    pub drain: Duration,
    /// `BOXOFFICE_WEB_DIR`: the static pages served at `/`.
    pub web_dir: PathBuf,
    /// `BOXOFFICE_LOG_FORMAT`: `pretty` or `json`. (`RUST_LOG` sets the levels.)
    pub log_format: LogFormat,
    /// `BOXOFFICE_MAX_HOLDS_PER_BUYER`: active holds one buyer may have per event.
    pub max_holds_per_buyer: u32,
    /// `BOXOFFICE_ENGINE_THREADS`: threads running the on-sale actors (default: half the cores).
    pub engine_threads: usize,
    /// `BOXOFFICE_PAYMENT_LATENCY_MS`: added latency of the simulated card processor.
    pub payment_latency: Duration,
    /// `BOXOFFICE_PAYMENT_TIMEOUT_MS`: how long an authorization may take before it is
    /// abandoned (and voided).
    pub payment_timeout: Duration,
    /// `BOXOFFICE_RECONCILE_SECONDS`: how often the payment reconciler runs.
    pub reconcile_every: Duration,
    /// `BOXOFFICE_RECONCILE_GRACE_SECONDS`: how old an order-less authorization must be
    /// before it is voided (longer than any checkout takes).
    pub reconcile_grace: Duration,
    /// `BOXOFFICE_REFUND_PARALLELISM`: refunds a node asks the gateway for at once while it
    /// works through a cancelled event's orders.
    pub refund_parallelism: usize,
    /// `BOXOFFICE_ADMISSION_WINDOW_MINUTES`: how long a buyer let out of a waiting room may
    /// shop (their admission token's lifetime; holds end by then too).
    pub admission_window: Duration,
    /// `BOXOFFICE_QUEUE_ABANDON_SECONDS`: a waiting place nobody polled or watched for this
    /// long is dropped.
    pub queue_abandon_after: Duration,
    /// `BOXOFFICE_QUEUE_TICK_MS`: how often waiting rooms admit a batch.
    pub queue_tick: Duration,
    /// `BOXOFFICE_QUEUE_PUSH_SECONDS`: how often a waiting-room socket is sent the place.
    pub queue_push_every: Duration,
    /// `BOXOFFICE_VISITOR_TTL_MINUTES`: lifetime of an anonymous visitor token.
    pub visitor_ttl: Duration,
    /// Proof of work at the door: `BOXOFFICE_POW_MAX_NUMBER` (difficulty: a challenge takes
    /// half this many SHA-256 hashes on average, 500,000), `BOXOFFICE_POW_TTL_SECONDS` (a
    /// challenge must be solved and used within this, 300), `BOXOFFICE_VISITOR_PROOF_OF_WORK`
    /// (minting a visitor token needs a solved challenge, true).
    pub pow: crate::pow::PowSettings,
    /// `BOXOFFICE_IP_RATE_PER_MINUTE`: waiting-room and hold requests allowed per client IP.
    pub ip_rate_per_minute: u32,
    /// `BOXOFFICE_BUYER_RATE_PER_MINUTE`: waiting-room and hold requests allowed per buyer.
    pub buyer_rate_per_minute: u32,
    /// `BOXOFFICE_NODE_ID`: this process's name among the nodes sharing a database and a
    /// Redis (default: a random id at each start).
    pub node_id: String,
    /// `BOXOFFICE_INTERNAL_URL`: how other nodes reach this one (default:
    /// `http://<bound address>:<bound port>`, 127.0.0.1 for an unspecified address).
    pub internal_url: Option<String>,
    /// `BOXOFFICE_LEASE_MS`: how long an on-sale's lease lasts without renewal; the owner
    /// renews every quarter of it, and another node takes over this long after a crash.
    pub lease: Duration,
    /// `BOXOFFICE_FORWARD_TIMEOUT_MS`: how long a request forwarded to an on-sale's owner may
    /// take (default: the payment timeout plus 5 s, since checkouts are forwarded too).
    pub forward_timeout: Duration,
    /// `BOXOFFICE_OPERATOR_TOKEN`: bearer token of `GET /api/v1/cluster` (unset: the
    /// endpoint answers 404).
    pub operator_token: Option<String>,
    /// `BOXOFFICE_WEBHOOK_ALLOW_PRIVATE`: let webhooks reach loopback and private addresses
    /// (tests and local set-ups; default `false`).
    pub webhook_allow_private: bool,
    /// `BOXOFFICE_RELAY`: whether this node relays the outbox (e-mail, webhooks; default
    /// `true`). Every node may: rows are claimed, so each is sent by one at a time.
    pub relay: bool,
    /// `BOXOFFICE_OUTBOX_CLAIM_SECONDS`: how long a relay has a claimed outbox row before
    /// another node may take it (default 30; longer than an SMTP send may take, 20 s).
    pub outbox_claim: Duration,
    /// `BOXOFFICE_SMTP_URL`: where e-mail goes (`smtp://host:port` plain, for a local relay
    /// or a test sink; `smtps://user:pass@host[:port]` TLS). Unset: `BOXOFFICE_MAIL_DIR`.
    pub smtp_url: Option<String>,
    /// `BOXOFFICE_MAIL_DIR`: without SMTP, messages are written here as `.eml` files (unset
    /// too: no e-mail is sent).
    pub mail_dir: Option<String>,
    /// `BOXOFFICE_MAIL_FROM`: the sender (default `boxoffice <tickets@boxoffice.invalid>`).
    pub mail_from: String,
    /// `BOXOFFICE_PUBLIC_URL`: the site's address in messages (default `http://localhost:8080`).
    pub public_url: String,
    /// `BOXOFFICE_TRUSTED_PROXIES`: comma-separated addresses or networks (`10.0.0.0/8`,
    /// `::1`) of proxies whose `X-Forwarded-For` names the client (default: none).
    pub trusted_proxies: Vec<IpNet>,
    /// `BOXOFFICE_LOGIN_RATE_PER_ACCOUNT`: login attempts per account per minute, from any
    /// address.
    pub login_rate_per_account: u32,
    /// `BOXOFFICE_SEATMAP_CACHE_SEATS`: seats of event layouts the seat map keeps in memory
    /// (about 100 bytes each; least recently used events go first), 500,000.
    pub seatmap_cache_seats: usize,
    /// `BOXOFFICE_SEARCH_CONCURRENCY`: catalog queries run at once on this node (more wait
    /// for a turn, in order): a crowd of searches queues here rather than thrash Postgres.
    pub search_concurrency: usize,
    /// The live seat map: `BOXOFFICE_LIVE_BATCH_MS` (how often changes go out, 100),
    /// `BOXOFFICE_LIVE_RING` (batches kept for reconnects, 600), `BOXOFFICE_LIVE_VIEWER_QUEUE`
    /// (frames queued per socket before it counts as behind, 32),
    /// `BOXOFFICE_LIVE_IDLE_SECONDS` (a silent socket is closed, 30),
    /// `BOXOFFICE_LIVE_SLOW_SECONDS` (a socket behind this long is dropped, 30),
    /// `BOXOFFICE_HOLD_WARNING_SECONDS` (holders are warned this long before expiry, 60).
    pub live: crate::actors::broadcaster::LiveConfig,
    /// Graceful degradation (`BOXOFFICE_BREAKER*`, `BOXOFFICE_DEGRADED_*`): see
    /// [`crate::payments::breaker::DegradeSettings`].
    pub degrade: crate::payments::breaker::DegradeSettings,
    /// `BOXOFFICE_ORDER_QUEUE`: orders waiting for the order writer before new ones are
    /// refused with 503 `orders_busy` (4,096).
    pub order_queue: usize,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let bind = parse_or(
            &get,
            "BOXOFFICE_BIND",
            "127.0.0.1:8080".parse().ok(),
            "must be an address such as 127.0.0.1:8080",
        )?;
        let database_url = get("DATABASE_URL")
            .unwrap_or_else(|| "postgres://postgres:postgres@127.0.0.1:5432/boxoffice".to_owned());
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(ConfigError {
                name: "DATABASE_URL",
                problem: "must be a postgres:// URL".into(),
            });
        }
        let redis_url = get("REDIS_URL");
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError {
                    name: "REDIS_URL",
                    problem: "must be a redis:// URL".into(),
                });
            }
        }
        let (jwt_secret, jwt_secret_generated) = match get("BOXOFFICE_JWT_SECRET") {
            Some(secret) if secret.len() >= 32 => (secret.into_bytes(), false),
            Some(_) => {
                return Err(ConfigError {
                    name: "BOXOFFICE_JWT_SECRET",
                    problem: "must be at least 32 bytes long".into(),
                })
            }
            None => {
                let mut secret = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut secret);
                (secret, true)
            }
        };
        let payment_timeout_ms = bounded(&get, "BOXOFFICE_PAYMENT_TIMEOUT_MS", 10_000, 1, 300_000)?;
        let workers = match get("BOXOFFICE_WORKERS") {
            None => std::thread::available_parallelism().map_or(2, usize::from),
            Some(_) => bounded(&get, "BOXOFFICE_WORKERS", 2, 1, 256)? as usize,
        };
        let log_format = match get("BOXOFFICE_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(ConfigError {
                    name: "BOXOFFICE_LOG_FORMAT",
                    problem: "must be pretty or json".into(),
                })
            }
        };

        Ok(Settings {
            bind,
            database_url,
            db_max_connections: bounded(&get, "BOXOFFICE_DB_MAX_CONNECTIONS", 20, 1, 1000)? as u32,
            redis_url,
            redis_prefix: get("BOXOFFICE_REDIS_PREFIX").unwrap_or_else(|| "boxoffice".to_owned()),
            jwt_secret,
            jwt_secret_generated,
            token_ttl: Duration::from_secs(
                60 * bounded(
                    &get,
                    "BOXOFFICE_TOKEN_TTL_MINUTES",
                    24 * 60,
                    1,
                    60 * 24 * 90,
                )?,
            ),
            default_hold_minutes: bounded(&get, "BOXOFFICE_HOLD_MINUTES", 10, 1, 60)? as i64,
            booking_request_hours: bounded(&get, "BOXOFFICE_BOOKING_REQUEST_HOURS", 48, 1, 720)?
                as i64,
            workers,
            max_body_bytes: bounded(
                &get,
                "BOXOFFICE_MAX_BODY_BYTES",
                2 * 1024 * 1024,
                1024,
                64 * 1024 * 1024,
            )? as usize,
            auth_rate_per_minute: bounded(&get, "BOXOFFICE_AUTH_RATE_PER_MINUTE", 30, 1, 1_000_000)?
                as u32,
            password_threads: match get("BOXOFFICE_PASSWORD_THREADS") {
                None => std::thread::available_parallelism().map_or(2, usize::from),
                Some(_) => bounded(&get, "BOXOFFICE_PASSWORD_THREADS", 2, 0, 64)? as usize,
            },
            shutdown_timeout: Duration::from_secs(bounded(
                &get,
                "BOXOFFICE_SHUTDOWN_SECONDS",
                30,
                0,
                3600,
            )?),
            drain: Duration::from_secs(bounded(&get, "BOXOFFICE_DRAIN_SECONDS", 0, 0, 600)?),
            web_dir: get("BOXOFFICE_WEB_DIR").map_or_else(|| PathBuf::from("web"), PathBuf::from),
            log_format,
            max_holds_per_buyer: bounded(&get, "BOXOFFICE_MAX_HOLDS_PER_BUYER", 2, 1, 1_000_000)?
                as u32,
            engine_threads: match get("BOXOFFICE_ENGINE_THREADS") {
                None => (std::thread::available_parallelism().map_or(2, usize::from) / 2).max(1),
                Some(_) => bounded(&get, "BOXOFFICE_ENGINE_THREADS", 1, 1, 64)? as usize,
            },
            payment_latency: Duration::from_millis(bounded(
                &get,
                "BOXOFFICE_PAYMENT_LATENCY_MS",
                0,
                0,
                60_000,
            )?),
            payment_timeout: Duration::from_millis(payment_timeout_ms),
            reconcile_every: Duration::from_secs(bounded(
                &get,
                "BOXOFFICE_RECONCILE_SECONDS",
                30,
                1,
                86_400,
            )?),
            reconcile_grace: Duration::from_secs(bounded(
                &get,
                "BOXOFFICE_RECONCILE_GRACE_SECONDS",
                120,
                0,
                86_400,
            )?),
            refund_parallelism: bounded(&get, "BOXOFFICE_REFUND_PARALLELISM", 8, 1, 64)? as usize,
            admission_window: Duration::from_secs(
                60 * bounded(&get, "BOXOFFICE_ADMISSION_WINDOW_MINUTES", 15, 1, 240)?,
            ),
            queue_abandon_after: Duration::from_secs(bounded(
                &get,
                "BOXOFFICE_QUEUE_ABANDON_SECONDS",
                120,
                5,
                86_400,
            )?),
            queue_tick: Duration::from_millis(bounded(
                &get,
                "BOXOFFICE_QUEUE_TICK_MS",
                1000,
                10,
                60_000,
            )?),
            queue_push_every: Duration::from_secs(bounded(
                &get,
                "BOXOFFICE_QUEUE_PUSH_SECONDS",
                3,
                1,
                60,
            )?),
            visitor_ttl: Duration::from_secs(
                60 * bounded(
                    &get,
                    "BOXOFFICE_VISITOR_TTL_MINUTES",
                    24 * 60,
                    1,
                    60 * 24 * 30,
                )?,
            ),
            pow: crate::pow::PowSettings {
                max_number: bounded(&get, "BOXOFFICE_POW_MAX_NUMBER", 500_000, 1, 100_000_000)?,
                ttl: Duration::from_secs(bounded(
                    &get,
                    "BOXOFFICE_POW_TTL_SECONDS",
                    300,
                    10,
                    86_400,
                )?),
                visitors: parse_or(
                    &get,
                    "BOXOFFICE_VISITOR_PROOF_OF_WORK",
                    Some(true),
                    "must be true or false",
                )?,
            },
            ip_rate_per_minute: bounded(&get, "BOXOFFICE_IP_RATE_PER_MINUTE", 1200, 1, 100_000_000)?
                as u32,
            buyer_rate_per_minute: bounded(
                &get,
                "BOXOFFICE_BUYER_RATE_PER_MINUTE",
                120,
                1,
                100_000_000,
            )? as u32,
            node_id: node_id(get("BOXOFFICE_NODE_ID"))?,
            internal_url: internal_url(get("BOXOFFICE_INTERNAL_URL"))?,
            lease: Duration::from_millis(bounded(&get, "BOXOFFICE_LEASE_MS", 3_000, 500, 60_000)?),
            forward_timeout: Duration::from_millis(bounded(
                &get,
                "BOXOFFICE_FORWARD_TIMEOUT_MS",
                payment_timeout_ms + 5_000,
                100,
                600_000,
            )?),
            trusted_proxies: match get("BOXOFFICE_TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(IpNet::parse)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ConfigError {
                        name: "BOXOFFICE_TRUSTED_PROXIES",
                        problem: "must be addresses or networks such as 10.0.0.0/8, ::1".into(),
                    })?,
            },
            login_rate_per_account: bounded(
                &get,
                "BOXOFFICE_LOGIN_RATE_PER_ACCOUNT",
                10,
                1,
                1_000_000,
            )? as u32,
            seatmap_cache_seats: bounded(
                &get,
                "BOXOFFICE_SEATMAP_CACHE_SEATS",
                500_000,
                0,
                100_000_000,
            )? as usize,
            search_concurrency: bounded(&get, "BOXOFFICE_SEARCH_CONCURRENCY", 8, 1, 1_000)?
                as usize,
            webhook_allow_private: match get("BOXOFFICE_WEBHOOK_ALLOW_PRIVATE")
                .as_deref()
                .map(str::trim)
            {
                None | Some("") | Some("false") | Some("0") => false,
                Some("true") | Some("1") => true,
                Some(_) => {
                    return Err(ConfigError {
                        name: "BOXOFFICE_WEBHOOK_ALLOW_PRIVATE",
                        problem: "must be true or false".into(),
                    })
                }
            },
            relay: parse_or(&get, "BOXOFFICE_RELAY", Some(true), "must be true or false")?,
            degrade: degrade::degrade(&get, payment_timeout_ms)?,
            order_queue: degrade::order_queue(&get)?,
            outbox_claim: Duration::from_secs(bounded(
                &get,
                "BOXOFFICE_OUTBOX_CLAIM_SECONDS",
                30,
                2,
                3600,
            )?),
            smtp_url: get("BOXOFFICE_SMTP_URL").filter(|u| !u.trim().is_empty()),
            mail_dir: get("BOXOFFICE_MAIL_DIR").filter(|d| !d.trim().is_empty()),
            mail_from: get("BOXOFFICE_MAIL_FROM")
                .filter(|f| !f.trim().is_empty())
                .unwrap_or_else(|| "boxoffice <tickets@boxoffice.invalid>".into()),
            public_url: get("BOXOFFICE_PUBLIC_URL")
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| "http://localhost:8080".into()),
            operator_token: match get("BOXOFFICE_OPERATOR_TOKEN") {
                Some(token) if token.trim().len() < 16 => {
                    return Err(ConfigError {
                        name: "BOXOFFICE_OPERATOR_TOKEN",
                        problem: "must be at least 16 characters".into(),
                    })
                }
                token => token.map(|t| t.trim().to_owned()),
            },
            live: crate::actors::broadcaster::LiveConfig {
                batch: Duration::from_millis(bounded(
                    &get,
                    "BOXOFFICE_LIVE_BATCH_MS",
                    100,
                    5,
                    10_000,
                )?),
                ring: bounded(&get, "BOXOFFICE_LIVE_RING", 600, 1, 100_000)? as usize,
                viewer_queue: bounded(&get, "BOXOFFICE_LIVE_VIEWER_QUEUE", 32, 1, 4096)? as usize,
                idle: Duration::from_secs(bounded(
                    &get,
                    "BOXOFFICE_LIVE_IDLE_SECONDS",
                    30,
                    1,
                    3600,
                )?),
                slow_limit: Duration::from_secs(bounded(
                    &get,
                    "BOXOFFICE_LIVE_SLOW_SECONDS",
                    30,
                    1,
                    3600,
                )?),
                hold_warning: chrono::Duration::seconds(bounded(
                    &get,
                    "BOXOFFICE_HOLD_WARNING_SECONDS",
                    60,
                    0,
                    3600,
                )? as i64),
            },
        })
    }

    /// The same database server, another database (tests and the demo use their own).
    pub fn with_database(mut self, name: &str) -> Settings {
        if let Some((server, _)) = self.database_url.rsplit_once('/') {
            self.database_url = format!("{server}/{name}");
        }
        self
    }
}

fn node_id(value: Option<String>) -> Result<String, ConfigError> {
    match value.map(|v| v.trim().to_owned()) {
        None => Ok(uuid::Uuid::new_v4().simple().to_string()),
        Some(id)
            if id.len() <= 100
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            Ok(id)
        }
        Some(_) => Err(ConfigError {
            name: "BOXOFFICE_NODE_ID",
            problem: "must be 1 to 100 letters, digits, '-', '_' or '.'".into(),
        }),
    }
}

fn internal_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value.map(|v| v.trim().trim_end_matches('/').to_owned()) {
        None => Ok(None),
        Some(url)
            if (url.starts_with("http://") || url.starts_with("https://"))
                && !url.chars().any(char::is_whitespace) =>
        {
            Ok(Some(url))
        }
        Some(_) => Err(ConfigError {
            name: "BOXOFFICE_INTERNAL_URL",
            problem: "must be an http:// or https:// URL such as http://10.0.0.5:8080".into(),
        }),
    }
}

fn parse_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Option<T>,
    problem: &str,
) -> Result<T, ConfigError> {
    match get(name) {
        Some(value) => value.trim().parse().map_err(|_| ConfigError {
            name,
            problem: format!("{problem} (got {value:?})"),
        }),
        None => default.ok_or_else(|| ConfigError {
            name,
            problem: "is required".into(),
        }),
    }
}

fn bounded(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let value = parse_or(
        get,
        name,
        Some(default),
        &format!("must be a whole number from {min} to {max}"),
    )?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError {
            name,
            problem: format!("must be a whole number from {min} to {max} (got {value})"),
        })
    }
}

mod degrade;
mod ipnet;

pub use ipnet::IpNet;
#[cfg(test)]
mod tests;
