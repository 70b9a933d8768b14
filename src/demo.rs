//! `boxoffice demo`: seeds a demo organizer, a 10,000-place venue (eight seated sections
//! and a standing floor) and a published event whose on-sale opens a minute from now, with
//! a waiting room that is open already. Safe to run again: the organizer and venue are
//! reused and a new event is added on a free date.

use anyhow::Context;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::account::{Email, Role};
use crate::domain::event::{EventDetails, EventInput, EventStatus};
use crate::domain::onsale::{OnSaleInput, OnSaleSchedule, WaitingRoomInput};
use crate::domain::pricing::{Pricing, SectionPriceInput, TierInput, VenueSection};
use crate::domain::venue::{LayoutSpec, SeatingPlan, SectionKind, VenueType};
use crate::persistence::events::{self, BookingMargins};
use crate::persistence::venues::{self, VenueDetails};
use crate::persistence::{accounts, WriteError};
use crate::security;

pub const ORGANIZER_EMAIL: &str = "demo-organizer@boxoffice.test";
pub const ORGANIZER_PASSWORD: &str = "boxoffice-demo";
const VENUE_NAME: &str = "Demo Arena";

/// What the demo created.
#[derive(Debug)]
pub struct Demo {
    pub organizer_id: Uuid,
    pub venue_id: Uuid,
    pub event_id: Uuid,
    pub capacity: i32,
}

