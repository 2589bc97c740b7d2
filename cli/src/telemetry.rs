//! The command line's observability: its flags, and the wiring of the
//! library's [`Metrics`] to the dashboard (stderr), JSON lines (stdout) and
//! Prometheus text (a file and/or a loopback endpoint).
//!
//! Metrics are only collected when something will show them (the
//! dashboard, `--json`, `--prometheus-file`, `--metrics-listen` or `-v`);
//! otherwise the pipeline is built without them and pays nothing.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args as ClapArgs;
use parking_lot::Mutex;
use serde_json::Value;
use syncpipe::metrics::{Event, Family, Metrics, Snapshot};
use syncpipe::{CancelToken, Error, Pipeline, PipelineBuilder, Report};

use crate::cli::Verbosity;
use crate::dashboard::{self, Context, Dashboard, Moment, Progress, Screen, Style};
use crate::exporter::Exporter;
use crate::json_lines::{self, Tuning};
use crate::prometheus::{self, RunInfo};
use crate::shard::Shard;
use crate::size;
use crate::textfile::{self, NotRegular};

/// Default `--metrics-interval`: 200 ms, five redraws a second, smooth to
/// the eye and far too rare to cost anything measurable (one snapshot per
/// interval; see `docs/performance.md`).
pub const DEFAULT_INTERVAL: &str = "200ms";
/// Shortest interval accepted: below 10 ms a redraw would cost more than
/// the work it reports on small chunks.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest interval accepted: one minute (Prometheus scrapes are rarely
/// slower than that).
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Observability flags: global (they may stand anywhere on the line), acted
/// on by process, restore and verify; bench takes `--json` only, and the
/// other commands list none of them (`help::command`).
#[derive(ClapArgs, Debug, Clone)]
pub struct TelemetryArgs {
    /// Live dashboard on stderr (progress bar with ETA, throughput,
    /// permits, queues, chunk CPU time, memory), from the first interval
    /// on: `auto` draws it only when stderr is a terminal; `always` also
    /// elsewhere; a dumb terminal (`TERM=dumb` or unset) or a non-terminal
    /// gets a plain line every 5 s instead; `-q` turns it off.
    #[arg(long, value_enum, default_value_t = Progress::Auto, global = true)]
    pub progress: Progress,
    /// How often the dashboard, `--json` status lines and
    /// `--prometheus-file` are refreshed: e.g. `200ms`, `1s`, `0.5s`
    /// (10ms to 60s).
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_INTERVAL,
          value_parser = parse_interval, global = true)]
    pub metrics_interval: Duration,
    /// Print JSON lines on stdout (status, file_done, error, summary; see
    /// docs/json.md) instead of human output there (`-q` does not silence
    /// them). Not with `-c`/`-o -`, which need stdout for the data.
    #[arg(long, global = true)]
    pub json: bool,
    /// Write metrics in the Prometheus text format to PATH (atomically:
    /// temp file + rename) every interval and at the very end, with the
    /// exit code and the last success's time (see docs/metrics.md). PATH
    /// must be a regular file or new: a symlink, FIFO or device there is
    /// refused.
    #[arg(long, value_name = "PATH", global = true, value_hint = clap::ValueHint::FilePath)]
    pub prometheus_file: Option<PathBuf>,
    /// Serve metrics at http://ADDR/metrics while the command runs, e.g.
    /// `127.0.0.1:9184`. A port in use fails at start with exit code 1.
    #[arg(long, value_name = "ADDR", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// Add the label KEY="VALUE" to every Prometheus sample (textfile and
    /// endpoint); repeatable, e.g. `--metrics-label job=nightly`. KEY is a
    /// Prometheus label name not used by syncpipe itself (`--shard I/N`
    /// adds `shard="I/N"` by itself).
    #[arg(long = "metrics-label", value_name = "KEY=VALUE",
          value_parser = prometheus::parse_label, global = true)]
    pub metrics_labels: Vec<(String, String)>,
    /// With --metrics-listen: keep serving the final metrics (exit code
    /// included) for DURATION after the work ends, so that a server
    /// scraping every 15 s or 1 min sees the end of a short run: e.g.
    /// `30s`, `2m`, `500ms` (at most 1h). A SIGINT or SIGTERM ends the
    /// wait at once; the exit code stays the run's.
    #[arg(long, value_name = "DURATION", value_parser = parse_linger, global = true)]
    pub metrics_linger: Option<Duration>,
}

