//! Signals: SIGINT / SIGTERM stop the run, remove the temp file and exit
//! 130 / 143 with the input untouched; a second SIGINT exits at once; a
//! SIGKILL at any moment leaves either no destination or a complete one,
//! and the next run removes the killed run's temp file.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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
fn issue2_sigint_exits_130_and_leaves_nothing() {
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
    // SIGINT cannot end the run: the drain waits for the writer. Only the
    // second SIGINT, which exits without waiting, can.
    let mut child = syncpipe(dir.path(), &["process", "in.bin", "-c", "-s", "lz4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn syncpipe");
    let mut stdout = child.stdout.take().expect("stdout");
    // Output has begun, so the signal handlers are in place.
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("first bytes");
    kill(&child, "-INT");
    thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the first SIGINT cannot finish a run whose writer is blocked"
    );
    kill(&child, "-INT");
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
