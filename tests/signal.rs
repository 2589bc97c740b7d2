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
fn second_sigint_exits_at_once_and_the_next_run_removes_its_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::mixed_data(8 << 20, 13);
    std::fs::write(dir.path().join("in.bin"), &data).expect("write");
    // brotli:11 drains for a while after the first SIGINT (one 256 KiB
    // block of its slowest search); the second one must not wait for it.
    let mut child = syncpipe(
        dir.path(),
        &["process", "in.bin", "-o", "out.spipe", "-s", "brotli:11"],
    )
    .spawn()
    .expect("spawn syncpipe");
    wait_for_temp_file(dir.path(), &mut child);
    thread::sleep(Duration::from_millis(200));
    kill(&child, "-INT");
    thread::sleep(Duration::from_millis(20));
    kill(&child, "-INT");
    assert_eq!(exit_code(&mut child, 10, "two SIGINTs"), Some(130));
    // Exiting at once means no cleanup: the temp file stays, the
    // destination never appeared.
    assert_eq!(temp_files(dir.path()).len(), 1, "{:?}", listing(dir.path()));
    assert!(!dir.path().join("out.spipe").exists());
    // The next run writing into the folder removes it (its process is gone).
    let out = syncpipe(
        dir.path(),
        &["process", "in.bin", "-o", "out.spipe", "-s", "lz4", "-q"],
    )
    .output()
    .expect("rerun");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listing(dir.path()), ["in.bin", "out.spipe"]);
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
    for delay_ms in [0, 5, 20, 50, 100, 200, 400, 700, 1200, 2500] {
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
        thread::sleep(Duration::from_millis(delay_ms));
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
                "after a kill at {delay_ms} ms the destination is not a valid container: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                std::fs::read(&back).expect("read") == data,
                "at {delay_ms} ms"
            );
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
            "after a kill at {delay_ms} ms"
        );
        std::fs::remove_file(dir.path().join("again.spipe")).expect("rm");
    }
    // Not vacuous: some kills landed mid-run, and some after the commit
    // (the last delay is far longer than the run).
    assert!(stale_seen > 0, "no kill landed while a temp file existed");
    assert!(complete_seen > 0, "no run completed before its kill");
}
