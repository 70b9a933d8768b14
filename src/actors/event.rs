//! The event actor: one per event on sale. It owns the sale window and the event's status,
//! the GA tier counters, and the table of holds with their deadlines. It never waits on
//! another actor: a seat hold is reserved here (limits checked, an id given), placed in the
//! section actors by the engine, then confirmed here; expiry and checkout send their seat
//! changes to the sections without waiting for an answer (each mailbox keeps their order).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::broadcaster::{Broadcaster, CloseLive, HoldEvent, HoldNews, TierChanged};
use super::messages::{EngineError, HeldSeat, HeldTier, HoldRequest, HoldStatus, HoldView};
use super::mirror::{HoldMirror, MirroredHold};
use super::section::{ChangeSeats, SeatChange, SectionActor};
use crate::clock::Clock;
use crate::cluster::LeaseToken;
use crate::domain::event::EventStatus;
use crate::domain::hold_id::hold_id_for;
use crate::domain::venue::{seat_label, SectionKind};
use crate::domain::FieldErrors;
use crate::persistence::leases::{self, FencedOutcome};
use crate::persistence::onsale::SeatInfo;

/// How often deadlines are checked: a seat is never held more than this past its deadline.
const SWEEP_EVERY: StdDuration = StdDuration::from_millis(200);
/// How many ended holds are remembered, to answer "expired" rather than "not found".
const ENDED_MEMORY: usize = 200_000;

/// A seated or standing section, as the event actor sees it.
pub struct SectionSlot {
    pub section_id: Uuid,
    pub name: String,
    pub kind: SectionKind,
    pub price_cents: Option<i64>,
    pub addr: Option<Addr<SectionActor>>,
    pub seats: Vec<SeatInfo>,
    /// Seats neither held, sold nor blocked (seated sections on sale only).
    pub free: u32,
}

