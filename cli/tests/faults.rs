//! Resource faults: a full disk and write errors, read errors,
//! short and interrupted reads, an input that changes while it is read, a
//! closed stdout pipe, a terminal as stdout; and a cancel that lands while
//! every channel is full and every permit taken. Each ends with a clear
//! error (or a documented quiet exit), no partial file, and every permit
//! back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::common::{mixed_data, watchdog};
use syncpipe::stage::from_fn;
use syncpipe::stages::StageSpec;
use syncpipe::{CancelToken, ErrorKind, Governor, Pipeline, ReaderKind, SpawnStyle};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const CHUNK: usize = 4096;

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A folder with `in.bin` (3 MiB of mixed data) in it.
fn input_dir() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = mixed_data(3 << 20, 71);
    fs::write(dir.path().join("in.bin"), &data).expect("write input");
    (dir, data)
}

// ---------------------------------------------------------------------------
// Disk full, write errors
// ---------------------------------------------------------------------------

#[test]
fn disk_full_on_stdout_exits_1_with_a_clear_message() {
    let (dir, _) = input_dir();
    let full = File::create("/dev/full").expect("open /dev/full");
    let out = Command::new(BIN)
        .args(["process", "in.bin", "-c"])
        .current_dir(dir.path())
        .stdout(Stdio::from(full))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(
        msg.contains("writing the output") && msg.contains("No space left on device"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
    assert_eq!(listing(dir.path()), ["in.bin"]);
}

#[test]
fn disk_full_as_the_output_file_exits_1_and_leaves_the_device_alone() {
    let (dir, _) = input_dir();
    // An existing device is written in place: no -f needed, no temp file
    // beside it, and never renamed over (as root that would replace the
    // device node with a regular file).
    let out = Command::new(BIN)
        .args(["process", "in.bin", "-o", "/dev/full"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    let meta = fs::metadata("/dev/full").expect("stat /dev/full");
    assert!(
        meta.file_type().is_char_device(),
        "/dev/full is still a device"
    );
    assert!(
        !listing(Path::new("/dev"))
            .iter()
            .any(|n| n.contains(".syncpipe-tmp.")),
        "no temp file in /dev"
    );
    // The same path for a device that takes the bytes: success.
    let out = Command::new(BIN)
        .args(["process", "in.bin", "-o", "/dev/null", "-q"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(fs::metadata("/dev/null")
        .expect("stat")
        .file_type()
        .is_char_device());
}

#[test]
fn write_error_mid_file_exits_1_and_leaves_no_partial_file() {
    let (dir, _) = input_dir();
    // `ulimit -f` makes writes past 200 KiB fail (EFBIG): a real write
    // error on a real file, half way through the container. syncpipe
    // ignores SIGXFSZ, which would otherwise kill it and leave the temp file.
    let script = format!("ulimit -f 200; exec '{BIN}' process in.bin -o out.spipe -s lz4");
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(
        msg.contains("writing the output") && msg.contains("File too large"),
        "{msg}"
    );
    assert_eq!(listing(dir.path()), ["in.bin"], "no output, no temp file");
}

/// A writer that fails after `ok` bytes.
struct FailsAfter {
    ok: usize,
}

impl Write for FailsAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let n = buf.len().min(self.ok);
        self.ok -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_failing_after_n_bytes_is_the_root_cause_at_any_n() {
    let data = mixed_data(200 * CHUNK, 72);
    let mut whole = Vec::new();
    let p = Pipeline::builder()
        .chunk_size(CHUNK)
        .threads(2)
        .build()
        .expect("valid");
    p.run(&data[..], &mut whole).expect("process");
    // In the header, the first record, the middle, the trailer.
    for ok in [0, 1, 30, 5_000, whole.len() / 2, whole.len() - 1] {
        let p = p.clone();
        let e = watchdog(30, move || {
            let e = p
                .run(&mixed_data(200 * CHUNK, 72)[..], FailsAfter { ok })
                .expect_err("must fail");
            assert!(p.governor().all_returned(), "permits leaked at {ok}");
            e
        });
        assert_eq!(e.kind(), ErrorKind::Io, "at {ok}: {e}");
        assert!(
            e.to_string().contains("writing the output: disk full"),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------------------
// Reads: short, interrupted, failing
// ---------------------------------------------------------------------------

/// Hands out a few bytes per call and fails every third call with
/// `Interrupted`, as a signal-interrupted `read(2)` does.
struct Flaky<'a> {
    data: &'a [u8],
    calls: usize,
}

impl Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "EINTR"));
        }
        let n = buf.len().min(self.data.len()).min(1 + self.calls % 97);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_and_interrupted_are_retried_with_identical_output() {
    watchdog(60, || {
        let p = Pipeline::builder()
            .stage(StageSpec::Zstd(3))
            .chunk_size(CHUNK)
            .threads(2)
            .build()
            .expect("valid");
        let data = mixed_data(50 * CHUNK + 123, 73);
        let mut expected = Vec::new();
        p.run(&data[..], &mut expected).expect("process");
        let mut got = Vec::new();
        p.run(
            Flaky {
                data: &data,
                calls: 0,
            },
            &mut got,
        )
        .expect("process through short, interrupted reads");
        assert!(got == expected, "same container");
        let mut back = Vec::new();
        p.restore(
            Flaky {
                data: &got,
                calls: 0,
            },
            &mut back,
        )
        .expect("restore through short, interrupted reads");
        assert!(back == data);
        assert!(p.governor().all_returned());
    });
}

/// Fails after `ok` bytes.
struct FailingReader<'a> {
    data: &'a [u8],
    ok: usize,
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("bad sector"));
        }
        let n = buf.len().min(self.ok).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn read_error_mid_container_on_restore_is_the_root_cause() {
    watchdog(30, || {
        let p = Pipeline::builder()
            .chunk_size(CHUNK)
            .threads(2)
            .build()
            .expect("valid");
        let data = mixed_data(100 * CHUNK, 74);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        let e = p
            .restore(
                FailingReader {
                    data: &container,
                    ok: container.len() / 2,
                },
                io::sink(),
            )
            .expect_err("must fail");
        assert_eq!(e.kind(), ErrorKind::Io, "{e}");
        assert!(e.to_string().contains("bad sector"), "{e}");
        assert!(p.governor().all_returned());
    });
}

// ---------------------------------------------------------------------------
// An input that changes while it is read
// ---------------------------------------------------------------------------

/// How the input is changed while its first chunk is being processed.
#[derive(Clone, Copy, Debug)]
enum Change {
    Grow,
    Shrink,
    /// Same size, other bytes.
    Rewrite,
}

fn change(path: &Path, how: Change) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    match how {
        Change::Grow => {
            f.seek(SeekFrom::End(0))?;
            f.write_all(&[9u8; 10 * CHUNK])
        }
        Change::Shrink => f.set_len(2 * CHUNK as u64),
        Change::Rewrite => f.write_all(&[0xeeu8; 100]),
    }
}

fn process_changing(how: Change, reader: ReaderKind) -> (syncpipe::Error, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.bin");
    fs::write(&input, mixed_data(64 * CHUNK, 75)).expect("write");
    // An old modification time, so that the change is seen whatever the
    // granularity of the file system's clock.
    File::options()
        .write(true)
        .open(&input)
        .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)))
        .expect("set mtime");
    let path: PathBuf = input.clone();
    let once = Arc::new(AtomicBool::new(false));
    let changer = from_fn(
        "changer",
        move |i: &[u8], o: &mut Vec<u8>| {
            if !once.swap(true, Ordering::SeqCst) {
                change(&path, how).map_err(syncpipe::Error::io)?;
            }
            o.extend_from_slice(i);
            Ok(())
        },
        |i: &[u8], o: &mut Vec<u8>| {
            o.extend_from_slice(i);
            Ok(())
        },
    );
    let p = Pipeline::builder()
        .custom_stage(changer)
        .chunk_size(CHUNK)
        .threads(1)
        .channel_depth(1)
        .reader(reader)
        .build()
        .expect("valid");
    let e = p
        .process_path(
            &input,
            &dir.path().join("out.spipe"),
            syncpipe::Overwrite::Refuse,
        )
        .expect_err("a changing input must fail");
    assert!(p.governor().all_returned());
    (e, listing(dir.path()))
}

