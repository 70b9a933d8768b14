//! The room's pace, as plain data: how many buyers one admission pass may let in, from the
//! organizer's rate, the time since the last pass and the inventory just counted; when the
//! line must wait for held seats and when the sale is sold out; and the rates the room
//! reports (admitted and joined over the last minute, the wait a place may expect).
//!
//! `QueueActor` owns one `Pace` and asks it at every tick; it never reads a clock (every
//! method takes `now`) and never touches the line: the actor admits the buyers a pass
//! allows and tells the pace how many went in.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use crate::domain::holds::Demand;

/// The organizer's admission controls, as the pace reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub admission_per_minute: u32,
    pub paused: bool,
}

impl Rate {
    fn per_second(self) -> Option<f64> {
        (!self.paused && self.admission_per_minute > 0)
            .then(|| f64::from(self.admission_per_minute) / 60.0)
    }
}

/// What one admission pass comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Let this many of the line in (at least one).
    Admit(u64),
    /// Nothing free, but seats are held: the line waits for them (holds expire or are
    /// released, and their seats go to the next in line).
    WaitForHolds,
    /// Nothing free and nothing held: the sale is over for the line.
    SoldOut,
    /// Nobody this pass: paused, no rate, or the inventory or the allowance is short.
    Nobody,
}

#[derive(Debug, Default)]
pub struct Pace {
    /// Admissions owed but not yet given (fractions carry over between passes).
    allowance: f64,
    last_pass: Option<DateTime<Utc>>,
    /// (when, how many) admitted, over the last minute.
    recent: VecDeque<(DateTime<Utc>, u64)>,
    admitted_total: u64,
    /// (second, how many) new buyers joined, over the last minute: the `auto` door's rate.
    joins: VecDeque<(i64, u64)>,
}

impl Pace {
    /// One admission pass at `now` with `demand` just counted. `sale_starts_at` is where
    /// the first pass counts from; `tick` the room's interval (a pass owes at most two of
    /// them, so a room restarted mid-sale does not owe the hours it was down).
    pub fn pass(
        &mut self,
        rate: Rate,
        demand: Demand,
        now: DateTime<Utc>,
        sale_starts_at: DateTime<Utc>,
        tick: std::time::Duration,
    ) -> Pass {
        let since = self.last_pass.unwrap_or(sale_starts_at);
        let elapsed =
            ((now - since).num_milliseconds().max(0) as f64 / 1000.0).min(2.0 * tick.as_secs_f64());
        self.last_pass = Some(now);
        if demand.available == 0 {
            self.allowance = 0.0;
            // Sold out is final only when nothing is held either.
            return if demand.holders > 0 {
                Pass::WaitForHolds
            } else {
                Pass::SoldOut
            };
        }
        let Some(per_second) = rate.per_second() else {
            self.allowance = 0.0;
            return Pass::Nobody;
        };
        // Each pass admits the time since the last one at the organizer's rate. What a pass
        // could not use (inventory held it back) is not saved up beyond a fraction, so a
        // room never lets a crowd in at once when seats come back.
        self.allowance = self.allowance.min(1.0) + per_second * elapsed;
        // Every shopper may still take their limit less what they hold (already out of
        // `available`) and bought, until their session ends; a new one, the whole limit.
        let per_buyer = u64::from(demand.per_buyer.max(1));
        let servable = demand
            .available
            .saturating_sub(demand.promised)
            .div_ceil(per_buyer);
        match (self.allowance.floor() as u64).min(servable) {
            0 => Pass::Nobody,
            n => Pass::Admit(n),
        }
    }

    /// `count` buyers went in at `now` (after a pass allowed them).
    pub fn admitted(&mut self, count: u64, now: DateTime<Utc>) {
        self.allowance -= count as f64;
        if count > 0 {
            self.admitted_total += count;
            self.recent.push_back((now, count));
        }
    }

