//! Waitlist entries: joining and leaving (each with a note for the on-sale's owner), what
//! the owner starts from, the offers it makes and how they end, and the buyer's offers.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{inbox, WriteError};
use crate::domain::holds::{Note, Offer, WaitFor, Waiter};

/// A live entry, as the owner starts from it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntryRow {
    pub entry_id: Uuid,
    pub user_id: Uuid,
    pub tier_id: Option<Uuid>,
    pub section_id: Option<Uuid>,
    pub quantity: i32,
    pub status: String,
    pub hold_id: Option<Uuid>,
    pub offer_seats: Option<Vec<Uuid>>,
    pub offer_expires_at: Option<DateTime<Utc>>,
}

impl EntryRow {
    pub fn waiter(&self) -> Option<Waiter> {
        let wants = match (self.tier_id, self.section_id) {
            (Some(tier), _) => WaitFor::Tier(tier),
            (None, Some(section)) => WaitFor::Section(section),
            (None, None) => return None,
        };
        Some(Waiter {
            entry_id: self.entry_id,
            buyer_id: self.user_id,
            wants,
            quantity: u32::try_from(self.quantity).unwrap_or(1),
        })
    }
}

fn target(wants: WaitFor) -> (Option<Uuid>, Option<Uuid>) {
    match wants {
        WaitFor::Tier(tier) => (Some(tier), None),
        WaitFor::Section(section) => (None, Some(section)),
    }
}

/// Puts the buyer at the end of the waitlist; their place in it (1 = next). Joining a
/// second time while the first entry is live is a `Conflict`.
pub async fn join(
    pool: &PgPool,
    event_id: Uuid,
    waiter: &Waiter,
    now: DateTime<Utc>,
) -> Result<i64, WriteError> {
    let (tier_id, section_id) = target(waiter.wants);
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "joining a waitlist"))?;
    sqlx::query(
        "INSERT INTO waitlist_entries (entry_id, event_id, tier_id, section_id, user_id, quantity, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(waiter.entry_id)
    .bind(event_id)
    .bind(tier_id)
    .bind(section_id)
    .bind(waiter.buyer_id)
    .bind(i32::try_from(waiter.quantity).unwrap_or(i32::MAX))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "joining a waitlist"))?;
    inbox::post(&mut tx, event_id, &Note::Joined(waiter.clone())).await?;
    let place = place_of(&mut *tx, waiter.entry_id).await?.unwrap_or(1);
    tx.commit()
        .await
        .map_err(|e| WriteError::from_sqlx(e, "joining a waitlist"))?;
    Ok(place)
}

/// Takes the buyer's live entry for `wants` off the waitlist (declining its offer, if it
/// has one); the entry, or `None` if there was none.
pub async fn leave(
    pool: &PgPool,
    event_id: Uuid,
    buyer_id: Uuid,
    wants: WaitFor,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Uuid>> {
    let (tier_id, section_id) = target(wants);
    let mut tx = pool.begin().await.context("leaving a waitlist")?;
    let entry: Option<Uuid> = sqlx::query_scalar(
        "UPDATE waitlist_entries SET status = 'LEFT', updated_at = $5 \
         WHERE event_id = $1 AND user_id = $2 AND tier_id IS NOT DISTINCT FROM $3 \
         AND section_id IS NOT DISTINCT FROM $4 AND status IN ('WAITING', 'OFFERED') RETURNING entry_id",
    )
    .bind(event_id)
    .bind(buyer_id)
    .bind(tier_id)
    .bind(section_id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .context("leaving a waitlist")?;
    if let Some(entry_id) = entry {
        inbox::post(&mut tx, event_id, &Note::Left { entry_id }).await?;
    }
    tx.commit().await.context("leaving a waitlist")?;
    Ok(entry)
}

/// An entry's place among the live entries for the same tier or section (1 = next).
async fn place_of(db: impl sqlx::PgExecutor<'_>, entry_id: Uuid) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT count(*) FROM waitlist_entries w JOIN waitlist_entries me ON me.entry_id = $1 \
         WHERE w.event_id = me.event_id AND COALESCE(w.tier_id, w.section_id) = COALESCE(me.tier_id, me.section_id) \
         AND w.status IN ('WAITING', 'OFFERED') AND w.position <= me.position \
         AND me.status IN ('WAITING', 'OFFERED')",
    )
    .bind(entry_id)
    .fetch_optional(db)
    .await
    .context("finding a place in a waitlist")
    .map(|n: Option<i64>| n.filter(|n| *n > 0))
}

/// The buyer's live entry for `wants`: its id, status and place.
pub async fn mine(
    pool: &PgPool,
    event_id: Uuid,
    buyer_id: Uuid,
    wants: WaitFor,
) -> anyhow::Result<Option<(Uuid, String, i64)>> {
    let (tier_id, section_id) = target(wants);
    let entry: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT entry_id, status FROM waitlist_entries WHERE event_id = $1 AND user_id = $2 \
         AND tier_id IS NOT DISTINCT FROM $3 AND section_id IS NOT DISTINCT FROM $4 \
         AND status IN ('WAITING', 'OFFERED')",
    )
    .bind(event_id)
    .bind(buyer_id)
    .bind(tier_id)
    .bind(section_id)
    .fetch_optional(pool)
    .await
    .context("finding a waitlist entry")?;
    let Some((entry_id, status)) = entry else {
        return Ok(None);
    };
    let place = place_of(pool, entry_id).await?.unwrap_or(1);
    Ok(Some((entry_id, status, place)))
}