#[test]
fn input_that_grows_shrinks_or_is_rewritten_while_read_is_an_error() {
    let cases = [
        (Change::Grow, ReaderKind::Buffered),
        (Change::Grow, ReaderKind::Mmap),
        (Change::Shrink, ReaderKind::Buffered),
        (Change::Rewrite, ReaderKind::Buffered),
        (Change::Rewrite, ReaderKind::Mmap),
    ];
    for (how, reader) in cases {
        let (e, left) = watchdog(30, move || process_changing(how, reader));
        assert_eq!(e.kind(), ErrorKind::Io, "{how:?} {reader}: {e}");
        assert!(
            e.to_string().contains("input changed while it was read"),
            "{how:?} {reader}: {e}"
        );
        assert!(e.to_string().contains("in.bin"), "names the input: {e}");
        assert_eq!(
            left,
            ["in.bin"],
            "{how:?} {reader}: no output, no temp file"
        );
    }
}

// ---------------------------------------------------------------------------
// Pipes and terminals
// ---------------------------------------------------------------------------

#[test]
fn closed_stdout_pipe_ends_by_sigpipe_as_zstd_does() {
    let (dir, _) = input_dir();
    // A real shell pipeline: `head` exits after 10 bytes, the writer meets
    // EPIPE (Rust ignores SIGPIPE), cleans up, and ends by SIGPIPE: the
    // shell sees 141 and `set -o pipefail` fails the pipeline, as with
    // `zstd -dc | head`.
    fs::copy(dir.path().join("in.bin"), dir.path().join("copy.bin")).expect("copy");
    let out = Command::new(BIN)
        .args([
            "process",
            "copy.bin",
            "-o",
            "c.spipe",
            "-s",
            "passthrough",
            "--chunk-size",
            "64KiB",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    fs::remove_file(dir.path().join("copy.bin")).expect("rm");
    for cmd in [
        "process in.bin -c -s passthrough --chunk-size 64KiB",
        "restore c.spipe -c",
        "restore - < c.spipe",
        "process - -c -s passthrough < in.bin",
    ] {
        let script = format!(
            "set -o pipefail; '{BIN}' {cmd} | head -c 10 >/dev/null; \
             echo \"status=${{PIPESTATUS[0]}} pipeline=$?\""
        );
        let mut c = Command::new("bash");
        c.args(["-c", &script]).current_dir(dir.path());
        let out = watchdog(120, move || c.output().expect("run bash"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "status=141 pipeline=141",
            "{cmd}"
        );
        assert_eq!(stderr(&out), "", "{cmd}: no message, no panic");
        assert_eq!(listing(dir.path()), ["c.spipe", "in.bin"], "{cmd}");
    }
}

/// Runs `cmd` with a pseudo-terminal as stdout (`script`); `None` if
/// `script` is not installed.
fn in_terminal(dir: &Path, cmd: &str) -> Option<Output> {
    let available = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        eprintln!("note: `script` is not installed; the terminal test is skipped");
        return None;
    }
    let out = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    Some(out)
}

#[test]
fn container_to_a_terminal_is_refused_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("small.bin"), b"hello terminal\n").expect("write");
    let Some(out) = in_terminal(dir.path(), &format!("'{BIN}' process small.bin -c")) else {
        return;
    };
    // `script` puts the child's stderr on the terminal too: it is in stdout.
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("terminal") && shown.contains("--force"),
        "{shown}"
    );
    let out = in_terminal(
        dir.path(),
        &format!("'{BIN}' process small.bin -c --force -q"),
    )
    .expect("script was available a moment ago");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(listing(dir.path()), ["small.bin"]);
}

