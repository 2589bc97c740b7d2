//! Benchmark sweeps: the real pipeline ([`Pipeline::process_path`], then
//! [`Pipeline::restore`]) run over the cartesian product of settings, one
//! measured [`Row`] per combination. `syncpipe bench` is a front end to
//! [`run`].
//!
//! Each row:
//!
//! 1. builds a pipeline for its settings (outside the timing),
//! 2. processes the input file into a container on disk, timed: wall time
//!    of the whole `process_path` call (temp file, fsync and rename
//!    included, as `syncpipe process` pays them), CPU time of the process
//!    from `getrusage(RUSAGE_SELF)` deltas (every thread: reader, pool,
//!    writer), the chunk CPU-time percentiles from a fresh [`Metrics`]
//!    (collecting them costs little, see "Metrics overhead" in
//!    `docs/performance.md`), and the peak chunk-buffer bytes of the
//!    [`syncpipe::Report`];
//! 3. with `runs` > 1 repeats step 2 and keeps the run of median wall time;
//! 4. restores the last container into a BLAKE3 hasher (streaming, nothing
//!    held in memory) and compares the digest and length with the input's:
//!    a row whose container does not restore to the input is *failed*, and
//!    the sweep goes on;
//! 5. deletes the container.
//!
//! The containers are written in the given work folder under a temp name
//! (`.bench-container.syncpipe-tmp.…`), removed after each row and when
//! [`run`] returns (also on an error or a cancel).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plot::{LineChart, Series};
use crate::size;
use syncpipe::limits::DEFAULT_STAGES;
use syncpipe::limits::KEY_LEN;
use syncpipe::metrics::{Family, Metrics};
use syncpipe::stages::{parse_stages, Stages};
use syncpipe::Pipeline;
use syncpipe::PipelineBuilder;
use syncpipe::Secret;
use syncpipe::{CancelToken, Overwrite};
use syncpipe::{Error, ErrorKind, Result};

/// Most rows a sweep may have: 256 rows of a 256 MiB input already take
/// many minutes; a larger product is more likely a typo than a plan.
pub const MAX_ROWS: usize = 256;
/// Most repetitions of one row.
pub const MAX_RUNS: usize = 99;

/// A setting a sweep can vary. Listed (and nested, first outermost) in the
/// order of [`Axis::ALL`]; the plot's x axis is the first swept one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// Bytes per chunk.
    ChunkSize,
    /// Threads of the CPU pool (workers).
    Threads,
    /// CPU tokens: chunk jobs allowed to run at once.
    CpuTokens,
    /// Depth of the bounded channels.
    ChannelDepth,
    /// IO tokens: reads and writes in flight at once.
    IoTokens,
    /// The stage list.
    Stages,
}

impl Axis {
    /// Every axis, in nesting order.
    pub const ALL: [Axis; 6] = [
        Axis::ChunkSize,
        Axis::Threads,
        Axis::CpuTokens,
        Axis::ChannelDepth,
        Axis::IoTokens,
        Axis::Stages,
    ];

    /// The column name in CSV and JSON: `chunk_size`, `threads`, …
    pub fn name(self) -> &'static str {
        match self {
            Axis::ChunkSize => "chunk_size",
            Axis::Threads => "threads",
            Axis::CpuTokens => "cpu_tokens",
            Axis::ChannelDepth => "channel_depth",
            Axis::IoTokens => "io_tokens",
            Axis::Stages => "stages",
        }
    }

    /// The name for people: `chunk size`, `CPU tokens`, …
    pub fn title(self) -> &'static str {
        match self {
            Axis::ChunkSize => "chunk size",
            Axis::Threads => "threads",
            Axis::CpuTokens => "CPU tokens",
            Axis::ChannelDepth => "channel depth",
            Axis::IoTokens => "IO tokens",
            Axis::Stages => "stages",
        }
    }
}

/// One combination of settings. Numbers at 0 mean the builder's default
/// (in a [`Row`] they are resolved to the value used).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Point {
    /// Bytes per chunk.
    pub chunk_size: usize,
    /// Threads of the CPU pool.
    pub threads: usize,
    /// CPU tokens.
    pub cpu_tokens: usize,
    /// Channel depth.
    pub channel_depth: usize,
    /// IO tokens.
    pub io_tokens: usize,
    /// Stage list, e.g. `zstd:3,blake3`.
    pub stages: String,
}

