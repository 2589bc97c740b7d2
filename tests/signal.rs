//! SIGINT / SIGTERM: the run stops, the temp file is removed, the exit code
//! is 130 / 143, and the input is untouched.

mod common;

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn interrupt(signal: &str, expected: i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.bin");
    let data = common::mixed_data(24 << 20, 11);
    std::fs::write(&input, &data).expect("write input");
    // brotli:9 is slow enough (a few MB/s) that the run is still going when
    // the signal arrives; small chunks keep the drain of in-flight chunks
    // (a stage is never interrupted mid-chunk) short.
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncpipe"))
        .args([
            "process",
            "in.bin",
            "-s",
            "brotli:9",
            "--chunk-size",
            "128KiB",
            "-T",
            "2",
            "-q",
        ])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn syncpipe");
    thread::sleep(Duration::from_millis(700));
    let sent = Instant::now();
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // Watchdog: the process must end on its own, promptly.
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        if sent.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("syncpipe did not stop within 20 s of {signal}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(expected), "exit code after {signal}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("in.bin")],
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
