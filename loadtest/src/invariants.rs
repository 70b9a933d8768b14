//! What must hold after any run, read from the server's Postgres and its API: no seat in two
//! live tickets; sold + held + available = capacity, seat by seat and tier by tier; no hold
//! alive past its deadline; every captured payment has its confirmed order and every
//! confirmed order its payment; no buyer charged twice for one hold. A run whose invariants
//! break fails.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::server::Api;

/// One check and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// All the checks of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    pub checks: Vec<Check>,
}

impl Verdict {
    fn check(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            ok,
            detail: detail.into(),
        });
    }

    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The broken checks, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }

    pub fn print(&self) {
        for check in &self.checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            println!("invariant {mark} {:<28} {}", check.name, check.detail);
        }
    }
}

/// A hold the run left alone (abandoned), to be gone once its deadline has passed.
#[derive(Debug, Clone)]
pub struct LeftHold {
    pub hold_id: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Seat states of the public seat map, counted by section.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MapCounts {
    pub seats: u64,
    pub available: u64,
    pub held: u64,
    pub sold: u64,
    pub blocked: u64,
}

/// Counts the states of a `GET /seatmap` answer, by section id.
pub fn count_map(map: &Value) -> HashMap<String, MapCounts> {
    let mut counts = HashMap::new();
    for section in map["sections"].as_array().into_iter().flatten() {
        let id = section["section_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let entry: &mut MapCounts = counts.entry(id).or_default();
        for row in section["rows"].as_array().into_iter().flatten() {
            for seat in row["seats"].as_array().into_iter().flatten() {
                entry.seats += 1;
                match seat["state"].as_str() {
                    Some("available") => entry.available += 1,
                    Some("held") => entry.held += 1,
                    Some("sold") => entry.sold += 1,
                    _ => entry.blocked += 1,
                }
            }
        }
    }
    counts
}

/// Runs every check for one event; `now` is the server's time (abandoned holds whose
/// deadline is more than a second before it must be gone).
pub async fn check(
    api: &Api,
    pool: &PgPool,
    event_id: &str,
    left: &[LeftHold],
    now: DateTime<Utc>,
) -> anyhow::Result<Verdict> {
    let event: Uuid = event_id.parse().context("the event id")?;
    let mut verdict = Verdict::default();

    let doubles: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT seat_id, count(*) FROM tickets
          WHERE event_id = $1 AND seat_id IS NOT NULL AND status IN ('VALID', 'USED', 'TRANSFERRED')
          GROUP BY seat_id HAVING count(*) > 1",
    )
    .bind(event)
    .fetch_all(pool)
    .await
    .context("reading tickets")?;
    verdict.check(
        "no_seat_sold_twice",
        doubles.is_empty(),
        format!("{} seats in two live tickets", doubles.len()),
    );

    // Seats: the live map against the tickets in Postgres, section by section.
    let map: Value = api
        .get_json(&format!("/api/v1/events/{event_id}/seatmap"))
        .await?;
    let sold_in_db: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT section_id, count(*) FROM tickets
          WHERE event_id = $1 AND seat_id IS NOT NULL AND status IN ('VALID', 'USED', 'TRANSFERRED')
          GROUP BY section_id",
    )
    .bind(event)
    .fetch_all(pool)
    .await?;
    let sold_in_db: HashMap<String, u64> = sold_in_db
        .into_iter()
        .map(|(id, n)| (id.to_string(), n as u64))
        .collect();
    let mut seat_problems = Vec::new();
    let (mut seats, mut sold, mut held, mut available) = (0, 0, 0, 0);
    for (section, counts) in count_map(&map) {
        let db = sold_in_db.get(&section).copied().unwrap_or(0);
        if counts.sold != db {
            seat_problems.push(format!(
                "section {section}: map shows {} sold, Postgres {db}",
                counts.sold
            ));
        }
        if counts.available + counts.held + counts.sold + counts.blocked != counts.seats {
            seat_problems.push(format!("section {section}: states do not add up"));
        }
        seats += counts.seats;
        sold += counts.sold;
        held += counts.held;
        available += counts.available;
    }
    verdict.check(
        "seats_add_up",
        seat_problems.is_empty(),
        if seat_problems.is_empty() {
            format!("{seats} seats: {sold} sold + {held} held + {available} available (+ blocked)")
        } else {
            seat_problems.join("; ")
        },
    );

