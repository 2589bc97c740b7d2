//! The throughput ceiling of a stage list on this machine, by the model of
//! a chunked pipeline (`docs/performance.md`, "Sync vs async, and its
//! targets"):
//! each input byte costs, on one core, the sum of the per-byte costs of
//! everything done to it — the page-cache read, each transform, the cipher
//! and the page-cache write on the bytes the transforms left, the
//! whole-file checksum on the original — and N cores share that work
//! perfectly, so
//!
//! ```text
//! ceiling MB/s = N × 1000 / Σ ns per input byte
//! ```
//!
//! Everything is timed here, single-threaded, with the library's own stages
//! on the given file in chunks of the pipeline's size: the same crates and
//! versions the pipeline runs, so the ceiling moves with them. Per-chunk
//! overhead (channel hops, permits, allocation) and durability (fsync) are
//! left out, as in the model; a pipeline that reaches 90% of this has
//! little left to win without faster codecs.
//!
//! ```sh
//! cargo run --release --example stage_costs -- FILE zstd:3,aes-256-gcm,sha256 [CORES] [CHUNK_BYTES]
//! ```
//!
//! Prints a table on stderr and one JSON object on stdout (read by
//! `benches/sync_vs_async.sh`). Each cost is the fastest of 3 passes (the
//! least disturbed by anything else on the machine).

use std::fs::File;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use syncpipe::cipher::{chunk_nonce, ChunkCipher};
use syncpipe::stage::ChunkInfo;
use syncpipe::stages::parse_stages;

const PASSES: usize = 3;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stage_costs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The fastest of `PASSES` runs of `f`.
fn best(mut f: impl FnMut() -> syncpipe::Result<()>) -> syncpipe::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..PASSES {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed());
    }
    Ok(best)
}

fn run() -> syncpipe::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, spec) = match (args.first(), args.get(1)) {
        (Some(p), Some(s)) => (p.as_str(), s.as_str()),
        _ => {
            return Err(syncpipe::Error::usage(
                "usage: stage_costs FILE STAGES [CORES] [CHUNK_BYTES]",
            ))
        }
    };
    let cores: usize = match args.get(2) {
        Some(c) => c
            .parse()
            .map_err(|_| syncpipe::Error::usage("CORES must be a number"))?,
        None => num_cpus::get(),
    };
    let chunk: usize = match args.get(3) {
        Some(c) => c
            .parse()
            .map_err(|_| syncpipe::Error::usage("CHUNK_BYTES must be a number"))?,
        None => 1 << 20,
    };
    let stages = parse_stages(spec)?;
    let transforms = stages
        .transforms
        .iter()
        .map(|t| t.build())
        .collect::<syncpipe::Result<Vec<_>>>()?;

    // The page-cache read, in chunks, the way the reader does it (the
    // first pass also brings the file into the cache).
    let mut data = Vec::new();
    let read = best(|| {
        let mut f = File::open(path).map_err(syncpipe::Error::io)?;
        data.clear();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = f.read(&mut buf).map_err(syncpipe::Error::io)?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        Ok(())
    })?;
    let input = data.len() as f64;
    if data.is_empty() {
        return Err(syncpipe::Error::usage("the file is empty"));
    }
    let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
    let limit = syncpipe::format::max_payload(chunk);

    // Each transform on the previous one's output, as the chain runs it;
    // a chunk the compressor cannot shrink is stored as it came (the
    // engine's skip rule), so later stages see that.
    let mut costs: Vec<(String, Duration)> = vec![("read".into(), read)];
    let mut current: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
    for (t, spec) in transforms.iter().zip(&stages.transforms) {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let took = best(|| {
            out = Vec::with_capacity(current.len());
            for (i, c) in current.iter().enumerate() {
                let info = ChunkInfo {
                    index: i as u64,
                    last: i + 1 == current.len(),
                    limit,
                };
                let mut o = Vec::with_capacity(c.len());
                t.forward(&info, c, &mut o)?;
                out.push(o);
            }
            Ok(())
        })?;
        costs.push((spec.to_string(), took));
        current = current
            .into_iter()
            .zip(out)
            .map(|(before, after)| {
                if t.skip_if_larger() && after.len() >= before.len() {
                    before
                } else {
                    after
                }
            })
            .collect();
    }
    let transformed: usize = current.iter().map(Vec::len).sum();

    if let Some(kind) = stages.cipher {
        let cipher = ChunkCipher::new(kind, &[7u8; 32]);
        let took = best(|| {
            for (i, c) in current.iter().enumerate() {
                let mut buf = c.clone();
                cipher.seal(
                    chunk_nonce(i as u64, i + 1 == current.len()),
                    b"head",
                    &mut buf,
                )?;
            }
            Ok(())
        })?;
        // The clone is the engine's copy into its buffer too; small
        // against the cipher, and charged to it here.
        costs.push((kind.name().to_string(), took));
    }
    if let Some(kind) = stages.checksum {
        let took = best(|| {
            let mut h = kind.hasher();
            for c in &chunks {
                h.update(c);
            }
            std::hint::black_box(h.finalize());
            Ok(())
        })?;
        costs.push((kind.name().to_string(), took));
    }

    // The page-cache write of what the pipeline would write (no fsync: the
    // model's write is the copy into the cache; durability is a separate
    // cost the peers do not pay either).
    let dir = tempfile::tempdir_in(".").map_err(syncpipe::Error::io)?;
    let target = dir.path().join("out");
    let write = best(|| {
        let mut f = File::create(&target).map_err(syncpipe::Error::io)?;
        for c in &current {
            f.write_all(c).map_err(syncpipe::Error::io)?;
        }
        Ok(())
    })?;
    costs.push(("write".into(), write));

    let total_ns: f64 = costs.iter().map(|(_, d)| d.as_nanos() as f64).sum();
    let ns_per_byte = total_ns / input;
    let ceiling = cores as f64 * 1000.0 / ns_per_byte;
    eprintln!(
        "stage costs of {spec} on {path} ({} bytes, {} KiB chunks, ratio {:.3}), one core, fastest of {PASSES}:",
        data.len(),
        chunk >> 10,
        input / transformed.max(1) as f64
    );
    for (name, d) in &costs {
        let ns = d.as_nanos() as f64;
        eprintln!(
            "  {name:<20} {:>7.3} ns per input byte  {:>5.1}%",
            ns / input,
            100.0 * ns / total_ns
        );
    }
    eprintln!(
        "  {:<20} {ns_per_byte:>7.3} ns per input byte: ceiling on {cores} cores {ceiling:.0} MB/s",
        "sum"
    );
    let parts: Vec<serde_json::Value> = costs
        .iter()
        .map(|(name, d)| serde_json::json!({"stage": name, "ns_per_byte": d.as_nanos() as f64 / input}))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "stages": spec,
            "bytes": data.len(),
            "chunk_size": chunk,
            "ratio": input / transformed.max(1) as f64,
            "cores": cores,
            "costs": parts,
            "ns_per_byte": ns_per_byte,
            "ceiling_mb_per_s": ceiling,
        })
    );
    Ok(())
}
