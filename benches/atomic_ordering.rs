//! What an atomic counter costs under each memory ordering:
//! `cargo bench --bench atomic_ordering -- --warm-up-time 1 --measurement-time 3`.
//!
//! The metrics count with `Ordering::Relaxed` (see `src/metrics.rs`). This
//! bench shows what the stronger orderings would cost, so the choice is a
//! measured one (results and the explanation: `docs/metrics.md`):
//!
//! - `fetch_add/uncontended/{relaxed,acqrel,seqcst}`: one thread, one counter.
//! - `fetch_add/contended/{relaxed,acqrel,seqcst}`: two threads hammering
//!   the same counter (its cache line bounces between the cores).
//! - `fetch_add/sharded/relaxed`: two threads, each with its own counter
//!   on its own cache line: the cost of contention, not of ordering.
//! - `store/{relaxed,release,seqcst}` and `load/{relaxed,acquire,seqcst}`:
//!   one thread; on x86-64 a SeqCst store is an `xchg` (a full barrier),
//!   the others are plain moves.
//!
//! Each iteration is `OPS` operations, so criterion's time per iteration
//! divided by `OPS` is the cost of one operation (the table in the docs is
//! per operation). The contended groups time `OPS` operations on each of
//! the two threads, started together behind a barrier.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Operations per iteration.
const OPS: u64 = 10_000;
/// Threads of the contended groups: the machine's 2 cores.
const THREADS: usize = 2;

const ORDERS: [(&str, Ordering); 3] = [
    ("relaxed", Ordering::Relaxed),
    ("acqrel", Ordering::AcqRel),
    ("seqcst", Ordering::SeqCst),
];

/// A counter alone on its cache line (128 bytes covers adjacent-line
/// prefetching too).
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_add/uncontended");
    g.throughput(Throughput::Elements(OPS));
    for (name, order) in ORDERS {
        let counter = AtomicU64::new(0);
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..OPS {
                    counter.fetch_add(black_box(1), order);
                }
            })
        });
    }
    g.finish();
}

/// Runs `OPS` increments on each of `THREADS` threads, `iters` times, and
/// returns the wall time of the increments only (spawning is outside it).
fn parallel(iters: u64, order: Ordering, shared: bool) -> Duration {
    let counters: Arc<Vec<Padded>> = Arc::new((0..THREADS).map(|_| Padded::default()).collect());
    let start = Arc::new(Barrier::new(THREADS + 1));
    let end = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (counters, start, end) = (counters.clone(), start.clone(), end.clone());
            thread::spawn(move || {
                let c = if shared { &counters[0] } else { &counters[t] };
                start.wait();
                for _ in 0..iters * OPS {
                    c.0.fetch_add(black_box(1), order);
                }
                end.wait();
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    end.wait();
    let elapsed = t0.elapsed();
    for h in handles {
        h.join().expect("bench thread");
    }
    elapsed
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_add/contended");
    // Every thread does OPS per iteration.
    g.throughput(Throughput::Elements(OPS * THREADS as u64));
    for (name, order) in ORDERS {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| parallel(iters, order, true))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("fetch_add/sharded");
    g.throughput(Throughput::Elements(OPS * THREADS as u64));
    g.bench_function("relaxed", |b| {
        b.iter_custom(|iters| parallel(iters, Ordering::Relaxed, false))
    });
    g.finish();
}

fn stores_and_loads(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(OPS));
    for (name, order) in [
        ("relaxed", Ordering::Relaxed),
        ("release", Ordering::Release),
        ("seqcst", Ordering::SeqCst),
    ] {
        let cell = AtomicU64::new(0);
        g.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..OPS {
                    cell.store(black_box(i), order);
                }
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("load");
    g.throughput(Throughput::Elements(OPS));
    for (name, order) in [
        ("relaxed", Ordering::Relaxed),
        ("acquire", Ordering::Acquire),
        ("seqcst", Ordering::SeqCst),
    ] {
        let cell = AtomicU64::new(7);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for _ in 0..OPS {
                    sum = sum.wrapping_add(black_box(&cell).load(order));
                }
                sum
            })
        });
    }
    g.finish();
}

criterion_group!(benches, uncontended, contended, stores_and_loads);
criterion_main!(benches);