pub struct TierSlot {
    pub tier_id: Uuid,
    pub section_id: Uuid,
    pub name: String,
    pub price_cents: i64,
    pub quantity: u32,
    pub sold: u32,
    pub held: u32,
    pub max_per_order: u32,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

impl TierSlot {
    fn available(&self) -> u32 {
        self.quantity.saturating_sub(self.sold + self.held)
    }
}

/// The rules of this on-sale.
pub struct SaleRules {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_duration: Duration,
    pub max_per_order: u32,
    pub max_holds_per_buyer: u32,
    /// Tickets one buyer may have for the event, bought and held together.
    pub max_per_buyer: u32,
}

enum Lines {
    /// Positions per section index.
    Seats(Vec<(usize, Vec<u32>)>),
    Tier {
        index: usize,
        quantity: u32,
    },
}

impl Lines {
    /// How many tickets (seats, or GA tickets) the lines make.
    fn tickets(&self) -> u32 {
        match self {
            Lines::Seats(lines) => lines.iter().map(|(_, p)| p.len() as u32).sum(),
            Lines::Tier { quantity, .. } => *quantity,
        }
    }
}

struct Hold {
    buyer_id: Uuid,
    lines: Lines,
    expires_at: DateTime<Utc>,
    status: HoldStatus,
}

#[derive(Debug, Clone, Copy)]
enum Ended {
    Expired,
    Released,
    Purchased(Uuid),
}

pub struct EventActor {
    event_id: Uuid,
    currency: String,
    status: EventStatus,
    rules: SaleRules,
    clock: Arc<dyn Clock>,
    pool: PgPool,
    sections: Vec<SectionSlot>,
    seat_index: HashMap<Uuid, (usize, u32)>,
    tiers: Vec<TierSlot>,
    holds: HashMap<Uuid, Hold>,
    /// Seat holds reserved here whose seats the engine is placing.
    /// Holds being placed in the sections: buyer, and the latest the hold may last.
    pending: HashMap<Uuid, (Uuid, Option<DateTime<Utc>>, u32)>,
    /// Tickets each buyer holds (live and being placed) and has bought: a buyer's limit
    /// counts both, across orders.
    tickets_held: HashMap<Uuid, u32>,
    bought: HashMap<Uuid, u32>,
    deadlines: BTreeSet<(DateTime<Utc>, Uuid)>,
    buyers: HashMap<Uuid, u32>,
    ended: HashMap<Uuid, Ended>,
    ended_order: VecDeque<Uuid>,
    mirror: Option<HoldMirror>,
    /// The event's live map, told of tier counts and of what happens to each hold.
    live: Option<Addr<Broadcaster>>,
    /// When to warn a holder that their hold is about to expire.
    warnings: BTreeSet<(DateTime<Utc>, Uuid)>,
    hold_warning: Duration,
    /// This node's lease on the on-sale: nothing is answered once it lapsed, and every
    /// durable write carries its epoch.
    lease: LeaseToken,
}

impl EventActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        event_id: Uuid,
        currency: String,
        status: EventStatus,
        rules: SaleRules,
        sections: Vec<SectionSlot>,
        tiers: Vec<TierSlot>,
        clock: Arc<dyn Clock>,
        pool: PgPool,
    ) -> EventActor {
        let mut seat_index = HashMap::new();
        for (i, section) in sections.iter().enumerate() {
            for (position, seat) in section.seats.iter().enumerate() {
                seat_index.insert(seat.seat_id, (i, position as u32));
            }
        }
        EventActor {
            event_id,
            currency,
            status,
            rules,
            clock,
            pool,
            sections,
            seat_index,
            tiers,
            holds: HashMap::new(),
            pending: HashMap::new(),
            tickets_held: HashMap::new(),
            bought: HashMap::new(),
            deadlines: BTreeSet::new(),
            buyers: HashMap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            mirror: None,
            live: None,
            warnings: BTreeSet::new(),
            hold_warning: Duration::zero(),
            lease: LeaseToken::unfenced(event_id),
        }
    }

    /// Runs under this node's lease on the on-sale.
    pub fn with_lease(mut self, lease: LeaseToken) -> EventActor {
        self.lease = lease;
        self
    }

    /// Refuses to act once this node's lease lapsed: another node may own the sale now.
    fn owned(&self) -> Result<(), EngineError> {
        if self.lease.valid() {
            Ok(())
        } else {
            Err(EngineError::OwnerUnavailable)
        }
    }

    /// Tells `live` of tier counts and hold news, warning holders `hold_warning` before
    /// their deadline.
    pub fn with_live(mut self, live: Addr<Broadcaster>, hold_warning: Duration) -> EventActor {
        self.live = Some(live);
        self.hold_warning = hold_warning;
        self
    }

    fn tell(&self, hold_id: Uuid, status: HoldEvent, order_id: Option<Uuid>) {
        let (Some(live), Some(hold)) = (&self.live, self.holds.get(&hold_id)) else {
            return;
        };
        live.do_send(HoldNews {
            buyer_id: hold.buyer_id,
            hold_id,
            status,
            expires_at: hold.expires_at,
            order_id,
        });
    }

    fn tier_changed(&self, index: usize) {
        if let (Some(live), Some(tier)) = (&self.live, self.tiers.get(index)) {
            live.do_send(TierChanged {
                tier: index,
                available: tier.available(),
            });
        }
    }

    /// A new hold: its clock starts, its holder hears of it.
    fn start_clock(&mut self, hold_id: Uuid, hold: Hold) {
        self.deadlines.insert((hold.expires_at, hold_id));
        let warn_at = hold.expires_at - self.hold_warning;
        if self.live.is_some() && self.hold_warning > Duration::zero() && warn_at > self.clock.now()
        {
            self.warnings.insert((warn_at, hold_id));
        }
        self.holds.insert(hold_id, hold);
        self.mirror_save(hold_id);
        self.tell(hold_id, HoldEvent::Held, None);
    }

    /// Mirrors holds to Redis from now on, and takes back the holds a previous run
    /// mirrored (their seats already held on the section boards by the registry).
    pub fn with_mirror(
        mut self,
        mirror: Option<HoldMirror>,
        restored: Vec<MirroredHold>,
    ) -> EventActor {
        self.mirror = mirror;
        for saved in restored {
            let lines = match saved.tier {
                Some((tier_id, quantity)) => {
                    let Some(index) = self.tiers.iter().position(|t| t.tier_id == tier_id) else {
                        continue;
                    };
                    if self.tiers[index].available() < quantity {
                        self.mirror_remove(saved.hold_id);
                        continue;
                    }
                    self.tiers[index].held += quantity;
                    Lines::Tier { index, quantity }
                }
                None => {
                    let mut lines: Vec<(usize, Vec<u32>)> = Vec::new();
                    for (section_id, position) in &saved.seats {
                        let Some(index) = self
                            .sections
                            .iter()
                            .position(|s| s.section_id == *section_id)
                        else {
                            continue;
                        };
                        match lines.iter_mut().find(|(i, _)| *i == index) {
                            Some((_, positions)) => positions.push(*position),
                            None => lines.push((index, vec![*position])),
                        }
                    }
                    Lines::Seats(lines)
                }
            };
            self.deadlines.insert((saved.expires_at, saved.hold_id));
            *self.buyers.entry(saved.buyer_id).or_default() += 1;
            *self.tickets_held.entry(saved.buyer_id).or_default() += lines.tickets();
            self.holds.insert(
                saved.hold_id,
                Hold {
                    buyer_id: saved.buyer_id,
                    lines,
                    expires_at: saved.expires_at,
                    status: HoldStatus::Held,
                },
            );
        }
        self
    }

    fn mirror_save(&self, hold_id: Uuid) {
        let (Some(mirror), Some(hold)) = (&self.mirror, self.holds.get(&hold_id)) else {
            return;
        };
        let (seats, tier) = match &hold.lines {
            Lines::Seats(lines) => (
                lines
                    .iter()
                    .flat_map(|(i, positions)| {
                        positions.iter().map(|p| (self.sections[*i].section_id, *p))
                    })
                    .collect(),
                None,
            ),
            Lines::Tier { index, quantity } => {
                (Vec::new(), Some((self.tiers[*index].tier_id, *quantity)))
            }
        };
        mirror.save(
            self.event_id,
            self.lease.epoch,
            MirroredHold {
                hold_id,
                buyer_id: hold.buyer_id,
                expires_at: hold.expires_at,
                seats,
                tier,
            },
        );
    }

    fn mirror_remove(&self, hold_id: Uuid) {
        if let Some(mirror) = &self.mirror {
            mirror.remove(self.event_id, self.lease.epoch, hold_id);
        }
    }

    fn sale_open(&self, now: DateTime<Utc>) -> Result<(), EngineError> {
        match self.status {
            EventStatus::Cancelled => {
                return Err(EngineError::SaleNotOpen("the event is cancelled".into()))
            }
            EventStatus::Completed => {
                return Err(EngineError::SaleNotOpen("the event is over".into()))
            }
            EventStatus::Draft => return Err(EngineError::EventNotFound),
            _ => {}
        }
        if now < self.rules.sale_starts_at {
            return Err(EngineError::SaleNotOpen(format!(
                "the sale opens at {}",
                self.rules.sale_starts_at.to_rfc3339()
            )));
        }
        if now >= self.rules.sale_ends_at {
            return Err(EngineError::SaleNotOpen("the sale has ended".into()));
        }
        Ok(())
    }

    fn view(&self, hold_id: Uuid, hold: &Hold) -> HoldView {
        let mut seats = Vec::new();
        let mut tier = None;
        match &hold.lines {
            Lines::Seats(lines) => {
                for (index, positions) in lines {
                    let section = &self.sections[*index];
                    for &p in positions {
                        if let Some(seat) = section.seats.get(p as usize) {
                            seats.push(HeldSeat {
                                seat_id: seat.seat_id,
                                section_id: section.section_id,
                                label: format!(
                                    "{} {}",
                                    section.name,
                                    seat_label(&seat.row_label, seat.seat_number)
                                ),
                                price_cents: section.price_cents.unwrap_or(0),
                            });
                        }
                    }
                }
            }
            Lines::Tier { index, quantity } => {
                let t = &self.tiers[*index];
                tier = Some(HeldTier {
                    tier_id: t.tier_id,
                    section_id: t.section_id,
                    name: t.name.clone(),
                    quantity: *quantity,
                    price_cents: t.price_cents,
                });
            }
        }
        let quantity = tier.as_ref().map_or(seats.len() as u32, |t| t.quantity);
        let total_cents = seats.iter().map(|s| s.price_cents).sum::<i64>()
            + tier
                .as_ref()
                .map_or(0, |t| t.price_cents * i64::from(t.quantity));
        HoldView {
            hold_id,
            event_id: self.event_id,
            status: hold.status,
            seats,
            tier,
            quantity,
            total_cents,
            currency: self.currency.clone(),
            expires_at: hold.expires_at,
            buyer_id: hold.buyer_id,
        }
    }

    fn remember(&mut self, hold_id: Uuid, how: Ended) {
        if self.ended.insert(hold_id, how).is_none() {
            self.ended_order.push_back(hold_id);
        }
        while self.ended_order.len() > ENDED_MEMORY {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
    }

    /// The buyer's live hold: `NotYourHold` for another buyer's, and for an ended one why it
    /// ended (expired, bought) or `HoldNotFound`.
    fn own_hold(&self, hold_id: Uuid, buyer_id: Uuid) -> Result<&Hold, EngineError> {
        let hold = self
            .holds
            .get(&hold_id)
            .ok_or_else(|| self.ended_error(hold_id))?;
        if hold.buyer_id != buyer_id {
            return Err(EngineError::NotYourHold);
        }
        Ok(hold)
    }

    fn ended_error(&self, hold_id: Uuid) -> EngineError {
        match self.ended.get(&hold_id) {
            Some(Ended::Expired) => EngineError::HoldExpired,
            Some(Ended::Purchased(order_id)) => EngineError::AlreadyPurchased(*order_id),
            Some(Ended::Released) | None => EngineError::HoldNotFound,
        }
    }

    /// A hold of `tickets` ended (released, expired, aborted or bought).
    fn buyer_done(&mut self, buyer_id: Uuid, tickets: u32) {
        for (map, by) in [(&mut self.buyers, 1), (&mut self.tickets_held, tickets)] {
            if let Some(count) = map.get_mut(&buyer_id) {
                *count = count.saturating_sub(by);
                if *count == 0 {
                    map.remove(&buyer_id);
                }
            }
        }
    }

    /// Tickets the buyers bought before this actor started (from Postgres).
    pub fn with_bought(mut self, bought: HashMap<Uuid, u32>) -> EventActor {
        self.bought = bought;
        self
    }

    /// Sends a seat change for every section of the hold (no reply awaited).
    fn change_seats(&self, hold_id: Uuid, lines: &Lines, change: SeatChange) {
        if let Lines::Seats(lines) = lines {
            for (index, positions) in lines {
                if let Some(addr) = &self.sections[*index].addr {
                    addr.do_send(ChangeSeats {
                        hold_id,
                        positions: positions.clone(),
                        change,
                    });
                }
            }
        }
    }

    /// Ends a hold that is not being paid for: seats and counts go back to the sale.
    fn end_hold(&mut self, hold_id: Uuid, how: Ended) {
        let news = match how {
            Ended::Expired => HoldEvent::Expired,
            Ended::Released | Ended::Purchased(_) => HoldEvent::Released,
        };
        self.tell(hold_id, news, None);
        let Some(hold) = self.holds.remove(&hold_id) else {
            return;
        };
        self.deadlines.remove(&(hold.expires_at, hold_id));
        self.change_seats(hold_id, &hold.lines, SeatChange::Release);
        match &hold.lines {
            Lines::Seats(lines) => {
                for (index, positions) in lines {
                    self.sections[*index].free += positions.len() as u32;
                }
            }
            Lines::Tier { index, quantity } => {
                self.tiers[*index].held -= quantity;
                self.tier_changed(*index);
            }
        }
        self.buyer_done(hold.buyer_id, hold.lines.tickets());
        self.remember(hold_id, how);
        self.mirror_remove(hold_id);
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let due: Vec<(DateTime<Utc>, Uuid)> = self
            .deadlines
            .range(..=(now, Uuid::max()))
            .copied()
            .collect();
        for (deadline, hold_id) in due {
            self.deadlines.remove(&(deadline, hold_id));
            if self
                .holds
                .get(&hold_id)
                .is_some_and(|h| h.status == HoldStatus::Held && h.expires_at <= now)
            {
                self.end_hold(hold_id, Ended::Expired);
                tracing::debug!(%hold_id, "hold expired");
            }
        }
        let warn: Vec<(DateTime<Utc>, Uuid)> = self
            .warnings
            .range(..=(now, Uuid::max()))
            .copied()
            .collect();
        for (at, hold_id) in warn {
            self.warnings.remove(&(at, hold_id));
            if self
                .holds
                .get(&hold_id)
                .is_some_and(|h| h.status == HoldStatus::Held)
            {
                self.tell(hold_id, HoldEvent::ExpiringSoon, None);
            }
        }
        self.update_status(now, ctx);
    }

    /// Keeps the event's status in Postgres in step with the sale.
    fn update_status(&mut self, now: DateTime<Utc>, ctx: &mut Context<Self>) {
        let free: u32 = self.sections.iter().map(|s| s.free).sum::<u32>()
            + self.tiers.iter().map(TierSlot::available).sum::<u32>();
        let next = match self.status {
            EventStatus::Published if now >= self.rules.sale_starts_at => EventStatus::OnSale,
            EventStatus::OnSale
                if free == 0 && self.holds.is_empty() && self.pending.is_empty() =>
            {
                EventStatus::SoldOut
            }
            EventStatus::SoldOut if free > 0 => EventStatus::OnSale,
            _ => return,
        };
        let from = self.status;
        self.status = next;
        let (pool, event_id, epoch) = (self.pool.clone(), self.event_id, self.lease.epoch);
        ctx.spawn(
            async move {
                match leases::fenced_status(&pool, event_id, epoch, &[from.as_str()], next.as_str()).await {
                    Ok(FencedOutcome::Fenced) => {
                        tracing::warn!(%event_id, epoch, "a status write was refused: this node's lease epoch is stale")
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%event_id, ?error, "could not record the event's status")
                    }
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for EventActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(SWEEP_EVERY, |act, ctx| act.sweep(ctx));
        // The live map starts from Postgres; restored holds may have taken tickets since.
        for index in 0..self.tiers.len() {
            self.tier_changed(index);
        }
        let now = self.clock.now();
        self.update_status(now, ctx);
    }
}

/// A seat hold's placement, for the engine to carry out in the section actors.
pub enum Reserved {
    /// A tier hold: done already.
    Done(HoldView),
    /// Hold these positions in these sections, all of them.
    Exact { hold_id: Uuid, steps: Vec<SeatStep> },
    /// Hold `quantity` seats together in the first of these sections that has them.
    Best {
        hold_id: Uuid,
        quantity: u32,
        candidates: Vec<(usize, Addr<SectionActor>)>,
    },
}

pub struct SeatStep {
    pub section: usize,
    pub addr: Addr<SectionActor>,
    pub positions: Vec<u32>,
    pub seat_ids: Vec<Uuid>,
}

/// Check a hold request against the sale and reserve a hold id for it.
#[derive(Message)]
#[rtype(result = "Result<Reserved, EngineError>")]
pub struct ReserveHold {
    pub buyer_id: Uuid,
    pub request: HoldRequest,
    /// The hold ends by then at the latest (the buyer's shopping window closes).
    pub not_after: Option<DateTime<Utc>>,
}

/// A hold's deadline: its duration, cut short where the buyer's admission ends sooner.
fn deadline(usual: DateTime<Utc>, not_after: Option<DateTime<Utc>>) -> DateTime<Utc> {
    not_after.map_or(usual, |cap| usual.min(cap))
}

impl Handler<ReserveHold> for EventActor {
    type Result = Result<Reserved, EngineError>;

    fn handle(&mut self, msg: ReserveHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let now = self.clock.now();
        self.sale_open(now)?;
        let active = self.buyers.get(&msg.buyer_id).copied().unwrap_or(0);
        if active >= self.rules.max_holds_per_buyer {
            return Err(EngineError::TooManyHolds(self.rules.max_holds_per_buyer));
        }
        let requested = match &msg.request {
            HoldRequest::Tier { quantity, .. } | HoldRequest::BestAvailable { quantity, .. } => {
                *quantity
            }
            HoldRequest::Seats(ids) => u32::try_from(ids.len()).unwrap_or(u32::MAX),
        };
        let has = self.bought.get(&msg.buyer_id).copied().unwrap_or(0)
            + self.tickets_held.get(&msg.buyer_id).copied().unwrap_or(0);
        // (A request over the per-order limit is refused as such further on.)
        if requested <= self.rules.max_per_order
            && has.saturating_add(requested) > self.rules.max_per_buyer
        {
            return Err(EngineError::BuyerLimitExceeded {
                limit: self.rules.max_per_buyer,
                has,
            });
        }
        let hold_id = hold_id_for(self.event_id);
        let reserved = match msg.request {
            HoldRequest::Tier { tier_id, quantity } => {
                let index = self
                    .tiers
                    .iter()
                    .position(|t| t.tier_id == tier_id)
                    .ok_or_else(|| {
                        EngineError::Invalid(FieldErrors::single(
                            "tier_id",
                            "not a tier of this event",
                        ))
                    })?;
                let tier = &mut self.tiers[index];
                if quantity == 0 {
                    return Err(EngineError::Invalid(FieldErrors::single(
                        "quantity",
                        "must be at least 1",
                    )));
                }
                let max = tier.max_per_order.min(self.rules.max_per_order);
                if quantity > max {
                    return Err(EngineError::MaxPerOrderExceeded(max));
                }
                if tier.sale_starts_at.is_some_and(|t| now < t)
                    || tier.sale_ends_at.is_some_and(|t| now >= t)
                {
                    return Err(EngineError::SaleNotOpen(format!(
                        "tier {} is not on sale now",
                        tier.name
                    )));
                }
                if tier.available() < quantity {
                    return Err(EngineError::SoldOut);
                }
                tier.held += quantity;
                self.tier_changed(index);
                let hold = Hold {
                    buyer_id: msg.buyer_id,
                    lines: Lines::Tier { index, quantity },
                    expires_at: deadline(now + self.rules.hold_duration, msg.not_after),
                    status: HoldStatus::Held,
                };
                let view = self.view(hold_id, &hold);
                self.start_clock(hold_id, hold);
                Reserved::Done(view)
            }
            HoldRequest::Seats(seat_ids) => self.plan_seats(hold_id, seat_ids)?,
            HoldRequest::BestAvailable {
                section_id,
                quantity,
            } => self.plan_best(hold_id, section_id, quantity)?,
        };
        if !matches!(reserved, Reserved::Done(_)) {
            self.pending
                .insert(hold_id, (msg.buyer_id, msg.not_after, requested));
        }
        *self.buyers.entry(msg.buyer_id).or_default() += 1;
        *self.tickets_held.entry(msg.buyer_id).or_default() += requested;
        Ok(reserved)
    }
}

impl EventActor {
    fn plan_seats(&self, hold_id: Uuid, seat_ids: Vec<Uuid>) -> Result<Reserved, EngineError> {
        if seat_ids.is_empty() {
            return Err(EngineError::Invalid(FieldErrors::single(
                "seat_ids",
                "name at least one seat",
            )));
        }
        if seat_ids.len() > self.rules.max_per_order as usize {
            return Err(EngineError::MaxPerOrderExceeded(self.rules.max_per_order));
        }
        let mut seen = std::collections::HashSet::new();
        let duplicates: Vec<String> = seat_ids
            .iter()
            .filter(|id| !seen.insert(**id))
            .map(Uuid::to_string)
            .collect();
        if !duplicates.is_empty() {
            return Err(EngineError::Invalid(FieldErrors::single(
                "seat_ids",
                format!("seats named twice: {}", duplicates.join(", ")),
            )));
        }
        let unknown: Vec<String> = seat_ids
            .iter()
            .filter(|id| !self.seat_index.contains_key(id))
            .map(Uuid::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(EngineError::Invalid(FieldErrors::single(
                "seat_ids",
                format!("not seats of this event: {}", unknown.join(", ")),
            )));
        }
        let mut steps: Vec<SeatStep> = Vec::new();
        let mut not_on_sale = Vec::new();
        for id in seat_ids {
            let (section, position) = self.seat_index[&id];
            let slot = &self.sections[section];
            let Some(addr) = slot.addr.clone().filter(|_| slot.price_cents.is_some()) else {
                not_on_sale.push(id);
                continue;
            };
            match steps.iter_mut().find(|s| s.section == section) {
                Some(step) => {
                    step.positions.push(position);
                    step.seat_ids.push(id);
                }
                None => steps.push(SeatStep {
                    section,
                    addr,
                    positions: vec![position],
                    seat_ids: vec![id],
                }),
            }
        }
        if !not_on_sale.is_empty() {
            return Err(EngineError::SeatUnavailable(not_on_sale));
        }
        Ok(Reserved::Exact { hold_id, steps })
    }

    fn plan_best(
        &self,
        hold_id: Uuid,
        section_id: Option<Uuid>,
        quantity: u32,
    ) -> Result<Reserved, EngineError> {
        if quantity == 0 {
            return Err(EngineError::Invalid(FieldErrors::single(
                "best_available.quantity",
                "must be at least 1",
            )));
        }
        if quantity > self.rules.max_per_order {
            return Err(EngineError::MaxPerOrderExceeded(self.rules.max_per_order));
        }
        let on_sale = |s: &SectionSlot| {
            s.kind == SectionKind::Seated && s.price_cents.is_some() && s.addr.is_some()
        };
        let mut candidates: Vec<usize> = match section_id {
            Some(id) => {
                let index = self
                    .sections
                    .iter()
                    .position(|s| s.section_id == id && on_sale(s))
                    .ok_or_else(|| {
                        EngineError::Invalid(FieldErrors::single(
                            "best_available.section_id",
                            "not a seated section on sale",
                        ))
                    })?;
                vec![index]
            }
            // Best seats first: the dearest sections, then the map's order.
            None => {
                let mut all: Vec<usize> = (0..self.sections.len())
                    .filter(|&i| on_sale(&self.sections[i]))
                    .collect();
                all.sort_by_key(|&i| std::cmp::Reverse(self.sections[i].price_cents.unwrap_or(0)));
                all
            }
        };
        candidates.retain(|&i| self.sections[i].free >= quantity);
        if candidates.is_empty() {
            return Err(EngineError::SoldOut);
        }
        let candidates = candidates
            .into_iter()
            .filter_map(|i| self.sections[i].addr.clone().map(|a| (i, a)))
            .collect();
        Ok(Reserved::Best {
            hold_id,
            quantity,
            candidates,
        })
    }
}

/// The seats of a reserved hold are placed: the hold starts its clock.
#[derive(Message)]
#[rtype(result = "Result<HoldView, EngineError>")]
pub struct ConfirmHold {
    pub hold_id: Uuid,
    pub placed: Vec<(usize, Vec<u32>)>,
}

impl Handler<ConfirmHold> for EventActor {
    type Result = Result<HoldView, EngineError>;

    fn handle(&mut self, msg: ConfirmHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let (buyer_id, not_after, _) = self
            .pending
            .remove(&msg.hold_id)
            .ok_or(EngineError::HoldNotFound)?;
        for (index, positions) in &msg.placed {
            let slot = &mut self.sections[*index];
            slot.free = slot.free.saturating_sub(positions.len() as u32);
        }
        let hold = Hold {
            buyer_id,
            lines: Lines::Seats(msg.placed),
            expires_at: deadline(self.clock.now() + self.rules.hold_duration, not_after),
            status: HoldStatus::Held,
        };
        let view = self.view(msg.hold_id, &hold);
        self.start_clock(msg.hold_id, hold);
        Ok(view)
    }
}

/// A reserved hold whose seats could not be placed (the engine released what it took).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AbortHold {
    pub hold_id: Uuid,
}

impl Handler<AbortHold> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: AbortHold, _: &mut Context<Self>) {
        if let Some((buyer_id, _, tickets)) = self.pending.remove(&msg.hold_id) {
            self.buyer_done(buyer_id, tickets);
        }
    }
}

