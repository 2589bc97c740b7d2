//! The live dashboard on stderr: progress, throughput, permits, queues,
//! chunk CPU time and memory, one frame redrawn in place every
//! `--metrics-interval` (see README.md, "The dashboard").
//!
//! Drawn only where a person watches: on a terminal (`--progress auto`, the
//! default) or when asked (`--progress always`); never with `-q` or
//! `--progress never`. A terminal that understands cursor movement gets the
//! frame ([`Style::Ansi`]); a dumb one (`TERM=dumb` or no `TERM`), or
//! stderr that is not a terminal, gets an occasional plain line instead
//! ([`Style::Plain`]). The frame is plain text plus three ANSI sequences
//! (cursor up, carriage return, erase to the end of the screen), so it
//! needs no terminal library.
//!
//! The frame never scrolls: every line is cut to the terminal's width as
//! it is at that redraw (asked with `TIOCGWINSZ` each time, so a resize
//! shows at the next frame), and each redraw moves back over exactly the
//! lines the previous one drew.

use std::ffi::OsStr;
use std::fmt::Write as _;
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
    /// Even when stderr is not a terminal (then as plain lines).
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

/// How the dashboard reaches the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One frame redrawn in place with cursor movement.
    Ansi,
    /// No escape sequence at all: a plain progress line every
    /// [`PLAIN_EVERY`] (or every interval, if longer), and a last one at
    /// the end if any was printed.
    Plain,
}

/// Shortest time between two plain lines: a log, not an animation.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Style {
    /// [`Style::Ansi`] only on a terminal whose `TERM` is set and not
    /// `dumb` (Emacs shells, some CI consoles): those show escape
    /// sequences as garbage.
    pub fn detect(stderr_is_terminal: bool, term: Option<&OsStr>) -> Style {
        match term {
            Some(t) if stderr_is_terminal && !t.is_empty() && t != "dumb" => Style::Ansi,
            _ => Style::Plain,
        }
    }
}

/// Where the width (and height) of the screen comes from.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    /// The terminal on stderr, asked at every frame.
    Stderr,
    /// A fixed size (columns, rows), for tests.
    #[cfg(test)]
    Fixed(usize, usize),
}

/// Columns assumed when the terminal does not say (and `COLUMNS` neither).
const DEFAULT_COLUMNS: usize = 80;

impl Screen {
    /// (columns, rows); rows is `None` when unknown.
    fn size(self) -> (usize, Option<usize>) {
        match self {
            Screen::Stderr => match terminal_size(libc::STDERR_FILENO) {
                Some((c, r)) => (c, Some(r)),
                None => (columns_from_env().unwrap_or(DEFAULT_COLUMNS), None),
            },
            #[cfg(test)]
            Screen::Fixed(c, r) => (c, Some(r)),
        }
    }
}

/// The size of the terminal on `fd` (columns, rows), if it is one and
/// says (a pseudo-terminal nobody sized reports 0 × 0).
fn terminal_size(fd: libc::c_int) -> Option<(usize, usize)> {
    // SAFETY: `winsize` is plain data (integers), valid when zeroed.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct passed, which
    // lives for the call; on a descriptor that is no terminal it fails.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some((usize::from(ws.ws_col), usize::from(ws.ws_row)))
}

fn columns_from_env() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&c| c > 0)
}

/// What the frame says besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// e.g. `process big.bin`.
    pub title: String,
    /// Input bytes in all, when known (a file), for the bar and the ETA.
    pub total: Option<u64>,
    /// Files of a batch, `None` for a single input (no files line then).
    pub files: Option<u64>,
    /// True for the last frame of a run: rates are averages over the run.
    pub done: bool,
    /// With `done`: the bar shows 100% (false: a batch some of whose files
    /// failed or were skipped shows the bytes it did).
    pub complete: bool,
}

/// Why a frame may be drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// An interval has passed.
    Tick,
    /// A file of a batch finished: the frame is redrawn if it is due (the
    /// ticks of a batch of small files may be rare).
    FileDone,
    /// The command's run (or batch) ended: the last frame, kept on screen;
    /// drawn only over a frame that is already there, so an instant run
    /// shows nothing but its summary.
    End,
}

