use std::time::{Duration, Instant};

use super::{Breaker, DegradeSettings, Outcome, State};

fn settings() -> DegradeSettings {
    DegradeSettings {
        window: Duration::from_secs(10),
        min_calls: 4,
        failure_percent: 50,
        slow_call: Duration::from_secs(1),
        open_for: Duration::from_secs(5),
        probes: 2,
        ..DegradeSettings::default()
    }
}

const FAST: Outcome = Outcome::Answered(Duration::from_millis(20));
const SLOW: Outcome = Outcome::Answered(Duration::from_secs(2));

fn at(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}

#[test]
fn it_opens_when_half_the_calls_in_the_window_are_slow_or_failed() {
    let t = Instant::now();
    let mut b = Breaker::new(settings());
    for (i, outcome) in [FAST, SLOW, FAST].into_iter().enumerate() {
        assert_eq!(b.admit(at(t, i as u64)), Ok(()));
        b.record(at(t, i as u64), outcome);
    }
    assert_eq!(b.state(), State::Closed, "too few calls to judge");
    b.record(at(t, 3), Outcome::Failed);
    assert!(matches!(b.state(), State::Open { .. }), "2 bad of 4");
    let wait = Duration::from_millis(4_000);
    assert_eq!(b.admit(at(t, 1_003)), Err(wait), "open: refused at once");
    assert_eq!(b.refuses(at(t, 1_003)), Some(wait));
}

#[test]
fn old_outcomes_leave_the_window_and_declines_are_good_news() {
    let t = Instant::now();
    let mut b = Breaker::new(settings());
    b.record(at(t, 0), Outcome::Failed);
    b.record(at(t, 1), Outcome::Failed);
    // Eleven seconds later those two are forgotten: 1 bad of 4 does not open.
    for ms in [11_000, 11_001, 11_002] {
        b.record(at(t, ms), FAST);
    }
    b.record(at(t, 11_003), Outcome::Failed);
    assert_eq!(b.state(), State::Closed);
    // 2 bad of 5 does not either; 3 bad of 6 does.
    b.record(at(t, 11_004), SLOW);
    assert_eq!(b.state(), State::Closed);
    b.record(at(t, 11_005), SLOW);
    assert!(matches!(b.state(), State::Open { .. }));
}

#[test]
fn after_the_pause_probes_close_it_or_open_it_again() {
    let t = Instant::now();
    let mut b = Breaker::new(settings());
    for ms in 0..4 {
        b.record(at(t, ms), Outcome::Failed);
    }
    // Open until 5.003 s; then two probes at most, a third waits.
    assert!(b.admit(at(t, 5_002)).is_err());
    assert_eq!(b.admit(at(t, 5_003)), Ok(()));
    assert_eq!(b.admit(at(t, 5_004)), Ok(()));
    assert!(b.admit(at(t, 5_005)).is_err(), "two probes already out");
    assert_eq!(
        b.refuses(at(t, 5_005)),
        None,
        "half-open is not a refusal to peek at"
    );
    b.record(at(t, 5_100), FAST);
    assert!(matches!(b.state(), State::HalfOpen { passed: 1, .. }));
    b.record(at(t, 5_200), FAST);
    assert_eq!(b.state(), State::Closed, "two good probes close it");

    // A bad probe opens it again for the whole pause.
    for ms in 6_000..6_004 {
        b.record(at(t, ms), Outcome::Failed);
    }
    assert_eq!(b.admit(at(t, 11_003)), Ok(()));
    b.record(at(t, 11_500), SLOW);
    assert!(matches!(b.state(), State::Open { .. }));
    assert!(b.admit(at(t, 16_499)).is_err());
    assert_eq!(b.admit(at(t, 16_500)), Ok(()));
}

#[test]
fn news_of_calls_let_through_before_it_opened_is_ignored() {
    let t = Instant::now();
    let mut b = Breaker::new(settings());
    for ms in 0..4 {
        b.record(at(t, ms), Outcome::Failed);
    }
    b.record(at(t, 10), FAST);
    b.record(at(t, 11), FAST);
    assert!(matches!(b.state(), State::Open { .. }), "still open");
}
