//! The naive batch, kept as a baseline for `benches/scenario_memory.sh`:
//! read every file whole into memory (`std::fs::read`), one thread per
//! file, all files at once, then compress each buffer with the library.
//! Its peak RSS grows with the sum of the file sizes; `syncpipe process`
//! streams the same files through a few reused chunk buffers instead.
//!
//! Run: `cargo run --release --example whole_file -- [--stages SPEC] OUTDIR FILE...`
//! (writes OUTDIR/NAME.spipe for each FILE; the containers are the ones
//! `syncpipe process -s SPEC` writes, so `syncpipe restore` reads them).
//! Stages default to `zstd:3,blake3`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread;

use syncpipe::stages::parse_stages;
use syncpipe::Pipeline;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut spec = "zstd:3,blake3".to_string();
    if args.first().map(String::as_str) == Some("--stages") {
        if args.len() < 2 {
            return Err("--stages needs a value".into());
        }
        spec = args.remove(1);
        args.remove(0);
    }
    if args.len() < 2 {
        return Err("usage: whole_file [--stages SPEC] OUTDIR FILE...".into());
    }
    let out_dir = PathBuf::from(args.remove(0));
    std::fs::create_dir_all(&out_dir)?;
    let pipeline = Pipeline::builder().stages(parse_stages(&spec)?).build()?;

    // One thread per file, all started at once: every file is in memory at
    // the same time, which is the point of the baseline.
    let results: Vec<Result<u64, String>> = thread::scope(|s| {
        let handles: Vec<_> = args
            .iter()
            .map(|input| {
                let pipeline = &pipeline;
                let out_dir = &out_dir;
                s.spawn(move || compress_whole(pipeline, Path::new(input), out_dir))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect()
    });
    let mut failed = 0;
    for (input, r) in args.iter().zip(results) {
        match r {
            Ok(n) => println!("{input}: {n} bytes read whole and compressed"),
            Err(e) => {
                eprintln!("{input}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} file(s) failed").into());
    }
    Ok(())
}

fn compress_whole(pipeline: &Pipeline, input: &Path, out_dir: &Path) -> Result<u64, String> {
    let data = std::fs::read(input).map_err(|e| e.to_string())?;
    let name = input.file_name().ok_or("input has no file name")?;
    let mut out_name = name.to_os_string();
    out_name.push(".spipe");
    let file = File::create(out_dir.join(out_name)).map_err(|e| e.to_string())?;
    let mut out = BufWriter::new(file);
    pipeline
        .run(&data[..], &mut out)
        .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(data.len() as u64)
}
