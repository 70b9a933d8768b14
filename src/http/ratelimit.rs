//! Per-client rate limits (governor's GCRA), answered with 429 and `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// A limit per client IP address.
pub struct IpLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl IpLimiter {
    /// Allows `per_minute` requests a minute per address, in bursts of up to `per_minute`.
    pub fn per_minute(per_minute: u32) -> IpLimiter {
        let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        IpLimiter {
            limiter: RateLimiter::keyed(Quota::per_minute(rate)),
        }
    }

    /// Counts one request from the caller's address; `TooManyRequests` when over the limit.
    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let ip = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip());
        self.limiter.check_key(&ip).map_err(|not_until| {
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