/// Longest `--metrics-linger`: an hour, far beyond any scrape interval.
const MAX_LINGER: Duration = Duration::from_secs(3600);
/// How often a lingering endpoint looks at the cancel flag: a signal ends
/// the linger well within the signal handling's grace period.
const LINGER_POLL: Duration = Duration::from_millis(10);

/// Parses `200ms`, `1s`, `1.5s` or a bare number of milliseconds, within
/// 10 ms ..= 60 s.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1e-3)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 200ms or 1s)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{text:?} is not a duration (try 200ms or 1s)"));
    }
    let d = Duration::from_secs_f64(v * scale);
    if d < MIN_INTERVAL || d > MAX_INTERVAL {
        return Err(format!("{text:?} is outside 10ms ..= 60s"));
    }
    Ok(d)
}

/// Parses a `--metrics-linger`: `500ms`, `30s`, `2m`, `1h` or a bare
/// number of seconds, 0 ..= 1 h.
pub fn parse_linger(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let bad = || format!("{text:?} is not a duration (try 30s or 2m)");
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    let d = Duration::from_secs_f64(v * scale);
    if d > MAX_LINGER {
        return Err(format!("{text:?} is longer than 1h"));
    }
    Ok(d)
}

/// The observability of one command: created before the pipeline, asked
/// to attach its metrics to the builder, told about each finished file,
/// finished last.
pub struct Telemetry {
    shared: Arc<Shared>,
    metrics: Option<Arc<Metrics>>,
    exporter: Option<Exporter>,
    /// `--metrics-linger`, and the run's cancel flag (set by SIGINT and
    /// SIGTERM), which ends the linger early.
    linger: Duration,
    cancel: Arc<AtomicBool>,
    quiet: bool,
}

/// What the observer (on a thread of the run) and the command share.
struct Shared {
    json: bool,
    verbose: bool,
    prometheus_file: Option<PathBuf>,
    /// Set when something other than a regular file took the textfile's
    /// place during the run: it is not written again (a rename would
    /// replace it), and `finish` reports it.
    prometheus_refused: Mutex<Option<NotRegular>>,
    state: Mutex<State>,
}

struct State {
    command: &'static str,
    ctx: Context,
    dashboard: Option<Dashboard<io::Stderr>>,
    tuning: Tuning,
    prom: RunInfo,
    original_bytes: u64,
    /// A batch's failed files, reported by `finish` once the exit code is
    /// known, and its (failed, skipped) counts; `None` for a single file.
    failures: Vec<Error>,
    batch: Option<(u64, u64)>,
}

