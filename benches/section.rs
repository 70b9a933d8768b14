//! Holds through one section actor, and through the seat board alone: the cost of the
//! serialization point itself, without HTTP or Postgres.

use std::time::{Duration, Instant};

use actix::Actor;
use boxoffice::actors::section::{ChangeSeats, HoldSeats, SectionActor};
use boxoffice::domain::seat_board::SeatBoard;
use boxoffice::domain::seat_board::SeatChange;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use uuid::Uuid;

fn board() -> SeatBoard {
    // 100 rows of 100 seats.
    SeatBoard::new(
        (0..100u32).map(|r| r * 100..(r + 1) * 100).collect(),
        &[],
        &[],
    )
}

fn seat_board(c: &mut Criterion) {
    let mut group = c.benchmark_group("seat_board");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hold_and_release_2_seats", |b| {
        let mut board = board();
        let mut i = 0u32;
        b.iter(|| {
            let hold = Uuid::new_v4();
            let positions = [i % 10_000, (i + 5_000) % 10_000];
            let _ = board.hold(hold, &positions);
            board.release(hold, &positions);
            i = i.wrapping_add(1);
        });
    });
    group.bench_function("best_available_4_then_release", |b| {
        let mut board = board();
        b.iter(|| {
            let hold = Uuid::new_v4();
            if let Some(positions) = board.hold_best_available(hold, 4) {
                board.release(hold, &positions);
            }
        });
    });
    group.finish();
}

fn section_actor(c: &mut Criterion) {
    let system = actix::System::new();
    let addr = system.block_on(async { SectionActor::new(board()).start() });
    let mut group = c.benchmark_group("section_actor");
    group.throughput(Throughput::Elements(1));
    // One message at a time: the round trip through the mailbox.
    group.bench_function("hold_2_seats_round_trip", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let started = Instant::now();
                for i in 0..iters {
                    let hold = Uuid::new_v4();
                    let positions = vec![(i % 10_000) as u32, ((i + 5_000) % 10_000) as u32];
                    let _ = addr
                        .send(HoldSeats {
                            hold_id: hold,
                            positions: positions.clone(),
                        })
                        .await;
                    addr.do_send(ChangeSeats {
                        hold_id: hold,
                        positions,
                        change: SeatChange::Release,
                    });
                }
                started.elapsed()
            })
        });
    });
    // 256 requests in flight at once, as under an on-sale burst.
    group.throughput(Throughput::Elements(256));
    group.bench_function("hold_2_seats_256_in_flight", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let started = Instant::now();
                for round in 0..iters {
                    let holds: Vec<(Uuid, Vec<u32>)> = (0..256u64)
                        .map(|i| {
                            let n = round * 256 + i;
                            (
                                Uuid::new_v4(),
                                vec![(n % 10_000) as u32, ((n + 5_000) % 10_000) as u32],
                            )
                        })
                        .collect();
                    let sends = holds.iter().map(|(hold_id, positions)| {
                        addr.send(HoldSeats {
                            hold_id: *hold_id,
                            positions: positions.clone(),
                        })
                    });
                    let _ = futures_util::future::join_all(sends).await;
                    for (hold_id, positions) in holds {
                        addr.do_send(ChangeSeats {
                            hold_id,
                            positions,
                            change: SeatChange::Release,
                        });
                    }
                }
                let elapsed = started.elapsed();
                elapsed.max(Duration::from_nanos(1))
            })
        });
    });
    group.finish();
}

criterion_group!(benches, seat_board, section_actor);
criterion_main!(benches);