    /// Forgets the admissions of more than a minute before `now`.
    pub fn forget_old(&mut self, now: DateTime<Utc>) {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now - *at > Duration::seconds(60))
        {
            self.recent.pop_front();
        }
    }

    /// Buyers per second lately, or the organizer's rate when nothing was measured yet;
    /// none while paused or without a rate.
    pub fn rate_per_second(&self, rate: Rate, now: DateTime<Utc>) -> Option<f64> {
        let set = rate.per_second()?;
        let Some(&(first, _)) = self.recent.front() else {
            return Some(set);
        };
        let span = (now - first).num_milliseconds().clamp(1_000, 60_000) as f64 / 1000.0;
        let measured = self.admitted_last_minute() as f64 / span;
        Some(if measured > 0.0 { measured } else { set })
    }

    /// The measured rate per minute (zero before anyone was admitted).
    pub fn measured_per_minute(&self, rate: Rate, now: DateTime<Utc>) -> f64 {
        if self.recent.is_empty() {
            0.0
        } else {
            self.rate_per_second(rate, now).unwrap_or(0.0) * 60.0
        }
    }

    /// Seconds until the buyer at `position` (1 = next) is let in, at the rate lately.
    pub fn eta_seconds(&self, rate: Rate, now: DateTime<Utc>, position: u64) -> Option<u64> {
        self.rate_per_second(rate, now)
            .map(|per_second| (position.saturating_sub(1) as f64 / per_second).ceil() as u64)
    }

    pub fn admitted_last_minute(&self) -> u64 {
        self.recent.iter().map(|(_, n)| n).sum()
    }

    pub fn admitted_total(&self) -> u64 {
        self.admitted_total
    }

    /// Counts a new buyer's join (per-second buckets, a minute of them).
    pub fn count_join(&mut self, now: DateTime<Utc>) {
        let second = now.timestamp();
        match self.joins.back_mut() {
            Some((at, n)) if *at == second => *n += 1,
            _ => self.joins.push_back((second, 1)),
        }
        while self.joins.front().is_some_and(|(at, _)| *at <= second - 60) {
            self.joins.pop_front();
        }
    }

    /// New buyers who joined over the minute before `now`.
    pub fn joins_last_minute(&self, now: DateTime<Utc>) -> u64 {
        let since = now.timestamp() - 60;
        self.joins
            .iter()
            .filter(|(second, _)| *second > since)
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const TICK: std::time::Duration = std::time::Duration::from_secs(1);

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 20, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn rate(per_minute: u32) -> Rate {
        Rate {
            admission_per_minute: per_minute,
            paused: false,
        }
    }

    fn plenty() -> Demand {
        Demand {
            available: 10_000,
            holders: 0,
            promised: 0,
            per_buyer: 1,
        }
    }

    /// Passes once a second for `seconds`, admitting what each allows; the total let in.
    fn run(pace: &mut Pace, rate: Rate, demand: Demand, seconds: i64) -> u64 {
        let mut total = 0;
        for s in 1..=seconds {
            let now = start() + Duration::seconds(s);
            if let Pass::Admit(n) = pace.pass(rate, demand, now, start(), TICK) {
                pace.admitted(n, now);
                total += n;
            }
        }
        total
    }

    #[test]
    fn a_pass_lets_in_the_rate_times_the_time_since_the_last_fractions_carried() {
        let mut pace = Pace::default();
        // 90 a minute is 1.5 a second: 1, 2, 1, 2, …
        assert_eq!(run(&mut pace, rate(90), plenty(), 10), 15);
        assert_eq!(pace.admitted_total(), 15);
        assert_eq!(pace.admitted_last_minute(), 15);
    }

    #[test]
    fn a_room_back_after_a_long_gap_owes_two_ticks_at_most() {
        let mut pace = Pace::default();
        let late = start() + Duration::hours(3);
        assert_eq!(
            pace.pass(rate(600), plenty(), late, start(), TICK),
            Pass::Admit(20)
        );
    }

    #[test]
    fn the_inventory_left_caps_a_pass_by_what_shoppers_may_still_take() {
        let mut pace = Pace::default();
        let demand = Demand {
            available: 10,
            holders: 1,
            promised: 4,
            per_buyer: 4,
        };
        let now = start() + Duration::seconds(1);
        // (10 - 4) seats for buyers of up to 4 each: 2 more shoppers.
        assert_eq!(
            pace.pass(rate(6_000), demand, now, start(), TICK),
            Pass::Admit(2)
        );
        let none_left = Demand {
            promised: 10,
            ..demand
        };
        let later = now + Duration::seconds(1);
        assert_eq!(
            pace.pass(rate(6_000), none_left, later, start(), TICK),
            Pass::Nobody
        );
    }

    #[test]
    fn with_nothing_free_the_line_waits_while_seats_are_held_and_is_sold_out_when_none_are() {
        let mut pace = Pace::default();
        let held = Demand {
            available: 0,
            holders: 3,
            promised: 0,
            per_buyer: 2,
        };
        let now = start() + Duration::seconds(1);
        assert_eq!(
            pace.pass(rate(60), held, now, start(), TICK),
            Pass::WaitForHolds
        );
        let gone = Demand { holders: 0, ..held };
        assert_eq!(pace.pass(rate(60), gone, now, start(), TICK), Pass::SoldOut);
        // Paused or not, sold out is sold out.
        let paused = Rate {
            paused: true,
            ..rate(60)
        };
        assert_eq!(pace.pass(paused, gone, now, start(), TICK), Pass::SoldOut);
    }

    #[test]
    fn a_paused_room_saves_nothing_up_for_when_it_resumes() {
        let mut pace = Pace::default();
        let paused = Rate {
            paused: true,
            ..rate(600)
        };
        assert_eq!(run(&mut pace, paused, plenty(), 30), 0);
        assert_eq!(pace.rate_per_second(paused, start()), None);
        let now = start() + Duration::seconds(31);
        assert_eq!(
            pace.pass(rate(600), plenty(), now, start(), TICK),
            Pass::Admit(10)
        );
    }

    #[test]
    fn what_the_inventory_held_back_is_not_let_in_at_once_later() {
        let mut pace = Pace::default();
        let short = Demand {
            available: 1,
            ..plenty()
        };
        assert_eq!(run(&mut pace, rate(6_000), short, 20), 20);
        let now = start() + Duration::seconds(21);
        // 100 a second, a second since the last pass: 100 (plus at most one saved).
        let Pass::Admit(n) = pace.pass(rate(6_000), plenty(), now, start(), TICK) else {
            panic!("a pass with plenty of seats admits");
        };
        assert!((100..=101).contains(&n), "{n}");
    }

    #[test]
    fn the_rate_reported_is_the_one_measured_over_the_last_minute() {
        let mut pace = Pace::default();
        assert_eq!(pace.rate_per_second(rate(120), start()), Some(2.0));
        assert_eq!(pace.measured_per_minute(rate(120), start()), 0.0);
        run(&mut pace, rate(60), plenty(), 10);
        let now = start() + Duration::seconds(10);
        let measured = pace.rate_per_second(rate(120), now).unwrap_or_default();
        assert!((measured - 10.0 / 9.0).abs() < 0.01, "{measured}");
        assert_eq!(pace.eta_seconds(rate(120), now, 1), Some(0));
        assert_eq!(pace.eta_seconds(rate(120), now, 11), Some(9));
        pace.forget_old(now + Duration::seconds(75));
        assert_eq!(pace.admitted_last_minute(), 0);
        assert_eq!(pace.admitted_total(), 10);
    }

    #[test]
    fn joins_are_counted_over_the_last_minute() {
        let mut pace = Pace::default();
        for s in 0..90 {
            pace.count_join(start() + Duration::seconds(s));
            pace.count_join(start() + Duration::seconds(s));
        }
        let now = start() + Duration::seconds(89);
        assert_eq!(pace.joins_last_minute(now), 120);
        assert_eq!(pace.joins_last_minute(now + Duration::minutes(5)), 0);
    }
}