impl Telemetry {
    /// Sets up what the flags ask for. `runs` is false for commands that
    /// run no pipeline (`info`, `completions`, `man`); `shard` is a batch's
    /// `--shard` (a label on every Prometheus sample); `cancel` is the
    /// token the signals set (it ends `--metrics-linger`).
    ///
    /// # Errors
    ///
    /// Usage: an output flag given to a command without a run, a label
    /// given twice, `--metrics-label` without a Prometheus output,
    /// `--metrics-linger` without `--metrics-listen`. Runtime (exit 1):
    /// `--metrics-listen` cannot bind (e.g. the port is in use), or
    /// `--prometheus-file` cannot be written.
    pub fn start(
        args: &TelemetryArgs,
        v: Verbosity,
        command: &'static str,
        runs: bool,
        shard: Option<Shard>,
        cancel: &CancelToken,
    ) -> Result<Telemetry, Error> {
        let Verbosity { quiet, verbose } = v;
        if !runs && (args.json || args.prometheus_file.is_some() || args.metrics_listen.is_some()) {
            return Err(Error::usage(format!(
                "--json, --prometheus-file and --metrics-listen report on process, restore and verify, not on {command}"
            )));
        }
        let prom_labels = prometheus_labels(args, shard)?;
        let on_terminal = io::stderr().is_terminal();
        let draw = runs && dashboard::wanted(args.progress, quiet, on_terminal);
        let style = Style::detect(on_terminal, std::env::var_os("TERM").as_deref());
        let enabled = runs
            && (draw
                || verbose
                || args.json
                || args.prometheus_file.is_some()
                || args.metrics_listen.is_some());
        // Before any work: a device, FIFO or symlink at the path is never
        // replaced or written through.
        if let Some(path) = &args.prometheus_file {
            textfile::check_target("--prometheus-file", path)?;
        }
        // What the textfile this command replaces says about the commands
        // before it: a failure keeps the last success's time (0 if none is
        // known), so "no success for a day" alerts measure from it.
        let previous = match &args.prometheus_file {
            Some(path) if enabled => {
                let (code, success) = textfile::read_small(path)
                    .map(|t| prometheus::previous_outcome(&t))
                    .unwrap_or((None, None));
                (code, Some(success.unwrap_or(0.0)))
            }
            _ => (None, None),
        };
        let shared = Arc::new(Shared {
            json: args.json,
            verbose: verbose && !quiet,
            prometheus_file: args.prometheus_file.clone(),
            prometheus_refused: Mutex::new(None),
            state: Mutex::new(State {
                command,
                ctx: Context {
                    title: command.to_string(),
                    ..Context::default()
                },
                dashboard: draw.then(|| {
                    Dashboard::new(io::stderr(), style, Screen::Stderr, args.metrics_interval)
                }),
                tuning: Tuning::default(),
                prom: RunInfo {
                    command: command.to_string(),
                    labels: prom_labels,
                    exit_code: previous.0,
                    last_success: previous.1,
                    ..RunInfo::default()
                },
                original_bytes: 0,
                failures: Vec::new(),
                batch: None,
            }),
        });
        let metrics = enabled.then(|| {
            let s = Arc::clone(&shared);
            Arc::new(Metrics::observed(
                args.metrics_interval,
                move |e: &Event<'_>| s.on_event(e),
            ))
        });
        // Fail before any work if the textfile cannot be written.
        if let (Some(path), Some(m)) = (&shared.prometheus_file, &metrics) {
            shared
                .write_prometheus(path, &m.snapshot())
                .map_err(|e| prom_error(path, e))?;
        }
        let exporter = match (args.metrics_listen, &metrics) {
            (Some(addr), Some(m)) => {
                let (m, s) = (Arc::clone(m), Arc::clone(&shared));
                let render = move || {
                    let run = s.state.lock().prom.clone();
                    prometheus::render(&m.snapshot(), &run)
                };
                let ex = Exporter::start(addr, render)
                    .map_err(|e| Error::io(e).with_stage(format!("--metrics-listen {addr}")))?;
                if !quiet {
                    // With port 0 this is how the caller learns the port.
                    eprintln!("syncpipe: serving metrics at http://{}/metrics", ex.addr());
                }
                Some(ex)
            }
            _ => None,
        };
        Ok(Telemetry {
            shared,
            metrics,
            exporter,
            linger: args.metrics_linger.unwrap_or(Duration::ZERO),
            cancel: cancel.flag(),
            quiet,
        })
    }

    /// True with `--json`: stdout carries JSON lines only.
    pub fn json(&self) -> bool {
        self.shared.json
    }

    /// Refuses `--json` when the data goes to stdout.
    ///
    /// # Errors
    ///
    /// Usage, naming both.
    pub fn claim_stdout(&self, data_on_stdout: bool) -> Result<(), Error> {
        if self.shared.json && data_on_stdout {
            return Err(Error::usage(
                "--json writes JSON lines to stdout, which the output already uses (-c, -o - or stdin input); write the output to a file with -o FILE",
            ));
        }
        Ok(())
    }

    /// Adds the metrics (if any are wanted) to a pipeline builder.
    pub fn attach(&self, builder: PipelineBuilder) -> PipelineBuilder {
        match &self.metrics {
            Some(m) => builder.metrics(Arc::clone(m)),
            None => builder,
        }
    }

    /// Records what the frames and the summary say about the run about to
    /// start: the input (its size gives the progress bar) and the tuning.
    pub fn begin(&self, pipeline: &Pipeline, input: &Path, stages: Option<String>) {
        let total = (input.as_os_str() != "-")
            .then(|| fs::metadata(input).ok().map(|m| m.len()))
            .flatten();
        self.begin_as(pipeline, &input.display().to_string(), total, None, stages);
    }

    /// As [`Telemetry::begin`] for a batch of `files` inputs found by the
    /// walk, of `total_bytes` in all (the progress, percent and ETA).
    pub fn begin_batch(&self, pipeline: &Pipeline, files: usize, total_bytes: u64) {
        self.begin_as(
            pipeline,
            &format!("{files} files"),
            Some(total_bytes),
            Some(files as u64),
            None,
        );
    }