/// Draws frames on `out`, each replacing the previous one.
pub struct Dashboard<W: Write> {
    out: W,
    style: Style,
    screen: Screen,
    interval: Duration,
    /// Lines of the frame on screen, to move back over.
    drawn: usize,
    /// The snapshot of the last frame or plain line: rates are over the
    /// time since.
    prev: Option<Snapshot>,
    /// Plain lines printed in this run.
    plain: usize,
}

impl<W: Write> Dashboard<W> {
    /// A dashboard drawing on `out`, which the caller has checked may be
    /// drawn on (see [`wanted`]) in `style`, refreshed every `interval`.
    pub fn new(out: W, style: Style, screen: Screen, interval: Duration) -> Dashboard<W> {
        Dashboard {
            out,
            style,
            screen,
            interval,
            drawn: 0,
            prev: None,
            plain: 0,
        }
    }

    /// Shows `snap` as `moment` asks (a frame, a plain line or nothing).
    ///
    /// # Errors
    ///
    /// A write error of `out` (the caller stops drawing).
    pub fn update(
        &mut self,
        snap: &Snapshot,
        ctx: &Context,
        rss: Option<u64>,
        moment: Moment,
    ) -> io::Result<()> {
        let since = self
            .prev
            .as_ref()
            .map_or(snap.elapsed, |p| snap.elapsed.saturating_sub(p.elapsed));
        match self.style {
            Style::Ansi => {
                let due = match moment {
                    Moment::Tick => true,
                    Moment::FileDone => since >= self.interval,
                    Moment::End => self.drawn > 0,
                };
                if due {
                    self.draw(snap, ctx, rss)?;
                }
                if moment == Moment::End {
                    // The last frame stays; a later run starts below it.
                    self.drawn = 0;
                    self.prev = None;
                }
            }
            Style::Plain => {
                let due = match moment {
                    Moment::Tick | Moment::FileDone => since >= PLAIN_EVERY.max(self.interval),
                    Moment::End => self.plain > 0,
                };
                if due {
                    let line = plain_line(snap, self.prev.as_ref(), ctx);
                    writeln!(self.out, "{line}")?;
                    self.out.flush()?;
                    self.plain += 1;
                    self.prev = Some(snap.clone());
                }
                if moment == Moment::End {
                    self.plain = 0;
                    self.prev = None;
                }
            }
        }
        Ok(())
    }

    /// Draws `snap` over the previous frame.
    fn draw(&mut self, snap: &Snapshot, ctx: &Context, rss: Option<u64>) -> io::Result<()> {
        let (width, rows) = self.screen.size();
        let mut lines = frame(snap, self.prev.as_ref(), ctx, rss, width);
        if let Some(rows) = rows.filter(|&r| r > 1) {
            // Taller than the screen, it would scroll: the last lines go.
            lines.truncate(rows - 1);
        }
        let mut buf = String::new();
        if self.drawn > 0 {
            // Back to the first line of the previous frame.
            let _ = write!(buf, "\x1b[{}A", self.drawn);
        }
        // Column 0, and erase what the previous frame left below (it may
        // have had more lines).
        buf.push_str("\r\x1b[J");
        for l in &lines {
            buf.push_str(l);
            buf.push('\n');
        }
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()?;
        self.drawn = lines.len();
        self.prev = Some(snap.clone());
        Ok(())
    }

