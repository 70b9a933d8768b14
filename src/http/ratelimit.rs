//! Per-client rate limits (governor's GCRA), answered with 429 and `Retry-After`.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::error::ApiError;

/// A limit per key (a client address, a buyer).
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// Allows `per_minute` requests a minute per key, in bursts of up to `per_minute`.
    pub fn per_minute(per_minute: u32) -> Limiter<K> {
        let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Limiter {
            limiter: RateLimiter::keyed(Quota::per_minute(rate)),
        }
    }

    /// Counts one request for `key`; `TooManyRequests` when over the limit.
    pub fn check_key(&self, key: &K) -> Result<(), ApiError> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1),
            }
        })?;
        // Forget idle clients now and then so the map stays small.
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        Ok(())
    }
}

/// The address a request came from: the peer, or, for a request another node forwarded
/// (genuine hop header), the client that node saw.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    let forwarded = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .and_then(|state| state.forwarder.forwarded_client(req.headers()));
    forwarded.unwrap_or_else(|| {
        req.peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip())
    })
}

/// A limit per client IP address.
pub type IpLimiter = Limiter<IpAddr>;

impl Limiter<IpAddr> {
    /// Counts one request from the caller's address.
    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        self.check_key(&client_ip(req))
    }
}

/// The limits of the on-sale's hot endpoints (waiting room and holds): per address and
/// per buyer, so neither one browser nor one crowded network can flood them.
pub struct SaleLimits {
    pub ip: Limiter<IpAddr>,
    pub buyer: Limiter<Uuid>,
}

impl SaleLimits {
    pub fn new(ip_per_minute: u32, buyer_per_minute: u32) -> SaleLimits {
        SaleLimits {
            ip: Limiter::per_minute(ip_per_minute),
            buyer: Limiter::per_minute(buyer_per_minute),
        }
    }

    /// Counts one request from this address and buyer.
    pub fn check(&self, req: &HttpRequest, buyer: Uuid) -> Result<(), ApiError> {
        self.ip.check(req)?;
        self.buyer.check_key(&buyer)
    }
}
