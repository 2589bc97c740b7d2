//! `syncpipe bench`: the flags of a sweep, the table on stdout, `--csv`,
//! `--json` and `--plot`. The measuring is `bench::run`'s; this file only
//! turns flags into a plan and rows into text.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::bench::{self, Axis, BenchPlan, Point, Row};
use crate::synthetic::{DataKind, Synthetic, DEFAULT_SEED};
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use syncpipe::storage;
use syncpipe::{limits as config, CancelToken, Error};

use crate::cli::{count, parse_size, Verbosity};
use crate::dashboard::Progress;
use crate::exit_code::ExitCode;
use crate::json_lines;
use crate::size;
use crate::telemetry::{parse_interval, rss, TelemetryArgs, DEFAULT_INTERVAL};

/// Default `--size` of generated data: 256 MiB, a few seconds per row on
/// two cores at the default stages, long enough for the rates to settle.
const DEFAULT_SIZE: u64 = 256 << 20;
/// Largest `--size`: the data is written to disk first.
const MAX_SIZE: u64 = 64 << 30;

/// The flags of `syncpipe bench`. Every sweep flag takes a comma list (or
/// is repeated); the rows are the cartesian product.
#[derive(ClapArgs, Debug)]
pub struct BenchArgs {
    /// Measure on this file. Without it, on generated data (--data, --size).
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["data", "size", "seed"])]
    input: Option<PathBuf>,
    /// Kind of generated data: `text` (lines of code/log words), `binary`
    /// (structured records), `random` (incompressible), `zeros`. [default: text]
    #[arg(long, value_name = "KIND")]
    data: Option<DataKind>,
    /// Bytes of generated data, e.g. `64MiB`, `1GiB` (written to a temp
    /// file first, so the reader reads a real file). [default: 256MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_data_size)]
    size: Option<u64>,
    /// Seed of the generated data (the same seed gives the same bytes).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Chunk sizes to sweep, e.g. `64KiB,256KiB,1MiB`. [default: 1MiB]
    #[arg(long, value_name = "SIZES", value_delimiter = ',', value_parser = parse_size)]
    chunk_size: Vec<usize>,
    /// Worker threads of the CPU pool to sweep, e.g. `1,2,4`; each 0-1024,
    /// 0 = one per core. [default: 0]
    #[arg(short = 'T', long, value_name = "N,…", value_delimiter = ',',
          value_parser = count(config::MAX_THREADS))]
    threads: Vec<usize>,
    /// CPU tokens (chunk jobs allowed to run at once) to sweep, e.g.
    /// `1,2,4`; 0 = the thread count. Tokens above the thread count add
    /// no parallelism: sweep -T with them. Each 0-1024. [default: 0]
    #[arg(long, value_name = "N,…", value_delimiter = ',',
          value_parser = count(config::MAX_TOKENS))]
    cpu_tokens: Vec<usize>,
    /// Channel depths to sweep, e.g. `1,4,16`; each 0-256, 0 = 4. [default: 0]
    #[arg(long, value_name = "N,…", value_delimiter = ',',
          value_parser = count(config::MAX_CHANNEL_DEPTH))]
    channel_depth: Vec<usize>,
    /// IO tokens (reads and writes in flight) to sweep, e.g. `1,4,12`;
    /// each 0-1024, 0 = 12. Without it, one value from the device under
    /// the input, as for process: nvme 24, ssd 12, hdd 4, 12 when it cannot
    /// tell (-v says what was found).
    #[arg(
        long,
        visible_alias = "io-qdepth",
        value_name = "N,…",
        value_delimiter = ',',
        value_parser = count(config::MAX_TOKENS)
    )]
    io_tokens: Vec<usize>,
    /// Stage lists to sweep, separated by `;` or given repeatedly, e.g.
    /// `-s 'lz4,blake3;zstd:3,aes-256-gcm,sha256'`. Encrypting lists run
    /// under a random key made for the run and kept in memory only.
    /// [default: zstd:3,blake3]
    #[arg(short, long, value_name = "LIST", value_delimiter = ';')]
    stages: Vec<String>,
    /// Runs per row, 1-99; the row shows the run of median wall time.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=bench::MAX_RUNS as u64))]
    runs: usize,
    /// Also write the rows as CSV to FILE (a regular file or a new one: a
    /// symlink, FIFO or device there is refused).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    csv: Option<PathBuf>,
    /// Also draw MB/s as an SVG line chart to FILE: x = the first swept
    /// setting (in the order chunk size, threads, CPU tokens, channel
    /// depth, IO tokens, stages), one line per value of the others.
    #[arg(long, value_name = "FILE.svg", value_hint = clap::ValueHint::FilePath)]
    plot: Option<PathBuf>,
    /// Folder for the generated input and the containers (each removed
    /// after use). [default: the system temp folder]
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    dir: Option<PathBuf>,
}

