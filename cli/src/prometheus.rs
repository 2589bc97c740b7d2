//! Prometheus text exposition (format 0.0.4) of a metrics snapshot, and
//! the atomic textfile writer (`--prometheus-file`).
//!
//! Every name starts with `syncpipe_` and ends in its unit, as the
//! Prometheus naming conventions ask: counters in `_total` (after the unit:
//! `_bytes_total`), times in `_seconds`, sizes in `_bytes`, counts of
//! things in the things (`_permits`, `_chunks`). Latencies are histograms
//! in seconds over the fixed buckets of [`BUCKETS`] (cumulative, with
//! `_sum`, `_count` and `+Inf`), so that the runs of several shards add up
//! with `sum by (le)`; one family per kind with the stage, permit or queue
//! as a label. The labels of `--metrics-label` and `shard` are on every
//! sample. A textfile collector (node_exporter's) or a scrape of
//! `--metrics-listen` reads the same text. `docs/metrics.md` lists it all.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use syncpipe::metrics::{Family, Latency, Snapshot};

use crate::textfile::not_regular;

/// Label names syncpipe sets itself (a `--metrics-label` may not take
/// them): `shard` comes from `--shard`, the others name the series of one
/// family; `le` and `quantile` are reserved by histograms and summaries.
pub const OWN_LABELS: [&str; 9] = [
    "version", "backend", "command", "stage", "permit", "queue", "shard", "le", "quantile",
];

/// The upper bounds of every latency histogram's buckets: nanoseconds, and
/// the `le` label as written (after them comes `+Inf`). Fixed, so that the
/// series of every run, version and shard line up; from 1 µs (a permit or
/// queue that did not wait) to 60 s, about three per decade.
pub const BUCKETS: [(u64, &str); 22] = [
    (1_000, "0.000001"),
    (10_000, "0.00001"),
    (25_000, "0.000025"),
    (50_000, "0.00005"),
    (100_000, "0.0001"),
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
    (2_500_000_000, "2.5"),
    (5_000_000_000, "5"),
    (10_000_000_000, "10"),
    (30_000_000_000, "30"),
    (60_000_000_000, "60"),
];

/// The tuning of a run, as its gauges show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tuning {
    pub cpu_tokens: u64,
    pub io_tokens: u64,
    pub channel_depth: u64,
    pub chunk_size: u64,
}

/// What the text says about the command besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The subcommand (`process`, `restore`, `verify`).
    pub command: String,
    /// Labels on every sample: the `--metrics-label`s, then `shard`.
    /// Their names are valid and none is one of [`OWN_LABELS`]; the values
    /// are escaped when written.
    pub labels: Vec<(String, String)>,
    /// The tuning of the pipeline, once known.
    pub tuning: Option<Tuning>,
    /// Files that failed (cancelled ones included) and files skipped; a
    /// batch knows them once it has ended.
    pub files_failed: u64,
    pub files_skipped: u64,
    /// The exit code of the last command that ended: this one's once it
    /// is known, before that the one the textfile held (none if unknown).
    pub exit_code: Option<i32>,
    /// Unix time (seconds) of the last successful end: this command's if
    /// it succeeded, else the one the textfile held (0 there when no run
    /// is known to have succeeded; none on an endpoint without a textfile).
    pub last_success: Option<f64>,
}

