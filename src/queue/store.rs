//! The waiting rooms kept in Redis, so a restarted node gives every buyer back their place
//! and every admitted buyer their session:
//!
//! ```text
//! {prefix}:queue:{event_id}:line       ZSET  buyer -> score (see `line`: shuffle draw or FIFO number)
//! {prefix}:queue:{event_id}:admitted   HASH  buyer -> JSON admission (jti, times, purchased)
//! {prefix}:queue:{event_id}:started    "1" once the sale started and the pre-queue was ordered
//! ```
//!
//! The queue actor never waits on Redis: it sends changes down a channel, and one task
//! applies them in order, many to a pipeline, so 2,000 admissions a second are a handful of
//! round trips. Keys expire a day after the sale ends.
//!
//! Every write is fenced (`cluster::fence`): it carries the room owner's lease epoch and
//! is refused once a newer owner raised the event's epoch, so a paused node that wakes up
//! cannot admit, drop or reorder anyone in a line that another node now runs.

use std::sync::Arc;

use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::line::Admission;
use crate::cluster::fence::{self, FencedBatch};
use crate::cluster::Cluster;

enum Op {
    Join { buyer: Uuid, score: u64 },
    Admit { buyer: Uuid, admission: Admission },
    Leave { buyers: Vec<Uuid> },
    Forget { buyers: Vec<Uuid> },
    Started,
    ClearLine,
}

/// What Redis kept of one waiting room.
#[derive(Debug, Default)]
pub struct Kept {
    pub places: Vec<(Uuid, u64)>,
    pub admissions: Vec<(Uuid, Admission)>,
    pub started: bool,
}

/// The Redis side of every waiting room of this node.
#[derive(Clone)]
pub struct QueueStore {
    conn: ConnectionManager,
    prefix: String,
    cluster: Arc<Cluster>,
}

/// One waiting room's writer: cheap to clone, never blocks.
#[derive(Clone)]
pub struct RoomStore {
    ops: mpsc::UnboundedSender<Op>,
}

impl QueueStore {
    pub async fn connect(
        url: &str,
        prefix: &str,
        cluster: Arc<Cluster>,
    ) -> anyhow::Result<QueueStore> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let conn = ConnectionManager::new(client)
            .await
            .context("connecting to Redis")?;
        Ok(QueueStore {
            conn,
            prefix: prefix.to_owned(),
            cluster,
        })
    }

    fn keys(&self, event_id: Uuid) -> [String; 3] {
        let base = format!("{}:queue:{event_id}", self.prefix);
        [
            format!("{base}:line"),
            format!("{base}:admitted"),
            format!("{base}:started"),
        ]
    }

    /// Reads a room back.
    pub async fn load(&self, event_id: Uuid) -> anyhow::Result<Kept> {
        let [line, admitted, started] = self.keys(event_id);
        let mut conn = self.conn.clone();
        let scored: Vec<(String, f64)> = conn
            .zrange_withscores(&line, 0, -1)
            .await
            .context("reading a waiting line")?;
        let stored: Vec<(String, String)> = conn
            .hgetall(&admitted)
            .await
            .context("reading admissions")?;
        let started: Option<String> = conn.get(&started).await.context("reading a line")?;
        Ok(Kept {
            places: scored
                .into_iter()
                .filter_map(|(b, s)| Some((Uuid::parse_str(&b).ok()?, s as u64)))
                .collect(),
            admissions: stored
                .into_iter()
                .filter_map(|(b, json)| {
                    Some((Uuid::parse_str(&b).ok()?, serde_json::from_str(&json).ok()?))
                })
                .collect(),
            started: started.is_some(),
        })
    }

    /// A new owner raises the event's epoch before it reads the room back; `Ok(false)`
    /// when Redis already saw a newer owner.
    pub async fn raise(&self, event_id: Uuid, epoch: i64) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        fence::raise(&mut conn, &fence::epoch_key(&self.prefix, event_id), epoch).await
    }

    /// Starts the writer of one room (on the current arbiter), writing under `epoch`; its
    /// keys expire at `expire_at_unix` (seconds since the epoch).
    pub fn room(&self, event_id: Uuid, epoch: i64, expire_at_unix: i64) -> RoomStore {
        let (ops, mut queue) = mpsc::unbounded_channel::<Op>();
        let store = self.clone();
        actix::spawn(async move {
            let mut batch = Vec::new();
            while queue.recv_many(&mut batch, 512).await > 0 {
                if let Err(error) = store.apply(event_id, epoch, &batch, expire_at_unix).await {
                    tracing::warn!(%error, %event_id, "could not save the waiting line to Redis");
                }
                batch.clear();
            }
        });
        RoomStore { ops }
    }

    async fn apply(
        &self,
        event_id: Uuid,
        epoch: i64,
        ops: &[Op],
        expire_at_unix: i64,
    ) -> anyhow::Result<()> {
        let [line, admitted, started] = self.keys(event_id);
        let mut batch = FencedBatch::new();
        for op in ops {
            match op {
                Op::Join { buyer, score } => {
                    batch.cmd([
                        "ZADD".to_owned(),
                        line.clone(),
                        score.to_string(),
                        buyer.to_string(),
                    ]);
                }
                Op::Admit { buyer, admission } => {
                    batch
                        .cmd(["ZREM".to_owned(), line.clone(), buyer.to_string()])
                        .cmd([
                            "HSET".to_owned(),
                            admitted.clone(),
                            buyer.to_string(),
                            serde_json::to_string(admission)?,
                        ]);
                }
                Op::Leave { buyers } => {
                    batch.cmd(
                        ["ZREM".to_owned(), line.clone()]
                            .into_iter()
                            .chain(buyers.iter().map(Uuid::to_string)),
                    );
                }
                Op::Forget { buyers } => {
                    batch.cmd(
                        ["HDEL".to_owned(), admitted.clone()]
                            .into_iter()
                            .chain(buyers.iter().map(Uuid::to_string)),
                    );
                }
                Op::Started => {
                    batch.cmd(["SET".to_owned(), started.clone(), "1".to_owned()]);
                }
                Op::ClearLine => {
                    batch.cmd(["DEL".to_owned(), line.clone()]);
                }
            }
        }
        for key in [&line, &admitted, &started] {
            batch.cmd([
                "EXPIREAT".to_owned(),
                key.clone(),
                expire_at_unix.to_string(),
            ]);
        }
        let mut conn = self.conn.clone();
        let key = fence::epoch_key(&self.prefix, event_id);
        if !batch
            .run(&mut conn, &key, epoch)
            .await
            .context("writing the waiting line")?
        {
            self.cluster.fenced(event_id, "redis_queue");
        }
        Ok(())
    }
}

impl RoomStore {
    fn send(&self, op: Op) {
        let _ = self.ops.send(op);
    }

    pub fn join(&self, buyer: Uuid, score: u64) {
        self.send(Op::Join { buyer, score });
    }

    pub fn admit(&self, buyer: Uuid, admission: Admission) {
        self.send(Op::Admit { buyer, admission });
    }

    /// Buyers who left the line (dropped, or moved to another identity).
    pub fn leave(&self, buyers: Vec<Uuid>) {
        if !buyers.is_empty() {
            self.send(Op::Leave { buyers });
        }
    }

    /// Admissions that ended.
    pub fn forget(&self, buyers: Vec<Uuid>) {
        if !buyers.is_empty() {
            self.send(Op::Forget { buyers });
        }
    }

    pub fn started(&self) {
        self.send(Op::Started);
    }

    pub fn clear_line(&self) {
        self.send(Op::ClearLine);
    }
}
