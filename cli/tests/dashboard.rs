//! The live dashboard of the real `syncpipe` binary in a real
//! pseudo-terminal (`openpty`, sized with `TIOCSWINSZ`): every line fits
//! the terminal's width, each redraw moves back over exactly the lines the
//! previous frame drew (nothing scrolls or stacks), a batch is one frame,
//! a resize shows at the next frames, and a dumb terminal or a pipe gets
//! plain lines without a single escape byte.
//!
//! Nothing asserts a time: a run is kept going (its input is a FIFO the
//! test feeds, or a batch of slow-to-compress files) until the test has
//! seen the frames it needs. Every child runs under the watchdog.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::common::{self, mixed_data, watchdog};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const ROWS: u16 = 40;

/// The master side of a pseudo-terminal, and what has been read from it.
struct Pty {
    master: Arc<OwnedFd>,
    out: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: Option<thread::JoinHandle<()>>,
}

fn winsize(cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: ROWS,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn cloexec(fd: libc::c_int) {
    // SAFETY: F_SETFD on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
        0
    );
}

/// Opens a pseudo-terminal of `cols` columns; returns it and its slave,
/// for the child's stderr.
fn open_pty(cols: u16) -> (Pty, File) {
    let (mut m, mut s) = (-1, -1);
    let ws = winsize(cols);
    // SAFETY: openpty writes two descriptors into the ints passed; the
    // name may be null, the termios null (defaults) and the size valid.
    let rc = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // Not inherited by the children other tests start meanwhile: a slave
    // held open elsewhere would outlive our child.
    cloexec(m);
    cloexec(s);
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), File::from_raw_fd(s)) };
    let master = Arc::new(master);
    let out = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (master, out, stop) = (Arc::clone(&master), Arc::clone(&out), Arc::clone(&stop));
        thread::spawn(move || read_until_stopped(master.as_raw_fd(), &out, &stop))
    };
    (
        Pty {
            master,
            out,
            stop,
            reader: Some(reader),
        },
        slave,
    )
}

/// Reads `fd` into `out` until `stop` is set and nothing more is there
/// (polled, so a slave kept open by someone else cannot hang it).
fn read_until_stopped(fd: libc::c_int, out: &Mutex<Vec<u8>>, stop: &AtomicBool) {
    let mut buf = [0u8; 8192];
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the call.
        let ready = unsafe { libc::poll(&mut p, 1, 50) };
        if ready <= 0 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        }
        // SAFETY: reads into a buffer of the length passed.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            // EIO: every slave descriptor is closed.
            return;
        }
        out.lock()
            .expect("output")
            .extend_from_slice(&buf[..n as usize]);
    }
}

impl Pty {
    fn len(&self) -> usize {
        self.out.lock().expect("output").len()
    }

    /// Waits (polling) until `n` frames were drawn after byte `from`.
    fn wait_frames_after(&self, from: usize, n: usize) {
        loop {
            let seen = count(&self.out.lock().expect("output")[from..], b"\x1b[J");
            if seen >= n {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn resize(&self, cols: u16, child: &Child) {
        let ws = winsize(cols);
        // SAFETY: TIOCSWINSZ reads one winsize from the struct passed.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0);
        // The child is in no session of this terminal: tell it as the
        // terminal would tell its foreground process group.
        // SAFETY: a signal to our own child, still running (not waited).
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGWINCH) }, 0);
    }

    /// Everything the terminal received, once the child is gone.
    fn finish(mut self) -> Vec<u8> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            r.join().expect("reader");
        }
        let out = self.out.lock().expect("output");
        out.clone()
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Starts `syncpipe ARGS` in `dir` with stderr on `stderr`, `TERM` set to
/// `term` (or unset).
fn spawn(dir: &Path, args: &[&str], stderr: Stdio, term: Option<&str>) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .env_remove("COLUMNS");
    match term {
        Some(t) => cmd.env("TERM", t),
        None => cmd.env_remove("TERM"),
    };
    cmd.spawn().expect("start syncpipe")
}

