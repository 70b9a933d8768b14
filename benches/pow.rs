//! What the door costs the server: making a proof-of-work challenge, and redeeming a
//! solution (decode, one SHA-256, one HMAC, the spent-challenge check in memory). With
//! Redis, a redemption adds one `SET NX` round trip. The client's side, solving, is
//! measured in the browser (README, "Figures").

use std::sync::Arc;

use boxoffice::clock::SystemClock;
use boxoffice::pow::{solve, PowSettings, ProofOfWork, Purpose};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn door(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let settings = PowSettings {
        // Solving in the set-up is not measured; a low difficulty keeps the set-up short
        // and costs the server the same to check.
        max_number: 200,
        ttl: std::time::Duration::from_secs(300),
        visitors: true,
    };
    let pow = runtime
        .block_on(ProofOfWork::new(
            b"bench-secret-bench-secret-bench-secret",
            settings,
            Arc::new(SystemClock),
            None,
            "bench",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("proof_of_work");
    group.throughput(Throughput::Elements(1));
    group.bench_function("make_a_challenge", |b| {
        b.iter(|| pow.challenge(Purpose::Visitor))
    });
    group.bench_function("redeem_a_solution", |b| {
        b.iter_batched(
            || {
                let challenge = pow
                    .challenge(Purpose::Visitor)
                    .unwrap_or_else(|e| panic!("{e}"));
                solve(&challenge).unwrap_or_else(|| panic!("unsolved"))
            },
            |payload| runtime.block_on(pow.redeem(&payload, Purpose::Visitor)),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // What a client pays: solving at the default difficulty with this crate's plain
    // solver (native code, no midstate: a bot can do better).
    let hard = runtime
        .block_on(ProofOfWork::new(
            b"bench-secret-bench-secret-bench-secret",
            PowSettings {
                max_number: 500_000,
                ..settings
            },
            Arc::new(SystemClock),
            None,
            "bench",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("proof_of_work_client");
    group.sample_size(20);
    group.bench_function("solve_at_500000", |b| {
        b.iter_batched(
            || {
                hard.challenge(Purpose::Visitor)
                    .unwrap_or_else(|e| panic!("{e}"))
            },
            |challenge| solve(&challenge),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, door);
criterion_main!(benches);