/// Sets the demo up as of `now` (the server's clock).
pub async fn seed(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Demo> {
    let organizer_id = organizer(pool).await?;
    let venue_id = venue(pool, organizer_id).await?;
    let sections = venues::sections(pool, venue_id).await?;
    let capacity = sections.iter().map(|s| s.capacity).sum();

    // A new date for each run: the venue hosts one event a night.
    let existing = events::list_for_organizer(pool, organizer_id).await?.len() as i64;
    let start = (now + Duration::days(30 + existing))
        .duration_trunc(Duration::hours(1))
        .context("rounding")?;
    let details = EventDetails::parse(EventInput {
        title: "boxoffice Demo Night",
        description: "A demo on-sale: join the waiting room, watch the seat map, hold seats and pay with tok_ok.",
        category: "CONCERT",
        performers: &["The Load Testers".to_owned(), "Two Cores".to_owned()],
        doors_open: Some(start - Duration::hours(1)),
        start_time: start,
        end_time: start + Duration::hours(3),
        age_restriction: None,
        cover_image_url: None,
    })
    .map_err(|e| anyhow::anyhow!("demo event: {e:?}"))?;
    let event_id = events::insert_event(
        pool,
        organizer_id,
        venue_id,
        &details,
        "USD",
        BookingMargins::default(),
        // The demo venue asks no deposit: its booking is confirmed at once.
        &crate::domain::booking::Terms::none().plan(now),
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the demo event: {e}"))?;

    let venue_sections: Vec<VenueSection> = sections
        .iter()
        .map(|s| VenueSection {
            section_id: s.section_id,
            kind: s.kind,
            capacity: s.capacity,
        })
        .collect();
    let mut prices = Vec::new();
    let mut tiers = Vec::new();
    for section in &sections {
        if section.kind == SectionKind::GeneralAdmission {
            let vip = section.capacity / 4;
            for (name, price_cents, quantity) in [
                ("GENERAL", 6_500, section.capacity - vip),
                ("VIP", 15_000, vip),
            ] {
                tiers.push(TierInput {
                    section_id: section.section_id,
                    name: name.into(),
                    price_cents,
                    quantity: quantity.into(),
                    max_per_order: 8,
                    sale_starts_at: None,
                    sale_ends_at: None,
                });
            }
        } else {
            let price_cents = if section.name.starts_with('1') {
                8_950
            } else {
                4_900
            };
            prices.push(SectionPriceInput {
                section_id: section.section_id,
                price_cents,
            });
        }
    }
    let pricing = Pricing::parse("USD", &prices, &tiers, &venue_sections)
        .map_err(|e| anyhow::anyhow!("demo prices: {e:?}"))?;
    events::replace_pricing(pool, event_id, &pricing).await?;

    let schedule = OnSaleSchedule::parse(
        OnSaleInput {
            max_per_buyer: None,
            waitlist_offer_minutes: None,
            sale_starts_at: now + Duration::minutes(1),
            sale_ends_at: start,
            hold_minutes: 10,
            max_per_order: 8,
            waiting_room: Some(WaitingRoomInput {
                queue_opens_at: now,
                admission_per_minute: 600,
                proof_of_work: Some("auto".into()),
                proof_of_work_joins_per_minute: None,
            }),
        },
        details.end_time,
        now,
    )
    .map_err(|e| anyhow::anyhow!("demo on-sale: {e:?}"))?;
    events::upsert_onsale(pool, event_id, &schedule).await?;
    events::transition(
        pool,
        event_id,
        &[EventStatus::Draft],
        EventStatus::Published,
    )
    .await?;
    // The set-up is the demo organizer's, done by the demo seeder: audited as such.
    for action in [
        "event.created",
        "event.priced",
        "event.onsale_set",
        "event.published",
    ] {
        crate::persistence::audit::append(
            pool,
            crate::persistence::audit::Entry {
                owner_id: organizer_id,
                actor_id: Some(organizer_id),
                actor_kind: "SYSTEM",
                event_id: Some(event_id),
                object_kind: "event",
                object_id: Some(event_id),
                action,
                before: None,
                after: Some(serde_json::json!({"by": "boxoffice demo"})),
                ip: None,
            },
        )
        .await?;
    }
    Ok(Demo {
        organizer_id,
        venue_id,
        event_id,
        capacity,
    })
}

async fn organizer(pool: &PgPool) -> anyhow::Result<Uuid> {
    let email = Email::parse(ORGANIZER_EMAIL).map_err(anyhow::Error::msg)?;
    if let Some(user) = accounts::find_by_email(pool, &email).await? {
        return Ok(user.user_id);
    }
    let hash = security::hash_password(ORGANIZER_PASSWORD)?;
    match accounts::insert_user(pool, &email, &hash, "Demo Organizer", Role::Organizer).await {
        Ok(id) => Ok(id),
        Err(WriteError::Conflict(_)) => accounts::find_by_email(pool, &email)
            .await?
            .map(|u| u.user_id)
            .context("the demo organizer vanished"),
        Err(WriteError::Other(e)) => Err(e),
    }
}

async fn venue(pool: &PgPool, organizer_id: Uuid) -> anyhow::Result<Uuid> {
    if let Some(v) = venues::list_venues(pool, organizer_id)
        .await?
        .into_iter()
        .find(|v| v.name == VENUE_NAME)
    {
        return Ok(v.venue_id);
    }
    // Wheelchair spaces at both ends of each lower section's back row.
    let access = json!(["T-1", "T-2", "T-3", "T-4", "T-47", "T-48", "T-49", "T-50"]);
    let layout: LayoutSpec = serde_json::from_value(json!({"sections": [
        {"name": "101", "kind": "seated", "rows": 20, "seats_per_row": 50, "accessible_seats": access},
        {"name": "102", "kind": "seated", "rows": 20, "seats_per_row": 50, "accessible_seats": access},
        {"name": "Floor", "kind": "general_admission", "capacity": 2000},
        {"name": "103", "kind": "seated", "rows": 20, "seats_per_row": 50, "accessible_seats": access},
        {"name": "104", "kind": "seated", "rows": 20, "seats_per_row": 50, "accessible_seats": access},
        {"name": "201", "kind": "seated", "rows": 25, "seats_per_row": 40, "origin": {"x": 0.0, "y": 30.0}},
        {"name": "202", "kind": "seated", "rows": 25, "seats_per_row": 40, "origin": {"x": 44.0, "y": 30.0}},
        {"name": "203", "kind": "seated", "rows": 25, "seats_per_row": 40, "origin": {"x": 88.0, "y": 30.0}},
        {"name": "204", "kind": "seated", "rows": 25, "seats_per_row": 40, "origin": {"x": 132.0, "y": 30.0}},
    ]}))?;
    let plan =
        SeatingPlan::parse(&layout, "layout").map_err(|e| anyhow::anyhow!("demo layout: {e:?}"))?;
    let details = VenueDetails {
        name: VENUE_NAME.into(),
        address: "1 Loopback Way".into(),
        city: "Localhost".into(),
        latitude: 48.8566,
        longitude: 2.3522,
        timezone: "Europe/Paris".into(),
        venue_type: VenueType::Arena,
        facilities: json!({"parking": true, "catering": true, "av_equipment": true}),
    };
    let venue_id = venues::insert_venue(pool, organizer_id, &details, &plan).await?;
    crate::persistence::audit::append(
        pool,
        crate::persistence::audit::Entry {
            owner_id: organizer_id,
            actor_id: Some(organizer_id),
            actor_kind: "SYSTEM",
            event_id: None,
            object_kind: "venue",
            object_id: Some(venue_id),
            action: "venue.created",
            before: None,
            after: Some(serde_json::json!({"name": VENUE_NAME, "by": "boxoffice demo"})),
            ip: None,
        },
    )
    .await?;
    Ok(venue_id)
}