/// A hold as it stands, for its buyer.
#[derive(Message)]
#[rtype(result = "Result<HoldView, EngineError>")]
pub struct GetHold {
    pub hold_id: Uuid,
    pub buyer_id: Uuid,
}

impl Handler<GetHold> for EventActor {
    type Result = Result<HoldView, EngineError>;

    fn handle(&mut self, msg: GetHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let hold = self.own_hold(msg.hold_id, msg.buyer_id)?;
        Ok(self.view(msg.hold_id, hold))
    }
}

/// The buyer lets go of a hold.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct ReleaseHold {
    pub hold_id: Uuid,
    pub buyer_id: Uuid,
}

impl Handler<ReleaseHold> for EventActor {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, msg: ReleaseHold, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let hold = self.own_hold(msg.hold_id, msg.buyer_id)?;
        if hold.status == HoldStatus::PaymentPending {
            return Err(EngineError::CheckoutInProgress);
        }
        self.end_hold(msg.hold_id, Ended::Released);
        Ok(())
    }
}

/// HELD → PAYMENT_PENDING: from now on the hold cannot expire until the payment ends. A
/// hold already past its deadline expires here instead, and no payment starts.
#[derive(Message)]
#[rtype(result = "Result<HoldView, EngineError>")]
pub struct BeginCheckout {
    pub hold_id: Uuid,
    pub buyer_id: Uuid,
}

