//! In-memory throughput of the engine: `cargo bench --bench throughput`.
//!
//! No file I/O: the input is a deterministic ~32 MiB buffer of mixed
//! compressible and incompressible data built once (outside every timed
//! closure), and the output goes to `std::io::sink()`. Each group is one
//! stage list; `threads/1` is the baseline and `threads/2`, `threads/4` sit
//! beside it, so criterion's per-group report shows the scaling directly.
//!
//! Groups:
//! - `process/passthrough`, `process/zstd:3`, `process/lz4`,
//!   `process/zstd:3,blake3`: threads 1, 2, 4 (1 MiB chunks);
//! - `restore/zstd:3`: threads 1, 2, 4, restoring a container made once;
//! - `chunk-size/zstd:3,T2`: 256 KiB, 1 MiB, 4 MiB chunks at 2 threads;
//! - `spawn-style/…,T2`: rayon tasks against dedicated threads
//!   (`SpawnStyle`), for zstd:3 and lz4 with 1 MiB chunks and lz4 and
//!   passthrough with 64 KiB chunks.
//!
//! Throughput is in bytes of original data (MB/s of input for process,
//! of restored output for restore). Samples are few and short (flat
//! sampling, 10 samples, 1 s warm-up, 3 s measurement) so the whole run
//! takes about 2 minutes on 2 cores plus the build; for numbers comparable
//! with the peer tools (files, page cache, CLI) use `benches/compare.sh`.
//!
//! Knobs (environment): `SYNCPIPE_BENCH_MIB` (input size, default 32),
//! `SYNCPIPE_BENCH_SECS` (measurement seconds per benchmark, default 3).
//! Criterion's own flags work too, e.g.
//! `cargo bench --bench throughput -- 'process/zstd:3/'` to run one group.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use syncpipe::stages::parse_stages;
use syncpipe::{Pipeline, SpawnStyle};

const MIB: usize = 1 << 20;
/// Stage lists measured for `process`, each in its own group.
const STAGE_LISTS: [&str; 4] = ["passthrough", "zstd:3", "lz4", "zstd:3,blake3"];
/// Thread counts in every scaling group; the first is the baseline.
const THREADS: [usize; 3] = [1, 2, 4];
/// Chunk sizes compared for zstd:3 at 2 threads.
const CHUNK_SIZES: [(usize, &str); 3] = [(256 << 10, "256KiB"), (MIB, "1MiB"), (4 * MIB, "4MiB")];

/// xorshift64: deterministic, no extra crates.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `len` bytes of mixed data in 64 KiB blocks, shuffled by the generator:
/// about 20% incompressible noise (like already-compressed files), 45%
/// text-like words drawn with a skew from a small vocabulary, 35%
/// structured binary records (counters, small fields, repeated tags). zstd:3
/// in 1 MiB chunks gets a ratio of 2.43 on 32 MiB of it (printed at the start),
/// near the 2.5 of `mixed.bin` in the peer benchmarks.
fn mixed_input(len: usize) -> Vec<u8> {
    const BLOCK: usize = 64 << 10;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let vocab: Vec<Vec<u8>> = (0..256)
        .map(|_| {
            let n = 2 + (rng.next() % 9) as usize;
            (0..n).map(|_| b'a' + (rng.next() % 26) as u8).collect()
        })
        .collect();
    let tags: [&[u8; 8]; 4] = [
        b"OK\0\0\0\0\0\0",
        b"WARN\0\0\0\0",
        b"ERR\0\0\0\0\0",
        b"DEBUG\0\0\0",
    ];
    let mut out = Vec::with_capacity(len + BLOCK);
    let mut counter: u32 = 0;
    while out.len() < len {
        let end = out.len() + BLOCK;
        match rng.next() % 20 {
            0..=3 => {
                while out.len() < end {
                    out.extend_from_slice(&rng.next().to_le_bytes());
                }
            }
            4..=12 => {
                while out.len() < end {
                    let r = rng.next();
                    // min of two uniform draws: common words come up often
                    let i = ((r & 0xff).min((r >> 8) & 0xff)) as usize;
                    out.extend_from_slice(&vocab[i]);
                    out.push(match (r >> 20) % 16 {
                        0 => b'\n',
                        1 => b',',
                        _ => b' ',
                    });
                }
            }
            _ => {
                while out.len() < end {
                    let r = rng.next();
                    counter = counter.wrapping_add(1);
                    out.extend_from_slice(&counter.to_le_bytes());
                    out.extend_from_slice(&((r % 1000) as u32).to_le_bytes());
                    out.extend_from_slice(tags[(r >> 32) as usize % 4]);
                }
            }
        }
        out.truncate(end);
    }
    out.truncate(len);
    out
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn pipeline(stages: &str, threads: usize, chunk_size: usize) -> Pipeline {
    styled(stages, threads, chunk_size, SpawnStyle::Rayon)
}

fn styled(stages: &str, threads: usize, chunk_size: usize, style: SpawnStyle) -> Pipeline {
    Pipeline::builder()
        .stages(parse_stages(stages).expect("valid stage list"))
        .threads(threads)
        .chunk_size(chunk_size)
        .spawn_style(style)
        .build()
        .expect("pipeline builds")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize, secs: u64) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(secs))
        .throughput(Throughput::Bytes(bytes as u64));
}

