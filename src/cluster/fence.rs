//! Fenced writes to Redis. Each on-sale has an epoch key; a batch of commands runs only if
//! its epoch is not older than the stored one (and raises the stored one when it is newer),
//! all inside one Lua script, so a paused owner that wakes up cannot overwrite what the new
//! owner keeps there (the hold mirror, the waiting line):
//!
//! ```text
//! {prefix}:epoch:{event_id}   the highest epoch that wrote for the event
//! ```
//!
//! A new owner raises the key *before* it reads the event's state back, so every write of
//! the old owner either landed before that read (and is restored) or is refused.

use anyhow::Context;
use redis::aio::ConnectionManager;
use uuid::Uuid;

/// Runs `ARGV[2..]` as commands (each as: argument count, then the arguments) if the epoch
/// in `ARGV[1]` is at least the stored one. Returns 1 when run, 0 when fenced.
const SCRIPT: &str = r"
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = tonumber(ARGV[1])
if stored > epoch then return 0 end
if stored < epoch then redis.call('SET', KEYS[1], ARGV[1], 'EX', 2592000) end
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
";

/// The key that holds an event's epoch.
pub fn epoch_key(prefix: &str, event_id: Uuid) -> String {
    format!("{prefix}:epoch:{event_id}")
}

/// Commands to run together under an epoch.
#[derive(Debug, Default)]
pub struct FencedBatch {
    args: Vec<String>,
}

impl FencedBatch {
    pub fn new() -> FencedBatch {
        FencedBatch::default()
    }

    /// Adds one command, e.g. `["SADD", key, member]`.
    pub fn cmd<I, S>(&mut self, parts: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let parts: Vec<String> = parts.into_iter().map(Into::into).collect();
        self.args.push(parts.len().to_string());
        self.args.extend(parts);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Runs the batch; `Ok(false)` when a newer owner has written for the event.
    pub async fn run(
        &self,
        conn: &mut ConnectionManager,
        epoch_key: &str,
        epoch: i64,
    ) -> anyhow::Result<bool> {
        let script = redis::Script::new(SCRIPT);
        let mut invocation = script.key(epoch_key);
        invocation.arg(epoch);
        for arg in &self.args {
            invocation.arg(arg);
        }
        let ran: i64 = invocation
            .invoke_async(conn)
            .await
            .context("running a fenced Redis write")?;
        Ok(ran == 1)
    }
}

/// Raises the event's epoch in Redis to `epoch` (a new owner does this first); `Ok(false)`
/// if Redis already has a higher one (this node's lease is stale).
pub async fn raise(
    conn: &mut ConnectionManager,
    epoch_key: &str,
    epoch: i64,
) -> anyhow::Result<bool> {
    FencedBatch::new().run(conn, epoch_key, epoch).await
}
