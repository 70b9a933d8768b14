//! The outbox relay and organizers' webhooks. Every node runs the relay: it claims pending
//! outbox rows (`FOR UPDATE SKIP LOCKED`, for 30 s), hands each to the subscriptions of the
//! event's organizer to its kind (one delivery row per subscription per outbox row, so a
//! row relayed twice queues nothing twice) and marks it processed, in one transaction; a
//! row that cannot be relayed is tried again with exponential backoff and jitter, and
//! dead-lettered after 10 tries. Deliveries are claimed the same way and POSTed with a
//! `Boxoffice-Signature` header (HMAC-SHA256 of `<t>.<body>` under the subscription's
//! secret, as the well-known providers do) and a 10 s timeout; failures are retried with
//! backoff for a day; a 410 disables the subscription.
//!
//! Rows also go out as e-mail (`crate::mail`), sent before the row is marked.
//!
//! Sent twice? Only when a node dies between a receiver's answer (or the SMTP server's)
//! and the record of it: the claim lapses and another node sends it again — with the same
//! `id` in the body (and in `Boxoffice-Delivery`) for a webhook receiver to drop.
//!
//! Receivers on loopback, private or link-local addresses are refused (at subscription
//! and before every send) unless `BOXOFFICE_WEBHOOK_ALLOW_PRIVATE` allows them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::clock::Clock;
use crate::persistence::webhooks::{self as store, Attempt, DueDelivery};

/// The event types a subscription may ask for.
pub const EVENT_TYPES: &[&str] = &[
    "order.confirmed",
    "order.refunded",
    "ticket.transferred",
    "ticket.checked_in",
    "event.sold_out",
    "event.cancelled",
    "waitlist.offered",
];
/// Outbox rows a relay sends at once (their e-mail is most of the work).
const RELAY_PARALLEL: usize = 8;
/// How long a relay has the deliveries it claimed (a send times out after 10 s).
const CLAIM_FOR: i64 = 30;
/// Tries of an outbox row before it is dead-lettered.
const OUTBOX_TRIES: i32 = 10;
/// How long a delivery is retried.
const RETRY_FOR_HOURS: i64 = 24;
const SEND_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", crate::pow::hex(&mac.finalize().into_bytes()))
}

/// A fresh subscription secret.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::thread_rng().gen();
    format!("whsec_{}", crate::pow::hex(&bytes))
}

/// How long before try `attempts + 1`: doubling from 10 s, at most 6 h, ±20 % jitter.
pub fn backoff(attempts: i32) -> Duration {
    let base = 10_i64
        .saturating_mul(1_i64 << attempts.clamp(0, 20))
        .min(6 * 3600);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((base as f64 * 1000.0 * jitter) as i64)
}

fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(|v4| private(IpAddr::V4(v4)))
        }
    }
}

/// Whether `url` may receive deliveries: http(s), a host, and (unless `allow_private`)
/// no address of it on loopback, private or link-local ranges. Why not, if not.
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    vetted(url, allow_private).await.map(|_| ())
}

/// [`check_url`], and for a host name the address it was checked at: the send connects
/// there and nowhere else, so a name that resolves differently a moment later (DNS
/// rebinding) cannot point the request at a private address.
async fn vetted(
    url: &str,
    allow_private: bool,
) -> Result<Option<(String, std::net::SocketAddr)>, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| "must be an absolute http or https URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = parsed.host_str().ok_or("must name a host")?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    if allow_private {
        return Ok(None);
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let (named, addresses): (bool, Vec<IpAddr>) = match host.parse::<IpAddr>() {
        Ok(ip) => (false, vec![ip]),
        Err(_) => (
            true,
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| "its host does not resolve".to_owned())?
                .map(|a| a.ip())
                .collect(),
        ),
    };
    if addresses.is_empty() || addresses.iter().copied().any(private) {
        return Err("must not point at a loopback, private or link-local address".into());
    }
    Ok(named.then(|| (host, std::net::SocketAddr::new(addresses[0], port))))
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("boxoffice-webhooks/1")
}

/// The relay's figures on `/metrics`.
#[derive(Clone)]
pub struct RelayMetrics {
    /// Outbox rows relayed, by outcome (`relayed`, `retried`, `dead`).
    pub rows: prometheus::IntCounterVec,
    /// Webhook delivery attempts, by outcome (`delivered`, `failed`, `gone`).
    pub deliveries: prometheus::IntCounterVec,
    /// From an outbox row's commit to its relay, in seconds.
    pub lag: prometheus::Histogram,
}

