//! `--json`: one JSON object per line on stdout, in the schema of
//! `docs/json.md` (restic-style `message_type`: `status`, `file_done`,
//! `error`, `summary`; `syncpipe bench`'s `bench_row` and summary are in
//! `bench_cli.rs`). The same schema is meant to be emitted by an async
//! implementation, so that two runs can be diffed field by field; the
//! `backend` field tells them apart.

use std::path::Path;

use serde_json::{json, Map, Value};
use syncpipe::metrics::Snapshot;
use syncpipe::{Error, ErrorKind, Report};

/// Version of the schema in `docs/json.md`; bumped when a field changes
/// meaning or disappears (new fields do not bump it).
pub const SCHEMA_VERSION: u32 = 1;

/// The settings a run used, as the summary reports them.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    pub threads: usize,
    pub cpu_tokens: usize,
    pub io_tokens: usize,
    pub channel_depth: usize,
    /// Bytes per chunk (for restore: of the last container read).
    pub chunk_size: usize,
    /// Stage list, when known before the run (process).
    pub stages: Option<String>,
    /// `nvme`, `ssd`, `hdd` (given or detected), or `unknown`.
    pub storage_type: &'static str,
}

/// A `status` line: progress and gauges at one tick.
pub fn status(command: &str, snap: &Snapshot, total: Option<u64>) -> Value {
    let secs = snap.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        snap.bytes_read as f64 / secs
    } else {
        0.0
    };
    let percent = total
        .filter(|&t| t > 0)
        .map(|t| (snap.bytes_read as f64 / t as f64 * 100.0).min(100.0));
    let eta = total
        .filter(|_| rate > 0.0)
        .map(|t| t.saturating_sub(snap.bytes_read) as f64 / rate);
    json!({
        "message_type": "status",
        "backend": "sync",
        "command": command,
        "elapsed_s": secs,
        "files_done": snap.files,
        "chunks": snap.chunks,
        "bytes_read": snap.bytes_read,
        "bytes_written": snap.bytes_written,
        "total_bytes": total,
        "percent_done": percent,
        "eta_s": eta,
        "mb_per_s": rate / 1e6,
        "gauges": gauges(snap),
    })
}

/// A `file_done` line: one input finished successfully.
pub fn file_done(command: &str, input: &Path, output: &str, r: &Report) -> Value {
    json!({
        "message_type": "file_done",
        "backend": "sync",
        "command": command,
        "input": input.display().to_string(),
        "output": output,
        "bytes_in": r.bytes_in,
        "bytes_out": r.bytes_out,
        "original_bytes": r.original_bytes,
        "chunks": r.chunks,
        "elapsed_s": r.elapsed.as_secs_f64(),
        "mb_per_s": r.mb_per_s(),
        "checksum": r.checksum.map(|c| c.name()),
        "digest": r.digest_hex(),
        "chunk_size": r.chunk_size,
        "chunk_method": (!r.chunk_sizes.is_empty()).then(|| r.chunk_method.name()),
        "chunk_sizes": r.chunk_sizes.iter().map(|c| json!({
            "from_chunk": c.from_chunk,
            "size": c.size,
            "mean_cost_ns": c.mean_cost.as_nanos() as u64,
        })).collect::<Vec<_>>(),
        "thread_cpu_s": {
            "reader": r.thread_cpu.reader.as_secs_f64(),
            "hasher": r.thread_cpu.hasher.as_secs_f64(),
            "dispatcher": r.thread_cpu.dispatcher.as_secs_f64(),
            "writer": r.thread_cpu.writer.as_secs_f64(),
        },
    })
}

/// An `error` line.
pub fn error(command: &str, err: &Error, exit_code: i32) -> Value {
    json!({
        "message_type": "error",
        "backend": "sync",
        "command": command,
        "error": {
            "message": err.to_string(),
            "kind": kind_name(err.kind()),
        },
        "input": err.path().map(|p| p.display().to_string()),
        "chunk": err.chunk(),
        "exit_code": exit_code,
    })
}

