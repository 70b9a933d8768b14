//! One browser's visit, the same for both systems: it draws what it wants (how many seats,
//! the popular block or not, what it will do with a hold) from its seed, goes in, tries up
//! to six times for seats — the block's free seats on its first three tries if it wants
//! them, best available after — and then pays (a declined card first, for some), releases
//! the hold or walks away from it. The steps and timelines it measures go to [`Steps`].
//!
//! The visit is written against a [`Shop`]: boxoffice's (the waiting room, the live map,
//! the API) and the seed design's (its transactions) implement it; they never decide what
//! the browser does next. The same seed gives the same wishes and the same choices in
//! both, so the two sales are the same crowd.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::steps::{count, record, Steps};
use super::{Ending, Intent, Plan};

/// What a hold attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Held: this many seats.
    Held {
        seats: u64,
    },
    /// Some of the seats asked for were taken: look again and choose again.
    Taken,
    SoldOut,
    /// An error or a refusal of another kind: try again a little later.
    Failed,
}

/// What a payment attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payment {
    Paid {
        seats: u64,
    },
    /// Not paid; the next card may be tried.
    Declined,
    /// Not paid for now (payments degraded, or the processor failed): the same card again
    /// after this long, as the page does.
    Retry(Duration),
    /// Not paid, and no card will help (the hold is gone).
    Refused,
}

/// One answer of a shop: what it came to, the outcome's name for the tallies, and how
/// long the system took.
pub(super) type Answer<T> = (T, String, Duration);

/// A system as a browser uses it. Each browser has its own shop (its account, its socket,
/// its hold). The futures are `Send` so that visits run on any worker thread.
pub(super) trait Shop {
    /// Waits for the browser's turn (the waiting room), or says how the visit ended
    /// before it began.
    fn enter(&mut self, deadline: Instant) -> impl Future<Output = Result<(), Ending>> + Send;
    /// Positions in the popular block that are free as the browser sees them now.
    fn free_in_block(&mut self) -> impl Future<Output = Vec<usize>> + Send;
    /// Holds `block` (positions in the popular block), or `quantity` best-available seats
    /// when `block` is empty.
    fn hold(&mut self, block: &[usize], quantity: u32)
        -> impl Future<Output = Answer<Hold>> + Send;
    /// Pays the hold with `card`, the `attempt`-th card tried.
    fn pay(&mut self, card: &str, attempt: usize) -> impl Future<Output = Answer<Payment>> + Send;
    fn release(&mut self) -> impl Future<Output = ()> + Send;
    /// The tab is closed with the hold in it: the hold is left to expire.
    fn abandon(&mut self) -> impl Future<Output = ()> + Send;
    /// The visit is over (after [`Shop::enter`] let the browser in).
    fn leave(&mut self, ending: Ending) -> impl Future<Output = ()> + Send;
}

/// What a browser wants, drawn first from its seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Wish {
    pub quantity: u32,
    pub popular: bool,
    pub intent: Intent,
}

impl Wish {
    pub fn draw(plan: &Plan, rng: &mut impl Rng) -> Wish {
        let quantity = rng.gen_range(1..=4u32);
        let popular = rng.gen_bool(plan.popular_share.clamp(0.0, 1.0));
        let intent = plan.intent(rng.gen());
        Wish {
            quantity,
            popular,
            intent,
        }
    }
}

/// When a browser is, and where its measurements go.
#[derive(Clone)]
pub(super) struct Clock {
    pub steps: Arc<Steps>,
    pub started: Instant,
    pub deadline: Instant,
}

/// The visit of the browser with `seed`.
pub(super) async fn visit(shop: &mut impl Shop, plan: &Plan, seed: u64, at: &Clock) -> Ending {
    let mut rng = StdRng::seed_from_u64(seed);
    let wish = Wish::draw(plan, &mut rng);
    if let Err(ending) = shop.enter(at.deadline).await {
        return ending;
    }
    let ending = shop_once_in(shop, wish, &mut rng, at).await;
    shop.leave(ending).await;
    ending
}