    /// A batch's files have all been tried (before its outcomes are
    /// printed): its last frame, kept on screen; 100% when `all_done`.
    pub fn batch_ran(&self, all_done: bool) {
        let Some(m) = &self.metrics else {
            return;
        };
        let snap = m.snapshot();
        let mut st = self.shared.state.lock();
        let ctx = Context {
            done: true,
            complete: all_done,
            ..st.ctx.clone()
        };
        if let Some(d) = st.dashboard.as_mut() {
            if d.update(&snap, &ctx, rss().map(|r| r.0), Moment::End)
                .is_err()
            {
                st.dashboard = None;
            }
        }
    }

    fn begin_as(
        &self,
        pipeline: &Pipeline,
        what: &str,
        total: Option<u64>,
        files: Option<u64>,
        stages: Option<String>,
    ) {
        let cfg = pipeline.config();
        let mut st = self.shared.state.lock();
        st.ctx = Context {
            title: format!("{} {what}", st.command),
            total,
            files,
            ..Context::default()
        };
        st.tuning = Tuning {
            threads: cfg.threads,
            cpu_tokens: cfg.cpu_tokens,
            io_tokens: cfg.io_tokens,
            channel_depth: cfg.channel_depth,
            chunk_size: cfg.chunk_size,
            stages,
            storage_type: cfg.storage_type.map_or("unknown", |k| k.name()),
        };
        st.prom.tuning = Some(prometheus::Tuning {
            cpu_tokens: cfg.cpu_tokens as u64,
            io_tokens: cfg.io_tokens as u64,
            channel_depth: cfg.channel_depth as u64,
            chunk_size: cfg.chunk_size as u64,
        });
    }

    /// A file finished: a `file_done` line with `--json`, the latency
    /// lines of the summary with `-v`.
    pub fn file_done(&self, input: &Path, output: &str, report: &Report) {
        let command = {
            let mut st = self.shared.state.lock();
            st.original_bytes += report.original_bytes;
            if report.chunk_size > 0 {
                st.tuning.chunk_size = report.chunk_size;
                if let Some(t) = st.prom.tuning.as_mut() {
                    t.chunk_size = report.chunk_size as u64;
                }
            }
            st.command
        };
        if self.shared.json {
            emit(&json_lines::file_done(command, input, output, report));
        }
        if self.shared.verbose && report.chunk_sizes.len() > 1 {
            // The hill climber's path, as the `-v` line of the run.
            let steps: Vec<String> = report
                .chunk_sizes
                .iter()
                .map(|c| match c.mean_cost.as_nanos() {
                    0 => format!(
                        "{} from chunk {}",
                        size::format(c.size as u64),
                        c.from_chunk
                    ),
                    _ => format!(
                        "{} from chunk {} (mean {:.2} ms)",
                        size::format(c.size as u64),
                        c.from_chunk,
                        c.mean_cost.as_secs_f64() * 1e3
                    ),
                })
                .collect();
            // A long climb is shown by its two ends; --json has every step.
            let shown = if steps.len() > 12 {
                let (head, tail) = (&steps[..5], &steps[steps.len() - 5..]);
                format!(
                    "{}, … ({} more), {}",
                    head.join(", "),
                    steps.len() - 10,
                    tail.join(", ")
                )
            } else {
                steps.join(", ")
            };
            eprintln!("syncpipe: chunk sizes ({}): {shown}", report.chunk_method);
        }
        if let (true, Some(m)) = (self.shared.verbose, &self.metrics) {
            let snap = m.snapshot();
            let mut err = io::stderr().lock();
            for line in latency_lines(&snap) {
                let _ = writeln!(err, "  {line}");
            }
        }
    }

    /// The outcomes of a batch that are not `file_done`s: its failed files
    /// (one `error` line each in `finish`), how many were cancelled (the
    /// command's own error reports them) and skipped.
    pub fn batch_ended(&self, failures: Vec<Error>, cancelled: usize, skipped: usize) {
        let mut st = self.shared.state.lock();
        let failed = (failures.len() + cancelled) as u64;
        st.batch = Some((failed, skipped as u64));
        st.failures = failures;
    }

