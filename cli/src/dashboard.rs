//! The live dashboard on stderr: a progress bar with ETA, then throughput,
//! permits, queues, chunk CPU time and memory, redrawn in place every
//! `--metrics-interval`.
//!
//! Drawn only where a person watches: on a terminal (`--progress auto`, the
//! default) or when asked (`--progress always`); never with `-q` or
//! `--progress never`. Off a terminal nothing is drawn, and only the final
//! summary (with `-v`) is printed. The frame is plain text plus two ANSI
//! sequences (cursor up, erase line), so it needs no terminal library.

use std::io::{self, Write};
use std::time::Duration;

use clap::ValueEnum;
use syncpipe::metrics::{Family, Snapshot};

use crate::size;

/// When to draw the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// Only when stderr is a terminal.
    Auto,
    /// Even when stderr is not a terminal.
    Always,
    /// Never.
    Never,
}

/// Whether the dashboard is drawn: `-q` and `never` win, `always` draws
/// anywhere, `auto` only on a terminal.
pub fn wanted(progress: Progress, quiet: bool, stderr_is_terminal: bool) -> bool {
    !quiet
        && match progress {
            Progress::Auto => stderr_is_terminal,
            Progress::Always => true,
            Progress::Never => false,
        }
}

/// What the frame says besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// e.g. `process big.bin`.
    pub title: String,
    /// Input bytes in all, when known (a file), for the bar and the ETA.
    pub total: Option<u64>,
    /// True for the last frame of a run: the bar shows 100%.
    pub done: bool,
}

/// Draws frames on `out`, each replacing the previous one.
pub struct Dashboard<W: Write> {
    out: W,
    /// Lines of the frame on screen, to move back over.
    drawn: usize,
    prev: Option<Snapshot>,
}

impl<W: Write> Dashboard<W> {
    /// A dashboard drawing on `out`, which the caller has checked is (or
    /// is allowed to be treated as) a terminal; see [`wanted`].
    pub fn new(out: W) -> Dashboard<W> {
        Dashboard {
            out,
            drawn: 0,
            prev: None,
        }
    }

