//! The async baseline (`examples/async_pipeline.rs`) against the
//! sync engine: the same container bytes for unencrypted stage lists, a
//! container `syncpipe restore` opens for encrypted ones, the `--json`
//! schema of `syncpipe process --json` with `"backend": "async"`, and a
//! clean failure.
//!
//! The example binary is built by `cargo test` (examples are built with the
//! tests) and found next to this test's executable; `cargo test -p
//! syncpipe-cli --test integration` alone does not build it, so run
//! `cargo build --example async_pipeline` first in that case (the tests say
//! so when it is missing, and fail).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{mixed_data, watchdog};
use serde_json::Value;

const SYNC: &str = env!("CARGO_BIN_EXE_syncpipe");
const CHUNK: usize = 64 << 10;

/// `target/<profile>/examples/async_pipeline`, beside `deps/` where this
/// test runs from.
fn async_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .join("examples")
        .join("async_pipeline");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --example async_pipeline` (plain `cargo test` builds it)",
        bin.display()
    );
    bin
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary starts")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Processes `input` with both engines (same stages, chunk size, tokens)
/// and returns (sync container, async container).
fn both(dir: &Path, input: &Path, stages: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let (s, a) = (dir.join("s.spipe"), dir.join("a.spipe"));
    let _ = fs::remove_file(&s);
    let _ = fs::remove_file(&a);
    let chunk = CHUNK.to_string();
    let common = ["-s", stages, "--chunk-size", &chunk];
    let out = run(Command::new(SYNC)
        .args(["-q", "process"])
        .arg(input)
        .arg("-o")
        .arg(&s)
        .args(common)
        .args(extra));
    ok(&out, "syncpipe process");
    let out = run(Command::new(async_bin())
        .arg(input)
        .arg("-o")
        .arg(&a)
        .args(common)
        .args(extra));
    ok(&out, "async_pipeline");
    (
        fs::read(&s).expect("sync output"),
        fs::read(&a).expect("async output"),
    )
}

fn sizes() -> [usize; 6] {
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 123]
}

#[test]
fn unencrypted_containers_are_byte_identical() {
    watchdog(300, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.bin");
        for stages in ["zstd:3,blake3", "lz4,sha256", "passthrough", "gzip"] {
            for len in sizes() {
                fs::write(&input, mixed_data(len, len as u64 + 7)).expect("write input");
                let (s, a) = both(dir.path(), &input, stages, &[]);
                assert!(s == a, "{stages}, {len} bytes: containers differ");
            }
        }
        // Tokens and depth change the schedule, never the bytes.
        fs::write(&input, mixed_data(9 * CHUNK + 5, 3)).expect("write input");
        for extra in [
            ["--cpu-tokens", "1", "--channel-depth", "1", "-T", "1"],
            [
                "--cpu-tokens",
                "4",
                "--channel-depth",
                "2",
                "--io-tokens",
                "1",
            ],
        ] {
            let (s, a) = both(dir.path(), &input, "zstd:3,blake3", &extra);
            assert!(s == a, "{extra:?}: containers differ");
        }
        // Temp files renamed, none left behind.
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.spipe", "in.bin", "s.spipe"]);
    });
}

#[test]
fn encrypted_containers_restore_with_syncpipe() {
    watchdog(300, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        fs::write(&key, [0x5au8; 32]).expect("write key");
        let key_arg = key.to_str().expect("utf-8 temp path");
        let input = dir.path().join("in.bin");
        for stages in ["zstd:3,aes-256-gcm,sha256", "lz4,chacha20-poly1305,blake3"] {
            for len in [0, CHUNK, 3 * CHUNK + 9] {
                let data = mixed_data(len, 11);
                fs::write(&input, &data).expect("write input");
                let (_, a) = both(dir.path(), &input, stages, &["--key-file", key_arg]);
                assert!(!a.is_empty());
                let back = dir.path().join("back.bin");
                let _ = fs::remove_file(&back);
                let out = run(Command::new(SYNC)
                    .args(["-q", "restore"])
                    .arg(dir.path().join("a.spipe"))
                    .arg("-o")
                    .arg(&back)
                    .args(["--key-file", key_arg]));
                ok(&out, "syncpipe restore of the async container");
                assert!(
                    fs::read(&back).expect("restored") == data,
                    "{stages}, {len} bytes"
                );
            }
        }
    });
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect()
}

/// Keys of an object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn json_lines_follow_the_sync_schema_with_backend_async() {
    watchdog(120, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.bin");
        let len = 4 * CHUNK + 100;
        fs::write(&input, mixed_data(len, 5)).expect("write input");
        let chunk = CHUNK.to_string();
        let args = ["-s", "zstd:3,blake3", "--chunk-size", &chunk, "--json"];
        let a = run(Command::new(async_bin())
            .arg(&input)
            .args(["-o"])
            .arg(dir.path().join("a.spipe"))
            .args(args));
        ok(&a, "async_pipeline --json");
        let s = run(Command::new(SYNC)
            .args(["-q", "process"])
            .arg(&input)
            .args(["-o"])
            .arg(dir.path().join("s.spipe"))
            .args(args));
        ok(&s, "syncpipe process --json");
        let (a, s) = (json_lines(&a.stdout), json_lines(&s.stdout));
        let types: Vec<&str> = a
            .iter()
            .map(|v| v["message_type"].as_str().expect("message_type"))
            .collect();
        assert_eq!(types, ["file_done", "summary"]);
        assert!(a.iter().all(|v| v["backend"] == "async"));
        let (fa, sa) = (&a[0], &a[1]);
        let fs_ = s
            .iter()
            .find(|v| v["message_type"] == "file_done")
            .expect("sync file_done");
        let ss = s.last().expect("sync summary");
        assert_eq!(keys(fa), keys(fs_), "file_done fields");
        assert_eq!(keys(sa), keys(ss), "summary fields");
        for k in ["bytes_in", "bytes_out", "chunks", "digest", "chunk_size"] {
            assert_eq!(fa[k], fs_[k], "file_done.{k}");
        }
        assert_eq!(sa["original_bytes"], len as u64);
        assert_eq!(sa["exit_code"], 0);
        let cpu = &sa["latency_ns"]["chunk_cpu"];
        assert_eq!(cpu["count"], 5);
        assert_eq!(keys(cpu), keys(&ss["latency_ns"]["chunk_cpu"]));
        assert!(cpu["p50"].as_u64().expect("p50") > 0);
        assert!(cpu["p99"].as_u64() >= cpu["p50"].as_u64());
        assert!(sa["mb_per_s"].as_f64().expect("mb_per_s") > 0.0);
        assert!(sa["rss_peak_bytes"].as_u64().expect("rss") > 0);
        assert_eq!(sa["tuning"]["chunk_size"], CHUNK as u64);
        assert_eq!(sa["tuning"]["stages"], "zstd:3,blake3");
    });
}

#[test]
fn a_missing_input_fails_cleanly() {
    watchdog(60, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = run(Command::new(async_bin())
            .arg(dir.path().join("nope.bin"))
            .arg("-o")
            .arg(dir.path().join("out.spipe"))
            .arg("--json"));
        assert_eq!(out.status.code(), Some(1), "exit code");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nope.bin"), "message names the input: {err}");
        let lines = json_lines(&out.stdout);
        assert_eq!(lines[0]["message_type"], "error");
        assert_eq!(lines.last().expect("summary")["message_type"], "summary");
        assert_eq!(lines.last().expect("summary")["exit_code"], 1);
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "nothing written: {left:?}");
    });
}