impl Handler<BeginCheckout> for EventActor {
    type Result = Result<HoldView, EngineError>;

    fn handle(&mut self, msg: BeginCheckout, _: &mut Context<Self>) -> Self::Result {
        self.owned()?;
        let now = self.clock.now();
        let hold = self.own_hold(msg.hold_id, msg.buyer_id)?;
        if hold.status == HoldStatus::PaymentPending {
            return Err(EngineError::CheckoutInProgress);
        }
        if hold.expires_at <= now {
            self.end_hold(msg.hold_id, Ended::Expired);
            return Err(EngineError::HoldExpired);
        }
        let Some(hold) = self.holds.get_mut(&msg.hold_id) else {
            return Err(EngineError::HoldNotFound);
        };
        hold.status = HoldStatus::PaymentPending;
        let hold = &self.holds[&msg.hold_id];
        self.change_seats(msg.hold_id, &hold.lines, SeatChange::BeginPayment);
        self.tell(msg.hold_id, HoldEvent::PaymentPending, None);
        Ok(self.view(msg.hold_id, hold))
    }
}

/// The payment did not go through: PAYMENT_PENDING → HELD until the original deadline
/// (expiring at the next sweep if that has passed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelCheckout {
    pub hold_id: Uuid,
}

impl Handler<CancelCheckout> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: CancelCheckout, _: &mut Context<Self>) {
        let Some(hold) = self.holds.get_mut(&msg.hold_id) else {
            return;
        };
        if hold.status != HoldStatus::PaymentPending {
            return;
        }
        hold.status = HoldStatus::Held;
        self.deadlines.insert((hold.expires_at, msg.hold_id));
        let hold = &self.holds[&msg.hold_id];
        self.change_seats(msg.hold_id, &hold.lines, SeatChange::CancelPayment);
        self.tell(msg.hold_id, HoldEvent::Held, None);
    }
}