    /// Draws `snap` over the previous frame.
    ///
    /// # Errors
    ///
    /// A write error of `out` (the caller stops drawing).
    pub fn draw(&mut self, snap: &Snapshot, ctx: &Context, rss: Option<u64>) -> io::Result<()> {
        let lines = frame(snap, self.prev.as_ref(), ctx, rss);
        let mut buf = String::new();
        if self.drawn > 0 {
            // Back to the first line of the previous frame.
            buf.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for l in &lines {
            // Carriage return, erase the line, then the text.
            buf.push_str("\r\x1b[2K");
            buf.push_str(l);
            buf.push('\n');
        }
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()?;
        self.drawn = lines.len();
        self.prev = Some(snap.clone());
        Ok(())
    }

    /// Forgets the frame on screen: the next one is drawn below it (after
    /// a run's final frame, so that it stays visible).
    pub fn keep(&mut self) {
        self.drawn = 0;
        self.prev = None;
    }

    /// The writer (for tests).
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The lines of one frame. `prev` (the last frame's snapshot) gives the
/// rates over the last interval; without it, rates are averages.
pub fn frame(
    snap: &Snapshot,
    prev: Option<&Snapshot>,
    ctx: &Context,
    rss: Option<u64>,
) -> Vec<String> {
    let mut lines = Vec::with_capacity(7);
    // Progress bar and ETA.
    let done_bytes = snap.bytes_read;
    let avg_rate = rate(done_bytes, 0, snap.elapsed, Duration::ZERO);
    match ctx.total {
        Some(total) if total > 0 => {
            let frac = if ctx.done {
                1.0
            } else {
                (done_bytes as f64 / total as f64).min(1.0)
            };
            let eta = if ctx.done {
                "done".to_string()
            } else if avg_rate > 0.0 {
                let left = total.saturating_sub(done_bytes) as f64 / avg_rate;
                // Rounded up: "0:00" only when nothing is left.
                format!(
                    "ETA {}",
                    clock(Duration::try_from_secs_f64(left.ceil()).unwrap_or(Duration::MAX))
                )
            } else {
                "ETA --:--".to_string()
            };
            lines.push(format!(
                "{}  {}  {:.1}%  {} / {}  {eta}",
                ctx.title,
                bar(frac, 30),
                frac * 100.0,
                size::format(done_bytes.min(total)),
                size::format(total),
            ));
        }
        _ => lines.push(format!(
            "{}  {}  elapsed {}",
            ctx.title,
            size::format(done_bytes),
            clock(snap.elapsed)
        )),
    }
    // Throughput over the last interval.
    // The final frame shows averages over the whole run: the last
    // interval is only the tail end (trailer, fsync) of it.
    let (bytes_s, chunks_s, files_s) = match prev {
        Some(p) if snap.elapsed > p.elapsed && !ctx.done => (
            rate(snap.bytes_read, p.bytes_read, snap.elapsed, p.elapsed),
            rate(snap.chunks, p.chunks, snap.elapsed, p.elapsed),
            rate(snap.files, p.files, snap.elapsed, p.elapsed),
        ),
        _ => (
            avg_rate,
            rate(snap.chunks, 0, snap.elapsed, Duration::ZERO),
            rate(snap.files, 0, snap.elapsed, Duration::ZERO),
        ),
    };
    lines.push(format!(
        "throughput  {:.1} files/s  {:.1} MB/s  {:.1} chunks/s",
        files_s,
        bytes_s / 1e6,
        chunks_s
    ));
    // Permits.
    let wait = |label: &str| pcts(snap, Family::PermitWait, label);
    lines.push(format!(
        "permits     cpu {}/{} free, wait {}   io {}/{} free, wait {}",
        snap.cpu_permits.0,
        snap.cpu_permits.1,
        wait("cpu"),
        snap.io_permits.0,
        snap.io_permits.1,
        wait("io"),
    ));
    // Queues.
    let queues: Vec<String> = snap
        .queues
        .iter()
        .map(|q| {
            format!(
                "{} {}/{} (avg {:.1}, max {})",
                q.name, q.depth, q.capacity, q.avg, q.max
            )
        })
        .collect();
    lines.push(format!("queues      {}", queues.join("   ")));
    // Chunk CPU time, whole job and per stage.
    lines.push(format!(
        "chunk cpu   {}   workers {} busy",
        pcts(snap, Family::ChunkCpu, ""),
        snap.active_workers
    ));
    let stages: Vec<String> = snap
        .latencies
        .iter()
        .filter(|l| l.family == Family::StageCpu)
        .map(|l| format!("{} {}", l.label, pcts(snap, Family::StageCpu, &l.label)))
        .collect();
    if !stages.is_empty() {
        lines.push(format!("stage cpu   {}", stages.join("   ")));
    }
    // Memory.
    lines.push(format!(
        "memory      rss {}  chunk buffers {} (peak {})  buffer reuse {:.1}%",
        rss.map_or_else(|| "?".to_string(), size::format),
        size::format(snap.buffer_bytes),
        size::format(snap.buffer_bytes_peak),
        snap.reuse_rate() * 100.0
    ));
    lines
}

/// `p50/p95/p99 ms` of one histogram, or `-` before its first sample.
fn pcts(snap: &Snapshot, family: Family, label: &str) -> String {
    match snap.latency(family, label) {
        Some(l) => format!(
            "p50/p95/p99 {}/{}/{} ms",
            ms(l.quantile_ns(0.5)),
            ms(l.quantile_ns(0.95)),
            ms(l.quantile_ns(0.99))
        ),
        None => "-".to_string(),
    }
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

fn rate(now: u64, before: u64, t: Duration, t0: Duration) -> f64 {
    let dt = t.saturating_sub(t0).as_secs_f64();
    if dt > 0.0 {
        now.saturating_sub(before) as f64 / dt
    } else {
        0.0
    }
}

fn bar(frac: f64, width: usize) -> String {
    let full = ((frac * width as f64).round() as usize).min(width);
    format!("[{}{}]", "#".repeat(full), "-".repeat(width - full))
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_and_never_win_and_auto_needs_a_terminal() {
        assert!(wanted(Progress::Auto, false, true));
        assert!(!wanted(Progress::Auto, false, false));
        assert!(wanted(Progress::Always, false, false));
        assert!(!wanted(Progress::Always, true, true));
        assert!(!wanted(Progress::Never, false, true));
        assert!(!wanted(Progress::Auto, true, true));
    }

    #[test]
    fn frames_are_redrawn_in_place() {
        let snap = Snapshot {
            bytes_read: 50 << 20,
            elapsed: Duration::from_secs(1),
            cpu_permits: (1, 2),
            io_permits: (12, 12),
            ..Snapshot::default()
        };
        let ctx = Context {
            title: "process big.bin".into(),
            total: Some(100 << 20),
            done: false,
        };
        let mut d = Dashboard::new(Vec::new());
        d.draw(&snap, &ctx, Some(20 << 20)).expect("draw");
        let first = String::from_utf8(d.out.clone()).expect("utf-8");
        assert!(first.contains("process big.bin  [###############---------------]  50.0%"));
        assert!(first.contains("50 MiB / 100 MiB  ETA 0:01"), "{first}");
        assert!(first.contains("permits     cpu 1/2 free"));
        assert!(first.contains("rss 20 MiB"));
        assert!(
            !first.contains("\x1b[") || first.starts_with("\r\x1b[2K"),
            "no cursor-up on the first frame"
        );
        let n = first.lines().count();
        d.draw(&snap, &Context { done: true, ..ctx }, None)
            .expect("draw");
        let all = String::from_utf8(d.into_inner()).expect("utf-8");
        let second = &all[first.len()..];
        assert!(second.starts_with(&format!("\x1b[{n}A")), "{second:?}");
        assert!(second.contains("100.0%") && second.contains("done"));
    }

    #[test]
    fn unknown_total_shows_bytes_and_elapsed() {
        let lines = frame(
            &Snapshot {
                bytes_read: 2048,
                ..Snapshot::default()
            },
            None,
            &Context {
                title: "process -".into(),
                total: None,
                done: false,
            },
            None,
        );
        assert_eq!(lines[0], "process -  2 KiB  elapsed 0:00");
        assert!(lines.iter().any(|l| l.starts_with("memory      rss ?")));
    }
}
