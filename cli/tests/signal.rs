//! Signals: SIGINT / SIGTERM stop the run, remove the temp file and exit
//! 130 / 143 with the input untouched; a second SIGINT exits at once; a
//! SIGKILL at any moment leaves either no destination or a complete one,
//! and the next run removes the killed run's temp file.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common;

fn syncpipe(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_syncpipe"));
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal}");
}

/// Waits for the child to exit on its own; the watchdog kills it and fails
/// the test after `secs` (a generous bound, not a timing claim: the drain
/// time itself is measured by benches/cancel_drain.sh).
fn exit_code(child: &mut Child, secs: u64, what: &str) -> Option<i32> {
    let sent = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code();
        }
        if sent.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("syncpipe did not stop within {secs} s of {what}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn temp_files(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| n.contains(".syncpipe-tmp."))
        .collect()
}

/// Waits until the run has created its temp file (so it has installed its
/// signal handlers and is writing).
fn wait_for_temp_file(dir: &Path, child: &mut Child) {
    let start = Instant::now();
    while temp_files(dir).is_empty() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("syncpipe ended early: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no temp file appeared"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn interrupt(signal: &str, expected: i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.bin");
    let data = common::mixed_data(24 << 20, 11);
    std::fs::write(&input, &data).expect("write input");
    // brotli:9 with the default 1 MiB chunks: a chunk takes longer than
    // the drain should, so this only ends promptly because brotli watches
    // the cancel token between blocks of a chunk.
    let mut child = syncpipe(dir.path(), &["process", "in.bin", "-s", "brotli:9", "-q"])
        .spawn()
        .expect("spawn syncpipe");
    wait_for_temp_file(dir.path(), &mut child);
    thread::sleep(Duration::from_millis(300));
    kill(&child, signal);
    let code = exit_code(&mut child, 20, signal);
    assert_eq!(code, Some(expected), "exit code after {signal}");
    assert_eq!(
        listing(dir.path()),
        ["in.bin"],
        "no output or temp file left"
    );
    assert!(
        std::fs::read(&input).expect("read input") == data,
        "input untouched"
    );
}

#[test]
fn sigint_exits_130_and_leaves_nothing() {
    interrupt("-INT", 130);
}

#[test]
fn sigterm_exits_143_and_leaves_nothing() {
    interrupt("-TERM", 143);
}

#[test]
fn cancel_with_full_channels_and_an_exhausted_governor_exits_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.bin"), common::mixed_data(16 << 20, 12)).expect("write");
    // One CPU token and channels one deep: while brotli:9 works on the one
    // permitted chunk, the reader blocks on a full jobs channel and the
    // dispatcher waits for a permit. All three must see the cancel.
    let mut child = syncpipe(
        dir.path(),
        &[
            "process",
            "in.bin",
            "-s",
            "brotli:9",
            "--channel-depth",
            "1",
            "--cpu-tokens",
            "1",
            "-T",
            "1",
            "-q",
        ],
    )
    .spawn()
    .expect("spawn syncpipe");
    wait_for_temp_file(dir.path(), &mut child);
    thread::sleep(Duration::from_millis(300));
    kill(&child, "-INT");
    assert_eq!(exit_code(&mut child, 10, "SIGINT"), Some(130));
    assert_eq!(listing(dir.path()), ["in.bin"], "nothing left behind");
}

#[test]
fn second_sigint_exits_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.bin"), common::mixed_data(8 << 20, 13)).expect("write");
    // stdout is a pipe that is never drained: once its buffer is full the
    // writer blocks in write(2) (restarted after the signal), so the first
    // SIGINT's drain cannot end the run; the reaper would, after its grace
    // period. The second SIGINT comes before that and exits at once.
    let mut child = syncpipe(dir.path(), &["process", "in.bin", "-c", "-s", "lz4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn syncpipe");
    let mut stdout = child.stdout.take().expect("stdout");
    // Output has begun, so the signal handlers are in place.
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("first bytes");
    send(&child, libc::SIGINT);
    // Well within the reaper's grace (500 ms), long enough for the first
    // signal to be handled on its own (two pending SIGINTs would merge).
    thread::sleep(Duration::from_millis(100));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the first SIGINT's drain cannot finish a run whose writer is blocked"
    );
    send(&child, libc::SIGINT);
    assert_eq!(exit_code(&mut child, 10, "the second SIGINT"), Some(130));
    drop(stdout);
    assert_eq!(listing(dir.path()), ["in.bin"]);
}