// ---------------------------------------------------------------------------
// Cancel with everything full
// ---------------------------------------------------------------------------

#[test]
fn permits_are_back_after_a_cancel_with_an_exhausted_governor() {
    for style in [SpawnStyle::Rayon, SpawnStyle::Threads] {
        watchdog(60, move || cancel_with_everything_taken(style));
    }
}

fn cancel_with_everything_taken(style: SpawnStyle) {
    // Shared, so the test can watch it: one CPU token, one IO token,
    // channels one deep.
    let gov = Arc::new(Governor::new(1, 1));
    let cancel = CancelToken::new();
    let p = Pipeline::builder()
        .stage(StageSpec::Brotli(11))
        .spawn_style(style)
        .chunk_size(1 << 20)
        .threads(1)
        .channel_depth(1)
        .governor(Arc::clone(&gov))
        .cancel(cancel.clone())
        .build()
        .expect("valid");
    let (g2, c2) = (Arc::clone(&gov), cancel.clone());
    let canceller = thread::spawn(move || {
        // Cancel only once the one CPU permit is taken (a chunk is in
        // brotli:11, which takes seconds) and has been for a moment, so
        // the reader and dispatcher are blocked behind it.
        while g2.cpu.available() > 0 {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(200));
        assert_eq!(g2.cpu.available(), 0, "the CPU permit is still held");
        c2.cancel();
    });
    let data = mixed_data(16 << 20, 76);
    let e = p.run(&data[..], io::sink()).expect_err("cancelled");
    canceller.join().expect("canceller");
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert_eq!(e.chunk(), None, "a cancel names no chunk: {e}");
    assert_eq!(gov.cpu.available(), gov.cpu.capacity());
    assert_eq!(gov.io.available(), gov.io.capacity());
    assert!(gov.all_returned());
    assert_eq!(gov.memory.current(), 0, "no chunk bytes counted as held");
}

