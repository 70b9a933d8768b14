//! The ring of a live map: the last batches, numbered without a gap, kept so that a viewer
//! who reconnects is sent exactly what it missed, or a snapshot and the batches after it
//! when the ring no longer reaches back far enough.
//!
//! Plain data, generic over the frame (the broadcaster keeps encoded frames). Who calls it:
//! [`crate::actors::broadcaster::Broadcaster`], on the source node and on followers. What
//! it never does: encode, send, or decide when a snapshot is taken.

use std::collections::VecDeque;

/// The last `capacity` batches, oldest first.
#[derive(Debug, Clone)]
pub struct Ring<F> {
    batches: VecDeque<(u64, F)>,
    capacity: usize,
}

impl<F: Clone> Ring<F> {
    pub fn new(capacity: usize) -> Ring<F> {
        Ring {
            batches: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Keeps batch `seq`, forgetting the oldest past the capacity.
    pub fn push(&mut self, seq: u64, frame: F) {
        self.batches.push_back((seq, frame));
        while self.batches.len() > self.capacity {
            self.batches.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.batches.clear();
    }

    pub fn oldest(&self) -> Option<u64> {
        self.batches.front().map(|(seq, _)| *seq)
    }

    pub fn newest(&self) -> Option<u64> {
        self.batches.back().map(|(seq, _)| *seq)
    }

    /// What a viewer that last saw `since` missed when the newest state is `seq`, if the
    /// ring can tell: the batches after `since` (none when up to date). None when the ring
    /// no longer reaches back that far, or the viewer is new: it needs a snapshot
    /// ([`Ring::from_snapshot`]).
    pub fn missed(&self, since: Option<u64>, seq: u64) -> Option<Vec<F>> {
        let since = since?;
        if since == seq {
            return Some(Vec::new());
        }
        (since < seq && self.oldest().is_some_and(|oldest| oldest <= since + 1))
            .then(|| self.after(since).collect())
    }

    /// The snapshot of state `at` and the batches after it; empty while the batches kept do
    /// not follow on from it (wait for a newer snapshot).
    pub fn from_snapshot(&self, at: u64, snapshot: F) -> Vec<F> {
        let next = self.batches.iter().map(|(s, _)| *s).find(|s| *s > at);
        if next.is_some_and(|next| next != at + 1) {
            return Vec::new();
        }
        std::iter::once(snapshot).chain(self.after(at)).collect()
    }

    fn after(&self, seq: u64) -> impl Iterator<Item = F> + '_ {
        self.batches
            .iter()
            .filter(move |(s, _)| *s > seq)
            .map(|(_, frame)| frame.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(seqs: std::ops::RangeInclusive<u64>, capacity: usize) -> Ring<String> {
        let mut ring = Ring::new(capacity);
        for seq in seqs {
            ring.push(seq, format!("b{seq}"));
        }
        ring
    }

    /// As the broadcaster does it: the ring's answer, else the snapshot's.
    fn catch_up(ring: &Ring<String>, since: Option<u64>, seq: u64, at: Option<u64>) -> Vec<String> {
        ring.missed(since, seq).unwrap_or_else(|| {
            at.map_or_else(Vec::new, |at| ring.from_snapshot(at, format!("s{at}")))
        })
    }

    #[test]
    fn a_viewer_the_ring_still_reaches_gets_exactly_what_it_missed() {
        let ring = ring(1..=10, 5);
        assert_eq!(
            ring.missed(Some(7), 10),
            Some(vec!["b8".into(), "b9".into(), "b10".into()])
        );
        assert_eq!(
            catch_up(&ring, Some(5), 10, None),
            ["b6", "b7", "b8", "b9", "b10"]
        );
        assert_eq!(ring.missed(Some(10), 10), Some(Vec::new()), "up to date");
    }

    #[test]
    fn a_viewer_too_far_behind_gets_the_snapshot_and_what_follows_it() {
        let ring = ring(1..=10, 5);
        assert_eq!(ring.oldest(), Some(6));
        assert_eq!(ring.missed(Some(2), 10), None);
        assert_eq!(catch_up(&ring, Some(2), 10, Some(8)), ["s8", "b9", "b10"]);
        assert_eq!(catch_up(&ring, None, 10, Some(10)), ["s10"]);
        assert_eq!(
            catch_up(&ring, Some(99), 10, Some(7)),
            ["s7", "b8", "b9", "b10"]
        );
    }

    #[test]
    fn batches_that_do_not_follow_the_snapshot_send_nothing_yet() {
        let ring = ring(6..=10, 5);
        assert!(catch_up(&ring, None, 10, Some(3)).is_empty());
        assert!(
            catch_up(&ring, None, 10, None).is_empty(),
            "no snapshot yet"
        );
    }
}