/// The `summary` line, last of every `--json` run.
pub fn summary(
    command: &str,
    snap: &Snapshot,
    original_bytes: u64,
    (files_failed, files_skipped): (u64, u64),
    tuning: &Tuning,
    exit_code: i32,
    rss_peak: Option<u64>,
) -> Value {
    let secs = snap.elapsed.as_secs_f64();
    let mut latency = Map::new();
    for l in &snap.latencies {
        latency.insert(
            l.key(),
            json!({
                "count": l.count(),
                "p50": l.quantile_ns(0.5),
                "p95": l.quantile_ns(0.95),
                "p99": l.quantile_ns(0.99),
                "max": l.histogram.max(),
                "mean": l.histogram.mean(),
                "sum": l.sum_ns,
            }),
        );
    }
    json!({
        "message_type": "summary",
        "schema_version": SCHEMA_VERSION,
        "version": env!("CARGO_PKG_VERSION"),
        "backend": "sync",
        "command": command,
        "exit_code": exit_code,
        "files_done": snap.files,
        "files_failed": files_failed,
        "files_skipped": files_skipped,
        "bytes_in": snap.bytes_in,
        "bytes_out": snap.bytes_out,
        "original_bytes": original_bytes,
        "chunks": snap.chunks,
        "elapsed_s": secs,
        "mb_per_s": if secs > 0.0 { original_bytes as f64 / 1e6 / secs } else { 0.0 },
        "latency_ns": latency,
        "tuning": {
            "threads": tuning.threads,
            "cpu_tokens": tuning.cpu_tokens,
            "io_tokens": tuning.io_tokens,
            "channel_depth": tuning.channel_depth,
            "chunk_size": tuning.chunk_size,
            "storage_type": tuning.storage_type,
            "stages": tuning.stages,
        },
        "gauges": gauges(snap),
        "rss_peak_bytes": rss_peak,
    })
}

fn gauges(snap: &Snapshot) -> Value {
    let mut queues = Map::new();
    for q in &snap.queues {
        queues.insert(
            q.name.to_string(),
            json!({"depth": q.depth, "capacity": q.capacity, "avg": q.avg, "max": q.max}),
        );
    }
    json!({
        "cpu_permits_available": snap.cpu_permits.0,
        "cpu_permits": snap.cpu_permits.1,
        "io_permits_available": snap.io_permits.0,
        "io_permits": snap.io_permits.1,
        "active_workers": snap.active_workers,
        "buffer_bytes": snap.buffer_bytes,
        "buffer_bytes_peak": snap.buffer_bytes_peak,
        "buffers_reused": snap.buffers_reused,
        "buffers_allocated": snap.buffers_allocated,
        "buffer_reuse_rate": snap.reuse_rate(),
        "queues": queues,
    })
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Io => "io",
        ErrorKind::Usage => "usage",
        ErrorKind::Integrity => "integrity",
        ErrorKind::WrongKey => "wrong_key",
        ErrorKind::Stage => "stage",
        ErrorKind::Panic => "panic",
        ErrorKind::Cancelled => "cancelled",
        ErrorKind::Resource => "resource",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_has_the_fields_the_schema_promises() {
        let v = summary(
            "process",
            &Snapshot::default(),
            0,
            (0, 0),
            &Tuning {
                storage_type: "ssd",
                ..Tuning::default()
            },
            0,
            None,
        );
        for key in [
            "message_type",
            "version",
            "backend",
            "bytes_in",
            "bytes_out",
            "elapsed_s",
            "mb_per_s",
            "latency_ns",
            "tuning",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["backend"], "sync");
        assert_eq!(v["tuning"]["storage_type"], "ssd");
    }

    #[test]
    fn error_names_kind_and_code() {
        let v = error("restore", &Error::integrity("bad"), 3);
        assert_eq!(v["message_type"], "error");
        assert_eq!(v["error"]["kind"], "integrity");
        assert_eq!(v["exit_code"], 3);
    }
}