fn benches(c: &mut Criterion) {
    let size = env_usize("SYNCPIPE_BENCH_MIB", 32) * MIB;
    let secs = env_usize("SYNCPIPE_BENCH_SECS", 3) as u64;
    let input = mixed_input(size);

    // The zstd:3 container: restored below, and its size gives the ratio
    // printed once so that runs on different inputs can be told apart.
    let mut container = Vec::with_capacity(size);
    pipeline("zstd:3", 2, MIB)
        .run(&input[..], &mut container)
        .expect("process");
    eprintln!(
        "input: {} bytes of mixed data; zstd:3 container {} bytes (ratio {:.3})",
        input.len(),
        container.len(),
        input.len() as f64 / container.len() as f64
    );

    for stages in STAGE_LISTS {
        let mut group = c.benchmark_group(format!("process/{stages}"));
        configure(&mut group, input.len(), secs);
        for threads in THREADS {
            let p = pipeline(stages, threads, MIB);
            group.bench_with_input(BenchmarkId::new("threads", threads), &input, |b, input| {
                b.iter(|| black_box(p.run(&input[..], io::sink()).expect("process")));
            });
        }
        group.finish();
    }

    {
        let mut group = c.benchmark_group("restore/zstd:3");
        configure(&mut group, input.len(), secs);
        for threads in THREADS {
            let p = pipeline("zstd:3", threads, MIB);
            let back = p.restore(&container[..], io::sink()).expect("restore");
            assert_eq!(back.bytes_out, input.len() as u64, "restore round trip");
            group.bench_with_input(
                BenchmarkId::new("threads", threads),
                &container,
                |b, container| {
                    b.iter(|| black_box(p.restore(&container[..], io::sink()).expect("restore")));
                },
            );
        }
        group.finish();
    }

    {
        let mut group = c.benchmark_group("chunk-size/zstd:3,T2");
        configure(&mut group, input.len(), secs);
        for (chunk_size, label) in CHUNK_SIZES {
            let p = pipeline("zstd:3", 2, chunk_size);
            group.bench_with_input(BenchmarkId::from_parameter(label), &input, |b, input| {
                b.iter(|| black_box(p.run(&input[..], io::sink()).expect("process")));
            });
        }
        group.finish();
    }

    // Spawn styles at 2 threads: rayon tasks against dedicated threads per
    // run, with 1 MiB chunks (the work dominates) and 64 KiB chunks (the
    // per-chunk hand-off shows).
    for (stages, chunk_size, label) in [
        ("zstd:3", MIB, "zstd:3,1MiB"),
        ("lz4", MIB, "lz4,1MiB"),
        ("lz4", 64 << 10, "lz4,64KiB"),
        ("passthrough", 64 << 10, "passthrough,64KiB"),
    ] {
        let mut group = c.benchmark_group(format!("spawn-style/{label},T2"));
        configure(&mut group, input.len(), secs);
        for (style, name) in [
            (SpawnStyle::Rayon, "rayon"),
            (SpawnStyle::Threads, "threads"),
        ] {
            let p = styled(stages, 2, chunk_size, style);
            group.bench_with_input(BenchmarkId::from_parameter(name), &input, |b, input| {
                b.iter(|| black_box(p.run(&input[..], io::sink()).expect("process")));
            });
        }
        group.finish();
    }
}

criterion_group!(throughput, benches);
criterion_main!(throughput);