/// `--size`: 1 byte ..= 64 GiB.
fn parse_data_size(text: &str) -> Result<u64, String> {
    size::parse(text, 1, MAX_SIZE)
}

impl BenchArgs {
    fn plan(&self) -> BenchPlan {
        let or_default = |v: &[usize]| if v.is_empty() { vec![0] } else { v.to_vec() };
        let d = BenchPlan::default();
        BenchPlan {
            chunk_sizes: or_default(&self.chunk_size),
            threads: or_default(&self.threads),
            cpu_tokens: or_default(&self.cpu_tokens),
            channel_depths: or_default(&self.channel_depth),
            io_tokens: or_default(&self.io_tokens),
            stages: if self.stages.is_empty() {
                d.stages
            } else {
                self.stages.iter().map(|s| s.trim().to_string()).collect()
            },
            runs: self.runs,
        }
    }
}

/// Runs `syncpipe bench`. Exit code 0 when every row restored, 3 when one
/// did not; errors (usage 2, I/O 1, interrupted 130) come back as `Err`,
/// after their `error` and `summary` lines with `--json`.
pub fn run(
    args: &BenchArgs,
    telemetry: &TelemetryArgs,
    cancel: CancelToken,
    v: Verbosity,
    terminated: &AtomicBool,
) -> Result<ExitCode, Error> {
    let json = telemetry.json;
    let started = Instant::now();
    let mut sweep = Sweep {
        rows: 0,
        failed: 0,
        original_bytes: 0,
        input: String::new(),
    };
    let result = measure(args, telemetry, &cancel, v, &mut sweep);
    if json {
        let code = match &result {
            Ok(code) => *code as i32,
            Err(e) => {
                let code = ExitCode::of(e, terminated.load(Ordering::Relaxed)) as i32;
                emit(&json_lines::error("bench", e, code));
                code
            }
        };
        emit(&bench_summary(
            &sweep.input,
            sweep.original_bytes,
            sweep.rows,
            sweep.failed,
            started.elapsed(),
            code,
            rss().map(|r| r.1),
        ));
    }
    result
}

/// What the final summary reports.
struct Sweep {
    rows: usize,
    failed: usize,
    original_bytes: u64,
    input: String,
}

