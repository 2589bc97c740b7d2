//! Embedding syncpipe in a synchronous program, the way zstd-rs is used:
//! `std::io` in and out, parallel inside, no async runtime.
//!
//! Run: `cargo run --release --example embed -- [FILE]` (defaults to this
//! example's own source).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use syncpipe::{parse_stages, ErrorKind, Overwrite, Pipeline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/embed.rs").to_string());
    let original = std::fs::read(&path)?;

    let pipeline = Pipeline::builder()
        .stages(parse_stages("zstd:3,blake3")?)
        .chunk_size(64 << 10)
        .build()?;

    // 1. A `Read` into a `Write`: the whole file, streamed chunk by chunk.
    let mut container = Vec::new();
    let report = pipeline.run(BufReader::new(File::open(&path)?), &mut container)?;
    println!(
        "{path}: {} -> {} bytes in {} chunks, blake3 {}",
        report.bytes_in,
        report.bytes_out,
        report.chunks,
        report.digest_hex().unwrap_or_default()
    );

    // 2. Compress through `ParWriter` over a borrowed `&mut Vec<u8>` (any
    //    `Write`, `Send` or not): writes are batched into chunks that run
    //    in parallel, the container comes out on this thread.
    let mut again = Vec::new();
    {
        let mut w = pipeline.par_writer(&mut again);
        io::copy(&mut File::open(&path)?, &mut w)?;
        w.finish()?;
    }
    assert_eq!(again, container, "both paths give the same container");

    // 3. Restore through `impl Read`: `ParReader` decodes in parallel while
    //    this thread reads, like zstd's `Decoder`.
    let mut restored = Vec::new();
    pipeline
        .par_reader(&container[..])
        .read_to_end(&mut restored)?;
    assert_eq!(restored, original);
    println!(
        "restored {} bytes through ParReader, identical",
        restored.len()
    );

    // 4. Errors convert to `io::Error` for `io::Result` code, keeping the
    //    kind: a damaged container is `InvalidData`.
    let mut damaged = container.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 1;
    let err = pipeline
        .par_reader(&damaged[..])
        .read_to_end(&mut Vec::new())
        .expect_err("a flipped bit is found");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    println!("a flipped bit: {err}");

    // 5. Files: written through a temp file, renamed only when complete;
    //    an existing output is refused unless `Overwrite::Replace`.
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("copy.spipe");
    pipeline.process_path(path.as_ref(), &out, Overwrite::Refuse)?;
    let refused = pipeline
        .process_path(path.as_ref(), &out, Overwrite::Refuse)
        .expect_err("the output exists now");
    assert_eq!(refused.kind(), ErrorKind::Usage);
    pipeline.process_path(path.as_ref(), &out, Overwrite::Replace)?;

    // 6. Many pipelines share one CPU pool: fifty of them, built with the
    //    defaults, start one thread per core between them, not fifty pools.
    let many: Vec<Pipeline> = (0..50)
        .map(|_| Pipeline::builder().build())
        .collect::<Result<_, _>>()?;
    for p in &many {
        p.run(&original[..], io::sink())?;
    }
    let pool_threads = threads_named("syncpipe-cpu");
    println!("50 pipelines: {pool_threads} CPU pool threads");
    assert!(
        pool_threads <= 2 * num_cores(),
        "{pool_threads} pool threads"
    );
    io::stdout().flush()?;
    Ok(())
}

/// Threads of this process whose name starts with `prefix` (Linux).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| t.ok())
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
