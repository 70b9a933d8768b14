//! The follower role: on a node that does not run the event's engine, the broadcaster
//! relays the source's batches from Redis to its own viewers with the same numbers. It
//! starts from the snapshot the source stored, takes each batch that follows on from what
//! it has, and starts again from a fresh snapshot when one was lost between the nodes or
//! the source moved to another node. A follower with no viewer for a minute stops.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{Broadcaster, Feed, SNAPSHOT_REFRESH};
use crate::actors::live_bus::{Relayed, RelayedKind, StoredSnapshot};

/// Where a relayed batch falls against the newest state a follower has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Already had (a repeat, or older than the snapshot).
    Stale,
    /// The next one: relay it.
    Next,
    /// Batches between are missing: start again from a snapshot.
    Gap,
}

fn place(seq: u64, current: u64) -> Place {
    if seq <= current {
        Place::Stale
    } else if seq == current + 1 {
        Place::Next
    } else {
        Place::Gap
    }
}

impl Broadcaster {
    /// A follower reads the source's latest snapshot from Redis.
    pub(super) fn fetch_snapshot(&mut self, ctx: &mut Context<Self>) {
        let (Feed::Follower { fetching, .. }, Some(bus)) = (&mut self.feed, &self.bus) else {
            return;
        };
        if *fetching {
            return;
        }
        *fetching = true;
        let (bus, event_id) = (bus.clone(), self.event_id);
        ctx.spawn(
            async move { bus.load_snapshot(event_id).await }
                .into_actor(self)
                .map(|loaded, act, ctx| {
                    if let Feed::Follower { fetching, .. } = &mut act.feed {
                        *fetching = false;
                    }
                    match loaded {
                        Ok(Some(stored)) => act.adopt(stored),
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(event_id = %act.event_id, %error, "could not read the live snapshot");
                            ctx.run_later(Duration::from_secs(1), |act, ctx| {
                                act.fetch_snapshot(ctx)
                            });
                        }
                    }
                }),
        );
    }

    /// A follower takes the snapshot it read: batches it holds from before are kept only
    /// if they follow on from it without a gap; viewers waiting for a start get one.
    fn adopt(&mut self, stored: StoredSnapshot) {
        let known = self.seq();
        let Feed::Follower { node, .. } = &mut self.feed else {
            return;
        };
        let new_source = node.as_deref() != Some(stored.node.as_str());
        if new_source {
            self.ring.clear();
            self.snapshot = None;
            *node = Some(stored.node);
        }
        if self
            .snapshot
            .as_ref()
            .is_some_and(|(seq, _)| *seq > stored.seq)
        {
            return;
        }
        let follows_on = self
            .ring
            .oldest()
            .is_none_or(|first| first <= stored.seq + 1);
        if !follows_on {
            self.ring.clear();
        }
        // Viewers that were sent everything up to `known` and the snapshot is newer: they
        // missed batches nobody relayed, and are owed the snapshot.
        let skipped = new_source || (self.snapshot.is_some() && stored.seq > known);
        self.snapshot = Some((stored.seq, stored.frame));
        if skipped {
            for viewer in self.viewers.values_mut() {
                viewer.behind_since.get_or_insert_with(Instant::now);
            }
        }
        self.tend_behind();
    }

    /// A follower receives a batch or hold news from the source.
    fn relay(&mut self, relayed: Relayed, ctx: &mut Context<Self>) {
        let Feed::Follower { node, .. } = &self.feed else {
            return;
        };
        let following = node.clone();
        if following.as_deref() != Some(relayed.node.as_str()) {
            // Not the source we follow (yet): read who it is now.
            self.fetch_snapshot(ctx);
            if following.is_some() {
                return;
            }
        }
        match relayed.kind {
            RelayedKind::Hold { buyer } => self.tell_buyer(buyer, &relayed.frame),
            RelayedKind::Batch { seq } => {
                let Some(at) = self.snapshot.as_ref().map(|(s, _)| *s) else {
                    // Nothing to start from yet: keep the batch for when the snapshot comes.
                    if self.ring.newest().is_some_and(|s| s + 1 != seq) {
                        self.ring.clear();
                    }
                    self.remember(seq, relayed.frame);
                    self.fetch_snapshot(ctx);
                    return;
                };
                match place(seq, self.seq()) {
                    Place::Stale => return,
                    Place::Next => {
                        self.remember(seq, relayed.frame.clone());
                        self.stats.batches += 1;
                        crate::metrics::figures().live_batches.inc();
                        self.fan_out(&relayed.frame);
                    }
                    Place::Gap => {
                        // A batch was lost between the nodes: start again from a snapshot.
                        self.ring.clear();
                        self.remember(seq, relayed.frame);
                        for viewer in self.viewers.values_mut() {
                            viewer.behind_since.get_or_insert_with(Instant::now);
                        }
                        self.fetch_snapshot(ctx);
                        return;
                    }
                }
                // Keep the snapshot recent, so a joining viewer is not sent a long tail.
                if seq.saturating_sub(at) > SNAPSHOT_REFRESH.min(self.config.ring as u64 / 2) {
                    self.fetch_snapshot(ctx);
                }
            }
        }
    }
}

impl Handler<Relayed> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Relayed, ctx: &mut Context<Self>) {
        self.relay(msg, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_relayed_only_when_it_follows_on() {
        assert_eq!(place(7, 7), Place::Stale);
        assert_eq!(place(3, 7), Place::Stale);
        assert_eq!(place(8, 7), Place::Next);
        assert_eq!(place(9, 7), Place::Gap);
        assert_eq!(place(1, 0), Place::Next);
    }
}
