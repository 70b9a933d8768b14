//! Waitlists in the book: what comes back goes to the first waiter it fits, as an exclusive
//! hold that passes on when it ends unbought; the rest goes back on sale; each inbox note
//! is taken once.

use super::super::*;
use super::sale::*;
use crate::domain::seat_board::Seat;

fn waiter(n: u128, wants: WaitFor, quantity: u32) -> Waiter {
    Waiter {
        entry_id: Uuid::from_u128(500 + n),
        buyer_id: Uuid::from_u128(900 + n),
        wants,
        quantity,
    }
}

fn section(i: usize) -> WaitFor {
    WaitFor::Section(ids().sections[i])
}

/// A sale whose section 0 seats 0 and 1 were bought by `buyer` (held and paid here).
fn sold(buyer: Uuid) -> Sale {
    let mut sale = Sale::new();
    let view = sale
        .hold(
            buyer,
            HoldRequest::Seats(vec![seat_id(0, 0), seat_id(0, 1)]),
            open(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    sale.pay(view.hold_id, buyer, open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale
}

fn returned(buyer: Uuid, seats: Vec<Uuid>, tiers: Vec<(Uuid, u32)>) -> Note {
    Note::Returned {
        buyer_id: buyer,
        seats,
        tiers,
    }
}

#[test]
fn a_refunded_seat_nobody_waits_for_is_on_sale_again_once() {
    let buyer = Uuid::new_v4();
    let mut sale = sold(buyer);
    let free = sale.book.counts().sections[0].1;
    sale.note(1, returned(buyer, vec![seat_id(0, 0)], vec![]), open());
    assert_eq!(sale.boards[0].state(0), Some(Seat::Available));
    assert_eq!(sale.book.counts().sections[0].1, free + 1);
    // The same note again (two catch-ups overlapping) changes nothing.
    sale.note(1, returned(buyer, vec![seat_id(0, 0)], vec![]), open());
    assert_eq!(sale.book.counts().sections[0].1, free + 1);
    assert_eq!(sale.book.inbox_seq(), 1);
    sale.assert_adds_up();
    // The buyer may buy again as if they never had it.
    assert!(sale
        .hold(buyer, HoldRequest::Seats(vec![seat_id(0, 0)]), open())
        .is_ok());
}

#[test]
fn a_refunded_seat_goes_to_the_first_waiter_and_nobody_else_can_take_it() {
    let buyer = Uuid::new_v4();
    let mut sale = sold(buyer);
    let (first, second) = (waiter(1, section(0), 1), waiter(2, section(0), 1));
    sale.note(1, Note::Joined(first.clone()), open());
    sale.note(2, Note::Joined(second.clone()), open());
    sale.note(3, returned(buyer, vec![seat_id(0, 1)], vec![]), open());
    let offers = sale.offers();
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(
        (offer.entry_id, offer.buyer_id),
        (first.entry_id, first.buyer_id)
    );
    assert_eq!(offer.seat_ids, vec![seat_id(0, 1)]);
    assert_eq!(offer.expires_at, open() + Duration::minutes(30));
    assert_eq!(sale.boards[0].state(1), Some(Seat::Held));
    assert_eq!(sale.boards[0].holder(1), Some(offer.hold_id));
    assert!(sale.news().contains(&(offer.hold_id, HoldEvent::Offered)));
    // Another buyer asks for exactly that seat: refused.
    assert!(matches!(
        sale.hold(
            Uuid::new_v4(),
            HoldRequest::Seats(vec![seat_id(0, 1)]),
            open()
        ),
        Err(HoldError::SeatUnavailable(_))
    ));
    sale.assert_adds_up();
    // The offer is bought like any hold.
    assert!(sale.pay(offer.hold_id, first.buyer_id, open()).is_ok());
    assert_eq!(sale.boards[0].state(1), Some(Seat::Sold));
    assert_eq!(
        sale.offer_ends(),
        vec![(first.entry_id, OfferEnd::Purchased)]
    );
    assert_eq!(sale.book.waiters(), std::slice::from_ref(&second));
    sale.assert_adds_up();
}

#[test]
fn an_unbought_offer_passes_to_the_next_waiter_then_back_on_sale() {
    let buyer = Uuid::new_v4();
    let mut sale = sold(buyer);
    let (first, second) = (waiter(1, section(0), 1), waiter(2, section(0), 1));
    sale.note(1, Note::Joined(first.clone()), open());
    sale.note(2, Note::Joined(second.clone()), open());
    sale.note(3, returned(buyer, vec![seat_id(0, 0)], vec![]), open());
    let later = open() + Duration::minutes(31);
    sale.sweep(later);
    let offers = sale.offers();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[1].entry_id, second.entry_id);
    assert_eq!(sale.boards[0].holder(0), Some(offers[1].hold_id));
    assert_eq!(sale.offer_ends(), vec![(first.entry_id, OfferEnd::Expired)]);
    assert!(
        sale.book.get(offers[0].hold_id, first.buyer_id).is_err(),
        "the first offer is gone"
    );
    sale.assert_adds_up();
    // The second declines (leaves the waitlist): nobody else waits, so it is on sale.
    sale.note(
        4,
        Note::Left {
            entry_id: second.entry_id,
        },
        later,
    );
    assert_eq!(sale.boards[0].state(0), Some(Seat::Available));
    assert_eq!(sale.offer_ends().len(), 2);
    sale.assert_adds_up();
}

#[test]
fn tier_tickets_go_to_the_first_waiter_they_fit_and_the_rest_on_sale() {
    let buyer = Uuid::new_v4();
    let mut sale = Sale::new();
    let view = sale
        .hold(buyer, tier(4), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.pay(view.hold_id, buyer, open())
        .unwrap_or_else(|e| panic!("{e}"));
    let wants = WaitFor::Tier(ids().tier);
    let (big, small) = (waiter(1, wants, 4), waiter(2, wants, 2));
    sale.note(1, Note::Joined(big.clone()), open());
    sale.note(2, Note::Joined(small.clone()), open());
    sale.note(3, returned(buyer, vec![], vec![(ids().tier, 3)]), open());
    let offers = sale.offers();
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(
        (offers[0].entry_id, offers[0].quantity),
        (small.entry_id, 2)
    );
    assert_eq!(sale.book.tiers()[0].available(), 6 + 1);
    assert_eq!(
        sale.book.waiters(),
        std::slice::from_ref(&big),
        "the big one keeps its place"
    );
    sale.assert_adds_up();
}

#[test]
fn an_ended_hold_goes_to_the_waitlist_only_while_nobody_waits_in_the_line() {
    let mut sale = Sale::new();
    let wants = WaitFor::Tier(ids().tier);
    let w = waiter(1, wants, 2);
    sale.note(1, Note::Joined(w.clone()), open());
    let holder = Uuid::new_v4();
    let busy = sale
        .hold(holder, tier(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.book.set_line_waiting(40);
    let effects = sale
        .book
        .release(busy.hold_id, holder, open())
        .unwrap_or_default();
    sale.apply(effects);
    assert!(sale.offers().is_empty(), "the line has it first");
    let idle = sale
        .hold(holder, tier(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.book.set_line_waiting(0);
    sale.sweep(open() + Duration::minutes(6));
    let offers = sale.offers();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].entry_id, w.entry_id);
    assert!(sale.news().contains(&(idle.hold_id, HoldEvent::Expired)));
    sale.assert_adds_up();
}

#[test]
fn a_waiter_over_the_per_buyer_limit_is_passed_over() {
    let buyer = Uuid::new_v4();
    let mut sale = sold(buyer);
    // The waiter already has the limit (6) in tier tickets.
    let w = waiter(1, section(0), 1);
    let view = sale
        .hold(w.buyer_id, tier(4), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.pay(view.hold_id, w.buyer_id, open())
        .unwrap_or_else(|e| panic!("{e}"));
    let more = sale
        .hold(w.buyer_id, tier(2), open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.pay(more.hold_id, w.buyer_id, open())
        .unwrap_or_else(|e| panic!("{e}"));
    sale.note(1, Note::Joined(w.clone()), open());
    sale.note(2, returned(buyer, vec![seat_id(0, 0)], vec![]), open());
    assert!(sale.offers().is_empty());
    assert_eq!(sale.boards[0].state(0), Some(Seat::Available));
    sale.assert_adds_up();
}
