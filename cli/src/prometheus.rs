//! Prometheus text exposition (format 0.0.4) of a metrics snapshot, and
//! the atomic textfile writer (`--prometheus-file`).
//!
//! Every name starts with `syncpipe_`. Counters end in `_total`; latencies
//! are summaries in seconds (`quantile` 0.5, 0.95, 0.99, plus `_sum` and
//! `_count`), one family per kind with the stage, permit or queue as a
//! label. A textfile collector (node_exporter's) or a scrape of
//! `--metrics-listen` reads the same text.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use syncpipe::metrics::{Family, Snapshot};

use crate::textfile::not_regular;

/// What the text says about the run besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// The subcommand (`process`, `restore`, `verify`).
    pub command: String,
    /// CPU tokens, IO tokens, channel depth and chunk size of the pipeline.
    pub tuning: Option<[u64; 4]>,
    /// Files that failed (cancelled ones included) and files skipped; a
    /// batch knows them once it has ended.
    pub files_failed: u64,
    pub files_skipped: u64,
}

/// The full exposition text for `snap`.
pub fn render(snap: &Snapshot, labels: &Labels) -> String {
    let mut out = String::with_capacity(8 << 10);
    let mut p = Printer { out: &mut out };
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
            ("command", &labels.command),
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
            labels.files_failed,
        ),
        (
            "syncpipe_files_skipped_total",
            "Files skipped because their output exists (counted when the batch ends).",
            labels.files_skipped,
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
    let gauges: [(&str, &str, f64); 9] = [
        (
            "syncpipe_elapsed_seconds",
            "Seconds since the command started.",
            snap.elapsed.as_secs_f64(),
        ),
        (
            "syncpipe_cpu_permits_available",
            "CPU permits free now.",
            snap.cpu_permits.0 as f64,
        ),
        (
            "syncpipe_cpu_permits",
            "CPU permits (tokens) in all.",
            snap.cpu_permits.1 as f64,
        ),
        (
            "syncpipe_io_permits_available",
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
            "syncpipe_buffer_bytes_peak",
            "Most bytes of chunk data held at once.",
            snap.buffer_bytes_peak as f64,
        ),
        (
            "syncpipe_buffer_reuse_ratio",
            "Share of chunk buffers that were reused, 0 to 1.",
            snap.reuse_rate(),
        ),
    ];
    for (name, help, v) in gauges {
        p.family(name, "gauge", help);
        p.sample(name, &[], v);
    }
    if let Some([cpu, io, depth, chunk]) = labels.tuning {
        p.family(
            "syncpipe_tuning",
            "gauge",
            "The tuning of the run, one sample per setting.",
        );
        for (setting, v) in [
            ("cpu_tokens", cpu),
            ("io_tokens", io),
            ("channel_depth", depth),
            ("chunk_size", chunk),
        ] {
            p.sample("syncpipe_tuning", &[("setting", setting)], v as f64);
        }
    }
    let queue_gauges: [(&str, &str); 4] = [
        ("syncpipe_queue_depth", "Depth seen by the latest send."),
        ("syncpipe_queue_depth_avg", "Average depth seen by sends."),
        ("syncpipe_queue_depth_max", "Largest depth seen by a send."),
        ("syncpipe_queue_capacity", "Capacity of the channel."),
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
        Family::StageCpu,
        Family::PermitWait,
        Family::QueueWait,
    ] {
        let name = format!("syncpipe_{}_seconds", family.name());
        let help = match family {
            Family::ChunkCpu => "CPU time of one chunk's job (all stages).",
            Family::StageCpu => "CPU time of one stage on one chunk.",
            Family::PermitWait => "Time one chunk waited for a permit (0 if none).",
            _ => "Time one chunk spent queued.",
        };
        p.family(&name, "summary", help);
        for l in snap.latencies.iter().filter(|l| l.family == family) {
            let key = family.label_key();
            for (q, qs) in [(0.5, "0.5"), (0.95, "0.95"), (0.99, "0.99")] {
                let mut lab: Vec<(&str, &str)> = Vec::new();
                if let Some(k) = key {
                    lab.push((k, &l.label));
                }
                lab.push(("quantile", qs));
                p.sample(&name, &lab, l.quantile_ns(q) as f64 / 1e9);
            }
            let lab: Vec<(&str, &str)> = key.map(|k| (k, l.label.as_str())).into_iter().collect();
            p.sample(&format!("{name}_sum"), &lab, l.sum_ns as f64 / 1e9);
            p.sample(&format!("{name}_count"), &lab, l.count() as f64);
        }
    }
    out
}

struct Printer<'a> {
    out: &'a mut String,
}

impl Printer<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing into a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(v));
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
        let text = render(&Snapshot::default(), &Labels::default());
        for name in ["syncpipe_files_total", "syncpipe_chunk_cpu_seconds"] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{text}"
            );
        }
        assert!(text.contains("syncpipe_build_info{version=\""));
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