async fn shop_once_in(shop: &mut impl Shop, wish: Wish, rng: &mut StdRng, at: &Clock) -> Ending {
    let mut held = None;
    for attempt in 0..6 {
        if Instant::now() > at.deadline {
            return Ending::NotAdmitted;
        }
        let block = if wish.popular && attempt < 3 {
            pick(shop.free_in_block().await, wish.quantity, rng)
        } else {
            Vec::new()
        };
        // After three seats taken under its nose, a browser settles for best available
        // (an empty block).
        let (answer, outcome, took) = shop.hold(&block, wish.quantity).await;
        record(
            &at.steps.hold,
            took,
            &outcome,
            matches!(answer, Hold::Held { .. }),
        );
        match answer {
            Hold::Held { seats } => {
                count(&at.steps.holds, at.started, 1);
                held = Some(seats);
                break;
            }
            Hold::SoldOut => return Ending::SoldOutAtHold,
            // A person looks at the map again (the next deltas arrive) and picks again.
            Hold::Taken => tokio::time::sleep(Duration::from_millis(rng.gen_range(100..300))).await,
            Hold::Failed => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    if held.is_none() {
        return Ending::NoSeats;
    }
    let cards: &[&str] = match wish.intent {
        Intent::Abandon => {
            shop.abandon().await;
            return Ending::Abandoned;
        }
        Intent::Release => {
            shop.release().await;
            return Ending::Released;
        }
        Intent::DeclinedThenPay => &["tok_decline", "tok_ok"],
        Intent::Pay => &["tok_ok"],
    };
    let mut attempt = 0;
    for card in cards {
        for _ in 0..RETRIES {
            let (answer, outcome, took) = shop.pay(card, attempt).await;
            attempt += 1;
            record(
                &at.steps.checkout,
                took,
                &outcome,
                matches!(answer, Payment::Paid { .. }),
            );
            match answer {
                Payment::Paid { seats } => {
                    count(&at.steps.sold, at.started, seats);
                    return Ending::Bought;
                }
                Payment::Declined => break,
                Payment::Retry(after) if Instant::now() + after < at.deadline => {
                    tokio::time::sleep(after).await;
                }
                Payment::Retry(_) | Payment::Refused => return Ending::PaymentFailed,
            }
        }
    }
    Ending::PaymentFailed
}

/// Tries of one card answered "retry later" before the buyer gives up; a page waits as
/// told and tries again while the hold lives, as the event page does (a processor that
/// fails for half a minute with 5 s pauses between tries is a dozen tries).
const RETRIES: usize = 60;

/// Up to `quantity` of the `free` block positions, at random.
fn pick(free: Vec<usize>, quantity: u32, rng: &mut impl Rng) -> Vec<usize> {
    free.choose_multiple(rng, quantity as usize)
        .copied()
        .collect()
}

/// Runs every shop's visit at once (browser `i` with seed `i`), each on its own task,
/// with a progress bar, and returns when all are done.
pub(super) async fn drive<S>(shops: Vec<S>, plan: &Plan, at: &Clock)
where
    S: Shop + Send + 'static,
{
    let progress = indicatif::ProgressBar::new(shops.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} browsers done · {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = Arc::new(AtomicU64::new(0));
    let browsers: Vec<_> = shops
        .into_iter()
        .enumerate()
        .map(|(i, mut shop)| {
            let (plan, at, done, progress) =
                (plan.clone(), at.clone(), done.clone(), progress.clone());
            tokio::spawn(async move {
                let ending = visit(&mut shop, &plan, i as u64, &at).await;
                at.steps.ended(ending);
                done.fetch_add(1, Ordering::Relaxed);
                progress.inc(1);
            })
        })
        .collect();
    let ticker = {
        let (progress, steps) = (progress.clone(), at.steps.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                progress.set_message(format!("{} bought", steps.bought()));
            }
        })
    };
    for browser in browsers {
        let _ = browser.await;
    }
    ticker.abort();
    progress.finish();
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::super::steps::{copy, take};
    use super::super::tests::plan;
    use super::*;

    /// A shop that answers from a script and writes down what it was asked.
    #[derive(Default)]
    struct Scripted {
        entry: Option<Ending>,
        free: Vec<usize>,
        holds: VecDeque<Hold>,
        payments: VecDeque<Payment>,
        asked: Vec<String>,
    }

    impl Shop for Scripted {
        async fn enter(&mut self, _: Instant) -> Result<(), Ending> {
            self.asked.push("enter".into());
            self.entry.map_or(Ok(()), Err)
        }
        async fn free_in_block(&mut self) -> Vec<usize> {
            self.free.clone()
        }
        async fn hold(&mut self, block: &[usize], quantity: u32) -> Answer<Hold> {
            let mut block = block.to_vec();
            block.sort_unstable();
            self.asked.push(format!("hold {block:?} x{quantity}"));
            let answer = self.holds.pop_front().unwrap_or(Hold::Failed);
            (answer, format!("{answer:?}"), Duration::from_millis(1))
        }
        async fn pay(&mut self, card: &str, attempt: usize) -> Answer<Payment> {
            self.asked.push(format!("pay {card} #{attempt}"));
            let answer = self.payments.pop_front().unwrap_or(Payment::Refused);
            (answer, format!("{answer:?}"), Duration::from_millis(1))
        }
        async fn release(&mut self) {
            self.asked.push("release".into());
        }
        async fn abandon(&mut self) {
            self.asked.push("abandon".into());
        }
        async fn leave(&mut self, ending: Ending) {
            self.asked.push(format!("leave {ending:?}"));
        }
    }

    fn clock() -> Clock {
        Clock {
            steps: Arc::new(Steps::default()),
            started: Instant::now(),
            deadline: Instant::now() + Duration::from_secs(60),
        }
    }

    /// A seed whose wish matches `want`, for a plan.
    fn seed_for(plan: &Plan, want: impl Fn(&Wish) -> bool) -> (u64, Wish) {
        (0..10_000)
            .map(|seed| (seed, Wish::draw(plan, &mut StdRng::seed_from_u64(seed))))
            .find(|(_, wish)| want(wish))
            .unwrap_or_else(|| panic!("no seed gives the wish"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_popular_browser_tries_the_block_three_times_then_best_available_then_pays() {
        let mut plan = plan();
        plan.popular_share = 1.0;
        let (seed, wish) = seed_for(&plan, |w| w.intent == Intent::Pay && w.quantity >= 2);
        let mut shop = Scripted {
            free: vec![4, 7],
            holds: [
                Hold::Taken,
                Hold::Taken,
                Hold::Taken,
                Hold::Held { seats: 2 },
            ]
            .into(),
            payments: [Payment::Paid { seats: 2 }].into(),
            ..Scripted::default()
        };
        let at = clock();
        assert_eq!(visit(&mut shop, &plan, seed, &at).await, Ending::Bought);
        let q = wish.quantity;
        let block = format!("hold [4, 7] x{q}");
        let expected = [
            "enter".to_owned(),
            block.clone(),
            block.clone(),
            block,
            format!("hold [] x{q}"),
            "pay tok_ok #0".into(),
            "leave Bought".into(),
        ];
        assert_eq!(shop.asked, expected);
        let holds = take(&at.steps.hold);
        assert_eq!((holds.latency.len(), holds.successes), (4, 1));
        assert_eq!(copy(&at.steps.sold).values().sum::<u64>(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_payment_told_to_wait_is_tried_again_with_the_same_card() {
        let plan = plan();
        let (seed, _) = seed_for(&plan, |w| w.intent == Intent::Pay);
        let later = Payment::Retry(Duration::from_secs(3));
        let mut shop = Scripted {
            holds: [Hold::Held { seats: 2 }].into(),
            payments: [later, later, Payment::Paid { seats: 2 }].into(),
            ..Scripted::default()
        };
        let at = clock();
        let started = tokio::time::Instant::now();
        assert_eq!(visit(&mut shop, &plan, seed, &at).await, Ending::Bought);
        let paid: Vec<_> = shop.asked.iter().filter(|a| a.starts_with("pay")).collect();
        assert_eq!(paid, ["pay tok_ok #0", "pay tok_ok #1", "pay tok_ok #2"]);
        assert!(
            started.elapsed() >= Duration::from_secs(6),
            "it waited as told"
        );
        let checkout = take(&at.steps.checkout);
        assert_eq!((checkout.latency.len(), checkout.successes), (3, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_declined_card_is_followed_by_a_good_one_and_a_hold_gone_stops_the_visit() {
        let plan = plan();
        let (seed, _) = seed_for(&plan, |w| w.intent == Intent::DeclinedThenPay);
        let mut shop = Scripted {
            holds: [Hold::Held { seats: 1 }].into(),
            payments: [Payment::Declined, Payment::Paid { seats: 1 }].into(),
            ..Scripted::default()
        };
        assert_eq!(
            visit(&mut shop, &plan, seed, &clock()).await,
            Ending::Bought
        );
        assert_eq!(shop.asked[2..4], ["pay tok_decline #0", "pay tok_ok #1"]);

        let mut gone = Scripted {
            holds: [Hold::Held { seats: 1 }].into(),
            payments: [Payment::Refused].into(),
            ..Scripted::default()
        };
        let ending = visit(&mut gone, &plan, seed, &clock()).await;
        assert_eq!(ending, Ending::PaymentFailed);
        assert_eq!(
            gone.asked.iter().filter(|a| a.starts_with("pay")).count(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn holds_are_released_or_abandoned_as_the_browser_intends() {
        let plan = plan();
        for (intent, ending, asked) in [
            (Intent::Release, Ending::Released, "release"),
            (Intent::Abandon, Ending::Abandoned, "abandon"),
        ] {
            let (seed, _) = seed_for(&plan, |w| w.intent == intent);
            let mut shop = Scripted {
                holds: [Hold::Held { seats: 1 }].into(),
                ..Scripted::default()
            };
            assert_eq!(visit(&mut shop, &plan, seed, &clock()).await, ending);
            assert_eq!(shop.asked[2], asked);
            assert!(!shop.asked.iter().any(|a| a.starts_with("pay")));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_visit_ends_at_sold_out_at_six_failures_at_the_door_and_at_the_deadline() {
        let plan = plan();
        let mut sold_out = Scripted {
            holds: [Hold::Failed, Hold::SoldOut].into(),
            ..Scripted::default()
        };
        assert_eq!(
            visit(&mut sold_out, &plan, 1, &clock()).await,
            Ending::SoldOutAtHold,
            "let in, and found nothing left"
        );

        let mut unlucky = Scripted::default();
        assert_eq!(
            visit(&mut unlucky, &plan, 1, &clock()).await,
            Ending::NoSeats
        );
        assert_eq!(
            unlucky
                .asked
                .iter()
                .filter(|a| a.starts_with("hold"))
                .count(),
            6
        );

        let mut turned_away = Scripted {
            entry: Some(Ending::SoldOut),
            ..Scripted::default()
        };
        let ending = visit(&mut turned_away, &plan, 1, &clock()).await;
        assert_eq!(ending, Ending::SoldOut);
        assert_eq!(turned_away.asked, ["enter"], "no leave before being let in");

        let mut late = Scripted::default();
        let mut at = clock();
        at.deadline = Instant::now() - Duration::from_secs(1);
        assert_eq!(visit(&mut late, &plan, 1, &at).await, Ending::NotAdmitted);
    }

    #[test]
    fn the_same_seed_is_the_same_wish() {
        let plan = plan();
        let wishes = |seed| Wish::draw(&plan, &mut StdRng::seed_from_u64(seed));
        assert_eq!(wishes(42), wishes(42));
        let quantities: Vec<u32> = (0..200).map(|s| wishes(s).quantity).collect();
        assert!(quantities.iter().all(|q| (1..=4).contains(q)));
        assert!((1..=4).all(|q| quantities.contains(&q)));
    }

    #[test]
    fn a_block_choice_is_some_of_the_free_seats() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut two = pick(vec![0, 2], 4, &mut rng);
        two.sort_unstable();
        assert_eq!(two, [0, 2], "no more than are free");
        assert_eq!(pick(vec![0, 1, 2, 3], 1, &mut rng).len(), 1);
        assert!(pick(Vec::new(), 3, &mut rng).is_empty());
    }
}