    // Tiers: tickets in Postgres against the tier's count, and the API's availability.
    let tiers: Vec<(Uuid, i32, i32, i64)> = sqlx::query_as(
        "SELECT t.tier_id, t.quantity, t.sold_quantity,
                (SELECT count(*) FROM tickets k WHERE k.tier_id = t.tier_id
                   AND k.status IN ('VALID', 'USED', 'TRANSFERRED'))
           FROM ticket_tiers t WHERE t.event_id = $1",
    )
    .bind(event)
    .fetch_all(pool)
    .await
    .context("reading tiers")?;
    let detail: Value = api.get_json(&format!("/api/v1/events/{event_id}")).await?;
    let mut tier_problems = Vec::new();
    for (tier, quantity, sold_quantity, tickets) in &tiers {
        if i64::from(*sold_quantity) != *tickets {
            tier_problems.push(format!(
                "tier {tier}: {sold_quantity} sold, {tickets} tickets"
            ));
        }
        let shown = detail["tiers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tier_id"].as_str() == Some(&tier.to_string()))
            .and_then(|t| t["available"].as_i64());
        if shown.is_some_and(|a| a < 0 || a + i64::from(*sold_quantity) > i64::from(*quantity)) {
            tier_problems.push(format!(
                "tier {tier}: {shown:?} available + {sold_quantity} sold > {quantity}"
            ));
        }
    }
    verdict.check(
        "tiers_add_up",
        tier_problems.is_empty(),
        if tier_problems.is_empty() {
            format!("{} tiers", tiers.len())
        } else {
            tier_problems.join("; ")
        },
    );

    // Holds left alone must be gone once their deadline is a second behind us.
    let mut stuck = Vec::new();
    let mut due = 0;
    for hold in left
        .iter()
        .filter(|h| h.expires_at + chrono::Duration::seconds(1) < now)
    {
        due += 1;
        let response = api
            .client
            .get(format!("{}/api/v1/holds/{}", api.url, hold.hold_id))
            .bearer_auth(&hold.token)
            .send()
            .await?;
        if response.status().is_success() {
            stuck.push(hold.hold_id.clone());
        }
    }
    verdict.check(
        "no_hold_past_deadline",
        stuck.is_empty(),
        if stuck.is_empty() {
            format!("{due} abandoned holds past their deadline, all gone")
        } else {
            format!("still held: {}", stuck.join(", "))
        },
    );

    let (orphan_payments,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM payments p WHERE p.event_id = $1 AND p.status = 'CAPTURED'
            AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = p.order_id AND o.status = 'CONFIRMED')",
    )
    .bind(event)
    .fetch_one(pool)
    .await?;
    let (unpaid_orders,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM orders o WHERE o.event_id = $1 AND o.status = 'CONFIRMED'
            AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id
                              AND p.status IN ('AUTHORIZED', 'CAPTURED'))",
    )
    .bind(event)
    .fetch_one(pool)
    .await?;
    let (orders,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'CONFIRMED'")
            .bind(event)
            .fetch_one(pool)
            .await?;
    verdict.check(
        "payments_match_orders",
        orphan_payments == 0 && unpaid_orders == 0,
        format!(
            "{orders} confirmed orders; {orphan_payments} captured payments without an order, \
             {unpaid_orders} orders without a payment"
        ),
    );

    let (charged_twice,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT hold_id FROM payments
            WHERE event_id = $1 AND hold_id IS NOT NULL AND status IN ('AUTHORIZED', 'CAPTURED')
            GROUP BY hold_id HAVING count(*) > 1) twice",
    )
    .bind(event)
    .fetch_one(pool)
    .await?;
    verdict.check(
        "no_buyer_charged_twice",
        charged_twice == 0,
        format!("{charged_twice} holds charged more than once"),
    );
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_map_is_counted_by_section_and_state() {
        let map = json!({"sections": [
            {"section_id": "a", "rows": [
                {"seats": [{"state": "available"}, {"state": "held"}]},
                {"seats": [{"state": "sold"}, {"state": "blocked"}, {"state": "sold"}]}
            ]},
            {"section_id": "floor", "rows": []}
        ]});
        let counts = count_map(&map);
        assert_eq!(
            counts["a"],
            MapCounts {
                seats: 5,
                available: 1,
                held: 1,
                sold: 2,
                blocked: 1
            }
        );
        assert_eq!(counts["floor"], MapCounts::default());
    }

    #[test]
    fn a_verdict_fails_when_one_check_does() {
        let mut verdict = Verdict::default();
        verdict.check("one", true, "fine");
        assert!(verdict.ok());
        verdict.check("two", false, "broken");
        assert!(!verdict.ok());
        assert_eq!(verdict.failures(), vec!["two: broken".to_owned()]);
    }
}
