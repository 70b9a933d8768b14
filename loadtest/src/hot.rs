//! `hot-tier` and `hot-section`: many buyers hold from one GA tier, or random seats of one
//! section, as fast as they can; the seed design runs the same workload beside them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::bail;
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::baseline::Baseline;
use crate::report::{Report, Summary};
use crate::server::{self, Api};
use crate::{drive, post_hold, start, Budget, Common, Rotation, ROTATING_BUYERS};

pub async fn hot_tier(common: &Common) -> anyhow::Result<Report> {
    const QUANTITY: i64 = 200_000;
    let server = start(common).await?;
    let api = Api::new(&server.url);
    let (event_id, tier_id) = server::tier_on_sale(&api, QUANTITY).await?;
    let tokens = Arc::new(Rotation::new(server.buyers(&api, ROTATING_BUYERS).await?));
    let url = Arc::new(format!("{}/api/v1/events/{event_id}/holds", server.url));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .build()?;
    let body = Arc::new(json!({"tier_id": tier_id, "quantity": 1}));
    println!(
        "hot-tier: boxoffice, {} clients, {} s",
        common.clients, common.seconds
    );
    let (tally, elapsed) = drive(common.clients, Budget::new(common), move |_| {
        let (client, url, tokens, body) =
            (client.clone(), url.clone(), tokens.clone(), body.clone());
        async move { post_hold(&client, &url, tokens.next(), &body).await }
    })
    .await;
    let mut runs = vec![Summary::new(
        "boxoffice",
        common.clients,
        elapsed,
        &tally,
        server.peak_rss_mib(),
    )];
    let (detail, sold_ok) = check_tier(&api, &event_id, tally.successes, QUANTITY).await?;
    if !sold_ok {
        bail!("boxoffice oversold or lost holds: {detail}");
    }
    drop(server);

    if !common.skip_baseline {
        let baseline = Arc::new(Baseline::for_run(common).await?);
        let tier = baseline.add_tier(QUANTITY as i32).await?;
        println!(
            "hot-tier: seed design, {} clients, {} s",
            common.clients, common.seconds
        );
        let b = baseline.clone();
        let (tally, elapsed) = drive(common.clients, Budget::new(common), move |_| {
            let b = b.clone();
            async move {
                match b.hold_tier(tier, Uuid::new_v4(), 1).await {
                    Ok(true) => ("held".to_owned(), true),
                    Ok(false) => ("sold_out".to_owned(), false),
                    Err(_) => ("error".to_owned(), false),
                }
            }
        })
        .await;
        let (sold, available) = baseline.tier_counts(tier).await?;
        if i64::from(sold) != tally.successes as i64 || i64::from(sold + available) != QUANTITY {
            bail!("the seed design's counts do not add up: sold {sold}, available {available}");
        }
        runs.push(Summary::new(
            "seed-design",
            common.clients,
            elapsed,
            &tally,
            None,
        ));
    }
    Ok(Report::new("hot-tier", runs))
}

/// After a run: the tier's availability must equal quantity less the holds that succeeded.
async fn check_tier(
    api: &Api,
    event_id: &str,
    held: u64,
    quantity: i64,
) -> anyhow::Result<(Value, bool)> {
    let detail = api.get_json(&format!("/api/v1/events/{event_id}")).await?;
    let available = detail["tiers"][0]["available"].as_i64().unwrap_or(-1);
    Ok((
        detail["tiers"][0].clone(),
        available == quantity - held as i64,
    ))
}

pub async fn hot_section(common: &Common, rows: i32, per_row: i32) -> anyhow::Result<Report> {
    let server = start(common).await?;
    let api = Api::new(&server.url);
    let organizer = api.signup("organizer").await?;
    let (event_id, seats) = server::section_on_sale(&api, &organizer, rows, per_row).await?;
    let capacity = seats.len() as u64;
    let seats = Arc::new(seats);
    let tokens = Arc::new(Rotation::new(server.buyers(&api, ROTATING_BUYERS).await?));
    let url = Arc::new(format!("{}/api/v1/events/{event_id}/holds", server.url));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients)
        .build()?;
    println!(
        "hot-section: boxoffice, {} clients, {capacity} seats, up to {} s",
        common.clients, common.seconds
    );
    let budget = Budget::new(common);
    let held = Arc::new(AtomicU64::new(0));
    let (b, h) = (budget.clone(), held.clone());
    let (tally, elapsed) = drive(common.clients, budget, move |_| {
        let (client, url, tokens, seats, budget, held) = (
            client.clone(),
            url.clone(),
            tokens.clone(),
            seats.clone(),
            b.clone(),
            h.clone(),
        );
        async move {
            let pick: Vec<&String> = seats.choose_multiple(&mut rand::thread_rng(), 2).collect();
            let result = post_hold(&client, &url, tokens.next(), &json!({"seat_ids": pick})).await;
            if result.1 && (held.fetch_add(2, Ordering::Relaxed) + 2) * 100 >= capacity * 95 {
                budget.stop();
            }
            result
        }
    })
    .await;
    let mut runs = vec![Summary::new(
        "boxoffice",
        common.clients,
        elapsed,
        &tally,
        server.peak_rss_mib(),
    )];
    let map: Value = api
        .get_json(&format!("/api/v1/events/{event_id}/seatmap"))
        .await?;
    let held_on_map: u64 = crate::invariants::count_map(&map)
        .values()
        .map(|c| c.held)
        .sum();
    if held_on_map != tally.successes * 2 {
        bail!(
            "boxoffice: {} holds succeeded but {held_on_map} seats are held",
            tally.successes
        );
    }
    drop(server);

    if !common.skip_baseline {
        let baseline = Arc::new(Baseline::for_run(common).await?);
        let seats = Arc::new(baseline.add_section(rows, per_row).await?);
        println!(
            "hot-section: seed design, {} clients, up to {} s",
            common.clients, common.seconds
        );
        let budget = Budget::new(common);
        let held = Arc::new(AtomicU64::new(0));
        let (b, h) = (budget.clone(), held.clone());
        let base = baseline.clone();
        let (tally, elapsed) = drive(common.clients, budget, move |_| {
            let (base, seats, budget, held) = (base.clone(), seats.clone(), b.clone(), h.clone());
            async move {
                let pick: Vec<Uuid> = seats
                    .choose_multiple(&mut rand::thread_rng(), 2)
                    .copied()
                    .collect();
                let result = match base.hold_seats(&pick, Uuid::new_v4(), 10).await {
                    Ok(Some(_)) => ("held".to_owned(), true),
                    Ok(None) => ("seat_unavailable".to_owned(), false),
                    Err(_) => ("error".to_owned(), false),
                };
                if result.1 && (held.fetch_add(2, Ordering::Relaxed) + 2) * 100 >= capacity * 95 {
                    budget.stop();
                }
                result
            }
        })
        .await;
        runs.push(Summary::new(
            "seed-design",
            common.clients,
            elapsed,
            &tally,
            None,
        ));
    }
    Ok(Report::new("hot-section", runs))
}