/// The order is durable: the hold's seats are SOLD.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishCheckout {
    pub hold_id: Uuid,
    pub order_id: Uuid,
}

impl Handler<FinishCheckout> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: FinishCheckout, ctx: &mut Context<Self>) {
        self.tell(msg.hold_id, HoldEvent::Confirmed, Some(msg.order_id));
        let Some(hold) = self.holds.remove(&msg.hold_id) else {
            return;
        };
        self.deadlines.remove(&(hold.expires_at, msg.hold_id));
        self.change_seats(msg.hold_id, &hold.lines, SeatChange::Sell);
        if let Lines::Tier { index, quantity } = hold.lines {
            let tier = &mut self.tiers[index];
            tier.held -= quantity;
            tier.sold += quantity;
            self.tier_changed(index);
        }
        let tickets = hold.lines.tickets();
        self.buyer_done(hold.buyer_id, tickets);
        *self.bought.entry(hold.buyer_id).or_default() += tickets;
        self.remember(msg.hold_id, Ended::Purchased(msg.order_id));
        self.mirror_remove(msg.hold_id);
        let now = self.clock.now();
        self.update_status(now, ctx);
    }
}

/// Live counts: seats free per section, tickets left per tier.
#[derive(Message)]
#[rtype(result = "EventCounts")]
pub struct Counts;