    /// The writer (for tests).
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The lines of one frame, none wider than `width` columns. `prev` (the
/// last frame's snapshot) gives the rates over the last interval; without
/// it, and in the last frame, rates are averages over the run.
pub fn frame(
    snap: &Snapshot,
    prev: Option<&Snapshot>,
    ctx: &Context,
    rss: Option<u64>,
    width: usize,
) -> Vec<String> {
    let mut lines = vec![progress_line(snap, ctx, width)];
    let r = Rates::new(snap, prev, ctx.done);
    let mut t = format!(
        "throughput  {:.1} MB/s  in {}",
        r.bytes / 1e6,
        size::format(snap.bytes_read)
    );
    if snap.bytes_written > 0 {
        let _ = write!(t, "  out {}", size::format(snap.bytes_written));
    }
    let _ = write!(t, "  {:.0} chunks/s", r.chunks);
    lines.push(t);
    if let Some(n) = ctx.files {
        lines.push(format!(
            "files       {}/{n} done  {:.1} files/s",
            snap.files, r.files
        ));
    }
    // Permits in use: the figure that says how busy the pool and the I/O
    // are (a worker count beside it would disagree for the instant between
    // a permit's grant and its job's start).
    for (name, (free, cap), label) in [
        ("cpu", snap.cpu_permits, "cpu"),
        ("io", snap.io_permits, "io"),
    ] {
        let mut l = format!(
            "{name:<11} {}/{cap} permits in use",
            cap.saturating_sub(free)
        );
        if let Some(p) = pcts(snap, Family::PermitWait, label) {
            let _ = write!(l, "  wait p50/p95/p99 {p} ms");
        }
        lines.push(l);
    }
    if !snap.queues.is_empty() {
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
        lines.push(format!("queues      {}", queues.join("  ")));
    }
    let waits: Vec<String> = ["jobs", "results"]
        .iter()
        .filter_map(|q| pcts(snap, Family::QueueWait, q).map(|p| format!("{q} {p}")))
        .collect();
    if !waits.is_empty() {
        lines.push(format!("queue wait  p50/p95/p99 ms  {}", waits.join("  ")));
    }
    if let Some(cpu) = pcts(snap, Family::ChunkCpu, "") {
        let mut l = format!("chunk job   cpu p50/p95/p99 {cpu} ms");
        if let Some(time) = pcts(snap, Family::ChunkTime, "") {
            let _ = write!(l, "  wall time {time} ms");
        }
        lines.push(l);
    }
    let stages: Vec<String> = snap
        .latencies
        .iter()
        .filter(|l| l.family == Family::StageCpu)
        .filter_map(|l| pcts(snap, Family::StageCpu, &l.label).map(|p| format!("{} {p}", l.label)))
        .collect();
    if !stages.is_empty() {
        lines.push(format!("stage cpu   p50/p95/p99 ms  {}", stages.join("  ")));
    }
    lines.push(format!(
        "memory      rss {}  chunk buffers {} (peak {})  buffer reuse {:.1}%",
        rss.map_or_else(|| "?".to_string(), size::format),
        size::format(snap.buffer_bytes),
        size::format(snap.buffer_bytes_peak),
        snap.reuse_rate() * 100.0
    ));
    lines.into_iter().map(|l| fit(&l, width)).collect()
}

/// The first line: title, bar, percent, bytes, elapsed time, ETA. The bar
/// takes the room the rest leaves (up to 30 columns); a long title gives
/// way first (cut at its start: the end of a path names the file), the
/// bar last.
fn progress_line(snap: &Snapshot, ctx: &Context, width: usize) -> String {
    let title = printable(&ctx.title);
    let elapsed = format!("{} elapsed", clock(snap.elapsed));
    let total = match ctx.total {
        Some(t) if t > 0 => t,
        _ => {
            let end = if ctx.done { "  done" } else { "" };
            let tail = format!("  {}  {elapsed}{end}", size::format(snap.bytes_read));
            return format!(
                "{}{tail}",
                cut_start(&title, width.saturating_sub(cols(&tail)))
            );
        }
    };
    let done_bytes = snap.bytes_read.min(total);
    let frac = if ctx.done && ctx.complete {
        1.0
    } else {
        done_bytes as f64 / total as f64
    };
    let eta = if ctx.done {
        "done".to_string()
    } else {
        let avg = rate(snap.bytes_read, 0, snap.elapsed, Duration::ZERO);
        if avg > 0.0 {
            let left = total.saturating_sub(done_bytes) as f64 / avg;
            // Rounded up: "0:00" only when nothing is left.
            let left = Duration::try_from_secs_f64(left.ceil()).unwrap_or(Duration::MAX);
            format!("ETA {}", clock(left))
        } else {
            "ETA --:--".to_string()
        }
    };
    let tail = format!(
        "  {:.1}%  {} / {}  {elapsed}  {eta}",
        frac * 100.0,
        size::format(if ctx.done && ctx.complete {
            total
        } else {
            done_bytes
        }),
        size::format(total),
    );
    const MIN_BAR: usize = 10;
    const MAX_BAR: usize = 30;
    const MIN_TITLE: usize = 16;
    let room = width.saturating_sub(cols(&tail));
    // "  [" + bar + "]" around the bar.
    let bar_room = room.saturating_sub(cols(&title) + 4);
    let (title, bar_width) = if bar_room >= MIN_BAR {
        (title, bar_room.min(MAX_BAR))
    } else if room >= MIN_TITLE + 4 + MIN_BAR {
        let keep = (room - 4 - MIN_BAR).max(MIN_TITLE);
        (cut_start(&title, keep), MIN_BAR)
    } else {
        (cut_start(&title, room), 0)
    };
    if bar_width > 0 {
        format!("{title}  {}{tail}", bar(frac, bar_width))
    } else {
        format!("{title}{tail}")
    }
}

/// One plain line: what the first line of the frame says, and the rate.
pub fn plain_line(snap: &Snapshot, prev: Option<&Snapshot>, ctx: &Context) -> String {
    let mut l = progress_line(snap, ctx, usize::MAX);
    let r = Rates::new(snap, prev, ctx.done);
    let _ = write!(l, "  {:.1} MB/s", r.bytes / 1e6);
    if let Some(n) = ctx.files {
        let _ = write!(l, "  {}/{n} files", snap.files);
    }
    format!("syncpipe: {l}")
}

/// Rates per second over the time since `prev`, or over the whole run.
struct Rates {
    bytes: f64,
    chunks: f64,
    files: f64,
}

impl Rates {
    fn new(snap: &Snapshot, prev: Option<&Snapshot>, done: bool) -> Rates {
        // The last frame shows averages over the whole run: its last
        // interval is only the tail end (trailer, fsync) of it.
        let (b, c, f, t0) = match prev {
            Some(p) if snap.elapsed > p.elapsed && !done => {
                (p.bytes_read, p.chunks, p.files, p.elapsed)
            }
            _ => (0, 0, 0, Duration::ZERO),
        };
        Rates {
            bytes: rate(snap.bytes_read, b, snap.elapsed, t0),
            chunks: rate(snap.chunks, c, snap.elapsed, t0),
            files: rate(snap.files, f, snap.elapsed, t0),
        }
    }
}

/// `p50/p95/p99` of one histogram in milliseconds, or `None` before its
/// first sample.
fn pcts(snap: &Snapshot, family: Family, label: &str) -> Option<String> {
    snap.latency(family, label).map(|l| {
        format!(
            "{}/{}/{}",
            ms(l.quantile_ns(0.5)),
            ms(l.quantile_ns(0.95)),
            ms(l.quantile_ns(0.99))
        )
    })
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
    let inner = width.saturating_sub(2);
    let full = ((frac * inner as f64).round() as usize).min(inner);
    format!("[{}{}]", "#".repeat(full), "-".repeat(inner - full))
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `text` with control characters (a newline or an escape in a file name)
/// shown as `?`: they would move the cursor and break the frame.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Columns a character takes: 2 for the wide East Asian and emoji blocks,
/// 0 for combining marks, 1 otherwise. An approximation of `wcwidth` that
/// errs towards wide, so a cut line never overflows.
fn char_cols(c: char) -> usize {
    let u = u32::from(c);
    match u {
        0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

fn cols(text: &str) -> usize {
    text.chars().map(char_cols).sum()
}

/// `line` cut to `width` columns, its end replaced by `…` when cut.
fn fit(line: &str, width: usize) -> String {
    if cols(line) <= width {
        return line.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in line.chars() {
        let w = char_cols(c);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// `text` cut to `width` columns from its start (`…` + the end).
fn cut_start(text: &str, width: usize) -> String {
    if cols(text) <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = char_cols(c);
        if used + w + 1 > width {
            break;
        }
        kept.push(c);
        used += w;
    }
    kept.push('…');
    kept.into_iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncpipe::metrics::QueueStat;

    fn snap() -> Snapshot {
        Snapshot {
            bytes_read: 50 << 20,
            bytes_written: 20 << 20,
            chunks: 200,
            elapsed: Duration::from_secs(1),
            cpu_permits: (1, 2),
            io_permits: (9, 12),
            queues: vec![QueueStat {
                name: "jobs",
                depth: 3,
                capacity: 4,
                avg: 2.5,
                max: 4,
            }],
            ..Snapshot::default()
        }
    }

    fn ctx() -> Context {
        Context {
            title: "process big.bin".into(),
            total: Some(100 << 20),
            ..Context::default()
        }
    }

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
    fn only_a_terminal_with_a_real_term_gets_escapes() {
        let xterm = Some(OsStr::new("xterm-256color"));
        assert_eq!(Style::detect(true, xterm), Style::Ansi);
        assert_eq!(Style::detect(false, xterm), Style::Plain);
        assert_eq!(Style::detect(true, Some(OsStr::new("dumb"))), Style::Plain);
        assert_eq!(Style::detect(true, Some(OsStr::new(""))), Style::Plain);
        assert_eq!(Style::detect(true, None), Style::Plain);
    }

    #[test]
    fn frames_are_redrawn_in_place_over_the_lines_drawn() {
        let mut d = Dashboard::new(
            Vec::new(),
            Style::Ansi,
            Screen::Fixed(200, 50),
            Duration::from_millis(200),
        );
        d.update(&snap(), &ctx(), Some(20 << 20), Moment::Tick)
            .expect("draw");
        let first = String::from_utf8(d.out.clone()).expect("utf-8");
        assert!(
            first.starts_with("\r\x1b[J"),
            "no cursor-up first: {first:?}"
        );
        assert!(first.contains("process big.bin  [##############--------------]  50.0%"));
        assert!(
            first.contains("50 MiB / 100 MiB  0:01 elapsed  ETA 0:01"),
            "{first}"
        );
        assert!(first.contains("throughput  52.4 MB/s  in 50 MiB  out 20 MiB  200 chunks/s"));
        assert!(
            first.contains("cpu         1/2 permits in use\n"),
            "{first}"
        );
        assert!(
            first.contains("io          3/12 permits in use\n"),
            "{first}"
        );
        assert!(first.contains("queues      jobs 3/4 (avg 2.5, max 4)"));
        assert!(first.contains("rss 20 MiB"));
        assert!(!first.contains("files"), "no files line for one input");
        let n = first.lines().count();
        d.update(
            &snap(),
            &Context {
                done: true,
                complete: true,
                ..ctx()
            },
            None,
            Moment::End,
        )
        .expect("draw");
        let all = String::from_utf8(d.into_inner()).expect("utf-8");
        let second = &all[first.len()..];
        assert!(
            second.starts_with(&format!("\x1b[{n}A\r\x1b[J")),
            "{second:?}"
        );
        assert!(second.contains("100.0%") && second.contains("done"));
    }

    #[test]
    fn an_end_without_a_frame_on_screen_draws_nothing() {
        for style in [Style::Ansi, Style::Plain] {
            let mut d = Dashboard::new(
                Vec::new(),
                style,
                Screen::Fixed(80, 24),
                Duration::from_millis(200),
            );
            d.update(&snap(), &ctx(), None, Moment::End).expect("end");
            assert!(d.into_inner().is_empty(), "{style:?}");
        }
    }

    #[test]
    fn batch_frames_redraw_the_same_frame_when_due() {
        let mut d = Dashboard::new(
            Vec::new(),
            Style::Ansi,
            Screen::Fixed(80, 24),
            Duration::from_millis(200),
        );
        let c = Context {
            title: "process 9 files".into(),
            files: Some(9),
            ..ctx()
        };
        let at = |ms: u64, files: u64| Snapshot {
            elapsed: Duration::from_millis(ms),
            files,
            ..snap()
        };
        // Before the first interval: nothing.
        d.update(&at(50, 1), &c, None, Moment::FileDone)
            .expect("draw");
        assert!(d.out.is_empty());
        d.update(&at(250, 3), &c, None, Moment::FileDone)
            .expect("draw");
        let first = String::from_utf8(d.out.clone()).expect("utf-8");
        assert!(first.contains("files       3/9 done"), "{first}");
        // Not due yet, then due: one redraw over the same lines.
        d.update(&at(300, 4), &c, None, Moment::FileDone)
            .expect("draw");
        assert_eq!(d.out.len(), first.len());
        d.update(&at(460, 5), &c, None, Moment::FileDone)
            .expect("draw");
        let all = String::from_utf8(d.into_inner()).expect("utf-8");
        let n = first.lines().count();
        assert!(all[first.len()..].starts_with(&format!("\x1b[{n}A")));
        assert_eq!(all.matches("\x1b[J").count(), 2);
    }

    #[test]
    fn every_line_fits_the_width_and_the_bar_gives_way_last() {
        let mut s = snap();
        let lat = |family, label: &str| {
            let mut l = syncpipe::metrics::Latency::new(family, label);
            l.record(1_000_000);
            l
        };
        s.latencies = vec![
            lat(Family::ChunkCpu, ""),
            lat(Family::ChunkTime, ""),
            lat(Family::StageCpu, "zstd:3"),
            lat(Family::StageCpu, "blake3"),
            lat(Family::PermitWait, "cpu"),
            lat(Family::QueueWait, "jobs"),
        ];
        let c = Context {
            title: format!("process /very/long/path/{}/big.bin", "x".repeat(120)),
            ..ctx()
        };
        for width in [20, 40, 60, 80, 100, 120, 200, 300] {
            let lines = frame(&s, None, &c, Some(1 << 20), width);
            for l in &lines {
                assert!(cols(l) <= width, "{width}: {l:?}");
            }
            if width >= 80 {
                // The title gives way (cut at its start) before the bar.
                assert_eq!(lines[0].contains("…"), width < 300, "{width}: {}", lines[0]);
                assert!(lines[0].contains("big.bin  ["), "{width}: {}", lines[0]);
                assert!(lines[0].ends_with("ETA 0:01"), "{width}: {}", lines[0]);
            }
        }
        let wide = frame(&s, None, &c, None, 300);
        assert!(wide
            .iter()
            .any(|l| l.starts_with("queue wait  p50/p95/p99 ms  jobs 1.00/")));
        assert!(wide
            .iter()
            .any(|l| l.starts_with("chunk job   cpu p50/p95/p99 1.00/")
                && l.contains("wall time 1.00/")));
        assert!(wide
            .iter()
            .any(|l| l.contains("stage cpu   p50/p95/p99 ms  zstd:3 1.00/")));
        assert!(wide
            .iter()
            .any(|l| l.contains("cpu         1/2 permits in use  wait p50/p95/p99 1.00/")));
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
                ..Context::default()
            },
            None,
            80,
        );
        assert_eq!(lines[0], "process -  2 KiB  0:00 elapsed");
        assert!(lines.iter().any(|l| l.starts_with("memory      rss ?")));
        // Nothing measured yet: no empty percentile lines.
        assert!(!lines.iter().any(|l| l.contains("p50")), "{lines:?}");
    }

    #[test]
    fn control_characters_and_wide_names_cannot_break_the_frame() {
        let c = Context {
            title: "process a\nb\x1b[2Jc漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字".into(),
            ..ctx()
        };
        let lines = frame(&snap(), None, &c, None, 40);
        assert!(!lines.iter().any(|l| l.chars().any(char::is_control)));
        assert!(lines.iter().all(|l| cols(l) <= 40), "{lines:?}");
    }

    #[test]
    fn plain_lines_are_occasional_and_have_no_escapes() {
        let mut d = Dashboard::new(
            Vec::new(),
            Style::Plain,
            Screen::Fixed(80, 24),
            Duration::from_millis(200),
        );
        let at = |s: u64| Snapshot {
            elapsed: Duration::from_secs(s),
            ..snap()
        };
        for s in 1..=11 {
            d.update(&at(s), &ctx(), None, Moment::Tick).expect("line");
        }
        d.update(
            &at(12),
            &Context {
                done: true,
                complete: true,
                ..ctx()
            },
            None,
            Moment::End,
        )
        .expect("line");
        let text = String::from_utf8(d.into_inner()).expect("utf-8");
        assert!(!text.contains('\x1b'), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        // At 5 s and 10 s, then the end.
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("syncpipe: process big.bin  [")
                && lines[0].contains("0:05 elapsed")
        );
        assert!(
            lines[2].contains("100.0%") && lines[2].contains("done"),
            "{}",
            lines[2]
        );
    }
}