impl Point {
    /// The value of `axis`, as a table shows it (`256KiB`, `4`, `zstd:3,blake3`).
    pub fn value(&self, axis: Axis) -> String {
        match axis {
            Axis::ChunkSize => size::format(self.chunk_size as u64),
            Axis::Threads => self.threads.to_string(),
            Axis::CpuTokens => self.cpu_tokens.to_string(),
            Axis::ChannelDepth => self.channel_depth.to_string(),
            Axis::IoTokens => self.io_tokens.to_string(),
            Axis::Stages => self.stages.clone(),
        }
    }

    /// The settings a pipeline runs this point with: zeros replaced by
    /// the defaults they stand for, the stage list in canonical form.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Usage`] for settings the builder refuses.
    pub fn resolve(&self) -> Result<Point> {
        let stages = parse_stages(&self.stages)?;
        let canonical = stages.to_string();
        // The key only satisfies the cipher check: nothing is encrypted.
        let pipeline = self
            .builder(stages)
            .secret(Secret::key(&[0u8; KEY_LEN])?)
            .build()?;
        let cfg = pipeline.config();
        Ok(Point {
            chunk_size: cfg.chunk_size,
            threads: cfg.threads,
            cpu_tokens: cfg.cpu_tokens,
            channel_depth: cfg.channel_depth,
            io_tokens: cfg.io_tokens,
            stages: canonical,
        })
    }

    fn builder(&self, stages: Stages) -> PipelineBuilder {
        Pipeline::builder()
            .stages(stages)
            .chunk_size(self.chunk_size)
            .threads(self.threads)
            .cpu_tokens(self.cpu_tokens)
            .channel_depth(self.channel_depth)
            .io_tokens(self.io_tokens)
    }
}

/// What to sweep: the values of each axis (one value: not swept) and how
/// many times to run each row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchPlan {
    /// Chunk sizes in bytes (0: the default, 1 MiB).
    pub chunk_sizes: Vec<usize>,
    /// Pool threads (0: one per core).
    pub threads: Vec<usize>,
    /// CPU tokens (0: the thread count).
    pub cpu_tokens: Vec<usize>,
    /// Channel depths (0: 4).
    pub channel_depths: Vec<usize>,
    /// IO tokens (0: 12, the SSD default; no storage detection).
    pub io_tokens: Vec<usize>,
    /// Stage lists.
    pub stages: Vec<String>,
    /// Runs per row; the row reports the run of median wall time (the
    /// slower of the two middle ones for an even count).
    pub runs: usize,
}

impl Default for BenchPlan {
    /// One row at the pipeline's defaults, one run.
    fn default() -> Self {
        BenchPlan {
            chunk_sizes: vec![0],
            threads: vec![0],
            cpu_tokens: vec![0],
            channel_depths: vec![0],
            io_tokens: vec![0],
            stages: vec![DEFAULT_STAGES.to_string()],
            runs: 1,
        }
    }
}

impl BenchPlan {
    fn len_of(&self, axis: Axis) -> usize {
        match axis {
            Axis::ChunkSize => self.chunk_sizes.len(),
            Axis::Threads => self.threads.len(),
            Axis::CpuTokens => self.cpu_tokens.len(),
            Axis::ChannelDepth => self.channel_depths.len(),
            Axis::IoTokens => self.io_tokens.len(),
            Axis::Stages => self.stages.len(),
        }
    }

    /// The axes with more than one value, in [`Axis::ALL`] order.
    pub fn swept(&self) -> Vec<Axis> {
        Axis::ALL
            .into_iter()
            .filter(|&a| self.len_of(a) > 1)
            .collect()
    }

    /// Number of rows: the product of the axes' lengths (saturating).
    pub fn rows(&self) -> usize {
        Axis::ALL
            .into_iter()
            .fold(1usize, |n, a| n.saturating_mul(self.len_of(a)))
    }