#[derive(Debug, Clone, MessageResponse)]
pub struct EventCounts {
    pub sections: Vec<(Uuid, u32)>,
    pub tiers: Vec<(Uuid, u32)>,
    pub active_holds: usize,
    /// Buyers with at least one live hold.
    pub holders: usize,
}

impl Handler<Counts> for EventActor {
    type Result = EventCounts;

    fn handle(&mut self, _: Counts, _: &mut Context<Self>) -> EventCounts {
        EventCounts {
            sections: self
                .sections
                .iter()
                .map(|s| {
                    let free = match s.kind {
                        SectionKind::Seated => s.free,
                        SectionKind::GeneralAdmission => self
                            .tiers
                            .iter()
                            .filter(|t| t.section_id == s.section_id)
                            .map(TierSlot::available)
                            .sum(),
                    };
                    (s.section_id, free)
                })
                .collect(),
            tiers: self
                .tiers
                .iter()
                .map(|t| (t.tier_id, t.available()))
                .collect(),
            active_holds: self.holds.len(),
            holders: self.buyers.len(),
        }
    }
}

/// What the waiting room paces admission by: what is left, and what the given shoppers
/// (buyers whose shopping window is open) may still buy, each their `max_per_buyer` less
/// what they hold and have bought, across orders, until their session ends.
#[derive(Message)]
#[rtype(result = "Demand")]
pub struct MeasureDemand {
    pub shoppers: Vec<Uuid>,
}