    /// Ends the command: an `error` line per failed file and for the
    /// command's failure and the `summary` with `--json`, the last
    /// Prometheus textfile (with `exit_code`, and the time of this success
    /// if it is 0), then `--metrics-linger` (unless a signal ended the
    /// run), the endpoint stopped.
    ///
    /// # Errors
    ///
    /// The final `--prometheus-file` write failed (exit 1 if nothing else
    /// went wrong: the file was asked for and is not there).
    pub fn finish(mut self, error: Option<&Error>, exit_code: i32) -> Result<(), Error> {
        let snap = self
            .metrics
            .as_ref()
            .map(|m| m.snapshot())
            .unwrap_or_default();
        let mut st = self.shared.state.lock();
        let (failed, skipped) = st.batch.unwrap_or((u64::from(error.is_some()), 0));
        st.prom.files_failed = failed;
        st.prom.files_skipped = skipped;
        st.prom.exit_code = Some(exit_code);
        if exit_code == 0 {
            let now = SystemTime::now().duration_since(UNIX_EPOCH);
            st.prom.last_success = Some(now.map_or(0.0, |d| d.as_secs_f64()));
        }
        if self.shared.json {
            for e in &st.failures {
                emit(&json_lines::error(st.command, e, exit_code));
            }
            if let Some(e) = error {
                emit(&json_lines::error(st.command, e, exit_code));
            }
            if self.metrics.is_some() || error.is_some() {
                emit(&json_lines::summary(
                    st.command,
                    &snap,
                    st.original_bytes,
                    (failed, skipped),
                    &st.tuning,
                    exit_code,
                    rss().map(|r| r.1),
                ));
            }
        }
        drop(st);
        // The textfile first: its last state does not wait for the linger.
        let written = match (&self.shared.prometheus_file, &self.metrics) {
            (Some(path), Some(_)) => {
                let refused = *self.shared.prometheus_refused.lock();
                match refused {
                    Some(what) => Err(what.into_io()),
                    None => self.shared.write_prometheus(path, &snap),
                }
                .map_err(|e| prom_error(path, e))
            }
            _ => Ok(()),
        };
        if let Some(ex) = self.exporter.take() {
            self.linger(&ex);
            ex.stop();
        }
        written
    }

    /// Serves the final state for `--metrics-linger`, until it has passed
    /// or a signal sets the cancel flag. A run that a signal ended does not
    /// linger at all: the signal asked the command to stop.
    fn linger(&self, ex: &Exporter) {
        // Relaxed: the flag carries no data here, only "stop now".
        if self.linger.is_zero() || self.cancel.load(Ordering::Relaxed) {
            return;
        }
        if !self.quiet {
            eprintln!(
                "syncpipe: serving the final metrics at http://{}/metrics for {:.3}s \
                 (--metrics-linger; SIGINT or SIGTERM ends it)",
                ex.addr(),
                self.linger.as_secs_f64()
            );
        }
        let until = Instant::now() + self.linger;
        while !self.cancel.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(LINGER_POLL));
        }
    }
}

