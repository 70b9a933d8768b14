//! Live holds mirrored to Redis, so that a restarted node gives every buyer back the seats
//! they were holding. Each hold is a key with the hold's own time to live (it vanishes
//! from Redis when it would have expired anyway) plus a per-event set of hold ids:
//!
//! ```text
//! {prefix}:holds:{event_id}            SET of hold ids
//! {prefix}:hold:{event_id}:{hold_id}   JSON of the hold, PX = time left
//! ```
//!
//! Event actors never wait on Redis: they queue writes on a channel that one task applies
//! in order (so a release can never overtake the hold it releases). A hold acknowledged in
//! the last moments before a crash may therefore be missing after it; its seats are then
//! simply available again. Nothing is ever left locked.
//!
//! Writes are fenced (`cluster::fence`): each carries the owner's lease epoch, and Redis
//! refuses it once a newer owner raised the event's epoch, so a paused owner that wakes up
//! cannot bring back a hold the new owner already let go.

use std::sync::Arc;

use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::clock::Clock;
use crate::cluster::fence::{self, FencedBatch};
use crate::cluster::Cluster;
use crate::domain::holds::MirroredHold;

enum Op {
    Save {
        event_id: Uuid,
        epoch: i64,
        hold: MirroredHold,
    },
    Remove {
        event_id: Uuid,
        epoch: i64,
        hold_id: Uuid,
    },
}

#[derive(Clone)]
pub struct HoldMirror {
    conn: ConnectionManager,
    prefix: String,
    ops: mpsc::UnboundedSender<Op>,
    cluster: Arc<Cluster>,
    /// What a kept hold's time to live is counted from.
    clock: Arc<dyn Clock>,
}

impl HoldMirror {
    /// Connects and starts the writer task (on the current actix arbiter).
    pub async fn connect(
        url: &str,
        prefix: &str,
        cluster: Arc<Cluster>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<HoldMirror> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let conn = ConnectionManager::new(client)
            .await
            .context("connecting to Redis")?;
        let (ops, mut queue) = mpsc::unbounded_channel::<Op>();
        let mirror = HoldMirror {
            conn,
            prefix: prefix.to_owned(),
            ops,
            cluster,
            clock,
        };
        let writer = mirror.clone();
        actix_web::rt::spawn(async move {
            // Whatever queued up while the last write was out goes in the next one, so the
            // mirror keeps up with any hold rate in a few round trips a second.
            let mut ops = Vec::new();
            while queue.recv_many(&mut ops, 512).await > 0 {
                if let Err(error) = writer.apply(&ops).await {
                    tracing::warn!(%error, "could not mirror holds to Redis");
                }
                ops.clear();
            }
        });
        Ok(mirror)
    }

    fn set_key(&self, event_id: Uuid) -> String {
        format!("{}:holds:{event_id}", self.prefix)
    }

    fn hold_key(&self, event_id: Uuid, hold_id: Uuid) -> String {
        format!("{}:hold:{event_id}:{hold_id}", self.prefix)
    }

    pub fn save(&self, event_id: Uuid, epoch: i64, hold: MirroredHold) {
        let _ = self.ops.send(Op::Save {
            event_id,
            epoch,
            hold,
        });
    }

    pub fn remove(&self, event_id: Uuid, epoch: i64, hold_id: Uuid) {
        let _ = self.ops.send(Op::Remove {
            event_id,
            epoch,
            hold_id,
        });
    }

    /// A new owner raises the event's epoch before it reads the holds back; `Ok(false)`
    /// when Redis already saw a newer owner.
    pub async fn raise(&self, event_id: Uuid, epoch: i64) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        fence::raise(&mut conn, &fence::epoch_key(&self.prefix, event_id), epoch).await
    }

    /// Writes `ops` in order: one fenced script per run of ops of one event and epoch.
    async fn apply(&self, ops: &[Op]) -> anyhow::Result<()> {
        let mut runs: Vec<((Uuid, i64), FencedBatch)> = Vec::new();
        for op in ops {
            let owner = match op {
                Op::Save {
                    event_id, epoch, ..
                }
                | Op::Remove {
                    event_id, epoch, ..
                } => (*event_id, *epoch),
            };
            if runs.last().is_none_or(|(o, _)| *o != owner) {
                runs.push((owner, FencedBatch::new()));
            }
            if let Some((_, batch)) = runs.last_mut() {
                self.add(batch, op)?;
            }
        }
        let mut conn = self.conn.clone();
        for ((event_id, epoch), batch) in runs {
            if batch.is_empty() {
                continue;
            }
            let key = fence::epoch_key(&self.prefix, event_id);
            if !batch.run(&mut conn, &key, epoch).await? {
                self.cluster.fenced(event_id, "redis_holds");
            }
        }
        Ok(())
    }

    /// The Redis commands of one op.
    fn add(&self, batch: &mut FencedBatch, op: &Op) -> anyhow::Result<()> {
        match op {
            Op::Save { event_id, hold, .. } => {
                let ttl = (hold.expires_at - self.clock.now()).num_milliseconds();
                if ttl <= 0 {
                    return Ok(());
                }
                batch
                    .cmd([
                        "SET".to_owned(),
                        self.hold_key(*event_id, hold.hold_id),
                        serde_json::to_string(hold)?,
                        "PX".to_owned(),
                        ttl.to_string(),
                    ])
                    .cmd([
                        "SADD".to_owned(),
                        self.set_key(*event_id),
                        hold.hold_id.to_string(),
                    ]);
            }
            Op::Remove {
                event_id, hold_id, ..
            } => {
                batch
                    .cmd(["DEL".to_owned(), self.hold_key(*event_id, *hold_id)])
                    .cmd([
                        "SREM".to_owned(),
                        self.set_key(*event_id),
                        hold_id.to_string(),
                    ]);
            }
        }
        Ok(())
    }

    /// The event's holds that have not expired. (Only a new owner reads, right after it
    /// raised the epoch; the clean-up of expired entries below needs no fencing since an
    /// expired hold's key is gone for every owner alike.)
    pub async fn load(&self, event_id: Uuid) -> anyhow::Result<Vec<MirroredHold>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .smembers(self.set_key(event_id))
            .await
            .context("reading mirrored holds")?;
        let mut holds = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        // A new owner reads every live hold before it serves: a thousand a round trip.
        let ids: Vec<(String, Uuid)> = ids
            .into_iter()
            .filter_map(|id| Uuid::parse_str(&id).ok().map(|hold_id| (id, hold_id)))
            .collect();
        for chunk in ids.chunks(1000) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|(_, hold_id)| self.hold_key(event_id, *hold_id))
                .collect();
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .context("reading mirrored holds")?;
            for ((id, _), json) in chunk.iter().zip(values) {
                match json.and_then(|j| serde_json::from_str::<MirroredHold>(&j).ok()) {
                    Some(hold) => holds.push(hold),
                    None => gone.push(id.clone()),
                }
            }
        }
        if !gone.is_empty() {
            let _: () = conn
                .srem(self.set_key(event_id), gone)
                .await
                .context("forgetting expired holds")?;
        }
        Ok(holds)
    }
}