/// When the SIGKILL lands.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This many milliseconds after the start.
    After(u64),
    /// As soon as the temp file exists.
    TempFile,
    /// After the run ended on its own.
    Ended,
}

#[test]
fn sigkill_at_any_moment_leaves_no_partial_destination() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::mixed_data(12 << 20, 14);
    std::fs::write(dir.path().join("in.bin"), &data).expect("write");
    let mut stale_seen = 0;
    let mut complete_seen = 0;
    // From "not started" through mid-run to "committed": whatever moment
    // the kill lands on, the destination is absent or a whole container.
    // Two moments do not depend on the machine's speed: the temp file has
    // just appeared (a kill surely leaves it behind), and the run has ended.
    use Moment::{After, Ended, TempFile};
    let moments = [
        After(0),
        After(5),
        TempFile,
        After(20),
        After(50),
        After(100),
        After(200),
        After(400),
        After(700),
        After(1200),
        After(2500),
        Ended,
    ];
    for moment in moments {
        let mut child = syncpipe(
            dir.path(),
            &[
                "process",
                "in.bin",
                "-o",
                "out.spipe",
                "-s",
                "zstd:3",
                "--chunk-size",
                "256KiB",
                "-q",
            ],
        )
        .spawn()
        .expect("spawn syncpipe");
        match moment {
            After(ms) => thread::sleep(Duration::from_millis(ms)),
            TempFile => wait_for_temp_file(dir.path(), &mut child),
            Ended => {
                let _ = exit_code(&mut child, 60, "its start (running to its end)");
            }
        }
        let _ = child.kill(); // SIGKILL; fails only if it already exited
        let _ = child.wait(); // reaped: its pid is gone from now on
        stale_seen += temp_files(dir.path()).len();
        let dest = dir.path().join("out.spipe");
        if dest.exists() {
            complete_seen += 1;
            let back = dir.path().join("back.bin");
            let out = syncpipe(dir.path(), &["restore", "out.spipe", "-o", "back.bin"])
                .output()
                .expect("restore");
            assert!(
                out.status.success(),
                "after a kill at {moment:?} the destination is not a valid container: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(std::fs::read(&back).expect("read") == data, "at {moment:?}");
            std::fs::remove_file(&back).expect("rm");
            std::fs::remove_file(&dest).expect("rm");
        }
        // The next run removes what the killed one left.
        let out = syncpipe(
            dir.path(),
            &["process", "in.bin", "-o", "again.spipe", "-s", "lz4", "-q"],
        )
        .output()
        .expect("rerun");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            listing(dir.path()),
            ["again.spipe", "in.bin"],
            "after a kill at {moment:?}"
        );
        std::fs::remove_file(dir.path().join("again.spipe")).expect("rm");
    }
    // Not vacuous: some kills landed mid-run, and some after the commit.
    assert!(stale_seen > 0, "no kill landed while a temp file existed");
    assert!(complete_seen > 0, "no run completed before its kill");
}

// ---------------------------------------------------------------------------
// One signal ends a run blocked where the cancel flag is never looked at
// ---------------------------------------------------------------------------

/// The bit of `signal` in a `/proc/PID/status` signal mask line (`SigCgt:`,
/// `SigIgn:`).
fn in_mask(pid: u32, line: &str, signal: libc::c_int) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// Waits until the child catches SIGTERM (its handlers are installed, so
/// a signal now reaches them rather than the default action), then a
/// little more, so it is most likely in the wait the test is about.
fn wait_for_handlers(child: &mut Child) {
    let start = Instant::now();
    while !in_mask(child.id(), "SigCgt:", libc::SIGTERM) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("syncpipe ended early: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no handler installed"
        );
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(300));
}