/// The labels of every Prometheus sample: the `--metrics-label`s (each key
/// once), then `shard` for a `--shard` run.
///
/// # Errors
///
/// Usage: a key given twice, labels or `--metrics-linger` without the
/// output they apply to.
fn prometheus_labels(
    args: &TelemetryArgs,
    shard: Option<Shard>,
) -> Result<Vec<(String, String)>, Error> {
    if !args.metrics_labels.is_empty()
        && args.prometheus_file.is_none()
        && args.metrics_listen.is_none()
    {
        return Err(Error::usage(
            "--metrics-label labels the Prometheus output: give --prometheus-file or --metrics-listen too",
        ));
    }
    if args.metrics_linger.is_some() && args.metrics_listen.is_none() {
        return Err(Error::usage(
            "--metrics-linger keeps the --metrics-listen endpoint serving after the work: give --metrics-listen too",
        ));
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    for (k, v) in &args.metrics_labels {
        if labels.iter().any(|(seen, _)| seen == k) {
            return Err(Error::usage(format!(
                "--metrics-label {k} is given twice; each label takes one value"
            )));
        }
        labels.push((k.clone(), v.clone()));
    }
    if let Some(s) = shard {
        labels.push(("shard".to_string(), s.to_string()));
    }
    Ok(labels)
}

impl Shared {
    /// The observer: runs on the run's ticker thread (ticks) or on the
    /// caller's thread (end of a run).
    fn on_event(&self, event: &Event<'_>) {
        let (snap, done) = match event {
            Event::Tick(s) => (*s, false),
            Event::RunDone { snapshot, .. } => (*snapshot, true),
            _ => return,
        };
        let mut st = self.state.lock();
        // A batch's files each end a run: its frame goes on until the
        // batch ends (`Telemetry::batch_ran`).
        let batch = st.ctx.files.is_some();
        let last = done && !batch;
        st.ctx.done = last;
        st.ctx.complete = last;
        let ctx = st.ctx.clone();
        let command = st.command;
        let moment = match (done, batch) {
            (false, _) => Moment::Tick,
            (true, true) => Moment::FileDone,
            (true, false) => Moment::End,
        };
        if let Some(d) = st.dashboard.as_mut() {
            // A failed redraw (stderr gone) only stops the dashboard.
            if d.update(snap, &ctx, rss().map(|r| r.0), moment).is_err() {
                st.dashboard = None;
            }
        }
        if self.json && !done {
            emit(&json_lines::status(command, snap, ctx.total));
        }
        let run = st.prom.clone();
        drop(st);
        if let Some(path) = &self.prometheus_file {
            let mut refused = self.prometheus_refused.lock();
            if refused.is_none() {
                // Retried at the next tick; the final write in `finish`
                // reports. Not so a path taken by something else than a
                // regular file: a later rename would replace it.
                if let Err(e) = self.write_prometheus_with(path, snap, &run) {
                    *refused = NotRegular::of(&e);
                }
            }
        }
    }

    fn write_prometheus(&self, path: &Path, snap: &Snapshot) -> io::Result<()> {
        let run = self.state.lock().prom.clone();
        self.write_prometheus_with(path, snap, &run)
    }

    fn write_prometheus_with(&self, path: &Path, snap: &Snapshot, run: &RunInfo) -> io::Result<()> {
        prometheus::write_atomic(path, &prometheus::render(snap, run))
    }
}

fn prom_error(path: &Path, e: io::Error) -> Error {
    Error::io(e).with_stage("--prometheus-file").with_path(path)
}

/// One JSON line on stdout. A closed stdout (a reader that went away) is
/// not an error of the run.
fn emit(v: &Value) {
    let mut out = io::stdout().lock();
    let written = writeln!(out, "{v}").and_then(|()| out.flush());
    // The run goes on (and cleans up); it ends by SIGPIPE after (`cli::run`).
    if written.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
        crate::signals::note_broken_stdout();
    }
}

/// The percentile lines of `-v`.
fn latency_lines(snap: &Snapshot) -> Vec<String> {
    let p = |family: Family, label: &str| -> Option<String> {
        snap.latency(family, label).map(|l| {
            format!(
                "{:.2}/{:.2}/{:.2}",
                l.quantile_ns(0.5) as f64 / 1e6,
                l.quantile_ns(0.95) as f64 / 1e6,
                l.quantile_ns(0.99) as f64 / 1e6
            )
        })
    };
    let mut cpu = Vec::new();
    if let Some(v) = p(Family::ChunkCpu, "") {
        cpu.push(format!("chunk {v}"));
    }
    for l in snap
        .latencies
        .iter()
        .filter(|l| l.family == Family::StageCpu)
    {
        if let Some(v) = p(Family::StageCpu, &l.label) {
            cpu.push(format!("{} {v}", l.label));
        }
    }
    let mut waits = Vec::new();
    for (family, label, name) in [
        (Family::PermitWait, "cpu", "cpu permit"),
        (Family::PermitWait, "io", "io permit"),
        (Family::QueueWait, "jobs", "jobs queue"),
        (Family::QueueWait, "results", "results queue"),
    ] {
        if let Some(v) = p(family, label) {
            waits.push(format!("{name} {v}"));
        }
    }
    let mut lines = Vec::new();
    if !cpu.is_empty() {
        lines.push(format!("cpu time p50/p95/p99 ms: {}", cpu.join(", ")));
    }
    if !waits.is_empty() {
        lines.push(format!("waits p50/p95/p99 ms: {}", waits.join(", ")));
    }
    lines
}

/// Resident set size now and at its peak, in bytes (Linux: from
/// `/proc/self/status`; `None` elsewhere).
pub fn rss() -> Option<(u64, u64)> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_are_bounded() {
        assert_eq!(parse_interval("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("50"), Ok(Duration::from_millis(50)));
        for bad in ["0", "5ms", "61s", "abc", "-1s", "NaNs"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lingers_parse_and_are_bounded() {
        assert_eq!(parse_linger("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_linger("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_linger("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_linger("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_linger("0"), Ok(Duration::ZERO));
        assert_eq!(parse_linger("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["61m", "1.5h", "abc", "-1s", "NaNs", "1d"] {
            assert!(parse_linger(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let (now, peak) = rss().expect("rss");
            assert!(now > 0 && peak >= now);
        }
    }
}
