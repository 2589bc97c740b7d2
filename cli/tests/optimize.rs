//! `--optimize` presets: what each resolves to, through the real
//! binary's JSON summary and through the builder, and that explicit
//! settings win whichever way they are given.

use std::process::Command;

use syncpipe::{Optimize, Pipeline};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

/// Processes a small file with `args` and returns the JSON summary's
/// tuning and stderr.
fn tuning(args: &[&str]) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.bin");
    std::fs::write(&input, vec![3u8; 300_000]).expect("write input");
    let out = Command::new(BIN)
        .arg("process")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("out.spipe"))
        .arg("--json")
        .args(args)
        .output()
        .expect("run syncpipe");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .expect("a summary line");
    (
        summary["tuning"].clone(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn presets_set_the_knobs_and_flags_win() {
    let (t, _) = tuning(&["--optimize", "throughput"]);
    assert_eq!(t["chunk_size"], 64 << 10);
    assert_eq!(t["channel_depth"], 8);
    let (t, _) = tuning(&["--optimize", "latency"]);
    assert_eq!(t["chunk_size"], 64 << 10);
    assert_eq!(t["channel_depth"], 2);
    let (t, _) = tuning(&["--optimize", "resources"]);
    assert_eq!(
        (&t["threads"], &t["cpu_tokens"], &t["io_tokens"]),
        (&1.into(), &1.into(), &2.into())
    );
    // Explicit flags win over the preset.
    let (t, _) = tuning(&[
        "--optimize",
        "resources",
        "--chunk-size",
        "64KiB",
        "-T",
        "2",
        "--io-tokens",
        "9",
    ]);
    assert_eq!(t["chunk_size"], 64 << 10);
    assert_eq!(t["threads"], 2);
    assert_eq!(t["cpu_tokens"], 1, "cpu tokens still from the preset");
    assert_eq!(t["io_tokens"], 9);
}

#[test]
fn verbose_prints_what_the_preset_resolved_to() {
    let (_, err) = tuning(&["--optimize", "latency", "-v"]);
    assert!(
        err.lines().any(
            |l| l.starts_with("syncpipe: optimize latency:") && l.contains("chunk size 64 KiB")
        ),
        "{err}"
    );
    let (_, err) = tuning(&["-v"]);
    assert!(!err.contains("syncpipe: optimize"), "{err}");
}

#[test]
fn a_bad_preset_is_a_usage_error_naming_the_values() {
    let out = Command::new(BIN)
        .args(["process", "-", "-c", "--optimize", "speed"])
        .output()
        .expect("run syncpipe");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("throughput, latency, resources"), "{err}");
}

#[test]
fn builder_presets_yield_to_explicit_settings_in_any_order() {
    let cfg = |b: syncpipe::PipelineBuilder| b.build().expect("valid").config().clone();
    let a = cfg(Pipeline::builder()
        .chunk_size(1 << 20)
        .optimize(Some(Optimize::Latency)));
    let b = cfg(Pipeline::builder()
        .optimize(Some(Optimize::Latency))
        .chunk_size(1 << 20));
    assert_eq!(a.chunk_size, 1 << 20);
    assert_eq!(b.chunk_size, 1 << 20);
    assert_eq!(a.channel_depth, 2);
    assert_eq!(a.optimize, Some(Optimize::Latency));
    let r = cfg(Pipeline::builder().optimize(Some(Optimize::Resources)));
    assert_eq!((r.threads, r.cpu_tokens, r.io_tokens), (1, 1, 2));
}