/// The handler installed for `signal` right now.
fn handler_of(signal: libc::c_int) -> libc::sighandler_t {
    // SAFETY: a query only (no new action); `old` is a valid out-pointer.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

#[test]
fn the_library_installs_no_signal_handlers() {
    let before: Vec<_> = [libc::SIGINT, libc::SIGTERM, libc::SIGXFSZ, libc::SIGPIPE]
        .into_iter()
        .map(handler_of)
        .collect();
    let p = Pipeline::builder()
        .stage(StageSpec::Brotli(1))
        .cancel(CancelToken::new())
        .build()
        .expect("valid");
    let mut container = Vec::new();
    p.run(&mixed_data(100_000, 77)[..], &mut container)
        .expect("process");
    p.restore(&container[..], io::sink()).expect("restore");
    let after: Vec<_> = [libc::SIGINT, libc::SIGTERM, libc::SIGXFSZ, libc::SIGPIPE]
        .into_iter()
        .map(handler_of)
        .collect();
    // Compared with what the test process started with, not with SIG_DFL:
    // a test run under `nohup` or as a background job starts with SIGINT
    // ignored, and that is not the library's doing.
    assert_eq!(
        before, after,
        "signal dispositions unchanged by the library"
    );
}

#[test]
fn temp_files_in_a_walked_folder_are_not_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("a.bin"), mixed_data(10_000, 78)).expect("write");
    // Left by a killed run on another machine sharing the folder: neither
    // removed (its pid means nothing here) nor taken as an input.
    let foreign = ".a.bin.spipe.syncpipe-tmp.other-host.4242.Ab12Cd34";
    fs::write(src.join(foreign), b"partial container").expect("write");
    let root = dir.path().to_path_buf();
    // A batch: under a watchdog, so a deadlock fails instead of hanging.
    let out = watchdog(120, move || {
        Command::new(BIN)
            .args(["process", "-r", "src", "-q"])
            .current_dir(&root)
            .output()
            .expect("run")
    });
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(listing(&src), [foreign, "a.bin", "a.bin.spipe"]);
}

#[test]
fn a_one_file_run_removes_the_stale_temps_of_its_folder_and_only_those() {
    use syncpipe::output::{this_host, TEMP_MARKER};
    let dir = tempfile::tempdir().expect("tempdir");
    // A small file: the one-file path, whose sweep runs beside the encode.
    fs::write(dir.path().join("a.txt"), b"a small text file\n".repeat(200)).expect("write");
    // A process that has surely exited (and been reaped).
    let mut child = Command::new("true").spawn().expect("spawn");
    let gone = child.id();
    child.wait().expect("wait");
    let live = std::process::id();
    let host = this_host();
    let stale = format!(".old.spipe{TEMP_MARKER}{host}.{gone}.Ab12Cd34");
    let of_live = format!(".b.spipe{TEMP_MARKER}{host}.{live}.Ab12Cd34");
    let foreign = format!(".c.spipe{TEMP_MARKER}other-host.{gone}.Ab12Cd34");
    for name in [&stale, &of_live, &foreign] {
        fs::write(dir.path().join(name), b"partial container").expect("write");
    }
    let root = dir.path().to_path_buf();
    let out = watchdog(60, move || {
        Command::new(BIN)
            .args(["process", "a.txt", "-o", "a.txt.spipe", "-q"])
            .current_dir(&root)
            .output()
            .expect("run")
    });
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut want = vec![
        of_live,
        foreign,
        "a.txt".to_owned(),
        "a.txt.spipe".to_owned(),
    ];
    want.sort();
    assert_eq!(listing(dir.path()), want);
}

// ---------------------------------------------------------------------------
// stdin closed or a terminal
// ---------------------------------------------------------------------------

