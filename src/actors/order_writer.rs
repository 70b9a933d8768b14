//! The order writer: confirmed orders reach Postgres in batches, one transaction per batch
//! (group commit), so durable throughput is far above one transaction per order while a
//! buyer still hears "confirmed" only after their order's commit.
//!
//! Batching adapts to load: with nothing in flight an order is written at once (no added
//! latency); while `MAX_IN_FLIGHT` batches are being written, new orders gather and go in
//! the next batch. If a batch fails, its orders are retried one by one, so one bad order
//! (say, a unique-constraint refusal) cannot sink the others.
//!
//! The queue of orders waiting for a batch is bounded (`BOXOFFICE_ORDER_QUEUE`): when
//! Postgres is too slow to keep up, a new order is refused at once as `Busy` (the buyer is
//! answered 503 with `Retry-After`, nothing charged, the hold kept) instead of queueing
//! without end.
//!
//! Each transaction checks the lease of every order's on-sale (`write_batch`): an order
//! sold under a stale epoch is refused as `Fenced` and nothing of it is written.

use actix::prelude::*;
use futures_util::future::BoxFuture;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::metrics::figures;
use crate::persistence::orders::{self, NewOrder};
use crate::persistence::violated_constraint;

const MAX_IN_FLIGHT: usize = 4;
const MAX_BATCH: usize = 256;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OrderWriteError {
    /// A constraint refused the order (a seat with a live ticket, an oversold tier, a key
    /// used twice): it was not written.
    #[error("refused by constraint {0}")]
    Refused(String),
    #[error("the order could not be written: {0}")]
    Failed(String),
    /// This node's lease epoch on the on-sale is stale: another node owns it now.
    #[error("refused: this node no longer owns the on-sale")]
    Fenced,
    /// The queue is full: not written, nothing waits.
    #[error("the order writer's queue is full")]
    Busy,
}

type Reply = oneshot::Sender<Result<(), OrderWriteError>>;

pub struct OrderWriter {
    pool: PgPool,
    /// This node's id, whose leases the orders must be written under.
    node: std::sync::Arc<str>,
    waiting: Vec<(NewOrder, Reply)>,
    /// At most this many orders wait (beyond those being written).
    max_waiting: usize,
    in_flight: usize,
}

impl OrderWriter {
    pub fn new(pool: PgPool, node: String, max_waiting: usize) -> OrderWriter {
        OrderWriter {
            pool,
            node: node.into(),
            waiting: Vec::new(),
            max_waiting,
            in_flight: 0,
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < MAX_IN_FLIGHT && !self.waiting.is_empty() {
            let take = self.waiting.len().min(MAX_BATCH);
            let batch: Vec<(NewOrder, Reply)> = self.waiting.drain(..take).collect();
            self.in_flight += 1;
            let (pool, node) = (self.pool.clone(), self.node.clone());
            figures().order_batch_size.observe(batch.len() as f64);
            ctx.spawn(
                write(pool, node, batch)
                    .into_actor(self)
                    .map(|(), act, ctx| {
                        act.in_flight -= 1;
                        act.flush(ctx);
                    }),
            );
        }
        figures()
            .order_writer_waiting
            .set(self.waiting.len() as i64);
    }
}

async fn write(pool: PgPool, node: std::sync::Arc<str>, batch: Vec<(NewOrder, Reply)>) {
    let (orders, replies): (Vec<NewOrder>, Vec<Reply>) = batch.into_iter().unzip();
    let started = std::time::Instant::now();
    let written = orders::write_batch(&pool, &node, &orders).await;
    figures()
        .order_commit_duration
        .observe(started.elapsed().as_secs_f64());
    match written {
        Ok(fenced) => {
            for (order, reply) in orders.iter().zip(replies) {
                let outcome = if fenced.contains(&order.order_id) {
                    Err(OrderWriteError::Fenced)
                } else {
                    Ok(())
                };
                let _ = reply.send(outcome);
            }
        }
        Err(error) if orders.len() == 1 => {
            let outcome = classify(&error);
            for reply in replies {
                let _ = reply.send(Err(outcome.clone()));
            }
        }
        Err(error) => {
            tracing::warn!(orders = orders.len(), %error, "a batch failed; writing its orders one by one");
            for (order, reply) in orders.into_iter().zip(replies) {
                let outcome =
                    match orders::write_batch(&pool, &node, std::slice::from_ref(&order)).await {
                        Ok(fenced) if fenced.is_empty() => Ok(()),
                        Ok(_) => Err(OrderWriteError::Fenced),
                        Err(error) => Err(classify(&error)),
                    };
                let _ = reply.send(outcome);
            }
        }
    }
}

fn classify(error: &sqlx::Error) -> OrderWriteError {
    let check_violation =
        matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23514"));
    match violated_constraint(error) {
        Some(constraint) => OrderWriteError::Refused(constraint),
        None if check_violation => OrderWriteError::Refused("check".into()),
        None => {
            tracing::error!(%error, "writing an order failed");
            OrderWriteError::Failed(error.to_string())
        }
    }
}

impl Actor for OrderWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(8192);
    }
}

/// Write this order; the answer comes after its transaction committed (or failed).
#[derive(Message)]
#[rtype(result = "Result<(), OrderWriteError>")]
pub struct WriteOrder(pub NewOrder);

impl Handler<WriteOrder> for OrderWriter {
    type Result = ResponseFuture<Result<(), OrderWriteError>>;

    fn handle(&mut self, msg: WriteOrder, ctx: &mut Context<Self>) -> Self::Result {
        if self.waiting.len() >= self.max_waiting {
            figures().order_writer_refused.inc();
            return Box::pin(async { Err(OrderWriteError::Busy) });
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.push((msg.0, tx));
        self.flush(ctx);
        let waiting: BoxFuture<'static, _> = Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(OrderWriteError::Failed("the writer stopped".into())))
        });
        waiting
    }
}
