//! The settings of graceful degradation: the card processor's breaker, what degraded
//! payments change in the waiting rooms and holds, the order writer's queue bound.

use std::time::Duration;

use super::{bounded, parse_or, ConfigError};
use crate::payments::breaker::DegradeSettings;

/// `payment_timeout_ms`: the slow-call threshold is half of it unless set: a processor
/// that is slow but answers in time keeps selling (measured: a 2 s processor under a 1 s
/// threshold turned a slow processor into an outage, README), one close to timing out is
/// treated as failing.
pub(super) fn degrade(
    get: &impl Fn(&str) -> Option<String>,
    payment_timeout_ms: u64,
) -> Result<DegradeSettings, ConfigError> {
    let ms =
        |name, default, min, max| bounded(get, name, default, min, max).map(Duration::from_millis);
    Ok(DegradeSettings {
        enabled: parse_or(
            get,
            "BOXOFFICE_BREAKER",
            Some(true),
            "must be true or false",
        )?,
        window: ms("BOXOFFICE_BREAKER_WINDOW_MS", 10_000, 100, 600_000)?,
        min_calls: bounded(get, "BOXOFFICE_BREAKER_MIN_CALLS", 10, 1, 100_000)? as u32,
        failure_percent: bounded(get, "BOXOFFICE_BREAKER_FAILURE_PERCENT", 50, 1, 100)? as u32,
        slow_call: ms(
            "BOXOFFICE_BREAKER_SLOW_MS",
            (payment_timeout_ms / 2).max(1),
            1,
            300_000,
        )?,
        open_for: ms("BOXOFFICE_BREAKER_OPEN_MS", 5_000, 10, 600_000)?,
        probes: bounded(get, "BOXOFFICE_BREAKER_PROBES", 3, 1, 1_000)? as u32,
        admission_percent: bounded(get, "BOXOFFICE_DEGRADED_ADMISSION_PERCENT", 10, 0, 100)? as u32,
        hold_extension: Duration::from_secs(bounded(
            get,
            "BOXOFFICE_DEGRADED_HOLD_EXTENSION_SECONDS",
            120,
            0,
            3_600,
        )?),
    })
}

/// `BOXOFFICE_ORDER_QUEUE`: orders that may wait for the order writer (4,096).
pub(super) fn order_queue(get: &impl Fn(&str) -> Option<String>) -> Result<usize, ConfigError> {
    Ok(bounded(get, "BOXOFFICE_ORDER_QUEUE", 4_096, 1, 1_000_000)? as usize)
}