fn measure(
    args: &BenchArgs,
    telemetry: &TelemetryArgs,
    cancel: &CancelToken,
    v: Verbosity,
    sweep: &mut Sweep,
) -> Result<ExitCode, Error> {
    if telemetry.prometheus_file.is_some()
        || telemetry.metrics_listen.is_some()
        || !telemetry.metrics_labels.is_empty()
        || telemetry.metrics_linger.is_some()
    {
        return Err(Error::usage(
            "--prometheus-file, --metrics-listen, --metrics-label and --metrics-linger report \
             on process, restore and verify, not on bench (use --json or --csv)",
        ));
    }
    // bench draws no dashboard and sends no status lines (each row is a
    // short run of its own): refuse the flags that would ask for them.
    if telemetry.progress != Progress::Auto {
        return Err(Error::usage(
            "--progress draws the dashboard of process, restore and verify, not of bench \
             (bench prints one line per row)",
        ));
    }
    if parse_interval(DEFAULT_INTERVAL).ok() != Some(telemetry.metrics_interval) {
        return Err(Error::usage(
            "--metrics-interval paces the status lines of process, restore and verify; \
             bench reports per row (--json, --csv)",
        ));
    }
    // Before any work: a device, FIFO or symlink at a report path is
    // never written through or replaced.
    for (flag, path) in [("--csv", &args.csv), ("--plot", &args.plot)] {
        if let Some(p) = path {
            crate::textfile::check_target(flag, p)?;
        }
    }
    let mut plan = args.plan();
    plan.check()?;
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    // With --json, stdout carries the JSON lines only; the table goes to
    // stderr (and nowhere with -q).
    let json = telemetry.json;
    let mut table: Option<Box<dyn Write>> = match (v.quiet, json) {
        (true, _) => None,
        (false, true) => Some(Box::new(io::stderr())),
        (false, false) => Some(Box::new(io::stdout())),
    };
    let (generated, input) = match &args.input {
        Some(p) => (None, p.clone()),
        None => {
            let kind = args.data.unwrap_or_default();
            let size = args.size.unwrap_or(DEFAULT_SIZE);
            let seed = args.seed.unwrap_or(DEFAULT_SEED);
            sweep.input = match args.seed {
                Some(seed) => format!("{kind} data, {}, seed {seed}", size::format(size)),
                None => format!("{kind} data, {}", size::format(size)),
            };
            if !v.quiet {
                eprintln!(
                    "syncpipe: generating {} of {kind} data in {}",
                    size::format(size),
                    dir.display()
                );
            }
            let tmp = Synthetic::new(kind, seed, size).write_temp(&dir, cancel)?;
            let path = tmp.path().to_path_buf();
            (Some(tmp), path)
        }
    };
    if generated.is_none() {
        sweep.input = input.display().to_string();
        // The bench reads the file once per row: a directory or a pipe
        // would give nonsense (or hang), so only a regular file.
        let meta = fs::metadata(&input).map_err(|e| Error::io(e).with_path(&input))?;
        if !meta.is_file() {
            return Err(Error::usage("bench needs a regular file").with_path(&input));
        }
    }
    if args.io_tokens.is_empty() {
        // As process does: the IO tokens follow the device under the input
        // (12 when it cannot tell, which is the builder's own default).
        let found = storage::detect(&input);
        if let Some(kind) = found.kind {
            plan.io_tokens = vec![kind.io_tokens()];
        }
        if v.verbose {
            eprintln!(
                "syncpipe: storage {}: {}",
                found.kind.map_or("unknown", |k| k.name()),
                found.reason
            );
        }
    }
    let swept = plan.swept();
    let points = resolved(&plan)?;
    let fixed = fixed_settings(&points);
    if !v.quiet {
        let rows = plan.rows();
        eprintln!(
            "syncpipe: bench on {}: {rows} row{} × {} run{}; {fixed}",
            sweep.input,
            if rows == 1 { "" } else { "s" },
            plan.runs,
            if plan.runs == 1 { "" } else { "s" },
        );
    }
    let layout = Layout::new(&points);
    if let Some(out) = table.as_mut() {
        writeln!(out, "{}", layout.header())?;
        out.flush()?;
    }
    let mut csv = match &args.csv {
        Some(p) => {
            let mut f = crate::textfile::open_regular(p).map_err(|e| Error::io(e).with_path(p))?;
            writeln!(f, "{}", Row::csv_header()).map_err(|e| Error::io(e).with_path(p))?;
            Some((p, f))
        }
        None => None,
    };
    let total = plan.rows();
    let mut write_error: Option<Error> = None;
    let rows = bench::run(&plan, &input, &dir, cancel, |row| {
        sweep.rows += 1;
        sweep.original_bytes = row.original_bytes;
        if !row.ok() {
            sweep.failed += 1;
        }
        if let Some(out) = table.as_mut() {
            // A table that cannot be written (stdout closed) ends the
            // output, not the measurement: CSV, JSON and the plot go on.
            let _ = writeln!(out, "{}", layout.line(row)).and_then(|()| out.flush());
        }
        if v.verbose {
            // The table shows only the settings that vary; -v gives each
            // row whole, and where its time went.
            eprintln!(
                "syncpipe: row {}: {}; engine {:.3} s of {:.3} s (the rest: open, fsync, rename); \
                 {} chunks; restore {:.3} s",
                row.index,
                Axis::ALL
                    .into_iter()
                    .map(|a| format!("{} {}", a.name(), row.point.value(a)))
                    .collect::<Vec<_>>()
                    .join(", "),
                row.engine.as_secs_f64(),
                row.wall.as_secs_f64(),
                row.chunks,
                row.restore_wall.as_secs_f64(),
            );
        }
        if let Err(why) = &row.restored {
            eprintln!("syncpipe: row {}: {why}", row.index);
        }
        if let Some((p, f)) = csv.as_mut() {
            if let Err(e) = writeln!(f, "{}", row.csv()) {
                write_error.get_or_insert(Error::io(e).with_path(p.as_path()));
            }
        }
        if json {
            emit(&bench_row(row, total, plan.runs, &sweep.input));
        }
    })?;
    drop(generated);
    if let Some(e) = write_error {
        return Err(e);
    }
    if let Some(p) = &args.plot {
        let title = format!("syncpipe bench: {}", sweep.input);
        let svg = bench::chart(&rows, &swept, &title).to_svg();
        // Looked at again: the sweep may have taken minutes.
        crate::textfile::open_regular(p)
            .and_then(|mut f| f.write_all(svg.as_bytes()))
            .map_err(|e| Error::io(e).with_path(p))?;
    }
    if sweep.failed > 0 {
        eprintln!(
            "syncpipe: {} of {} rows did not restore to the input",
            sweep.failed, sweep.rows
        );
        return Ok(ExitCode::Integrity);
    }
    Ok(ExitCode::Success)
}

