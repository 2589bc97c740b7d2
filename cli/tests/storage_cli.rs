//! `--storage-type` and `--io-qdepth` through the real binary, and the
//! builder's storage type (the device-aware IO depth; the sysfs
//! detection itself is unit-tested on fake trees in `src/storage.rs`).

use std::process::Command;

use syncpipe::storage::StorageType;
use syncpipe::Pipeline;

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

/// Runs a process of a small file with `args`; returns (code, the JSON
/// summary's tuning object, stderr).
fn run(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.bin");
    std::fs::write(&input, vec![7u8; 100_000]).expect("write input");
    let out = Command::new(BIN)
        .arg("process")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("out.spipe"))
        .args(["--json"])
        .args(args)
        .output()
        .expect("run syncpipe");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let tuning = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .map(|v| v["tuning"].clone())
        .unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        tuning,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn storage_type_sets_the_io_tokens() {
    for (kind, tokens) in [("nvme", 24), ("ssd", 12), ("hdd", 4)] {
        let (code, tuning, err) = run(&["--storage-type", kind]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(tuning["io_tokens"], tokens, "{kind}");
        assert_eq!(tuning["storage_type"], kind);
    }
}

#[test]
fn io_tokens_and_its_alias_override_the_storage_type() {
    for flag in ["--io-tokens", "--io-qdepth"] {
        let (code, tuning, err) = run(&["--storage-type", "hdd", flag, "7"]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(tuning["io_tokens"], 7, "{flag}");
    }
}

#[test]
fn storage_type_auto_explains_itself_with_v() {
    let (code, tuning, err) = run(&["-v"]);
    assert_eq!(code, Some(0), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("syncpipe: storage "))
        .unwrap_or_else(|| panic!("no storage line in:\n{err}"));
    // Either a detected kind with its depth, or unknown with the reason
    // and the SSD default; the JSON says the same.
    let kind = tuning["storage_type"].as_str().expect("a string");
    assert!(line.contains(kind), "{line} vs {kind}");
    let tokens = tuning["io_tokens"].as_u64().expect("a number");
    assert!(line.contains(&format!("{tokens} IO tokens")), "{line}");
    if kind == "unknown" {
        assert_eq!(tokens, 12);
    }
    // Without -v, no such line.
    let (_, _, quiet) = run(&[]);
    assert!(!quiet.contains("syncpipe: storage"), "{quiet}");
}

#[test]
fn a_bad_storage_type_is_a_usage_error_naming_the_values() {
    let (code, _, err) = run(&["--storage-type", "floppy"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("auto, nvme, ssd, hdd"), "{err}");
}

#[test]
fn builder_storage_type_sets_the_io_tokens_unless_given() {
    let io = |b: syncpipe::PipelineBuilder| b.build().expect("valid").config().io_tokens;
    assert_eq!(io(Pipeline::builder()), 12);
    assert_eq!(
        io(Pipeline::builder().storage_type(Some(StorageType::Nvme))),
        24
    );
    assert_eq!(
        io(Pipeline::builder().storage_type(Some(StorageType::Hdd))),
        4
    );
    assert_eq!(
        io(Pipeline::builder()
            .storage_type(Some(StorageType::Hdd))
            .io_tokens(9)),
        9
    );
}
