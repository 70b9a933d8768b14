//! What the on-sale engine loads when it starts an event: the schedule, every section with
//! its seats in seat-map order (sold and blocked ones marked), prices and tiers.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::venue::SectionKind;

use super::catalog;
use super::events::{self, EventRow, OnSaleRow, TierRow};

pub use crate::domain::holds::SeatInfo;

#[derive(Debug, Clone)]
pub struct SectionState {
    pub section_id: Uuid,
    pub name: String,
    pub kind: SectionKind,
    pub capacity: i32,
    pub price_cents: Option<i64>,
    /// In seat-map order: index = position.
    pub seats: Vec<SeatInfo>,
    pub sold: Vec<u32>,
    pub blocked: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct OnSaleState {
    pub event: EventRow,
    pub onsale: OnSaleRow,
    pub sections: Vec<SectionState>,
    pub tiers: Vec<TierRow>,
    /// Tickets each buyer has bought for the event (confirmed orders, valid tickets).
    pub bought: std::collections::HashMap<Uuid, u32>,
    /// The live waitlist entries, in join order.
    pub waitlist: Vec<super::waitlist::EntryRow>,
    /// The last engine note this state already includes.
    pub inbox_seq: i64,
}

/// Everything an event actor starts from; `None` when the event or its schedule is missing.
/// Read in one snapshot, so that the inbox number it gives says exactly which notes the
/// state already includes.
#[tracing::instrument(skip(pool))]
pub async fn load(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Option<OnSaleState>> {
    let mut tx = pool.begin().await.context("starting to load an on-sale")?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .context("taking a snapshot")?;
    let state = load_in(&mut tx, event_id).await?;
    tx.commit().await.context("ending the snapshot")?;
    Ok(state)
}

async fn load_in(
    tx: &mut sqlx::PgConnection,
    event_id: Uuid,
) -> anyhow::Result<Option<OnSaleState>> {
    let Some(event) = events::find_event(&mut *tx, event_id).await? else {
        return Ok(None);
    };
    let Some(onsale) = events::find_onsale(&mut *tx, event_id).await? else {
        return Ok(None);
    };
    let inbox_seq = super::inbox::last(&mut *tx, event_id).await?;
    let waitlist = super::waitlist::live(&mut *tx, event_id).await?;
    let tiers = events::tiers(&mut *tx, event_id).await?;
    let mut sections: Vec<SectionState> = catalog::section_availability(&mut *tx, event_id)
        .await?
        .into_iter()
        .map(|s| SectionState {
            section_id: s.section_id,
            name: s.name,
            kind: s.kind,
            capacity: s.capacity,
            price_cents: s.price_cents,
            seats: Vec::new(),
            sold: Vec::new(),
            blocked: Vec::new(),
        })
        .collect();
    let mut index = 0;
    for seat in catalog::seats(&mut *tx, event_id).await? {
        while sections
            .get(index)
            .is_some_and(|s| s.section_id != seat.section_id)
        {
            index += 1;
        }
        let Some(section) = sections.get_mut(index) else {
            break;
        };
        let position = u32::try_from(section.seats.len()).context("seat position")?;
        if seat.sold {
            section.sold.push(position);
        } else if seat.blocked {
            section.blocked.push(position);
        }
        section.seats.push(SeatInfo {
            seat_id: seat.seat_id,
            row_label: seat.row_label,
            seat_number: seat.seat_number,
        });
    }
    let bought: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT o.buyer_id, count(*) FROM orders o JOIN tickets t USING (order_id) \
         WHERE o.event_id = $1 AND o.status IN ('CONFIRMED', 'PARTIALLY_REFUNDED') AND t.status IN ('VALID', 'USED', 'TRANSFERRED') AND t.transferred_from IS NULL GROUP BY o.buyer_id",
    )
    .bind(event_id)
    .fetch_all(&mut *tx)
    .await
    .context("counting each buyer's tickets")?;
    Ok(Some(OnSaleState {
        event,
        onsale,
        sections,
        tiers,
        bought: bought
            .into_iter()
            .map(|(buyer, n)| (buyer, u32::try_from(n).unwrap_or(u32::MAX)))
            .collect(),
        waitlist,
        inbox_seq,
    }))
}

/// Events whose sale is open as of `now`: their engines should run (after a restart too).
pub async fn due_to_open(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT e.event_id FROM events e JOIN onsales o USING (event_id) \
         WHERE e.status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT') AND o.sale_starts_at <= $1 AND o.sale_ends_at > $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await
    .context("finding on-sales to open")
}

/// Events that have ended become COMPLETED.
pub async fn complete_ended(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "UPDATE events SET status = 'COMPLETED', updated_at = now() \
         WHERE status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT') AND end_time <= $1 RETURNING event_id",
    )
    .bind(now)
    .fetch_all(pool)
    .await
    .context("completing ended events")
}

/// Events whose waiting room is open as of `now` (its queue opened, its sale not over).
pub async fn rooms_due(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT e.event_id FROM events e JOIN onsales o USING (event_id) \
         WHERE e.status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT') AND o.queue_opens_at <= $1 AND o.sale_ends_at > $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await
    .context("finding waiting rooms to open")
}

/// Saves the organizer's live controls of a waiting room (each left as it is when `None`).
pub async fn set_admission(
    pool: &PgPool,
    event_id: Uuid,
    paused: Option<bool>,
    admission_per_minute: Option<i32>,
    door: Option<crate::domain::onsale::Door>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE onsales SET admission_paused = COALESCE($2, admission_paused), \
         admission_per_minute = COALESCE($3, admission_per_minute), \
         proof_of_work = COALESCE($4, proof_of_work), \
         proof_of_work_joins_per_minute = COALESCE($5, proof_of_work_joins_per_minute), \
         updated_at = now() WHERE event_id = $1",
    )
    .bind(event_id)
    .bind(paused)
    .bind(admission_per_minute)
    .bind(door.map(|d| d.proof_of_work.as_str()))
    .bind(door.map(|d| d.joins_per_minute))
    .execute(pool)
    .await
    .context("saving admission controls")?;
    Ok(())
}
