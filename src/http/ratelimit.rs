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

/// The address a request came from: for a request another node forwarded (genuine hop
/// header), the client that node saw; behind a trusted proxy, the last address in
/// `X-Forwarded-For` that is not a trusted proxy; otherwise the peer.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip());
    let Some(state) = req.app_data::<actix_web::web::Data<super::AppState>>() else {
        return peer;
    };
    if let Some(client) = state.forwarder.forwarded_client(req.headers()) {
        return client;
    }
    behind_proxies(peer, req.headers(), &state.settings.trusted_proxies)
}

/// The client behind `trusted` proxies: `X-Forwarded-For` read from the right, skipping
/// trusted hops (anything left of the first untrusted one could be forged by the client).
pub fn behind_proxies(
    peer: IpAddr,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[crate::config::IpNet],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(*ip))
        .or_else(|| hops.first().copied())
        .unwrap_or(peer)
}

/// The key an address is limited under: an IPv6 client usually has a whole /64, so it
/// counts as one.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// A limit per client IP address.
pub type IpLimiter = Limiter<IpAddr>;

impl Limiter<IpAddr> {
    /// Counts one request from the caller's address.
    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        self.check_key(&rate_key(client_ip(req)))
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

#[cfg(test)]
mod proxy_tests {
    use super::*;
    use crate::config::IpNet;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
        );
        headers
    }

    #[test]
    fn only_a_trusted_proxy_may_name_the_client() {
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap_or_else(|| panic!("net"))];
        let headers = forwarded("1.2.3.4, 10.0.0.7");
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &headers, &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            behind_proxies(ip("5.6.7.8"), &headers, &trusted),
            ip("5.6.7.8")
        );
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &headers, &[]),
            ip("10.0.0.2")
        );
        // A client that writes its own X-Forwarded-For only adds to the left of the truth.
        let forged = forwarded("9.9.9.9, 1.2.3.4");
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &forged, &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            rate_key(ip("2001:db8:1:2:bbbb::9")),
            rate_key(ip("2001:db8:1:2:aaaa::1"))
        );
        assert_ne!(
            rate_key(ip("2001:db8:1:3::1")),
            rate_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(rate_key(ip("1.2.3.4")), ip("1.2.3.4"));
    }
}
