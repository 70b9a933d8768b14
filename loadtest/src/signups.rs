//! `signups`: a burst of `--count` sign-ups from `--clients` at once (argon2id hashes, 19
//! MiB each while it runs), then the server's resident memory once the burst is over:
//! with the password threads (`BOXOFFICE_PASSWORD_THREADS`, the cores) and, as the
//! baseline (`unbounded`), with hashing on the runtime's blocking pool
//! (`BOXOFFICE_PASSWORD_THREADS=0`, how the server hashed before). Each is a server of its
//! own, started afresh; every sign-up must succeed (a refusal fails the run).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::report::{Report, Summary};
use crate::{drive, start_with, Budget, Common};

#[derive(Debug, Clone, clap::Args)]
pub struct Plan {
    /// Sign-ups in the burst.
    #[arg(long, default_value_t = 10_000)]
    pub count: u64,
}

pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    let mut runs = Vec::new();
    let mut memory = serde_json::Map::new();
    let systems: &[(&str, &str)] = if common.skip_baseline {
        &[("boxoffice", "")]
    } else {
        &[("boxoffice", ""), ("unbounded", "0")]
    };
    for (system, threads) in systems {
        let mut env = vec![("BOXOFFICE_AUTH_RATE_PER_MINUTE", "1000000")];
        if !threads.is_empty() {
            env.push(("BOXOFFICE_PASSWORD_THREADS", threads));
        }
        let server = start_with(common, &env).await?;
        let before = server.rss_mib();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(common.clients * 2)
            .timeout(Duration::from_secs(600))
            .build()?;
        let url = Arc::new(format!("{}/api/v1/auth/signup", server.url));
        let next = Arc::new(AtomicU64::new(0));
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let budget = Budget::with(Duration::from_secs(common.seconds.max(3_600)), plan.count);
        let (tally, elapsed) = drive(common.clients, budget, move |_| {
            let (client, url, next, run_id) =
                (client.clone(), url.clone(), next.clone(), run_id.clone());
            async move {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = json!({"email": format!("signup-{run_id}-{n}@example.test"),
                                  "password": "correct horse battery", "name": format!("Buyer {n}"),
                                  "role": "buyer"});
                match client.post(url.as_str()).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => ("created".to_owned(), true),
                    Ok(r) => (format!("http_{}", r.status().as_u16()), false),
                    Err(error) => (crate::failure(&error).to_owned(), false),
                }
            }
        })
        .await;
        // What the burst left behind, once it is over.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (peak, after) = (server.peak_rss_mib(), server.rss_mib());
        memory.insert(
            (*system).to_owned(),
            json!({"rss_before_mib": before, "rss_peak_mib": peak, "rss_after_mib": after,
                   "password_threads": if threads.is_empty() { "cores" } else { "unbounded" }}),
        );
        if tally.successes < plan.count {
            anyhow::bail!(
                "{system}: {} of {} sign-ups succeeded: {:?}",
                tally.successes,
                plan.count,
                tally.outcomes
            );
        }
        runs.push(Summary::new(system, common.clients, elapsed, &tally, peak));
    }
    let mut report = Report::new("signups", runs);
    report
        .extra
        .insert("memory".into(), serde_json::Value::Object(memory));
    Ok(report)
}