/// Checks one `--metrics-label KEY=VALUE`: KEY a Prometheus label name
/// (`[a-zA-Z_][a-zA-Z0-9_]*`), not reserved (`__` prefix) and not one of
/// [`OWN_LABELS`]; VALUE not empty (an empty value is the same as no label
/// to Prometheus), any other text (escaped when written).
///
/// # Errors
///
/// What is wrong, for clap to print as a usage error.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE (e.g. job=nightly-backup)"))?;
    let mut chars = key.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{key:?} is not a Prometheus label name (letters, digits and _, not starting with a digit)"
        ));
    }
    if key.starts_with("__") {
        return Err(format!(
            "{key:?}: label names starting with __ are reserved by Prometheus"
        ));
    }
    if OWN_LABELS.contains(&key) {
        return Err(format!(
            "{key:?} is a label syncpipe sets itself ({}); choose another name",
            OWN_LABELS.join(", ")
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "{key:?} has an empty value, which Prometheus treats as no label at all"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// The full exposition text for `snap`.
pub fn render(snap: &Snapshot, run: &RunInfo) -> String {
    let mut out = String::with_capacity(16 << 10);
    let mut p = Printer {
        out: &mut out,
        constant: &run.labels,
    };
    p.family(
        "syncpipe_build_info",
        "gauge",
        "Always 1; the labels name the version, the backend and the command.",
    );
    p.sample(
        "syncpipe_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("backend", "sync"),
            ("command", &run.command),
        ],
        1.0,
    );
    let counters: [(&str, &str, u64); 10] = [
        (
            "syncpipe_files_total",
            "Files (runs) finished successfully.",
            snap.files,
        ),
        (
            "syncpipe_files_failed_total",
            "Files that failed or were cancelled (a batch's counted when it ends).",
            run.files_failed,
        ),
        (
            "syncpipe_files_skipped_total",
            "Files skipped because their output exists (counted when the batch ends).",
            run.files_skipped,
        ),
        (
            "syncpipe_chunks_total",
            "Chunks written, running files included.",
            snap.chunks,
        ),
        (
            "syncpipe_read_bytes_total",
            "Bytes the reader handed over in chunks, running files included.",
            snap.bytes_read,
        ),
        (
            "syncpipe_written_bytes_total",
            "Chunk bytes the writer wrote, running files included.",
            snap.bytes_written,
        ),
        (
            "syncpipe_input_bytes_total",
            "Exact bytes read by finished files (container framing included).",
            snap.bytes_in,
        ),
        (
            "syncpipe_output_bytes_total",
            "Exact bytes written by finished files (container framing included).",
            snap.bytes_out,
        ),
        (
            "syncpipe_buffers_reused_total",
            "Chunk buffers taken from the pool that were reused.",
            snap.buffers_reused,
        ),
        (
            "syncpipe_buffers_allocated_total",
            "Chunk buffers taken from the pool that had to be allocated.",
            snap.buffers_allocated,
        ),
    ];
    for (name, help, v) in counters {
        p.family(name, "counter", help);
        p.sample(name, &[], v as f64);
    }
    let mut gauges: Vec<(&str, &str, f64)> = vec![
        (
            "syncpipe_elapsed_seconds",
            "Seconds since the command started.",
            snap.elapsed.as_secs_f64(),
        ),
        (
            "syncpipe_cpu_available_permits",
            "CPU permits free now.",
            snap.cpu_permits.0 as f64,
        ),
        (
            "syncpipe_cpu_permits",
            "CPU permits (tokens) in all.",
            snap.cpu_permits.1 as f64,
        ),
        (
            "syncpipe_io_available_permits",
            "IO permits free now.",
            snap.io_permits.0 as f64,
        ),
        (
            "syncpipe_io_permits",
            "IO permits (tokens) in all.",
            snap.io_permits.1 as f64,
        ),
        (
            "syncpipe_active_workers",
            "Chunk jobs running on the CPU pool now.",
            snap.active_workers as f64,
        ),
        (
            "syncpipe_buffer_bytes",
            "Bytes of chunk data held in buffers now.",
            snap.buffer_bytes as f64,
        ),
        (
            "syncpipe_buffer_peak_bytes",
            "Most bytes of chunk data held at once.",
            snap.buffer_bytes_peak as f64,
        ),
        (
            "syncpipe_buffer_reuse_ratio",
            "Share of chunk buffers that were reused, 0 to 1.",
            snap.reuse_rate(),
        ),
    ];
    if let Some(t) = run.tuning {
        gauges.extend([
            (
                "syncpipe_tuning_cpu_tokens",
                "CPU tokens of the pipeline (--cpu-tokens).",
                t.cpu_tokens as f64,
            ),
            (
                "syncpipe_tuning_io_tokens",
                "IO tokens of the pipeline (--io-tokens).",
                t.io_tokens as f64,
            ),
            (
                "syncpipe_tuning_channel_depth_chunks",
                "Chunks each channel of the pipeline holds (--channel-depth).",
                t.channel_depth as f64,
            ),
            (
                "syncpipe_tuning_chunk_size_bytes",
                "Chunk size of the pipeline in bytes (the latest a file used).",
                t.chunk_size as f64,
            ),
        ]);
    }
    if let Some(code) = run.exit_code {
        gauges.push((
            "syncpipe_last_exit_code",
            "Exit code of the last command that ended (0 success, 5 some files failed; see --help).",
            f64::from(code),
        ));
    }
    if let Some(t) = run.last_success {
        gauges.push((
            "syncpipe_last_success_timestamp_seconds",
            "Unix time of the last command that ended with exit code 0 (0: none known).",
            t,
        ));
    }
    for (name, help, v) in gauges {
        p.family(name, "gauge", help);
        p.sample(name, &[], v);
    }
    let queue_gauges: [(&str, &str); 4] = [
        (
            "syncpipe_queue_depth_chunks",
            "Chunks in the channel as seen by the latest send.",
        ),
        (
            "syncpipe_queue_average_depth_chunks",
            "Average chunks in the channel as seen by sends.",
        ),
        (
            "syncpipe_queue_max_depth_chunks",
            "Most chunks in the channel as seen by a send.",
        ),
        (
            "syncpipe_queue_capacity_chunks",
            "Capacity of the channel in chunks.",
        ),
    ];
    for (i, (name, help)) in queue_gauges.iter().enumerate() {
        p.family(name, "gauge", help);
        for q in &snap.queues {
            let v = match i {
                0 => q.depth as f64,
                1 => q.avg,
                2 => q.max as f64,
                _ => q.capacity as f64,
            };
            p.sample(name, &[("queue", q.name)], v);
        }
    }
    for family in [
        Family::ChunkCpu,
        Family::ChunkTime,
        Family::StageCpu,
        Family::PermitWait,
        Family::QueueWait,
    ] {
        let name = format!("syncpipe_{}_seconds", family.name());
        let help = match family {
            Family::ChunkCpu => "Thread CPU time of one chunk's job (all stages).",
            Family::ChunkTime => "Wall time of one chunk's job on the pool (all stages).",
            Family::StageCpu => "Thread CPU time of one stage on one chunk.",
            Family::PermitWait => "Time one chunk waited for a permit (0 if none).",
            _ => "Time one chunk spent queued.",
        };
        p.family(&name, "histogram", help);
        for l in snap.latencies.iter().filter(|l| l.family == family) {
            p.histogram(&name, family.label_key().map(|k| (k, l.label.as_str())), l);
        }
    }
    out
}

/// How many samples of `l` are at or below each bound of [`BUCKETS`]
/// (cumulative). A recorded value stands for a range about 1 % wide (the
/// histograms keep 2 significant digits); it counts in a bucket only when
/// its whole range is at or below the bound, so no bucket ever counts a
/// sample above it, and one within 1 % below a bound may count in the next.
pub fn cumulative(l: &Latency) -> [u64; BUCKETS.len()] {
    let h = &l.histogram;
    let mut counts = [0u64; BUCKETS.len()];
    for v in h.iter_recorded() {
        let top = h.highest_equivalent(v.value_iterated_to());
        if let Some(i) = BUCKETS.iter().position(|&(ns, _)| top <= ns) {
            counts[i] += v.count_at_value();
        }
    }
    let mut sum = 0;
    for c in &mut counts {
        sum += *c;
        *c = sum;
    }
    counts
}

struct Printer<'a> {
    out: &'a mut String,
    /// Written on every sample, before its own labels.
    constant: &'a [(String, String)],
}

impl Printer<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing into a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        let all = self
            .constant
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(labels.iter().copied());
        for (i, (k, val)) in all.enumerate() {
            self.out.push(if i == 0 { '{' } else { ',' });
            let _ = write!(self.out, "{k}=\"{}\"", escape(val));
        }
        if !self.constant.is_empty() || !labels.is_empty() {
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(v));
    }

    /// One histogram's `_bucket` series (with `+Inf`), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, key: Option<(&str, &str)>, l: &Latency) {
        let bucket = format!("{name}_bucket");
        let own: Vec<(&str, &str)> = key.into_iter().collect();
        for (&(_, le), n) in BUCKETS.iter().zip(cumulative(l)) {
            let mut lab = own.clone();
            lab.push(("le", le));
            self.sample(&bucket, &lab, n as f64);
        }
        let mut lab = own.clone();
        lab.push(("le", "+Inf"));
        self.sample(&bucket, &lab, l.count() as f64);
        self.sample(&format!("{name}_sum"), &own, l.sum_ns as f64 / 1e9);
        self.sample(&format!("{name}_count"), &own, l.count() as f64);
    }
}

