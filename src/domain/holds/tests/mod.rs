//! The hold book driven as the event actor drives it, with real seat boards standing in for
//! the section actors: every `Seats` effect is applied to its board, and placements come
//! from the boards.

mod properties;
mod sale;
mod waitlist;

use super::*;
use crate::domain::seat_board::{Seat, SeatBoard};
use sale::*;

#[test]
fn a_tier_hold_is_held_at_once_and_told() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let view = sale
        .hold(buyer, tier(3), open())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((view.quantity, view.total_cents), (3, 1_500));
    assert_eq!(view.expires_at, open() + Duration::minutes(5));
    assert_eq!(sale.book.tiers()[0].available(), 7);
    assert!(sale.log.contains(&Effect::Tier {
        tier: 0,
        counts: crate::domain::live_map::TierCounts {
            available: 7,
            held: 3,
            sold: 0
        }
    }));
    assert_eq!(sale.news(), vec![(view.hold_id, HoldEvent::Held)]);
    assert!(
        matches!(sale.log.iter().find(|e| matches!(e, Effect::Mirror(_))), Some(Effect::Mirror(h)) if h.tier == Some((ids().tier, 3)))
    );
}

#[test]
fn best_available_goes_to_the_dearest_section_first() {
    let mut sale = Sale::new();
    let view = sale
        .hold(Uuid::new_v4(), best(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(view.seats.iter().all(|s| s.section_id == ids().sections[1]));
    assert!(
        view.seats[0].label.starts_with("S1 A-"),
        "{}",
        view.seats[0].label
    );
    assert_eq!(view.total_cents, 4_000);
    sale.assert_adds_up();
}

#[test]
fn best_available_at_a_price_stays_at_that_price() {
    let mut sale = Sale::new();
    let at = |price| HoldRequest::BestAvailable {
        section_id: None,
        price_cents: Some(price),
        quantity: 2,
    };
    let view = sale
        .hold(Uuid::new_v4(), at(1_000), open())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(view.seats.iter().all(|s| s.section_id == ids().sections[0]));
    assert_eq!(view.total_cents, 2_000);
    let refused = sale.hold(Uuid::new_v4(), at(1_500), open());
    assert!(
        matches!(&refused, Err(HoldError::Invalid(e)) if format!("{e:?}").contains("best_available.price_cents")),
        "{refused:?}"
    );
    sale.assert_adds_up();
}

#[test]
fn exact_seats_across_sections_are_all_or_nothing() {
    let mut sale = Sale::new();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    sale.hold(a, HoldRequest::Seats(vec![seat_id(1, 5)]), open())
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = sale.hold(
        b,
        HoldRequest::Seats(vec![seat_id(0, 0), seat_id(1, 5)]),
        open(),
    );
    assert_eq!(
        refused,
        Err(HoldError::SeatUnavailable(vec![seat_id(1, 5)]))
    );
    assert_eq!(
        sale.boards[0].counts().held,
        0,
        "the first section's seat was given back"
    );
    assert_eq!(
        sale.book.counts().holders,
        1,
        "the aborted hold no longer counts for its buyer"
    );
    sale.assert_adds_up();
}

#[test]
fn requests_are_checked_before_anything_is_taken() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let twice = sale.hold(
        buyer,
        HoldRequest::Seats(vec![seat_id(0, 1), seat_id(0, 1)]),
        open(),
    );
    assert!(matches!(twice, Err(HoldError::Invalid(_))));
    let unknown = sale.hold(buyer, HoldRequest::Seats(vec![Uuid::new_v4()]), open());
    assert!(matches!(unknown, Err(HoldError::Invalid(_))));
    assert_eq!(
        sale.hold(buyer, tier(5), open()),
        Err(HoldError::MaxPerOrderExceeded(4))
    );
    assert_eq!(
        sale.hold(buyer, best(0), open()).map(|_| ()),
        Err(HoldError::Invalid(FieldErrors::single(
            "best_available.quantity",
            "must be at least 1"
        )))
    );
    let early = sale.hold(buyer, tier(1), start() - Duration::seconds(1));
    assert!(matches!(early, Err(HoldError::SaleNotOpen(_))));
    assert!(sale.log.is_empty(), "nothing happened: {:?}", sale.log);
    sale.assert_adds_up();
}

#[test]
fn a_buyer_is_held_to_their_limits_across_holds_and_orders() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let first = sale
        .hold(buyer, tier(4), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.pay(first.hold_id, buyer, open())
        .unwrap_or_else(|e| panic!("{e}"));
    let over = sale.hold(buyer, best(3), open());
    assert_eq!(
        over.map(|_| ()),
        Err(HoldError::BuyerLimitExceeded { limit: 6, has: 4 })
    );
    sale.hold(buyer, best(1), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.hold(buyer, best(1), open())
        .unwrap_or_else(|e| panic!("{e}"));
    let third = sale.hold(Uuid::new_v4(), best(1), open());
    assert!(third.is_ok(), "another buyer is not limited by this one");
    assert_eq!(
        sale.hold(buyer, tier(1), open()).map(|_| ()),
        Err(HoldError::TooManyHolds(2))
    );
    let demand = sale.book.demand(&[buyer, Uuid::new_v4()]);
    assert_eq!(
        demand.promised, 6,
        "the buyer has all six; a new shopper may take six"
    );
}

#[test]
fn a_hold_expires_at_its_deadline_and_says_so() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let view = sale
        .hold(buyer, best(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.sweep(view.expires_at - Duration::minutes(1));
    assert_eq!(
        sale.news().last(),
        Some(&(view.hold_id, HoldEvent::ExpiringSoon))
    );
    sale.sweep(view.expires_at - Duration::milliseconds(1));
    assert_eq!(sale.book.counts().active_holds, 1);
    sale.sweep(view.expires_at);
    assert_eq!(sale.book.counts().active_holds, 0);
    assert_eq!(
        sale.news().last(),
        Some(&(view.hold_id, HoldEvent::Expired))
    );
    assert!(sale.log.contains(&Effect::Unmirror(view.hold_id)));
    assert_eq!(
        sale.book.get(view.hold_id, buyer),
        Err(HoldError::HoldExpired)
    );
    assert_eq!(
        sale.checkout(view.hold_id, buyer, view.expires_at),
        Err(HoldError::HoldExpired)
    );
    sale.assert_adds_up();
}

#[test]
fn a_hold_being_paid_for_does_not_expire_until_the_payment_ends() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let view = sale
        .hold(buyer, best(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.checkout(view.hold_id, buyer, open())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sale.checkout(view.hold_id, buyer, open()),
        Err(HoldError::CheckoutInProgress)
    );
    let late = view.expires_at + Duration::minutes(1);
    sale.sweep(late);
    assert_eq!(
        sale.book.counts().active_holds,
        1,
        "PAYMENT_PENDING outlives its deadline"
    );
    assert_eq!(
        sale.book.release(view.hold_id, buyer, open()),
        Err(HoldError::CheckoutInProgress)
    );
    let effects = sale.book.cancel_checkout(view.hold_id, None).0;
    sale.apply(effects);
    sale.sweep(late);
    assert_eq!(
        sale.book.counts().active_holds,
        0,
        "a failed payment past the deadline expires"
    );
    sale.assert_adds_up();
}

#[test]
fn a_checkout_failed_for_degraded_payments_extends_the_hold_once() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let view = sale
        .hold(buyer, best(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    let two = Some(Duration::minutes(2));
    sale.checkout(view.hold_id, buyer, open())
        .unwrap_or_else(|e| panic!("{e}"));
    let (effects, extended) = sale.book.cancel_checkout(view.hold_id, two);
    assert!(extended);
    sale.apply(effects);
    // Once: a second degraded failure gives no more.
    sale.checkout(view.hold_id, buyer, open())
        .unwrap_or_else(|e| panic!("{e}"));
    let (effects, extended) = sale.book.cancel_checkout(view.hold_id, two);
    assert!(!extended);
    sale.apply(effects);
    // It lives past its first deadline, and ends at the extended one.
    sale.sweep(view.expires_at + Duration::minutes(1));
    assert_eq!(
        sale.book.counts().active_holds,
        1,
        "extended by two minutes"
    );
    sale.sweep(view.expires_at + Duration::minutes(2));
    assert_eq!(sale.book.counts().active_holds, 0, "and no more");
    sale.assert_adds_up();
}

#[test]
fn a_bought_hold_is_sold_and_remembered() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let view = sale
        .hold(buyer, best(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    let order = sale
        .pay(view.hold_id, buyer, open())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sale.boards[1].counts().sold, 2);
    assert_eq!(
        sale.book.get(view.hold_id, buyer),
        Err(HoldError::AlreadyPurchased(order))
    );
    assert_eq!(
        sale.news().last(),
        Some(&(view.hold_id, HoldEvent::Confirmed))
    );
    let other = Uuid::new_v4();
    let theirs = sale
        .hold(other, best(1), open())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sale.book.get(theirs.hold_id, buyer),
        Err(HoldError::NotYourHold)
    );
    sale.assert_adds_up();
}

#[test]
fn the_status_follows_the_sale_and_is_written_once_a_change() {
    let mut sale = Sale::with_status(EventStatus::Published);
    sale.sweep(start() - Duration::seconds(1));
    assert_eq!(sale.book.status(), EventStatus::Published);
    sale.sweep(start());
    assert_eq!(sale.book.status(), EventStatus::OnSale);
    // Buy everything: two seated sections and the tier.
    let mut held = Vec::new();
    for _ in 0..(SEATED as u32 * ROWS * PER_ROW / 4 + TIER_QUANTITY.div_ceil(4)) {
        let buyer = Uuid::new_v4();
        let request = if sale
            .book
            .counts()
            .sections
            .iter()
            .take(SEATED)
            .any(|(_, f)| *f > 0)
        {
            best(4)
        } else {
            tier(sale.book.tiers()[0].available().min(4))
        };
        let view = sale
            .hold(buyer, request, open())
            .unwrap_or_else(|e| panic!("{e}"));
        held.push((view.hold_id, buyer));
    }
    let last = held.pop().unwrap_or_default();
    for (hold_id, buyer) in held {
        sale.pay(hold_id, buyer, open())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        sale.book.status(),
        EventStatus::OnSale,
        "a live hold may still come back"
    );
    sale.pay(last.0, last.1, open())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sale.book.status(), EventStatus::SoldOut);
    let statuses: Vec<&Effect> = sale
        .log
        .iter()
        .filter(|e| matches!(e, Effect::Status { .. }))
        .collect();
    assert_eq!(
        statuses,
        vec![
            &Effect::Status {
                from: EventStatus::Published,
                to: EventStatus::OnSale
            },
            &Effect::Status {
                from: EventStatus::OnSale,
                to: EventStatus::SoldOut
            },
        ]
    );
    sale.assert_adds_up();
}

#[test]
fn a_cancelled_event_takes_no_holds() {
    let mut sale = Sale::with_status(EventStatus::Cancelled);
    let refused = sale.hold(Uuid::new_v4(), tier(1), open());
    assert_eq!(
        refused,
        Err(HoldError::SaleNotOpen("the event is cancelled".into()))
    );
}

#[test]
fn the_memory_of_ended_holds_is_bounded() {
    let mut sale = Sale::new();
    let buyer = Uuid::new_v4();
    let first = sale
        .hold(buyer, tier(1), open())
        .unwrap_or_else(|e| panic!("{e}"));
    let effects = sale
        .book
        .release(first.hold_id, buyer, open())
        .unwrap_or_default();
    sale.apply(effects);
    for _ in 0..64 {
        let view = sale
            .hold(buyer, tier(1), open())
            .unwrap_or_else(|e| panic!("{e}"));
        let effects = sale
            .book
            .release(view.hold_id, buyer, open())
            .unwrap_or_default();
        sale.apply(effects);
    }
    assert_eq!(
        sale.book.get(first.hold_id, buyer),
        Err(HoldError::HoldNotFound)
    );
}

#[test]
fn grouping_keeps_the_order_keys_first_appear_in() {
    let groups = group_by([(2, 'a'), (1, 'b'), (2, 'c')]);
    assert_eq!(groups, vec![(2, vec!['a', 'c']), (1, vec!['b'])]);
}

#[test]
fn a_buyer_sees_their_own_live_holds_only_while_they_last() {
    let mut sale = Sale::new();
    let (buyer, other) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(sale.book.holds_of(buyer).is_empty());
    let seats = sale
        .hold(buyer, best(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    let ga = sale
        .hold(buyer, tier(1), open() + Duration::seconds(1))
        .unwrap_or_else(|e| panic!("{e}"));
    sale.hold(other, tier(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    let mine: Vec<Uuid> = sale
        .book
        .holds_of(buyer)
        .iter()
        .map(|h| h.hold_id)
        .collect();
    assert_eq!(
        mine,
        vec![seats.hold_id, ga.hold_id],
        "soonest deadline first"
    );
    sale.checkout(ga.hold_id, buyer, open() + Duration::seconds(2))
        .unwrap_or_else(|e| panic!("{e}"));
    let paying = sale.book.holds_of(buyer);
    assert_eq!(paying[1].status, HoldStatus::PaymentPending);
    sale.book
        .release(seats.hold_id, buyer, open() + Duration::seconds(3))
        .map(|effects| sale.apply(effects))
        .unwrap_or_else(|e| panic!("{e}"));
    let left: Vec<Uuid> = sale
        .book
        .holds_of(buyer)
        .iter()
        .map(|h| h.hold_id)
        .collect();
    assert_eq!(left, vec![ga.hold_id]);
    sale.sweep(open() + Duration::minutes(30));
    assert!(
        sale.book.holds_of(other).is_empty(),
        "an expired hold is gone"
    );
}