#[derive(Debug, Clone, Copy, MessageResponse)]
pub struct Demand {
    /// Seats and tickets neither held nor sold.
    pub available: u64,
    /// Buyers with at least one live hold.
    pub holders: u64,
    /// Tickets the shoppers may still take, on top of what they hold.
    pub promised: u64,
    /// What one new shopper may take: the on-sale's `max_per_buyer`.
    pub per_buyer: u32,
}

impl Handler<MeasureDemand> for EventActor {
    type Result = Demand;

    fn handle(&mut self, msg: MeasureDemand, ctx: &mut Context<Self>) -> Demand {
        let counts = <Self as Handler<Counts>>::handle(self, Counts, ctx);
        let limit = self.rules.max_per_buyer;
        let promised = msg
            .shoppers
            .iter()
            .map(|buyer| {
                let has = self.bought.get(buyer).copied().unwrap_or(0)
                    + self.tickets_held.get(buyer).copied().unwrap_or(0);
                u64::from(limit.saturating_sub(has))
            })
            .sum();
        Demand {
            available: counts.sections.iter().map(|(_, n)| u64::from(*n)).sum(),
            holders: counts.holders as u64,
            promised,
            per_buyer: limit,
        }
    }
}

/// Stops the event's actors, telling live viewers why: `event_closed` (cancelled or over)
/// or `owner_moved` (another node runs the on-sale now: reconnect).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop(pub &'static str);

impl Handler<Stop> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) {
        for section in &self.sections {
            if let Some(addr) = &section.addr {
                addr.do_send(super::section::StopSection);
            }
        }
        if let Some(live) = &self.live {
            live.do_send(CloseLive(msg.0));
        }
        ctx.stop();
    }
}

/// The event's seated sections and their actors, in seat-map order.
#[derive(Message)]
#[rtype(result = "Vec<(Uuid, Addr<SectionActor>)>")]
pub struct SectionAddrs;

impl Handler<SectionAddrs> for EventActor {
    type Result = Vec<(Uuid, Addr<SectionActor>)>;

    fn handle(&mut self, _: SectionAddrs, _: &mut Context<Self>) -> Self::Result {
        self.sections
            .iter()
            .filter_map(|s| s.addr.clone().map(|a| (s.section_id, a)))
            .collect()
    }
}