    /// Every combination, the first axis of [`Axis::ALL`] outermost.
    pub fn points(&self) -> Vec<Point> {
        let mut out = Vec::with_capacity(self.rows().min(MAX_ROWS));
        for &chunk_size in &self.chunk_sizes {
            for &threads in &self.threads {
                for &cpu_tokens in &self.cpu_tokens {
                    for &channel_depth in &self.channel_depths {
                        for &io_tokens in &self.io_tokens {
                            for stages in &self.stages {
                                out.push(Point {
                                    chunk_size,
                                    threads,
                                    cpu_tokens,
                                    channel_depth,
                                    io_tokens,
                                    stages: stages.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Checks the plan before anything runs.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Usage`]: an axis without values, more than
    /// [`MAX_ROWS`] rows, `runs` outside 1..=[`MAX_RUNS`], a stage list
    /// that does not parse, or settings the builder refuses (e.g. a chunk
    /// size over 64 MiB).
    pub fn check(&self) -> Result<()> {
        for axis in Axis::ALL {
            if self.len_of(axis) == 0 {
                return Err(Error::usage(format!("no value given for {}", axis.title())));
            }
        }
        let rows = self.rows();
        if rows > MAX_ROWS {
            return Err(Error::usage(format!(
                "the sweep has {rows} rows, more than the maximum of {MAX_ROWS}; \
                 sweep fewer values at once"
            )));
        }
        if self.runs == 0 || self.runs > MAX_RUNS {
            return Err(Error::usage(format!(
                "runs must be 1 to {MAX_RUNS}, not {}",
                self.runs
            )));
        }
        for s in &self.stages {
            parse_stages(s).map_err(|e| Error::usage(format!("stage list '{s}': {e}")))?;
        }
        // Building validates the rest (chunk size, …). The secret only
        // satisfies the cipher check; a 1-thread pool keeps this cheap.
        let dummy = Secret::key(&[0u8; KEY_LEN])?;
        for p in self.points() {
            let stages = parse_stages(&p.stages)?;
            p.builder(stages).threads(1).secret(dummy.clone()).build()?;
        }
        Ok(())
    }
}

/// The measurements of one combination.
#[derive(Debug, Clone)]
pub struct Row {
    /// Position in the sweep, from 1.
    pub index: usize,
    /// The settings, resolved (no zeros).
    pub point: Point,
    /// Bytes of the input.
    pub original_bytes: u64,
    /// Bytes of the container.
    pub container_bytes: u64,
    /// Wall time of the whole `process_path` call.
    pub wall: Duration,
    /// The engine's own time ([`syncpipe::Report::elapsed`]): the same run
    /// without opening the files, the fsync and the rename.
    pub engine: Duration,
    /// CPU time (user + system) of the process during the run.
    pub cpu: Duration,
    /// Chunks written.
    pub chunks: u64,
    /// CPU time of one chunk's job (all stages and the checksum): p50,
    /// p95, p99 in nanoseconds.
    pub chunk_cpu_ns: [u64; 3],
    /// Most bytes of chunk data alive at once.
    pub peak_chunk_bytes: u64,
    /// Wall time of restoring the container (into a hasher).
    pub restore_wall: Duration,
    /// `Ok` when the container restored to exactly the input; otherwise why not.
    pub restored: std::result::Result<(), String>,
}

impl Row {
    /// Throughput in MB/s (10^6 bytes per second) of original bytes, over
    /// the wall time.
    pub fn mb_per_s(&self) -> f64 {
        rate(self.original_bytes, self.wall)
    }

    /// Restore throughput in MB/s of original bytes.
    pub fn restore_mb_per_s(&self) -> f64 {
        rate(self.original_bytes, self.restore_wall)
    }

    /// Compression ratio: original bytes / container bytes.
    pub fn ratio(&self) -> f64 {
        if self.container_bytes == 0 {
            0.0
        } else {
            self.original_bytes as f64 / self.container_bytes as f64
        }
    }

    /// True when the container restored to the input.
    pub fn ok(&self) -> bool {
        self.restored.is_ok()
    }

    /// The CSV header matching [`Row::csv`].
    pub fn csv_header() -> &'static str {
        "row,chunk_size,threads,cpu_tokens,channel_depth,io_tokens,stages,original_bytes,\
         container_bytes,ratio,wall_s,engine_s,mb_per_s,cpu_s,chunks,chunk_cpu_p50_ms,\
         chunk_cpu_p95_ms,chunk_cpu_p99_ms,peak_chunk_bytes,restore_s,restore_mb_per_s,\
         restored,error"
    }

    /// The row as one CSV line (RFC 4180 quoting), without a line end.
    pub fn csv(&self) -> String {
        let p = &self.point;
        let ms = |ns: u64| ns as f64 / 1e6;
        let mut s = String::new();
        // `write!` into a String cannot fail.
        let _ = write!(
            s,
            "{},{},{},{},{},{},{},{},{},{:.4},{:.6},{:.6},{:.2},{:.4},{},{:.4},{:.4},{:.4},{},{:.6},{:.2},{},{}",
            self.index,
            p.chunk_size,
            p.threads,
            p.cpu_tokens,
            p.channel_depth,
            p.io_tokens,
            csv_field(&p.stages),
            self.original_bytes,
            self.container_bytes,
            self.ratio(),
            self.wall.as_secs_f64(),
            self.engine.as_secs_f64(),
            self.mb_per_s(),
            self.cpu.as_secs_f64(),
            self.chunks,
            ms(self.chunk_cpu_ns[0]),
            ms(self.chunk_cpu_ns[1]),
            ms(self.chunk_cpu_ns[2]),
            self.peak_chunk_bytes,
            self.restore_wall.as_secs_f64(),
            self.restore_mb_per_s(),
            self.ok(),
            csv_field(self.restored.as_ref().err().map_or("", String::as_str)),
        );
        s
    }
}

fn rate(bytes: u64, time: Duration) -> f64 {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        bytes as f64 / 1e6 / secs
    } else {
        0.0
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Runs the sweep over the file `input`, calling `on_row` as each row is
/// done, and returns all rows. The containers go to a temp file in
/// `work_dir`, removed after each row.
///
/// Stage lists with a cipher are run under a random 32-byte key made for
/// this call and kept in memory only.
///
/// # Errors
///
/// [`ErrorKind::Usage`] from [`BenchPlan::check`]; I/O errors reading the
/// input or writing under `work_dir`; a failed process run (the sweep
/// stops: its measurements would mean nothing);
/// [`ErrorKind::Cancelled`] when `cancel` is set. A container that does
/// not restore is not an error: its row says so ([`Row::restored`]).
pub fn run(
    plan: &BenchPlan,
    input: &Path,
    work_dir: &Path,
    cancel: &CancelToken,
    mut on_row: impl FnMut(&Row),
) -> Result<Vec<Row>> {
    plan.check()?;
    let digest = digest_file(input, cancel)?;
    // A placeholder holding the name (and removing it on drop, also on an
    // error or a cancel); every row's `process_path` replaces it. Named like
    // every syncpipe temp file, so that the leftover of a killed run is
    // recognised by `output::remove_stale_temps`.
    let placeholder = syncpipe::output::temp_file(work_dir, "bench-container", 0o600)
        .map_err(|e| Error::io(e).with_path(work_dir))?;
    let container = placeholder.path().to_path_buf();
    let secret = Secret::random_key()?;
    let mut rows = Vec::new();
    for (i, point) in plan.points().into_iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        let env = Env {
            input,
            digest,
            container: &container,
            cancel,
            secret: &secret,
            runs: plan.runs,
        };
        let mut row = env.row(&point)?;
        row.index = i + 1;
        on_row(&row);
        rows.push(row);
    }
    drop(placeholder);
    Ok(rows)
}

/// What every row of one sweep shares.
struct Env<'a> {
    input: &'a Path,
    /// BLAKE3 and length of the input, read once before the first row.
    digest: (blake3::Hash, u64),
    container: &'a Path,
    cancel: &'a CancelToken,
    secret: &'a Secret,
    runs: usize,
}

/// One timed process run.
struct Sample {
    wall: Duration,
    cpu: Duration,
    report: syncpipe::Report,
    chunk_cpu_ns: [u64; 3],
}

impl Env<'_> {
    fn pipeline(&self, point: &Point, metrics: Option<Arc<Metrics>>) -> Result<Pipeline> {
        let stages = parse_stages(&point.stages)?;
        let encrypted = stages.cipher.is_some();
        let mut b = point.builder(stages).cancel(self.cancel.clone());
        // Only with a cipher: a pipeline holding a secret refuses to
        // restore an unencrypted container.
        if encrypted {
            b = b.secret(self.secret.clone());
        }
        if let Some(m) = metrics {
            b = b.metrics(m);
        }
        b.build()
    }

    fn row(&self, point: &Point) -> Result<Row> {
        let mut samples = Vec::with_capacity(self.runs);
        for _ in 0..self.runs {
            let metrics = Arc::new(Metrics::new());
            // Built before the clock starts: starting a thread pool is not
            // part of processing a file.
            let pipeline = self.pipeline(point, Some(Arc::clone(&metrics)))?;
            let cpu0 = cpu_time();
            let t0 = Instant::now();
            let report = pipeline.process_path(self.input, self.container, Overwrite::Replace)?;
            let wall = t0.elapsed();
            let cpu = cpu_time().saturating_sub(cpu0);
            let snap = metrics.snapshot();
            let q = |x| {
                snap.latency(Family::ChunkCpu, "")
                    .map_or(0, |l| l.quantile_ns(x))
            };
            samples.push(Sample {
                wall,
                cpu,
                report,
                chunk_cpu_ns: [q(0.5), q(0.95), q(0.99)],
            });
        }
        samples.sort_by_key(|s| s.wall);
        let median = samples.swap_remove(samples.len() / 2);
        let pipeline = self.pipeline(point, None)?;
        let resolved = point.resolve()?;
        let container_bytes = std::fs::metadata(self.container)
            .map_err(|e| Error::io(e).with_path(self.container))?
            .len();
        let t0 = Instant::now();
        let restored = self.restore(&pipeline);
        let restore_wall = t0.elapsed();
        // The folder goes at the end anyway; a failure here costs disk
        // space only until then.
        let _ = std::fs::remove_file(self.container);
        let restored = restored?;
        let r = &median.report;
        Ok(Row {
            index: 0,
            point: resolved,
            original_bytes: r.original_bytes,
            container_bytes,
            wall: median.wall,
            engine: r.elapsed,
            cpu: median.cpu,
            chunks: r.chunks,
            chunk_cpu_ns: median.chunk_cpu_ns,
            peak_chunk_bytes: r.peak_chunk_bytes,
            restore_wall,
            restored,
        })
    }

    /// Restores the container into a hasher and compares with the input.
    /// The outer error is a cancel (stops the sweep); the inner one a
    /// failed row.
    fn restore(&self, pipeline: &Pipeline) -> Result<std::result::Result<(), String>> {
        let file =
            File::open(self.container).map_err(|e| Error::io(e).with_path(self.container))?;
        let mut hasher = blake3::Hasher::new();
        match pipeline.restore(BufReader::with_capacity(1 << 20, file), &mut hasher) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
            Err(e) => return Ok(Err(format!("restore failed: {e}"))),
        }
        let (want, want_len) = self.digest;
        if hasher.count() != want_len || hasher.finalize() != want {
            return Ok(Err(format!(
                "restored {} bytes that differ from the input's {want_len}",
                hasher.count()
            )));
        }
        Ok(Ok(()))
    }
}

/// BLAKE3 and length of a file, read in 1 MiB blocks.
fn digest_file(path: &Path, cancel: &CancelToken) -> Result<(blake3::Hash, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(e).with_path(path))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(e).with_path(path)),
        };
        hasher.update(&buf[..n]);
    }
    Ok((hasher.finalize(), hasher.count()))
}

/// CPU time (user + system) of this process so far, all threads.
fn cpu_time() -> Duration {
    // SAFETY: `rusage` is plain data (integers), valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct we pass, which lives
    // for the call; RUSAGE_SELF is always a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The chart of a sweep: MB/s against the first swept axis, one line per
/// combination of the other swept axes (one line when only one is swept).
/// Rows that failed to restore leave their point out.
pub fn chart(rows: &[Row], swept: &[Axis], title: &str) -> LineChart {
    let x_axis = swept.first().copied();
    let others: Vec<Axis> = swept.iter().skip(1).copied().collect();
    let x_of = |r: &Row| x_axis.map_or_else(|| r.point.value(Axis::Stages), |a| r.point.value(a));
    let series_of = |r: &Row| -> String {
        if others.is_empty() {
            return "MB/s".to_string();
        }
        others
            .iter()
            .map(|&a| format!("{} {}", a.title(), r.point.value(a)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut x_values: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        let (x, s) = (x_of(r), series_of(r));
        if !x_values.contains(&x) {
            x_values.push(x);
        }
        if !names.contains(&s) {
            names.push(s);
        }
    }
    let series = names
        .into_iter()
        .map(|name| {
            let values = x_values
                .iter()
                .map(|x| {
                    rows.iter()
                        .filter(|r| r.ok() && series_of(r) == name && &x_of(r) == x)
                        .map(Row::mb_per_s)
                        .next_back()
                })
                .collect();
            Series { name, values }
        })
        .collect();
    LineChart {
        title: title.to_string(),
        x_label: x_axis.map_or("stages", Axis::title).to_string(),
        y_label: "MB/s (original bytes, process)".to_string(),
        x_values,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{DataKind, Synthetic};

    #[test]
    fn the_product_nests_in_axis_order() {
        let plan = BenchPlan {
            chunk_sizes: vec![1 << 16, 1 << 20],
            stages: vec!["lz4".into(), "zstd:1,sha256".into()],
            ..BenchPlan::default()
        };
        let pts = plan.points();
        assert_eq!(pts.len(), 4);
        assert_eq!(plan.rows(), 4);
        assert_eq!(
            pts.iter()
                .map(|p| (p.value(Axis::ChunkSize), p.stages.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("64 KiB".to_string(), "lz4"),
                ("64 KiB".to_string(), "zstd:1,sha256"),
                ("1 MiB".to_string(), "lz4"),
                ("1 MiB".to_string(), "zstd:1,sha256"),
            ]
        );
        assert_eq!(plan.swept(), vec![Axis::ChunkSize, Axis::Stages]);
    }

    #[test]
    fn the_swept_axes_are_those_with_more_than_one_value() {
        let plan = BenchPlan {
            chunk_sizes: vec![64 << 10, 1 << 20],
            cpu_tokens: vec![1, 2],
            ..BenchPlan::default()
        };
        assert_eq!(plan.points().len(), 4);
        assert_eq!(plan.swept(), vec![Axis::ChunkSize, Axis::CpuTokens]);
    }

    #[test]
    fn bad_plans_are_usage_errors() {
        let too_many = BenchPlan {
            chunk_sizes: (1..=17).map(|k| k << 16).collect(),
            cpu_tokens: (1..=16).collect(),
            ..BenchPlan::default()
        };
        assert_eq!(too_many.rows(), 272);
        let bad = [
            too_many,
            BenchPlan {
                stages: vec!["zstd:99".into()],
                ..BenchPlan::default()
            },
            BenchPlan {
                chunk_sizes: vec![],
                ..BenchPlan::default()
            },
            BenchPlan {
                runs: 0,
                ..BenchPlan::default()
            },
            BenchPlan {
                chunk_sizes: vec![65 << 20],
                ..BenchPlan::default()
            },
        ];
        for plan in bad {
            let e = plan.check().err().map(|e| e.kind());
            assert_eq!(e, Some(ErrorKind::Usage), "{plan:?}");
        }
        assert!(BenchPlan::default().check().is_ok());
    }

    #[test]
    fn csv_quotes_stage_lists() {
        assert_eq!(csv_field("zstd:3,blake3"), "\"zstd:3,blake3\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("lz4"), "lz4");
    }

    #[test]
    fn a_small_sweep_runs_restores_and_cleans_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cancel = CancelToken::new();
        let input = Synthetic::new(DataKind::Text, 1, 600_000)
            .write_temp(dir.path(), &cancel)
            .expect("input");
        let plan = BenchPlan {
            chunk_sizes: vec![64 << 10, 256 << 10],
            stages: vec![
                "lz4,blake3".into(),
                "zstd:1,chacha20-poly1305,sha256".into(),
            ],
            threads: vec![2],
            ..BenchPlan::default()
        };
        let mut seen = 0;
        let rows = run(&plan, input.path(), dir.path(), &cancel, |_| seen += 1).expect("sweep");
        assert_eq!((rows.len(), seen), (4, 4));
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.index, i + 1);
            assert!(r.ok(), "{:?}", r.restored);
            assert_eq!(r.original_bytes, 600_000);
            assert!(r.ratio() > 1.5, "{}", r.ratio());
            assert_eq!(r.point.threads, 2);
            assert_eq!(r.point.cpu_tokens, 2);
            assert!(r.chunk_cpu_ns[0] > 0 && r.chunk_cpu_ns[0] <= r.chunk_cpu_ns[2]);
            assert!(r.peak_chunk_bytes > 0);
            assert!(r.csv().starts_with(&format!("{},", i + 1)));
            // Commas outside quotes: as many fields as the header.
            let mut quoted = false;
            let separators = r
                .csv()
                .chars()
                .filter(|&c| {
                    quoted ^= c == '"';
                    c == ',' && !quoted
                })
                .count();
            assert_eq!(separators, Row::csv_header().matches(',').count());
        }
        assert_eq!(rows[1].point.stages, "zstd:1,chacha20-poly1305,sha256");
        assert_eq!(rows[2].point.chunk_size, 256 << 10);
        // Only the input is left in the folder.
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(left.len(), 1);

        let c = chart(&rows, &plan.swept(), "t");
        assert_eq!(c.x_values, vec!["64 KiB", "256 KiB"]);
        assert_eq!(c.series.len(), 2);
        assert!(c.series[0].name.starts_with("stages "));
    }

    #[test]
    fn a_container_that_does_not_restore_fails_its_row_not_the_sweep() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cancel = CancelToken::new();
        let input = Synthetic::new(DataKind::Text, 2, 300_000)
            .write_temp(dir.path(), &cancel)
            .expect("input");
        let container = dir.path().join("c.spipe");
        let env = Env {
            input: input.path(),
            digest: digest_file(input.path(), &cancel).expect("digest"),
            container: &container,
            cancel: &cancel,
            secret: &Secret::random_key().expect("key"),
            runs: 1,
        };
        let point = Point {
            stages: "zstd:1,blake3".into(),
            chunk_size: 64 << 10,
            ..Point::default()
        };
        let pipeline = env.pipeline(&point, None).expect("pipeline");
        pipeline
            .process_path(input.path(), &container, Overwrite::Replace)
            .expect("process");
        assert_eq!(env.restore(&pipeline).expect("not cancelled"), Ok(()));
        // One flipped byte in the middle of the chunk records.
        let mut bytes = std::fs::read(&container).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&container, &bytes).expect("write");
        let failed = env.restore(&pipeline).expect("not cancelled");
        assert!(
            failed
                .as_ref()
                .is_err_and(|m| m.starts_with("restore failed")),
            "{failed:?}"
        );
        // A container of other data restores, but not to the input.
        let other = Synthetic::new(DataKind::Text, 3, 300_000)
            .write_temp(dir.path(), &cancel)
            .expect("other input");
        pipeline
            .process_path(other.path(), &container, Overwrite::Replace)
            .expect("process");
        let differs = env.restore(&pipeline).expect("not cancelled");
        assert!(
            differs.as_ref().is_err_and(|m| m.contains("differ")),
            "{differs:?}"
        );
    }

    #[test]
    fn a_cancelled_sweep_stops_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = Synthetic::new(DataKind::Zeros, 1, 100_000)
            .write_temp(dir.path(), &CancelToken::new())
            .expect("input");
        let cancel = CancelToken::new();
        cancel.cancel();
        let e = run(
            &BenchPlan::default(),
            input.path(),
            dir.path(),
            &cancel,
            |_| {},
        );
        assert_eq!(e.err().map(|e| e.kind()), Some(ErrorKind::Cancelled));
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
