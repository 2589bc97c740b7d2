//! Embedding syncpipe in a synchronous program: compress + checksum a file
//! through `std::io` traits, then restore it, with no async runtime.
//!
//! Run: `cargo run --release --example embed -- [FILE]` (defaults to this
//! example's own source).

use std::fs::File;
use std::io::{self, BufReader, Write};

use syncpipe::stages::parse_stages;
use syncpipe::Pipeline;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/embed.rs").to_string());

    let pipeline = Pipeline::builder()
        .stages(parse_stages("zstd:3,blake3")?)
        .chunk_size(256 << 10)
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

    // 2. The same through `ParWriter`, for code that produces data by
    //    writing: it batches writes into chunks and runs them in parallel.
    let mut w = pipeline.par_writer(Vec::new());
    io::copy(&mut File::open(&path)?, &mut w)?;
    w.flush()?;
    let again = w.finish()?;
    assert_eq!(again, container, "both paths give the same container");

    // 3. Restore and check.
    let mut restored = Vec::new();
    pipeline.restore(&container[..], &mut restored)?;
    assert_eq!(restored, std::fs::read(&path)?);
    println!("restored {} bytes, identical", restored.len());
    Ok(())
}
