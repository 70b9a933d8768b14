//! The same sale on the seed design: the same browsers (same seeds, so the same
//! quantities, choices and intents) at the same concurrency, straight at Postgres, the way
//! seed 001 describes it. The seeds have no waiting room, so every browser starts at once;
//! they see the map by reading the seats (as from a read replica), and hold, pay and
//! release with the seed's transactions. Its 60-second sweep frees abandoned holds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::browser::{self, Answer, Hold, Payment, Shop};
use super::steps::{copy, ninety_percent, second_reaching, take, Steps};
use super::{Ending, Plan};
use crate::baseline::{Baseline, Confirmed};
use crate::report::Summary;
use crate::Common;

/// The seed design's sale: its steps, and its figures for the report.
pub struct SeedSale {
    pub runs: Vec<Summary>,
    pub figures: Value,
}

/// A browser of the seed design's sale.
struct SeedShop {
    base: Arc<Baseline>,
    /// The popular block, as seat ids.
    popular: Arc<Vec<Uuid>>,
    gate: Arc<Semaphore>,
    minutes: i32,
    buyer: Uuid,
    /// The pending order that holds the browser's seats, and how many.
    order: Option<(Uuid, u64)>,
}

impl SeedShop {
    /// A statement at the seed's database, timed, at most `gate`'s permits at once.
    async fn timed<T>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> (anyhow::Result<T>, Duration) {
        let Ok(_permit) = self.gate.acquire().await else {
            return (Err(anyhow::anyhow!("closed")), Duration::ZERO);
        };
        let t = Instant::now();
        let result = work.await;
        (result, t.elapsed())
    }
}

impl Shop for SeedShop {
    /// No waiting room: everyone goes in at once.
    async fn enter(&mut self, _deadline: Instant) -> Result<(), Ending> {
        Ok(())
    }

    /// The browser reads the block's seats, as from a read replica.
    async fn free_in_block(&mut self) -> Vec<usize> {
        let (states, _) = self.timed(self.base.seat_states(&self.popular)).await;
        let free: HashSet<Uuid> = states
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, state)| state == "AVAILABLE")
            .map(|(id, _)| id)
            .collect();
        (0..self.popular.len())
            .filter(|&i| free.contains(&self.popular[i]))
            .collect()
    }

    async fn hold(&mut self, block: &[usize], quantity: u32) -> Answer<Hold> {
        let (held, took) = if block.is_empty() {
            let best = self
                .base
                .hold_best(i64::from(quantity), self.buyer, self.minutes);
            self.timed(best).await
        } else {
            let seats: Vec<Uuid> = block.iter().map(|&i| self.popular[i]).collect();
            let hold = self.base.hold_seats(&seats, self.buyer, self.minutes);
            self.timed(hold).await
        };
        let (answer, outcome) = match held {
            Ok(Some(order)) => {
                let seats = if block.is_empty() {
                    u64::from(quantity)
                } else {
                    block.len() as u64
                };
                self.order = Some((order, seats));
                (Hold::Held { seats }, "held")
            }
            Ok(None) if block.is_empty() => (Hold::SoldOut, "sold_out"),
            Ok(None) => (Hold::Taken, "seat_unavailable"),
            Err(_) => (Hold::Failed, "error"),
        };
        (answer, outcome.to_owned(), took)
    }

    async fn pay(&mut self, card: &str, _attempt: usize) -> Answer<Payment> {
        let Some((order, seats)) = self.order else {
            return (Payment::Refused, "no_order".into(), Duration::ZERO);
        };
        let (confirmed, took) = self.timed(self.base.confirm_order(order, card)).await;
        let (paid, outcome) = match confirmed {
            Ok(Confirmed::Paid) => (Payment::Paid { seats }, "paid".to_owned()),
            Ok(Confirmed::Declined) => (Payment::Declined, "declined".to_owned()),
            Ok(other) => (Payment::Refused, format!("{other:?}")),
            Err(_) => (Payment::Declined, "error".to_owned()),
        };
        (paid, outcome, took)
    }

    async fn release(&mut self) {
        if let Some((order, _)) = self.order {
            let _ = self.timed(self.base.release(order)).await;
        }
    }

    /// The seed's sweep frees it a minute or so after its deadline.
    async fn abandon(&mut self) {}

    async fn leave(&mut self, _ending: Ending) {}
}

/// Runs the seed design's sale and checks its own counts (tickets = sold seats, no seat
/// twice, sold + held + available = capacity).
pub async fn seed_sale(common: &Common, plan: &Plan) -> anyhow::Result<SeedSale> {
    let base = Arc::new(Baseline::for_run(common).await?);
    let mut sections = Vec::new();
    for _ in 0..plan.sections {
        sections.push(base.add_section(plan.rows, plan.seats_per_row).await?);
    }
    let capacity: usize = sections.iter().map(Vec::len).sum();
    let front = (plan.seats_per_row.max(1) as usize) * 5;
    let popular: Arc<Vec<Uuid>> = Arc::new(
        sections
            .first()
            .map(|s| s.iter().take(front).copied().collect())
            .unwrap_or_default(),
    );
    println!(
        "flash-sale: the seed design, {} browsers, {capacity} seats",
        plan.browsers
    );
    let started = Instant::now();
    let at = browser::Clock {
        steps: Arc::new(Steps::default()),
        started,
        deadline: started + Duration::from_secs(common.seconds),
    };
    let sweeper = {
        let base = base.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let _ = base.sweep().await;
            }
        })
    };
    let gate = Arc::new(Semaphore::new(common.clients.max(1)));
    let shops = (0..plan.browsers)
        .map(|_| SeedShop {
            base: base.clone(),
            popular: popular.clone(),
            gate: gate.clone(),
            minutes: plan.hold_minutes as i32,
            buyer: Uuid::new_v4(),
            order: None,
        })
        .collect();
    browser::drive(shops, plan, &at).await;
    sweeper.abort();
    let elapsed = started.elapsed();
    let counts = base.seat_counts().await?;
    if counts.tickets != counts.ticketed_seats
        || counts.sold != counts.tickets
        || (counts.sold + counts.held + counts.available) as usize != capacity
    {
        bail!("the seed design's counts do not add up: {counts:?}");
    }
    let steps = &at.steps;
    let sold = copy(&steps.sold);
    let n = plan.browsers;
    Ok(SeedSale {
        runs: vec![
            Summary::new("seed hold", n, elapsed, &take(&steps.hold), None),
            Summary::new("seed checkout", n, elapsed, &take(&steps.checkout), None),
        ],
        figures: json!({
            "endings": copy(&steps.endings),
            "holds_per_second": copy(&steps.holds),
            "seconds_to_sell_90_percent": second_reaching(&sold, ninety_percent(capacity)),
            "sold_per_second": sold,
            "seconds": elapsed.as_secs_f64(),
            "seats": counts,
        }),
    })
}
