//! The live seat map between nodes, over Redis. The node running an event's engine (its
//! *source*: the holder of the on-sale's lease, see `cluster`) publishes each batch on the
//! event's channel, after storing the snapshot that batch leads to; every other node
//! follows, relaying the batches to its own viewers. There is no second claim beside the
//! lease: who the source is, is who owns the on-sale.
//!
//! ```text
//! {prefix}:live:{event_id}             channel: "{node}\nB\n{seq}\n\n{frame}" (a batch)
//!                                               "{node}\nH\n0\n{buyer}\n{frame}" (hold news)
//! {prefix}:livesnap:{event_id}         "{node}\n{seq}\n{snapshot frame}", kept a day
//! ```
//!
//! The snapshot is stored before its batch is published, so a follower that subscribes and
//! then reads the snapshot (number `n`) receives every batch after `n`. Writes go through a
//! bounded queue that one task drains: a source never waits on Redis, and if Redis falls
//! behind batches are dropped, which followers notice as a gap and mend from the snapshot.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytestring::ByteString;

use actix::prelude::*;
use anyhow::Context as _;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::broadcaster::Broadcaster;

/// How long a stored snapshot is kept.
const SNAPSHOT_SECONDS: u64 = 86_400;
/// Writes waiting for Redis before new ones are dropped.
const QUEUE: usize = 4096;

enum Op {
    Batch {
        event_id: Uuid,
        seq: u64,
        frame: ByteString,
        snapshot: ByteString,
    },
    Snapshot {
        event_id: Uuid,
        seq: u64,
        snapshot: ByteString,
    },
    Hold {
        event_id: Uuid,
        buyer: Uuid,
        frame: ByteString,
    },
}

/// A batch or hold news from another node, for a follower.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relayed {
    pub node: String,
    pub kind: RelayedKind,
    pub frame: ByteString,
}

pub enum RelayedKind {
    Batch { seq: u64 },
    Hold { buyer: Uuid },
}

/// A snapshot a source stored.
pub struct StoredSnapshot {
    pub node: String,
    pub seq: u64,
    pub frame: ByteString,
}

#[derive(Clone)]
pub struct LiveBus {
    node: ByteString,
    prefix: ByteString,
    url: ByteString,
    conn: ConnectionManager,
    ops: mpsc::Sender<Op>,
}

impl LiveBus {
    /// Connects and starts the writer task (on the current actix arbiter). `node` names
    /// this process among the nodes sharing the Redis.
    pub async fn connect(url: &str, prefix: &str, node: &str) -> anyhow::Result<LiveBus> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let conn = ConnectionManager::new(client)
            .await
            .context("connecting to Redis")?;
        let (ops, mut queue) = mpsc::channel::<Op>(QUEUE);
        let bus = LiveBus {
            node: node.into(),
            prefix: prefix.into(),
            url: url.into(),
            conn,
            ops,
        };
        let writer = bus.clone();
        actix_web::rt::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            while queue.recv_many(&mut batch, 64).await > 0 {
                if let Err(error) = writer.apply(batch.drain(..)).await {
                    tracing::warn!(%error, "could not publish live-map batches to Redis");
                }
            }
        });
        Ok(bus)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn channel(&self, event_id: Uuid) -> String {
        format!("{}:live:{event_id}", self.prefix)
    }

    fn snapshot_key(&self, event_id: Uuid) -> String {
        format!("{}:livesnap:{event_id}", self.prefix)
    }

    fn queue(&self, op: Op) {
        if self.ops.try_send(op).is_err() {
            tracing::debug!("Redis is behind: a live-map write was dropped");
        }
    }

    pub fn publish_batch(&self, event_id: Uuid, seq: u64, frame: ByteString, snapshot: ByteString) {
        self.queue(Op::Batch {
            event_id,
            seq,
            frame,
            snapshot,
        });
    }

    pub fn store_snapshot(&self, event_id: Uuid, seq: u64, snapshot: ByteString) {
        self.queue(Op::Snapshot {
            event_id,
            seq,
            snapshot,
        });
    }

    pub fn publish_hold(&self, event_id: Uuid, buyer: Uuid, frame: ByteString) {
        self.queue(Op::Hold {
            event_id,
            buyer,
            frame,
        });
    }

    async fn apply(&self, ops: impl Iterator<Item = Op>) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        for op in ops {
            match op {
                Op::Batch {
                    event_id,
                    seq,
                    frame,
                    snapshot,
                } => {
                    let stored = format!("{}\n{seq}\n{snapshot}", self.node);
                    pipe.set_ex(self.snapshot_key(event_id), stored, SNAPSHOT_SECONDS)
                        .ignore();
                    let message = format!("{}\nB\n{seq}\n\n{frame}", self.node);
                    pipe.publish(self.channel(event_id), message).ignore();
                }
                Op::Snapshot {
                    event_id,
                    seq,
                    snapshot,
                } => {
                    let stored = format!("{}\n{seq}\n{snapshot}", self.node);
                    pipe.set_ex(self.snapshot_key(event_id), stored, SNAPSHOT_SECONDS)
                        .ignore();
                }
                Op::Hold {
                    event_id,
                    buyer,
                    frame,
                } => {
                    let message = format!("{}\nH\n0\n{buyer}\n{frame}", self.node);
                    pipe.publish(self.channel(event_id), message).ignore();
                }
            }
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// The snapshot the event's source stored last.
    pub async fn load_snapshot(&self, event_id: Uuid) -> anyhow::Result<Option<StoredSnapshot>> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = conn.get(self.snapshot_key(event_id)).await?;
        Ok(stored.and_then(|s| {
            let mut parts = s.splitn(3, '\n');
            let node = parts.next()?.to_owned();
            let seq = parts.next()?.parse().ok()?;
            let frame = parts.next()?.into();
            Some(StoredSnapshot { node, seq, frame })
        }))
    }

    /// Relays the batches published for the events this node follows to their followers,
    /// for as long as the process runs (reconnecting after a lost connection).
    pub fn listen(&self, followers: Followers) {
        let bus = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                if let Err(error) = bus.relay(&followers).await {
                    tracing::warn!(%error, "the live-map subscription to Redis broke; retrying");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }

    async fn relay(&self, followers: &Followers) -> anyhow::Result<()> {
        let client = redis::Client::open(&*self.url)?;
        let mut pubsub = client.get_async_pubsub().await?;
        let prefix = format!("{}:live:", self.prefix);
        pubsub.psubscribe(format!("{prefix}*")).await?;
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Some(event_id) = message
                .get_channel_name()
                .strip_prefix(&prefix)
                .and_then(|id| Uuid::parse_str(id).ok())
            else {
                continue;
            };
            let Some(follower) = followers.get(event_id) else {
                continue;
            };
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            // A node's own batches too: a follower may outlive the moment its own node
            // took over the event's engine, and then follows it through Redis.
            if let Some(relayed) = parse(&payload) {
                follower.do_send(relayed);
            }
        }
        anyhow::bail!("the subscription ended")
    }
}