/// Label values escape backslash, double quote and newline (the format's rule).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Go-style float text: integers without a fraction, `NaN`/`+Inf` spelled out.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The last exit code and last success time a textfile written by an
/// earlier command holds (each `None` when absent or unreadable), so that
/// a command that fails keeps the success before it: an alert on
/// `time() - syncpipe_last_success_timestamp_seconds` then measures from
/// the last success, not from the failure.
pub fn previous_outcome(text: &str) -> (Option<i32>, Option<f64>) {
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    (
        value("syncpipe_last_exit_code")
            .filter(|v| *v <= 255.0 && v.fract() == 0.0)
            .map(|v| v as i32),
        value("syncpipe_last_success_timestamp_seconds"),
    )
}

/// Writes `text` to `path` atomically: a temp file in the same folder,
/// flushed, then renamed over `path`, so a collector never reads half a file.
/// A rename replaces whatever is at `path`, so it is made only while
/// nothing or a regular file is there (see `textfile.rs`).
///
/// # Errors
///
/// Any I/O error of creating, writing or renaming the temp file;
/// `NotRegular` when something else than a regular file is at `path`
/// (the temp file is then removed, and `path` left alone).
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "metrics.prom".into(), |n| n.to_string_lossy());
    // Named as every syncpipe temp file is, so that a killed run's
    // leftover is recognised and cleaned like the others; readable by a
    // collector running as another user, like any textfile.
    let mut tmp = syncpipe::output::temp_file(dir, &name, 0o600)?;
    tmp.write_all(text.as_bytes())?;
    tmp.flush()?;
    // Set after creation: the mode given at open is cut by the umask.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    // Checked last, right before the rename: the window left is the one
    // between this look and the rename itself.
    if let Some(what) = not_regular(path) {
        return Err(what.into_io());
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::textfile::NotRegular;

    #[test]
    fn numbers_and_escapes_follow_the_format() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn empty_snapshot_renders_every_family_once() {
        let text = render(&Snapshot::default(), &RunInfo::default());
        for name in ["syncpipe_files_total", "syncpipe_chunk_cpu_seconds"] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{text}"
            );
        }
        assert!(text.contains("syncpipe_build_info{version=\""));
        assert!(text.contains("# TYPE syncpipe_chunk_cpu_seconds histogram\n"));
        // Unknown until a run says: no sample rather than a made-up one.
        assert!(!text.contains("syncpipe_last_exit_code"), "{text}");
        assert!(!text.contains("syncpipe_tuning_"), "{text}");
    }

    #[test]
    fn every_name_ends_in_its_unit() {
        let run = RunInfo {
            tuning: Some(Tuning::default()),
            exit_code: Some(0),
            last_success: Some(0.0),
            ..RunInfo::default()
        };
        let text = render(&Snapshot::default(), &run);
        let units = [
            "_total", "_seconds", "_bytes", "_permits", "_tokens", "_chunks", "_workers", "_ratio",
            "_info", "_code",
        ];
        for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let (name, kind) = line.split_once(' ').expect("name and type");
            assert!(
                units.iter().any(|u| name.ends_with(u)),
                "{name} ends in no unit"
            );
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
        assert!(!text.contains("_bytes_peak") && !text.contains("syncpipe_tuning{"));
    }

    fn latency(samples_ns: &[u64]) -> Latency {
        let mut l = Latency::new(Family::QueueWait, "jobs");
        for &ns in samples_ns {
            l.record(ns);
        }
        l
    }

    #[test]
    fn histograms_count_each_sample_at_or_below_its_bound() {
        // 0 (no wait), 5 µs, 2 ms, 2 s, 100 s (above the last bound).
        let l = latency(&[0, 5_000, 2_000_000, 2_000_000_000, 100_000_000_000]);
        let c = cumulative(&l);
        let at = |le: &str| c[BUCKETS.iter().position(|b| b.1 == le).expect("bound")];
        assert_eq!(at("0.000001"), 1);
        assert_eq!(at("0.00001"), 2);
        assert_eq!(at("0.001"), 2);
        assert_eq!(at("0.0025"), 3);
        assert_eq!(at("1"), 3);
        assert_eq!(at("2.5"), 4);
        assert_eq!(at("60"), 4, "100 s is only in +Inf");
        assert!(c.windows(2).all(|w| w[0] <= w[1]), "cumulative");
        let run = RunInfo::default();
        let mut snap = Snapshot::default();
        snap.latencies.push(l);
        let text = render(&snap, &run);
        assert!(
            text.contains("\nsyncpipe_queue_wait_seconds_bucket{queue=\"jobs\",le=\"2.5\"} 4\n")
        );
        assert!(
            text.contains("\nsyncpipe_queue_wait_seconds_bucket{queue=\"jobs\",le=\"+Inf\"} 5\n")
        );
        assert!(text.contains("\nsyncpipe_queue_wait_seconds_count{queue=\"jobs\"} 5\n"));
        // The sum is exact, not rebuilt from the buckets.
        assert!(text.contains("\nsyncpipe_queue_wait_seconds_sum{queue=\"jobs\"} 102.002005\n"));
    }

    #[test]
    fn a_bucket_never_counts_a_sample_above_its_bound() {
        // Around 1 ms the histogram's bins are 4096 ns wide: the one that
        // holds 1 ms exactly reaches above it, so counts in the next bucket.
        let ms = BUCKETS.iter().position(|b| b.1 == "0.001").expect("1 ms");
        let c = cumulative(&latency(&[1_000_000, 1_000_001, 1_020_000]));
        assert_eq!(
            c[ms], 0,
            "within 1 % below a bound counts in the next bucket"
        );
        assert_eq!(c[ms + 1], 3);
        let c = cumulative(&latency(&[990_000]));
        assert_eq!(c[ms], 1);
    }

    #[test]
    fn constant_labels_are_on_every_sample_and_escaped() {
        let run = RunInfo {
            command: "process".into(),
            labels: vec![
                ("job".into(), "a \"b\" \\ c\nd".into()),
                ("shard".into(), "1/4".into()),
            ],
            ..RunInfo::default()
        };
        let mut snap = Snapshot::default();
        snap.latencies.push(latency(&[1]));
        let text = render(&snap, &run);
        let head = "{job=\"a \\\"b\\\" \\\\ c\\nd\",shard=\"1/4\"";
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let labels = line.split_once('{').map(|(_, rest)| rest);
            assert!(labels.is_some_and(|l| l.starts_with(&head[1..])), "{line}");
        }
        assert!(text.contains(&format!("syncpipe_files_total{head}}} 0\n")));
        assert!(text.contains(&format!(
            "syncpipe_queue_wait_seconds_bucket{head},queue=\"jobs\",le=\"+Inf\"}} 1\n"
        )));
    }

    #[test]
    fn labels_are_validated() {
        assert_eq!(
            parse_label("job=nightly backup"),
            Ok(("job".to_string(), "nightly backup".to_string()))
        );
        assert_eq!(
            parse_label("_x9=a=b"),
            Ok(("_x9".to_string(), "a=b".to_string()))
        );
        for bad in [
            "job",
            "=x",
            "9job=x",
            "jo-b=x",
            "jöb=x",
            "__name__=x",
            "le=1",
            "quantile=x",
            "shard=0/2",
            "stage=x",
            "job=",
        ] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_previous_outcome_is_read_back_from_a_textfile() {
        let run = RunInfo {
            labels: vec![("job".into(), "x y".into())],
            exit_code: Some(5),
            last_success: Some(1_700_000_000.5),
            ..RunInfo::default()
        };
        let text = render(&Snapshot::default(), &run);
        assert_eq!(previous_outcome(&text), (Some(5), Some(1_700_000_000.5)));
        assert_eq!(previous_outcome(""), (None, None));
        assert_eq!(
            previous_outcome("syncpipe_last_exit_code_x 3\nsyncpipe_last_exit_code junk\n"),
            (None, None)
        );
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("m.prom");
        write_atomic(&p, "a 1\n").expect("first write");
        write_atomic(&p, "a 2\n").expect("second write");
        assert_eq!(fs::read_to_string(&p).expect("read back"), "a 2\n");
        let names: Vec<_> = fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(names.len(), 1, "no temp file is left");
    }

    #[test]
    fn a_symlink_at_the_path_is_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("t");
        fs::write(&target, "kept").expect("write");
        let link = dir.path().join("m.prom");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let e = write_atomic(&link, "a 1\n").expect_err("refused");
        assert!(NotRegular::of(&e).is_some(), "{e}");
        assert!(fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).expect("read"), "kept");
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["m.prom", "t"], "no temp file is left");
    }

    #[test]
    fn the_textfile_lands_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("syncpipe.prom");
        write_atomic(&path, "a 1\n").expect("write");
        write_atomic(&path, "a 2\n").expect("rewrite");
        assert_eq!(fs::read_to_string(&path).expect("read"), "a 2\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("syncpipe.prom")]);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "readable by a collector");
    }
}
