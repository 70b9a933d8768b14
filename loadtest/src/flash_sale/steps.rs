//! What the browsers of one sale measured, gathered as they go: a tally per step, how each
//! visit ended, the holds left to expire, and per-second timelines. Shared by every
//! browser of the sale (behind mutexes: a few lock-and-add operations per visit step).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::invariants::LeftHold;
use crate::report::Tally;

use super::Ending;

#[derive(Default)]
pub(super) struct Steps {
    pub join: Mutex<Option<Tally>>,
    pub admission: Mutex<Option<Tally>>,
    pub hold: Mutex<Option<Tally>>,
    pub checkout: Mutex<Option<Tally>>,
    /// From a hold's answer to the delta that shows its seats held, on the buyer's map.
    pub delta: Mutex<Option<Tally>>,
    pub endings: Mutex<BTreeMap<&'static str, u64>>,
    pub left: Mutex<Vec<LeftHold>>,
    /// Over the run, by second: buyers admitted, holds made, seats sold.
    pub admitted: Mutex<BTreeMap<u64, u64>>,
    pub holds: Mutex<BTreeMap<u64, u64>>,
    pub sold: Mutex<BTreeMap<u64, u64>>,
}

impl Steps {
    pub fn ended(&self, ending: Ending) {
        *lock(&self.endings).entry(ending.name()).or_default() += 1;
    }

    pub fn bought(&self) -> u64 {
        lock(&self.endings).get("bought").copied().unwrap_or(0)
    }
}

fn lock<T>(slot: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds `n` to second `at` of a timeline, counted from `started`.
pub(super) fn count(timeline: &Mutex<BTreeMap<u64, u64>>, started: Instant, n: u64) {
    *lock(timeline)
        .entry(started.elapsed().as_secs())
        .or_default() += n;
}

pub(super) fn copy<T: Clone>(slot: &Mutex<T>) -> T {
    lock(slot).clone()
}

/// Records one answer of a step.
pub(super) fn record(slot: &Mutex<Option<Tally>>, took: Duration, outcome: &str, success: bool) {
    lock(slot)
        .get_or_insert_with(Tally::new)
        .record(took, outcome, success);
}

/// A step's tally, emptied.
pub(super) fn take(slot: &Mutex<Option<Tally>>) -> Tally {
    lock(slot).take().unwrap_or_default()
}

/// The second by which a timeline's running total reached `target` (none if it never did).
pub fn second_reaching(timeline: &BTreeMap<u64, u64>, target: u64) -> Option<u64> {
    let mut total = 0;
    timeline.iter().find_map(|(second, n)| {
        total += n;
        (total >= target).then_some(*second + 1)
    })
}

/// Nine tenths of `capacity`, rounded up: the "90 % sold" mark.
pub(super) fn ninety_percent(capacity: usize) -> u64 {
    (capacity as u64 * 90).div_ceil(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_to_sell_is_when_the_running_total_reaches_the_target() {
        let sold: BTreeMap<u64, u64> = [(0, 10), (1, 50), (4, 40)].into();
        assert_eq!(second_reaching(&sold, 10), Some(1));
        assert_eq!(second_reaching(&sold, 60), Some(2));
        assert_eq!(second_reaching(&sold, 95), Some(5));
        assert_eq!(second_reaching(&sold, 101), None);
        assert_eq!(ninety_percent(2_000), 1_800);
        assert_eq!(ninety_percent(3), 3);
    }
}