/// Every point of the plan as the rows will show it: zeros replaced by the
/// defaults they stand for, stage lists in canonical form.
fn resolved(plan: &BenchPlan) -> Result<Vec<Point>, Error> {
    plan.points().iter().map(Point::resolve).collect()
}

/// The axes whose resolved value differs between rows: the swept ones,
/// and those that follow them (CPU tokens default to the thread count).
fn varying(points: &[Point]) -> Vec<Axis> {
    Axis::ALL
        .into_iter()
        .filter(|&a| points.iter().any(|p| p.value(a) != points[0].value(a)))
        .collect()
}

/// `chunk size 1MiB, threads 2, …`: the settings every row shares.
fn fixed_settings(points: &[Point]) -> String {
    let varying = varying(points);
    let parts: Vec<String> = Axis::ALL
        .into_iter()
        .filter(|a| !varying.contains(a))
        .filter_map(|a| {
            points
                .first()
                .map(|p| format!("{} {}", a.title(), p.value(a)))
        })
        .collect();
    if parts.is_empty() {
        "every setting varies".to_string()
    } else {
        parts.join(", ")
    }
}

/// Column widths of the table: the settings that vary between rows (or
/// the stage list when none does), then fixed-width measurements.
struct Layout {
    params: Vec<(Axis, usize)>,
}

/// The measurement columns: title and width.
const MEASURES: [(&str, usize); 9] = [
    ("MB/s", 8),
    ("CPU s", 7),
    ("ratio", 7),
    ("p50 ms", 7),
    ("p95 ms", 7),
    ("p99 ms", 7),
    ("peak MiB", 8),
    ("restore MB/s", 12),
    ("restored", 8),
];

impl Layout {
    fn new(points: &[Point]) -> Layout {
        let mut shown = varying(points);
        if shown.is_empty() {
            shown.push(Axis::Stages);
        }
        let params = shown
            .into_iter()
            .map(|a| {
                let widest = points.iter().map(|p| p.value(a).len()).max().unwrap_or(0);
                (a, a.title().len().max(widest))
            })
            .collect();
        Layout { params }
    }

    fn header(&self) -> String {
        let mut cols: Vec<String> = self
            .params
            .iter()
            .map(|(a, w)| format!("{:<w$}", a.title()))
            .collect();
        cols.extend(MEASURES.iter().map(|(t, w)| format!("{t:>w$}")));
        cols.join("  ")
    }

