//! What sells: tickets sold per event over the last day, by the hour (the current hour and
//! the 23 before it).
//!
//! With Redis, sorted sets per hour (`{prefix}:trending:h:<hour>`, and per city
//! `{prefix}:trending:c:<city>:<hour>`), counted by the outbox relay as it relays each
//! `order.confirmed` row — once per row whatever retries or crashes do: the script that
//! counts sets a seen key for the row in the same step. When Redis has lost them (a flush, a
//! new instance: no `{prefix}:trending:built` key), the first read rebuilds the last day
//! from the outbox through the same script, so rows the relay counts afterwards are not
//! counted twice. Without Redis, the same figures come from Postgres.

use anyhow::Context;
use chrono::{DateTime, Duration, DurationRound, Utc};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use uuid::Uuid;

use crate::persistence::discovery::{self as store, TrendingRow};

/// How long a bucket and a seen key live (a day and a bit).
const KEEP_SECONDS: i64 = 26 * 3600;

const RECORD: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then
  redis.call('ZINCRBY', KEYS[2], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('ZINCRBY', KEYS[3], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  return 1
end
return 0
";

const TOP: &str = r"
local scratch = KEYS[#KEYS]
redis.call('ZUNIONSTORE', scratch, #KEYS - 1, unpack(KEYS, 1, #KEYS - 1))
local top = redis.call('ZREVRANGE', scratch, 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
redis.call('DEL', scratch)
return top
";

/// A sale to count: an `order.confirmed` outbox row.
pub struct Sale {
    pub outbox_id: i64,
    pub event_id: Uuid,
    pub city: String,
    pub tickets: i64,
    pub at: DateTime<Utc>,
}

pub struct Trending {
    pool: PgPool,
    redis: Option<(ConnectionManager, String)>,
}

/// The first hour of the window that ends at `now`.
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(23)
}

impl Trending {
    pub async fn new(pool: PgPool, redis: Option<(&str, &str)>) -> anyhow::Result<Trending> {
        let redis = match redis {
            Some((url, prefix)) => {
                let client = redis::Client::open(url).context("parsing REDIS_URL")?;
                let conn = ConnectionManager::new(client)
                    .await
                    .context("connecting to Redis")?;
                Some((conn, prefix.to_owned()))
            }
            None => None,
        };
        Ok(Trending { pool, redis })
    }

    /// Counts an `order.confirmed` row (a no-op without Redis: Postgres has it already).
    pub async fn record(
        &self,
        outbox_id: i64,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if self.redis.is_none() {
            return Ok(());
        }
        let Some(event_id) = payload["event_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        let city: Option<String> = sqlx::query_scalar(
            "SELECT lower(v.city) FROM events e JOIN venues v ON v.venue_id = e.venue_id WHERE e.event_id = $1",
        )
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        let sale = Sale {
            outbox_id,
            event_id,
            city: city.unwrap_or_default(),
            tickets: payload["tickets"].as_i64().unwrap_or(0),
            at,
        };
        self.count(&[sale]).await
    }

    async fn count(&self, sales: &[Sale]) -> anyhow::Result<()> {
        let Some((conn, prefix)) = &self.redis else {
            return Ok(());
        };
        let mut conn = conn.clone();
        for chunk in sales.chunks(500) {
            let mut pipe = redis::pipe();
            for sale in chunk {
                let hour = sale.at.timestamp().div_euclid(3600);
                pipe.cmd("EVAL")
                    .arg(RECORD)
                    .arg(3)
                    .arg(format!("{prefix}:trending:seen:{}", sale.outbox_id))
                    .arg(format!("{prefix}:trending:h:{hour}"))
                    .arg(format!("{prefix}:trending:c:{}:{hour}", sale.city))
                    .arg(sale.tickets)
                    .arg(sale.event_id.to_string())
                    .arg(KEEP_SECONDS);
            }
            let _: Vec<i64> = pipe
                .query_async(&mut conn)
                .await
                .context("counting sales in Redis")?;
        }
        Ok(())
    }

    /// The ten listed events that sold most in the window ending `now` (in `city`).
    pub async fn top(
        &self,
        city: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<TrendingRow>> {
        let since = window_start(now);
        let Some((conn, prefix)) = &self.redis else {
            return store::sold_since(&self.pool, since, city, 10).await;
        };
        let mut conn = conn.clone();
        let built: bool = redis::cmd("SET")
            .arg(format!("{prefix}:trending:built"))
            .arg("1")
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .context("checking the trending sets")?
            .is_some();
        if built {
            // Redis had nothing: count the last day's sales from the outbox.
            self.rebuild(since).await?;
        }
        let first = since.timestamp().div_euclid(3600);
        let scope = match city {
            Some(city) => format!("c:{}:", city.to_lowercase()),
            None => "h:".into(),
        };
        let top = redis::Script::new(TOP);
        let mut script = top.prepare_invoke();
        for hour in first..first + 24 {
            script.key(format!("{prefix}:trending:{scope}{hour}"));
        }
        script.key(format!(
            "{prefix}:trending:scratch:{}",
            Uuid::new_v4().simple()
        ));
        script.arg(40);
        let top: Vec<(String, f64)> = script
            .invoke_async(&mut conn)
            .await
            .context("reading the trending sets")?;
        let counted: Vec<(Uuid, i64)> = top
            .into_iter()
            .filter_map(|(id, n)| Some((Uuid::parse_str(&id).ok()?, n as i64)))
            .collect();
        let ids: Vec<Uuid> = counted.iter().map(|(id, _)| *id).collect();
        let listed = store::listed_titles(&self.pool, &ids).await?;
        let mut rows: Vec<TrendingRow> = counted
            .into_iter()
            .filter_map(|(id, sold)| {
                let (title, city) = listed.get(&id)?.clone();
                Some(TrendingRow {
                    event_id: id,
                    title,
                    city,
                    sold,
                })
            })
            .collect();
        rows.sort_by(|a, b| b.sold.cmp(&a.sold).then(a.event_id.cmp(&b.event_id)));
        rows.truncate(10);
        Ok(rows)
    }

    async fn rebuild(&self, since: DateTime<Utc>) -> anyhow::Result<()> {
        let rows: Vec<(i64, Uuid, String, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT o.id, e.event_id, lower(v.city), COALESCE((o.payload->>'tickets')::bigint, 0), o.created_at \
             FROM outbox o JOIN events e ON e.event_id = (o.payload->>'event_id')::uuid \
             JOIN venues v ON v.venue_id = e.venue_id \
             WHERE o.kind = 'order.confirmed' AND o.created_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .context("reading the last day's sales")?;
        let sales: Vec<Sale> = rows
            .into_iter()
            .map(|(outbox_id, event_id, city, tickets, at)| Sale {
                outbox_id,
                event_id,
                city,
                tickets,
                at,
            })
            .collect();
        tracing::info!(
            sales = sales.len(),
            "rebuilt the trending sets from Postgres"
        );
        self.count(&sales).await
    }
}