impl RelayMetrics {
    fn new() -> anyhow::Result<RelayMetrics> {
        use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};
        let metrics = RelayMetrics {
            rows: IntCounterVec::new(
                Opts::new(
                    "outbox_rows_total",
                    "Outbox rows relayed, retried or dead-lettered",
                ),
                &["outcome"],
            )?,
            deliveries: IntCounterVec::new(
                Opts::new(
                    "webhook_deliveries_total",
                    "Webhook delivery attempts, by outcome",
                ),
                &["outcome"],
            )?,
            lag: Histogram::with_opts(
                HistogramOpts::new(
                    "outbox_lag_seconds",
                    "From an outbox row's commit to its relay",
                )
                .buckets(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
                ]),
            )?,
        };
        // Every series exists from the start, at zero.
        for outcome in ["relayed", "retried", "dead"] {
            metrics.rows.with_label_values(&[outcome]);
        }
        for outcome in ["delivered", "gone", "failed"] {
            metrics.deliveries.with_label_values(&[outcome]);
        }
        Ok(metrics)
    }

    pub fn register(&self, registry: &prometheus::Registry) -> anyhow::Result<()> {
        registry.register(Box::new(self.rows.clone()))?;
        registry.register(Box::new(self.deliveries.clone()))?;
        registry.register(Box::new(self.lag.clone()))?;
        Ok(())
    }
}

pub struct Relay {
    pool: sqlx::PgPool,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    allow_private: bool,
    /// How long the relay has an outbox row it claimed (`BOXOFFICE_OUTBOX_CLAIM_SECONDS`).
    claim: Duration,
    /// E-mail, when it is on.
    mail: Option<crate::mail::Mailer>,
    /// Where confirmed orders are counted for what is trending.
    trending: Option<Arc<crate::trending::Trending>>,
    pub metrics: RelayMetrics,
}

impl Relay {
    pub fn new(
        pool: sqlx::PgPool,
        clock: Arc<dyn Clock>,
        allow_private: bool,
        claim: StdDuration,
        mail: Option<crate::mail::Mailer>,
    ) -> anyhow::Result<Relay> {
        let client = client_builder().build()?;
        Ok(Relay {
            pool,
            clock,
            client,
            allow_private,
            claim: Duration::from_std(claim)?,
            mail,
            trending: None,
            metrics: RelayMetrics::new()?,
        })
    }

    /// Counts each confirmed order's tickets for what is trending as it is relayed.
    pub fn counting_sales(mut self, trending: Arc<crate::trending::Trending>) -> Relay {
        self.trending = Some(trending);
        self
    }

    /// One pass: relays due outbox rows, then sends due deliveries; how many of each.
    pub async fn pass(&self) -> anyhow::Result<(usize, usize)> {
        Ok((self.relay().await?, self.deliver().await?))
    }

    /// Relays up to 200 due outbox rows.
    pub async fn relay(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let rows = store::claim_outbox(&self.pool, now, self.claim, 200).await?;
        let count = rows.len();
        use futures_util::StreamExt;
        futures_util::stream::iter(rows)
            .for_each_concurrent(RELAY_PARALLEL, |mut row| async move {
                if let Err(error) = self.relay_row(&mut row).await {
                    tracing::warn!(outbox_id = row.id, ?error, "could not record an outbox row");
                }
            })
            .await;
        Ok(count)
    }