fn send(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {signal}");
}

/// Sends one `signal` and checks the exit code; returns the time from the
/// signal to the exit. The requirement is one second; 3 s are allowed for
/// a loaded 2-core machine, and the watchdog (10 s) turns a hang into a
/// failure.
fn one_signal_ends(child: &mut Child, signal: libc::c_int, what: &str) -> Duration {
    let expected = if signal == libc::SIGTERM { 143 } else { 130 };
    assert!(
        child.try_wait().expect("wait").is_none(),
        "{what}: ended before the signal"
    );
    let sent = Instant::now();
    send(child, signal);
    let code = exit_code(child, 10, what);
    let took = sent.elapsed();
    eprintln!(
        "{what}: signal {signal} -> exit in {:.3} s",
        took.as_secs_f64()
    );
    assert_eq!(code, Some(expected), "{what}: exit code");
    assert!(
        took < Duration::from_secs(3),
        "{what}: one signal took {took:?} to end the run"
    );
    took
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn one_signal_ends_a_run_blocked_on_an_idle_stdin_pipe() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let dir = tempfile::tempdir().expect("tempdir");
        // Like `sleep 60 | syncpipe process - -o out.spipe`: the pipe stays
        // open and empty, so the reader never returns from read(2).
        let mut child = syncpipe(dir.path(), &["process", "-", "-o", "out.spipe", "-q"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn syncpipe");
        let stdin = child.stdin.take().expect("stdin");
        wait_for_temp_file(dir.path(), &mut child);
        one_signal_ends(&mut child, signal, "idle stdin pipe");
        drop(stdin);
        assert_eq!(listing(dir.path()), Vec::<String>::new(), "nothing left");
    }
}

#[test]
fn one_signal_ends_a_run_whose_input_is_a_fifo_without_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    mkfifo(&dir.path().join("in.fifo"));
    // open(2) of a FIFO blocks until a writer comes, which none does.
    let mut child = syncpipe(dir.path(), &["process", "in.fifo", "-o", "out.spipe"])
        .spawn()
        .expect("spawn syncpipe");
    wait_for_handlers(&mut child);
    one_signal_ends(&mut child, libc::SIGINT, "FIFO as input");
    assert_eq!(listing(dir.path()), ["in.fifo"]);
}

#[test]
fn one_signal_ends_a_run_whose_key_or_passphrase_file_is_a_fifo() {
    for flag in ["--key-file", "--passphrase-file"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = common::mixed_data(100_000, 15);
        std::fs::write(dir.path().join("in.bin"), &data).expect("write");
        mkfifo(&dir.path().join("secret.fifo"));
        let mut child = syncpipe(
            dir.path(),
            &[
                "process",
                "in.bin",
                "-s",
                "zstd:3,aes-256-gcm",
                flag,
                "secret.fifo",
                "-o",
                "out.spipe",
            ],
        )
        .spawn()
        .expect("spawn syncpipe");
        wait_for_handlers(&mut child);
        one_signal_ends(&mut child, libc::SIGTERM, &format!("{flag} a FIFO"));
        assert_eq!(listing(dir.path()), ["in.bin", "secret.fifo"]);
        assert!(std::fs::read(dir.path().join("in.bin")).expect("read") == data);
    }
}

#[test]
fn one_signal_ends_a_run_blocked_on_a_full_stdout_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.bin"), common::mixed_data(8 << 20, 16)).expect("write");
    // A reader that took 10 bytes and stalls: once the pipe's buffer is
    // full the writer sits in write(2), which SA_RESTART resumes.
    let mut child = syncpipe(dir.path(), &["process", "in.bin", "-c", "-s", "lz4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn syncpipe");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("first bytes");
    thread::sleep(Duration::from_millis(300));
    one_signal_ends(&mut child, libc::SIGTERM, "full stdout pipe");
    drop(stdout);
    assert_eq!(listing(dir.path()), ["in.bin"]);
}

