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

use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::line::Admission;

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
}

/// One waiting room's writer: cheap to clone, never blocks.
#[derive(Clone)]
pub struct RoomStore {
    ops: mpsc::UnboundedSender<Op>,
}

impl QueueStore {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<QueueStore> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let conn = ConnectionManager::new(client)
            .await
            .context("connecting to Redis")?;
        Ok(QueueStore {
            conn,
            prefix: prefix.to_owned(),
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

    /// Starts the writer of one room (on the current arbiter); its keys expire at
    /// `expire_at_unix` (seconds since the epoch).
    pub fn room(&self, event_id: Uuid, expire_at_unix: i64) -> RoomStore {
        let (ops, mut queue) = mpsc::unbounded_channel::<Op>();
        let store = self.clone();
        actix::spawn(async move {
            let mut batch = Vec::new();
            while queue.recv_many(&mut batch, 512).await > 0 {
                if let Err(error) = store.apply(event_id, &batch, expire_at_unix).await {
                    tracing::warn!(%error, %event_id, "could not save the waiting line to Redis");
                }
                batch.clear();
            }
        });
        RoomStore { ops }
    }

    async fn apply(&self, event_id: Uuid, ops: &[Op], expire_at_unix: i64) -> anyhow::Result<()> {
        let [line, admitted, started] = self.keys(event_id);
        let mut pipe = redis::pipe();
        for op in ops {
            match op {
                Op::Join { buyer, score } => {
                    pipe.zadd(&line, buyer.to_string(), *score as f64).ignore();
                }
                Op::Admit { buyer, admission } => {
                    pipe.zrem(&line, buyer.to_string())
                        .ignore()
                        .hset(
                            &admitted,
                            buyer.to_string(),
                            serde_json::to_string(admission)?,
                        )
                        .ignore();
                }
                Op::Leave { buyers } => {
                    let ids: Vec<String> = buyers.iter().map(Uuid::to_string).collect();
                    pipe.zrem(&line, ids).ignore();
                }
                Op::Forget { buyers } => {
                    let ids: Vec<String> = buyers.iter().map(Uuid::to_string).collect();
                    pipe.hdel(&admitted, ids).ignore();
                }
                Op::Started => {
                    pipe.set(&started, "1").ignore();
                }
                Op::ClearLine => {
                    pipe.del(&line).ignore();
                }
            }
        }
        for key in [&line, &admitted, &started] {
            pipe.cmd("EXPIREAT").arg(key).arg(expire_at_unix).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .context("writing the waiting line")?;
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