    /// Sends one row's e-mail, queues its deliveries and marks it; a failure is retried
    /// with backoff, or dead-lettered after its last try.
    async fn relay_row(&self, row: &mut store::OutboxRow) -> anyhow::Result<()> {
        // A whole claim for this send, however long the row waited in its batch (or none:
        // the claim lapsed and another relay has it).
        let now = self.clock.now();
        if !store::renew_claim(&self.pool, row, now + self.claim).await? {
            return Ok(());
        }
        // The e-mail first, then the webhooks' deliveries and the mark in one
        // transaction: a failure retries both (the fan-out queues nothing twice).
        let relayed = match &self.mail {
            Some(mail) => mail.deliver(row.id, &row.kind, &row.payload).await,
            None => Ok(()),
        };
        let relayed = match relayed {
            Ok(()) => store::fan_out(&self.pool, row, self.clock.now())
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = relayed {
            let retry = (row.attempts + 1 < OUTBOX_TRIES).then(|| now + backoff(row.attempts));
            let outcome = if retry.is_none() { "dead" } else { "retried" };
            self.metrics.rows.with_label_values(&[outcome]).inc();
            if retry.is_none() {
                tracing::error!(outbox_id = row.id, kind = %row.kind, ?error, "an outbox row was dead-lettered");
            }
            store::outbox_failed(&self.pool, row.id, &format!("{error:#}"), retry, now).await?;
        } else {
            if let (Some(trending), "order.confirmed") = (&self.trending, row.kind.as_str()) {
                // Counted once per row by the script, however often the row is relayed.
                if let Err(error) = trending.record(row.id, &row.payload, row.created_at).await {
                    tracing::warn!(
                        outbox_id = row.id,
                        ?error,
                        "could not count a sale for trending"
                    );
                }
            }
            self.metrics.rows.with_label_values(&["relayed"]).inc();
            let lag = (now - row.created_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics.lag.observe(lag);
        }
        Ok(())
    }

    /// Sends up to 100 due deliveries, 16 at a time.
    pub async fn deliver(&self) -> anyhow::Result<usize> {
        use futures_util::StreamExt;
        let now = self.clock.now();
        let due =
            store::claim_deliveries(&self.pool, now, Duration::seconds(CLAIM_FOR), 100).await?;
        let count = due.len();
        futures_util::stream::iter(due)
            .for_each_concurrent(16, |delivery| async move {
                if let Err(error) = self.send(&delivery).await {
                    tracing::warn!(delivery_id = %delivery.delivery_id, ?error, "could not record a delivery");
                }
            })
            .await;
        Ok(count)
    }

    async fn send(&self, delivery: &DueDelivery) -> anyhow::Result<()> {
        let now = self.clock.now();
        let t = now.timestamp();
        // A named host is reached at the address it was checked at (see `vetted`).
        let client = match vetted(&delivery.url, self.allow_private).await {
            Err(why) => Err(format!("the receiver's URL {why}")),
            Ok(None) => Ok(None),
            Ok(Some((host, address))) => client_builder()
                .resolve(&host, address)
                .build()
                .map(Some)
                .map_err(|e| format!("could not prepare the request: {e}")),
        };
        let outcome = match client {
            Err(why) => Err((None, why)),
            Ok(pinned) => {
                let answer = pinned
                    .as_ref()
                    .unwrap_or(&self.client)
                    .post(&delivery.url)
                    .header("Content-Type", "application/json")
                    .header(
                        "Boxoffice-Signature",
                        signature(&delivery.secret, t, &delivery.body),
                    )
                    .header("Boxoffice-Delivery", delivery.delivery_id.to_string())
                    .body(delivery.body.clone())
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status().is_success() => {
                        Ok(response.status().as_u16())
                    }
                    Ok(response) => Err((
                        Some(response.status().as_u16()),
                        format!("answered {}", response.status()),
                    )),
                    Err(error) if error.is_timeout() => Err((None, "no answer within 10 s".into())),
                    Err(_) => Err((None, "could not connect".into())),
                }
            }
        };
        let label = match &outcome {
            Ok(_) => "delivered",
            Err((Some(410), _)) => "gone",
            Err(_) => "failed",
        };
        self.metrics.deliveries.with_label_values(&[label]).inc();
        let attempt = match &outcome {
            Ok(status) => Attempt::Delivered { status: *status },
            Err((Some(410), _)) => Attempt::Gone,
            Err((status, error)) => Attempt::Failed {
                status: *status,
                error,
                retry_at: retry_at(delivery.created_at, delivery.attempts, now),
            },
        };
        store::attempted(&self.pool, delivery, attempt, self.clock.now()).await
    }
}

/// When to try again a delivery made at `created` and tried `attempts` times before this
/// one; `None` once a day has passed.
fn retry_at(created: DateTime<Utc>, attempts: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let next = now + backoff(attempts);
    (next < created + Duration::hours(RETRY_FOR_HOURS)).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_time_and_the_body() {
        // Checked against `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            format!("t=1700000000,v1={}", {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"whsec_test")
                    .unwrap_or_else(|_| unreachable!());
                mac.update(br#"1700000000.{"a":1}"#);
                crate::pow::hex(&mac.finalize().into_bytes())
            })
        );
        assert_ne!(signature("a", 1, "x"), signature("b", 1, "x"));
        assert_ne!(signature("a", 1, "x"), signature("a", 2, "x"));
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_six_hours() {
        for attempts in 0..30 {
            let base = (10_i64 << attempts.min(20)).min(6 * 3600) as f64;
            let got = backoff(attempts).num_milliseconds() as f64 / 1000.0;
            assert!(
                (base * 0.8..=base * 1.2).contains(&got),
                "{attempts}: {got}"
            );
        }
        let created = Utc::now();
        assert!(retry_at(created, 0, created).is_some());
        assert!(retry_at(created, 12, created + Duration::hours(23)).is_none());
    }

    #[actix_web::test]
    async fn private_and_odd_receivers_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://10.1.2.3/hook",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://100.64.0.1/",
            "http://localhost/",
        ] {
            assert!(check_url(url, false).await.is_err(), "{url}");
        }
        for url in [
            "ftp://example.com/",
            "not a url",
            "http://user:pw@example.com/",
            "/relative",
        ] {
            assert!(check_url(url, true).await.is_err(), "{url}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).await.is_ok());
        assert!(check_url("https://93.184.216.34/hook", false).await.is_ok());
    }
}
