//! How many text frames a WebSocket client may send. Each one asks the server for work (a
//! fresh seat-map snapshot, a waiting-room status), so a client that floods them would turn
//! a few bytes into megabytes: a small bucket refills one frame a second; frames beyond it
//! are ignored, and a client that keeps sending them is disconnected.

use std::time::{Duration, Instant};

/// Frames a client may send at once.
const BURST: f64 = 5.0;
/// Frames regained per second.
const PER_SECOND: f64 = 1.0;
/// Ignored frames after which the socket is closed.
const IGNORED_LIMIT: u32 = 50;

/// What to do with one text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Serve,
    Ignore,
    /// The client kept flooding: close the socket (policy violation).
    Close,
}

/// One socket's budget of text frames.
#[derive(Debug, Clone)]
pub struct FrameBudget {
    tokens: f64,
    at: Instant,
    ignored: u32,
}

impl FrameBudget {
    pub fn new(now: Instant) -> FrameBudget {
        FrameBudget {
            tokens: BURST,
            at: now,
            ignored: 0,
        }
    }

    /// Counts a frame that arrived at `now`.
    pub fn frame(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * PER_SECOND).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.ignored = 0;
            Verdict::Serve
        } else {
            self.ignored += 1;
            if self.ignored > IGNORED_LIMIT {
                Verdict::Close
            } else {
                Verdict::Ignore
            }
        }
    }
}

/// How long a flooding client must pause to be served again.
pub const PAUSE: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_served_then_one_frame_a_second() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(start);
        for _ in 0..5 {
            assert_eq!(budget.frame(start), Verdict::Serve);
        }
        assert_eq!(budget.frame(start), Verdict::Ignore);
        assert_eq!(budget.frame(start + PAUSE), Verdict::Serve);
        assert_eq!(budget.frame(start + PAUSE), Verdict::Ignore);
    }

    #[test]
    fn a_client_that_keeps_flooding_is_cut_off() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(start);
        let verdicts: Vec<Verdict> = (0..200).map(|_| budget.frame(start)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Serve).count(), 5);
        assert_eq!(verdicts.last(), Some(&Verdict::Close));
        // A client that pauses is forgiven.
        let mut polite = FrameBudget::new(start);
        for second in 0..100 {
            assert_eq!(
                polite.frame(start + Duration::from_secs(second)),
                Verdict::Serve
            );
        }
    }
}
