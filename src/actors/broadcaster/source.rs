//! The source role: on the node that runs the event's engine, section and event actors
//! tell the broadcaster every seat and tier change and every hold's news; each beat cuts
//! one numbered batch from the live map, sends it to this node's viewers, keeps it in the
//! ring, and publishes it with the snapshot it leads to for the followers on other nodes.

use actix::prelude::*;
use bytestring::ByteString;

use super::{encode, hold_frame, Broadcaster, Feed, Frame, SeatsChanged, TierChanged};
use crate::domain::holds::HoldNews;
use crate::domain::live_map::Delta;

impl Broadcaster {
    /// The source's snapshot frame as of its last batch, encoded once per batch.
    pub(super) fn source_snapshot(&mut self) -> Option<(u64, ByteString)> {
        let Feed::Source(map) = &self.feed else {
            return self.snapshot.clone();
        };
        if self.snapshot.as_ref().map(|(seq, _)| *seq) != Some(map.seq()) {
            let snapshot = map.snapshot();
            self.snapshot = Some((snapshot.seq, encode(&Frame::Snapshot(&snapshot))));
        }
        self.snapshot.clone()
    }

    /// Sends a batch to this node's viewers, keeps it for reconnects, and publishes it
    /// (with the snapshot it leads to) for the other nodes.
    pub(super) fn send_batch(&mut self, delta: &Delta) {
        let frame = encode(&Frame::Delta(delta));
        self.stats.batches += 1;
        let f = crate::metrics::figures();
        f.live_batches.inc();
        if let Some(since) = self.changed_since.take() {
            f.live_delta_delay.observe(since.elapsed().as_secs_f64());
        }
        self.remember(delta.seq, frame.clone());
        self.fan_out(&frame);
        if let Some(bus) = self.bus.clone() {
            if let Some((_, snapshot)) = self.source_snapshot() {
                bus.publish_batch(self.event_id, delta.seq, frame, snapshot);
            }
        }
    }

    /// With Redis: stores the source's snapshot once, for followers that come before the
    /// first batch (every batch stores the snapshot it leads to after that).
    pub(super) fn store_first_snapshot(&mut self) {
        let Some(bus) = self.bus.clone() else {
            return;
        };
        if self.snapshot_stored {
            return;
        }
        if let Some((seq, snapshot)) = self.source_snapshot() {
            bus.store_snapshot(self.event_id, seq, snapshot);
        }
        self.snapshot_stored = true;
    }
}

impl Handler<SeatsChanged> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: SeatsChanged, _: &mut Context<Self>) {
        self.changed_since
            .get_or_insert_with(std::time::Instant::now);
        if let Feed::Source(map) = &mut self.feed {
            for (position, state) in msg.changes {
                map.seat_changed(msg.section, position, state);
            }
        }
    }
}

impl Handler<TierChanged> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: TierChanged, _: &mut Context<Self>) {
        self.changed_since
            .get_or_insert_with(std::time::Instant::now);
        if let Feed::Source(map) = &mut self.feed {
            map.tier_changed(msg.tier, msg.counts);
        }
    }
}

impl Handler<HoldNews> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: HoldNews, _: &mut Context<Self>) {
        let frame = hold_frame(&msg);
        self.tell_buyer(msg.buyer_id, &frame);
        if let Some(bus) = &self.bus {
            bus.publish_hold(self.event_id, msg.buyer_id, frame);
        }
    }
}