fn parse(payload: &str) -> Option<Relayed> {
    let mut parts = payload.splitn(5, '\n');
    let node = parts.next()?.to_owned();
    let kind = parts.next()?;
    let seq: u64 = parts.next()?.parse().ok()?;
    let buyer = parts.next()?;
    let frame: ByteString = parts.next()?.into();
    let kind = match kind {
        "B" => RelayedKind::Batch { seq },
        "H" => RelayedKind::Hold {
            buyer: Uuid::parse_str(buyer).ok()?,
        },
        _ => return None,
    };
    Some(Relayed { node, kind, frame })
}

/// This node's followers, by event.
#[derive(Clone, Default)]
pub struct Followers(Arc<RwLock<HashMap<Uuid, Addr<Broadcaster>>>>);

impl Followers {
    pub fn get(&self, event_id: Uuid) -> Option<Addr<Broadcaster>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&event_id)
            .filter(|a| a.connected())
            .cloned()
    }

    /// The event's follower, started by `start` if there is none.
    pub fn get_or_start(
        &self,
        event_id: Uuid,
        start: impl FnOnce() -> Addr<Broadcaster>,
    ) -> Addr<Broadcaster> {
        let mut map = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&event_id).filter(|a| a.connected()) {
            Some(addr) => addr.clone(),
            None => {
                let addr = start();
                map.insert(event_id, addr.clone());
                addr
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_node_kind_number_and_frame() {
        let buyer = Uuid::new_v4();
        let batch =
            parse("node-a\nB\n42\n\n{\"type\":\"delta\",\"x\":\"a\\nb\"}").expect("a batch");
        assert_eq!(batch.node, "node-a");
        assert!(matches!(batch.kind, RelayedKind::Batch { seq: 42 }));
        assert_eq!(&*batch.frame, "{\"type\":\"delta\",\"x\":\"a\\nb\"}");
        let hold = parse(&format!("n\nH\n0\n{buyer}\n{{}}")).expect("hold news");
        assert!(matches!(hold.kind, RelayedKind::Hold { buyer: b } if b == buyer));
        assert!(parse("n\nX\n0\n\n{}").is_none());
        assert!(parse("n\nB\nnot-a-number\n\n{}").is_none());
        assert!(parse("n\nH\n0\nnot-a-uuid\n{}").is_none());
        assert!(parse("truncated").is_none());
    }
}