/// `syncpipe ARGS` with descriptor 0 really closed (not `/dev/null`).
fn with_stdin_closed(dir: &Path, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir);
    // SAFETY: close(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        c.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    watchdog(60, move || c.output().expect("run"))
}

#[test]
fn a_closed_stdin_is_an_error_and_writes_nothing() {
    let (dir, _) = input_dir();
    let out = Command::new(BIN)
        .args(["process", "in.bin", "-o", "c.spipe", "-q"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [
        &["process", "-", "-o", "out.spipe"][..],
        &["process", "-", "-c"][..],
        &["restore", "-", "-o", "back.bin"][..],
        &["verify", "-"][..],
        &["info", "-"][..],
        &["process", "--files-from", "-"][..],
    ] {
        let out = with_stdin_closed(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("stdin is closed"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert_eq!(listing(dir.path()), ["c.spipe", "in.bin"], "{args:?}");
    }
    // The shell's way of closing it.
    let out = Command::new("sh")
        .args(["-c", &format!("exec '{BIN}' process - -o out.spipe <&-")])
        .current_dir(dir.path())
        .output()
        .expect("run sh");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), ["c.spipe", "in.bin"]);
    // `</dev/null` is an empty input, as before: a valid empty container.
    let out = Command::new(BIN)
        .args(["process", "-", "-o", "empty.spipe", "-q"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = Command::new(BIN)
        .args(["restore", "empty.spipe", "-c"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_terminal_as_stdin_is_refused_even_with_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in [
        format!("'{BIN}' process - -o out.spipe"),
        format!("'{BIN}' process - -o out.spipe --force"),
        format!("'{BIN}' restore - -o back.bin"),
    ] {
        let Some(out) = in_terminal(dir.path(), &cmd) else {
            return;
        };
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {shown}");
        assert!(shown.contains("from a terminal"), "{cmd}: {shown}");
        assert_eq!(listing(dir.path()), Vec::<String>::new(), "{cmd}");
    }
}

// ---------------------------------------------------------------------------
// A closed stdout for every printing command
// ---------------------------------------------------------------------------

/// Runs `syncpipe ARGS` with stdout a pipe whose read end is already
/// closed: every write to it fails with EPIPE (SIGPIPE is ignored by Rust
/// until syncpipe, having cleaned up, raises it).
fn with_stdout_closed(dir: &Path, args: &[&str]) -> Output {
    let (reader, writer) = io::pipe().expect("pipe");
    drop(reader);
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped());
    watchdog(120, move || c.output().expect("run"))
}

#[test]
fn every_printing_command_ends_by_sigpipe_on_a_closed_stdout() {
    let (dir, _) = input_dir();
    let many = dir.path().join("many");
    fs::create_dir(&many).expect("mkdir");
    for i in 0..40 {
        fs::write(many.join(format!("f{i:02}.bin")), mixed_data(2000 + i, 79)).expect("write");
    }
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    run(&["process", "in.bin", "-o", "c.spipe", "-q"]);
    run(&["process", "-r", "many", "-q"]);
    for f in listing(&many).iter().filter(|n| !n.ends_with(".spipe")) {
        fs::remove_file(many.join(f)).expect("rm");
    }
    let cases: &[&[&str]] = &[
        &["info", "c.spipe"],
        &["verify", "c.spipe"],
        &["verify", "-r", "many"],
        &["verify", "c.spipe", "--json"],
        &["process", "in.bin", "-o", "j.spipe", "--json"],
        &["completions", "bash"],
        &["man"],
        &["--help"],
        &["--version"],
        &["bench", "--size", "64KiB", "-s", "lz4"],
        &["bench", "--size", "64KiB", "-s", "lz4", "--json"],
    ];
    for args in cases {
        let out = with_stdout_closed(dir.path(), args);
        let msg = stderr(&out);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {msg}");
        assert!(!msg.contains("panicked"), "{args:?}: {msg}");
        assert!(!msg.contains("Broken pipe"), "{args:?}: {msg}");
    }
    // A failed file keeps its exit code: the listing stops, not the verdict.
    let mut bad = fs::read(many.join("f00.bin.spipe")).expect("read");
    let at = bad.len() / 2;
    bad[at] ^= 0x55;
    fs::write(many.join("f00.bin.spipe"), bad).expect("write");
    let out = with_stdout_closed(dir.path(), &["verify", "-r", "many"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