/// Writes to the FIFO at `path` (opening it blocks until the child opens
/// it) until `stop` is set, then closes it: the input's end.
fn feed(path: &Path, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let path = path.to_path_buf();
    thread::spawn(move || {
        let mut fifo = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the FIFO");
        let block = mixed_data(32 << 10, 7);
        while !stop.load(Ordering::SeqCst) {
            if fifo.write_all(&block).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    })
}

/// One frame as the terminal received it: how many lines it moved back
/// over first (0: drawn below what was there), then its lines (the last
/// frame's include what was printed after it).
#[derive(Debug)]
struct Frame {
    /// Byte offset of its start in the output.
    at: usize,
    up: usize,
    lines: Vec<String>,
}

/// Splits the output into the text before the first frame and the frames;
/// fails on any escape sequence other than the three the dashboard uses.
fn parse(out: &[u8]) -> (Vec<String>, Vec<Frame>) {
    let mut before = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut pending_up = 0;
    let mut line = Vec::new();
    let mut i = 0;
    while i < out.len() {
        match out[i] {
            0x1b => {
                assert_eq!(out.get(i + 1), Some(&b'['), "bare ESC at {i}");
                let mut j = i + 2;
                while out.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                let n: usize = std::str::from_utf8(&out[i + 2..j])
                    .expect("digits")
                    .parse()
                    .unwrap_or(1);
                match out.get(j) {
                    Some(b'A') => pending_up = n,
                    Some(b'J') => {
                        assert!(line.is_empty(), "a frame starts mid-line");
                        frames.push(Frame {
                            at: i,
                            up: std::mem::take(&mut pending_up),
                            lines: Vec::new(),
                        });
                    }
                    other => panic!("unexpected escape sequence ending in {other:?} at {i}"),
                }
                i = j + 1;
                continue;
            }
            // The terminal's \n is \r\n (ONLCR); a lone \r returns to
            // column 0 before a frame.
            b'\r' => {}
            b'\n' => {
                let text = String::from_utf8_lossy(&line).into_owned();
                match frames.last_mut() {
                    Some(f) => f.lines.push(text),
                    None => before.push(text),
                }
                line.clear();
            }
            b => line.push(b),
        }
        i += 1;
    }
    (before, frames)
}

fn width(line: &str) -> usize {
    line.chars().count()
}

/// The checks every frame sequence must pass: each redraw moves back over
/// the previous frame's lines exactly, only the first frame is drawn
/// fresh, and no dashboard line is wider than the terminal at `cols`.
fn assert_in_place(frames: &[Frame], cols: usize, summary: &str) {
    assert!(frames.len() >= 2, "too few frames: {frames:?}");
    assert_eq!(frames[0].up, 0, "the first frame moves back over nothing");
    for w in frames.windows(2) {
        assert_eq!(
            w[1].up,
            w[0].lines.len(),
            "a redraw must move back over the previous frame exactly: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    let last = frames.last().expect("frames");
    let own: Vec<&String> = last
        .lines
        .iter()
        .take_while(|l| !l.contains(summary))
        .collect();
    assert!(
        own.len() < last.lines.len(),
        "no summary {summary:?} after the last frame: {last:?}"
    );
    for l in frames[..frames.len() - 1]
        .iter()
        .flat_map(|f| &f.lines)
        .chain(own)
    {
        assert!(width(l) <= cols, "{} columns > {cols}: {l:?}", width(l));
    }
}

#[test]
fn frames_fit_200_then_80_columns_and_are_redrawn_in_place() {
    watchdog(60, || {
        let dir = tempfile::tempdir().expect("temp dir");
        // A long name: at 200 columns the first line is wider than 80.
        let name = format!("input-{}.fifo", "n".repeat(100));
        let fifo = dir.path().join(&name);
        common::make_fifo(&fifo);
        let (pty, slave) = open_pty(200);
        let args = [
            "process",
            name.as_str(),
            "-o",
            "out.spipe",
            "-s",
            "zstd:3,blake3",
            "--chunk-size",
            "64KiB",
            "--metrics-interval",
            "20ms",
        ];
        let mut child = spawn(
            dir.path(),
            &args,
            Stdio::from(slave),
            Some("xterm-256color"),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let feeder = feed(&fifo, Arc::clone(&stop));
        pty.wait_frames_after(0, 4);
        let resized_at = pty.len();
        pty.resize(80, &child);
        // The frame being drawn may predate the resize: wait for more.
        pty.wait_frames_after(resized_at, 4);
        stop.store(true, Ordering::SeqCst);
        feeder.join().expect("feeder");
        let status = child.wait().expect("wait");
        let out = pty.finish();
        let text = String::from_utf8_lossy(&out);
        assert!(status.success(), "{text}");

        let (before, frames) = parse(&out);
        assert!(before.is_empty(), "{before:?}");
        assert_in_place(&frames, 200, "processed");
        let (wide, narrow): (Vec<&Frame>, Vec<&Frame>) =
            frames.iter().partition(|f| f.at < resized_at);
        assert!(
            wide.iter().flat_map(|f| &f.lines).any(|l| width(l) > 80),
            "at 200 columns the first line uses more than 80: {wide:?}"
        );
        // After the resize (the first frame after it may have been laid
        // out before), every dashboard line fits 80 columns.
        assert!(narrow.len() >= 3, "{narrow:?}");
        for f in &narrow[1..] {
            for l in f.lines.iter().take_while(|l| !l.contains("processed")) {
                assert!(
                    width(l) <= 80,
                    "{} columns after the resize: {l:?}",
                    width(l)
                );
            }
        }
        // What the frame carries, named for what it measures.
        let last = &frames.last().expect("frames").lines;
        let all = last.join("\n");
        for part in [
            "elapsed",
            "throughput  ",
            " MB/s  in ",
            "cpu         ",
            "io          ",
            "permits in use",
            "queues      jobs ",
            "queue wait  p50/p95/p99 ms  jobs ",
            "chunk job   cpu p50/p95/p99 ",
            "stage cpu   p50/p95/p99 ms  zstd ",
            "memory      rss ",
        ] {
            assert!(
                all.contains(part),
                "{part:?} missing from the last frame:\n{all}"
            );
        }
        assert!(
            !all.contains("files/s"),
            "no files line for one input:\n{all}"
        );
        assert!(!all.contains("workers"), "{all}");
    });
}

#[test]
fn a_batch_is_one_frame_redrawn_in_place() {
    watchdog(120, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in");
        fs::create_dir(&input).expect("mkdir");
        // zstd:19 on 100 files: the batch lasts many 20 ms intervals.
        const FILES: usize = 100;
        for i in 0..FILES {
            fs::write(
                input.join(format!("f{i:03}.bin")),
                mixed_data(64 << 10, i as u64),
            )
            .expect("write");
        }
        let (pty, slave) = open_pty(80);
        let args = [
            "process",
            "-r",
            "in",
            "--output-dir",
            "out",
            "-s",
            "zstd:19",
            "--metrics-interval",
            "20ms",
        ];
        let mut child = spawn(dir.path(), &args, Stdio::from(slave), Some("xterm"));
        let status = child.wait().expect("wait");
        let out = pty.finish();
        let text = String::from_utf8_lossy(&out);
        assert!(status.success(), "{text}");
        assert_eq!(
            fs::read_dir(dir.path().join("out")).expect("out").count(),
            FILES
        );
        let (before, frames) = parse(&out);
        assert!(before.is_empty(), "{before:?}");
        // One frame: only the first is drawn below what was there, every
        // other moves back over it (a frame per file would not).
        assert_in_place(&frames, 80, "files processed");
        let last = frames.last().expect("frames").lines.join("\n");
        assert!(
            last.contains(&format!("files       {FILES}/{FILES} done")),
            "{last}"
        );
        assert!(last.contains("100.0%") && last.contains("done"), "{last}");
    });
}

#[test]
fn a_dumb_terminal_and_a_pipe_get_plain_lines_without_escapes() {
    watchdog(90, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let (pty, slave) = open_pty(80);
        let (fifo_a, fifo_b) = (dir.path().join("a.fifo"), dir.path().join("b.fifo"));
        common::make_fifo(&fifo_a);
        common::make_fifo(&fifo_b);
        let interval = ["--metrics-interval", "20ms"];
        // TERM=dumb on a terminal, and no TERM at all into a pipe with
        // --progress always.
        let mut dumb = spawn(
            dir.path(),
            &[&["process", "a.fifo", "-o", "a.spipe"][..], &interval].concat(),
            Stdio::from(slave),
            Some("dumb"),
        );
        let mut piped = spawn(
            dir.path(),
            &[
                &["process", "b.fifo", "-o", "b.spipe", "--progress", "always"][..],
                &interval,
            ]
            .concat(),
            Stdio::piped(),
            None,
        );
        let mut pipe_err = piped.stderr.take().expect("stderr");
        let pipe_out = Arc::new(Mutex::new(Vec::new()));
        let pipe_reader = {
            let out = Arc::clone(&pipe_out);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe_err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().expect("output").extend_from_slice(&buf[..n]);
                }
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let feeders = [
            feed(&fifo_a, Arc::clone(&stop)),
            feed(&fifo_b, Arc::clone(&stop)),
        ];
        // The first plain line comes after 5 s of run.
        let has_line = |b: &[u8]| String::from_utf8_lossy(b).contains("syncpipe: process ");
        while !(has_line(&pty.out.lock().expect("output"))
            && has_line(&pipe_out.lock().expect("output")))
        {
            thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::SeqCst);
        for f in feeders {
            f.join().expect("feeder");
        }
        assert!(dumb.wait().expect("wait").success());
        assert!(piped.wait().expect("wait").success());
        pipe_reader.join().expect("reader");
        let on_dumb = pty.finish();
        let on_pipe = pipe_out.lock().expect("output").clone();
        for (what, out) in [("TERM=dumb", on_dumb), ("pipe", on_pipe)] {
            let text = String::from_utf8_lossy(&out);
            assert!(!out.contains(&0x1b), "{what}: an escape in {text:?}");
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("syncpipe: process "))
                .collect();
            // One at 5 s (maybe more), and the last, at the end.
            assert!(lines.len() >= 2, "{what}: {text}");
            assert!(
                lines[0].contains("elapsed") && lines[0].contains("MB/s"),
                "{what}: {text}"
            );
            assert!(lines[lines.len() - 1].contains("done"), "{what}: {text}");
        }
    });
}