/// The live entries of an event in join order, as the owner starts from them.
pub async fn live(db: impl sqlx::PgExecutor<'_>, event_id: Uuid) -> anyhow::Result<Vec<EntryRow>> {
    sqlx::query_as(
        "SELECT entry_id, user_id, tier_id, section_id, quantity, status, hold_id, offer_seats, offer_expires_at \
         FROM waitlist_entries WHERE event_id = $1 AND status IN ('WAITING', 'OFFERED') ORDER BY position",
    )
    .bind(event_id)
    .fetch_all(db)
    .await
    .context("loading the waitlist")
}

/// An offer was made (the owner's record of it), and the buyer's notice in the outbox.
pub async fn offered(pool: &PgPool, offer: &Offer, now: DateTime<Utc>) -> anyhow::Result<()> {
    sqlx::query(
        "WITH made AS (UPDATE waitlist_entries SET status = 'OFFERED', hold_id = $2, offer_seats = $3, \
           offered_at = $4, offer_expires_at = $5, updated_at = $4 WHERE entry_id = $1 AND status = 'WAITING' \
           RETURNING entry_id, event_id, user_id, tier_id, section_id) \
         INSERT INTO outbox (aggregate_type, aggregate_id, kind, payload, created_at) \
         SELECT 'waitlist', entry_id, 'waitlist.offered', jsonb_build_object('event_id', event_id, 'entry_id', entry_id, \
                'buyer_id', user_id, 'hold_id', $2::uuid, 'quantity', $6::int, 'tier_id', tier_id, 'section_id', section_id, \
                'expires_at', $5::timestamptz), $4 FROM made",
    )
    .bind(offer.entry_id)
    .bind(offer.hold_id)
    .bind(&offer.seat_ids)
    .bind(now)
    .bind(offer.expires_at)
    .bind(i32::try_from(offer.quantity).unwrap_or(1))
    .execute(pool)
    .await
    .context("recording a waitlist offer")?;
    Ok(())
}

/// An offer ended: the entry is done (`status`: PURCHASED, EXPIRED or LEFT).
pub async fn offer_ended(
    pool: &PgPool,
    entry_id: Uuid,
    status: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE waitlist_entries SET status = $2, updated_at = $3 \
         WHERE entry_id = $1 AND status IN ('WAITING', 'OFFERED')",
    )
    .bind(entry_id)
    .bind(status)
    .bind(now)
    .execute(pool)
    .await
    .context("recording the end of a waitlist offer")?;
    Ok(())
}

/// A buyer's open offer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OfferRow {
    pub entry_id: Uuid,
    pub event_id: Uuid,
    pub hold_id: Uuid,
    pub quantity: i32,
    pub tier_id: Option<Uuid>,
    pub section_id: Option<Uuid>,
    pub offer_expires_at: DateTime<Utc>,
}

/// The buyer's offers still open at `now`.
pub async fn offers_of(
    pool: &PgPool,
    buyer_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<OfferRow>> {
    sqlx::query_as(
        "SELECT entry_id, event_id, hold_id, quantity, tier_id, section_id, offer_expires_at \
         FROM waitlist_entries WHERE user_id = $1 AND status = 'OFFERED' AND offer_expires_at > $2 \
         ORDER BY offer_expires_at",
    )
    .bind(buyer_id)
    .bind(now)
    .fetch_all(pool)
    .await
    .context("listing offers")
}

/// Whether `hold_id` is the buyer's open waitlist offer (checked out without admission).
pub async fn is_offer(pool: &PgPool, hold_id: Uuid, buyer_id: Uuid) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM waitlist_entries WHERE hold_id = $1 AND user_id = $2 AND status = 'OFFERED')",
    )
    .bind(hold_id)
    .bind(buyer_id)
    .fetch_one(pool)
    .await
    .context("checking an offer")
}

/// The event is cancelled: nobody waits for it any more.
pub async fn cancel_all(db: impl sqlx::PgExecutor<'_>, event_id: Uuid) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE waitlist_entries SET status = 'CANCELLED', updated_at = now() \
         WHERE event_id = $1 AND status IN ('WAITING', 'OFFERED')",
    )
    .bind(event_id)
    .execute(db)
    .await
    .context("closing the waitlist")?
    .rows_affected())
}