    fn line(&self, r: &Row) -> String {
        let ms = |ns: u64| format!("{:.2}", ns as f64 / 1e6);
        let values = [
            format!("{:.1}", r.mb_per_s()),
            format!("{:.2}", r.cpu.as_secs_f64()),
            format!("{:.3}", r.ratio()),
            ms(r.chunk_cpu_ns[0]),
            ms(r.chunk_cpu_ns[1]),
            ms(r.chunk_cpu_ns[2]),
            format!("{:.1}", r.peak_chunk_bytes as f64 / (1u64 << 20) as f64),
            if r.ok() {
                format!("{:.1}", r.restore_mb_per_s())
            } else {
                "-".to_string()
            },
            if r.ok() { "ok" } else { "FAILED" }.to_string(),
        ];
        let mut cols: Vec<String> = self
            .params
            .iter()
            .map(|(a, w)| format!("{:<w$}", r.point.value(*a)))
            .collect();
        cols.extend(
            values
                .iter()
                .zip(MEASURES)
                .map(|(v, (_, w))| format!("{v:>w$}")),
        );
        cols.join("  ")
    }
}

/// A `bench_row` line: one row of `syncpipe bench`, as it finishes.
pub fn bench_row(row: &Row, rows: usize, runs: usize, input: &str) -> Value {
    let p = &row.point;
    json!({
        "message_type": "bench_row",
        "schema_version": json_lines::SCHEMA_VERSION,
        "backend": "sync",
        "command": "bench",
        "input": input,
        "row": row.index,
        "rows": rows,
        "runs": runs,
        "chunk_size": p.chunk_size,
        "threads": p.threads,
        "cpu_tokens": p.cpu_tokens,
        "channel_depth": p.channel_depth,
        "io_tokens": p.io_tokens,
        "stages": p.stages,
        "original_bytes": row.original_bytes,
        "container_bytes": row.container_bytes,
        "ratio": row.ratio(),
        "wall_s": row.wall.as_secs_f64(),
        "engine_s": row.engine.as_secs_f64(),
        "mb_per_s": row.mb_per_s(),
        "cpu_s": row.cpu.as_secs_f64(),
        "chunks": row.chunks,
        "latency_ns": {
            "chunk_cpu": {
                "p50": row.chunk_cpu_ns[0],
                "p95": row.chunk_cpu_ns[1],
                "p99": row.chunk_cpu_ns[2],
            },
        },
        "peak_chunk_bytes": row.peak_chunk_bytes,
        "restore_s": row.restore_wall.as_secs_f64(),
        "restore_mb_per_s": row.restore_mb_per_s(),
        "restored": row.ok(),
        "error": row.restored.as_ref().err(),
    })
}

/// The `summary` line of `syncpipe bench`, last of its `--json` output.
pub fn bench_summary(
    input: &str,
    original_bytes: u64,
    rows: usize,
    rows_failed: usize,
    elapsed: Duration,
    exit_code: i32,
    rss_peak: Option<u64>,
) -> Value {
    json!({
        "message_type": "summary",
        "schema_version": json_lines::SCHEMA_VERSION,
        "version": env!("CARGO_PKG_VERSION"),
        "backend": "sync",
        "command": "bench",
        "exit_code": exit_code,
        "input": input,
        "original_bytes": original_bytes,
        "rows": rows,
        "rows_failed": rows_failed,
        "elapsed_s": elapsed.as_secs_f64(),
        "rss_peak_bytes": rss_peak,
    })
}

/// One JSON line on stdout; a closed stdout does not stop the sweep's
/// cleanup: the run ends by SIGPIPE once it is over (`cli::run`).
fn emit(v: &serde_json::Value) {
    let mut out = io::stdout().lock();
    let written = writeln!(out, "{v}").and_then(|()| out.flush());
    if written.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
        crate::signals::note_broken_stdout();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_sizes_parse() {
        assert_eq!(parse_data_size("1000"), Ok(1000));
        assert_eq!(parse_data_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_data_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_data_size("2G"), Ok(2 << 30));
        for bad in ["0", "65GiB", "1TiB", "x", ""] {
            assert!(parse_data_size(bad).is_err(), "{bad}");
        }
    }
}