#[test]
fn one_signal_ends_a_run_inside_a_costly_argon2_derivation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::mixed_data(100_000, 17);
    std::fs::write(dir.path().join("in.bin"), &data).expect("write");
    std::fs::write(dir.path().join("pass"), "correct horse\n").expect("write");
    // 512 MiB × 64 passes: 30 s of derivation on the 2-core machine
    // (within the caps, so what a careless setting or a hostile header
    // costs), none of it looking at the cancel flag.
    let mut child = syncpipe(
        dir.path(),
        &[
            "process",
            "in.bin",
            "-s",
            "zstd:3,aes-256-gcm",
            "--passphrase-file",
            "pass",
            "--argon2",
            "m=524288,t=64,p=4",
            "-o",
            "out.spipe",
        ],
    )
    .spawn()
    .expect("spawn syncpipe");
    wait_for_handlers(&mut child);
    one_signal_ends(&mut child, libc::SIGINT, "Argon2 derivation");
    assert_eq!(listing(dir.path()), ["in.bin", "pass"]);
    assert!(std::fs::read(dir.path().join("in.bin")).expect("read") == data);
}

#[test]
fn one_signal_ends_a_run_during_a_large_pool_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.bin"), common::mixed_data(1 << 20, 18)).expect("write");
    let mut child = syncpipe(
        dir.path(),
        &["process", "in.bin", "-T", "1024", "-o", "out.spipe"],
    )
    .spawn()
    .expect("spawn syncpipe");
    wait_for_handlers(&mut child);
    one_signal_ends(&mut child, libc::SIGTERM, "1024-thread pool start-up");
    assert_eq!(listing(dir.path()), ["in.bin"]);
}

// ---------------------------------------------------------------------------
// A signal ignored at start stays ignored
// ---------------------------------------------------------------------------

/// As `syncpipe`, started with SIGINT ignored (what `nohup`, a background
/// job of a non-interactive shell or `trap '' INT` hand down).
fn with_sigint_ignored(dir: &Path, args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = syncpipe(dir, args);
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        c.pre_exec(|| {
            if libc::signal(libc::SIGINT, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

#[test]
fn a_sigint_ignored_at_start_stays_ignored_and_the_run_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::mixed_data(3 << 20, 19);
    let mut child = with_sigint_ignored(dir.path(), &["process", "-", "-o", "out.spipe", "-q"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn syncpipe");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, &data[..1 << 20]).expect("feed");
    wait_for_temp_file(dir.path(), &mut child);
    let pid = child.id();
    assert!(
        in_mask(pid, "SigIgn:", libc::SIGINT),
        "SIGINT still ignored"
    );
    assert!(in_mask(pid, "SigCgt:", libc::SIGTERM), "SIGTERM is caught");
    send(&child, libc::SIGINT);
    // Longer than the reaper's grace: a registered SIGINT would have ended
    // the run by now, whether it was blocked or not.
    thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "an ignored SIGINT ended the run"
    );
    std::io::Write::write_all(&mut stdin, &data[1 << 20..]).expect("feed the rest");
    drop(stdin);
    assert_eq!(exit_code(&mut child, 30, "the end of its input"), Some(0));
    let out = syncpipe(dir.path(), &["restore", "out.spipe", "-o", "back.bin"])
        .output()
        .expect("restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(dir.path().join("back.bin")).expect("read") == data);
}

#[test]
fn sigterm_still_ends_a_run_whose_sigint_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = with_sigint_ignored(dir.path(), &["process", "-", "-o", "out.spipe", "-q"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn syncpipe");
    let stdin = child.stdin.take().expect("stdin");
    wait_for_temp_file(dir.path(), &mut child);
    one_signal_ends(&mut child, libc::SIGTERM, "SIGTERM with SIGINT ignored");
    drop(stdin);
    assert_eq!(listing(dir.path()), Vec::<String>::new(), "nothing left");
}
