//! Hill-climb chunk sizing end to end: a stage with a known cost drives the
//! climber, the container then holds chunks of several sizes, and it
//! restores byte-identical. The cost is a sleep, so the direction of the
//! climb is certain however loaded the machine is (a sleep never ends
//! early); no assertion depends on how fast anything runs.

use std::thread;
use std::time::Duration;

use crate::common::{mixed_data, watchdog};
use syncpipe::format::{Header, Item, Walker};
use syncpipe::stage::{ChunkInfo, Stage};
use syncpipe::tuner::{self, ChunkMethod};
use syncpipe::Pipeline;

/// Copies, sleeping 6 ms per chunk: above the climber's 5 ms band.
struct Slow;

impl Stage for Slow {
    fn forward(&self, _: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        thread::sleep(Duration::from_millis(6));
        out.extend_from_slice(input);
        Ok(())
    }
    fn inverse(&self, _: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        out.extend_from_slice(input);
        Ok(())
    }
    fn name(&self) -> String {
        "slow".into()
    }
}

#[test]
fn slow_chunks_make_the_climber_shrink_and_the_container_restores() {
    watchdog(120, || {
        let data = mixed_data(40 << 20, 5);
        let p = Pipeline::builder()
            .custom_stage(Slow)
            .chunk_method(ChunkMethod::HillClimb)
            .chunk_size(1 << 20)
            .threads(2)
            .channel_depth(2)
            .build()
            .expect("valid settings");
        let mut container = Vec::new();
        let report = p.run(&data[..], &mut container).expect("process");
        let sizes = &report.chunk_sizes;
        assert_eq!(sizes[0].size, 1 << 20, "starts at the given size");
        assert!(sizes.len() >= 3, "it shrank: {sizes:?}");
        for w in sizes.windows(2) {
            assert_eq!(
                w[0].size - w[1].size,
                tuner::STEP,
                "one step down: {sizes:?}"
            );
            assert!(w[1].from_chunk > w[0].from_chunk);
            assert!(w[1].mean_cost > Duration::from_millis(5), "{sizes:?}");
        }

        // The container says so, and its records follow the history.
        let mut r = &container[..];
        let header = Header::read_from(&mut r).expect("header");
        assert!(header.variable_chunks);
        assert_eq!(header.chunk_size, tuner::MAX_CHUNK);
        let mut walker = Walker::new(&header);
        let mut payload = Vec::new();
        let mut lens = Vec::new();
        while let Item::Chunk { head, .. } = walker.next(&mut r, &mut payload).expect("record") {
            lens.push(head.original_len as usize);
        }
        for (index, &len) in lens.iter().enumerate().take(lens.len() - 1) {
            let expected = sizes
                .iter()
                .rev()
                .find(|c| c.from_chunk <= index as u64)
                .expect("history starts at chunk 0")
                .size;
            assert_eq!(len, expected, "chunk {index}");
        }

        let mut restored = Vec::new();
        p.restore(&container[..], &mut restored).expect("restore");
        assert!(restored == data);
        assert!(p.governor().all_returned());
    });
}

#[test]
fn a_fixed_size_is_kept_and_flagged_fixed() {
    let data = mixed_data(3 << 20, 6);
    let p = Pipeline::builder()
        .chunk_size(256 << 10)
        .threads(2)
        .build()
        .expect("valid settings");
    assert_eq!(p.config().chunk_method, ChunkMethod::Fixed);
    let mut container = Vec::new();
    let report = p.run(&data[..], &mut container).expect("process");
    assert_eq!(report.chunk_sizes.len(), 1);
    assert_eq!(report.chunks, 12);
    let header = Header::read_from(&mut &container[..]).expect("header");
    assert!(!header.variable_chunks);
    assert_eq!(header.chunk_size, 256 << 10);
}

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

#[test]
fn cli_reports_the_sizes_and_refuses_unknown_methods() {
    use std::process::Command;
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.bin");
    let data = mixed_data(3 << 20, 8);
    std::fs::write(&input, &data).expect("write");
    let out = Command::new(BIN)
        .args(["process", "in.bin", "--chunk-method", "zigzag"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[possible values: fixed, filesize, hillclimb]"),
        "{err}"
    );

    // filesize with 2 tokens on 3 MiB: 384 KiB chunks (4 per token), in
    // the JSON file_done line and the container's header.
    let out = Command::new(BIN)
        .args([
            "process",
            "in.bin",
            "-o",
            "c.spipe",
            "-T",
            "2",
            "--chunk-method",
            "filesize",
            "--json",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "file_done")
        .expect("a file_done line");
    assert_eq!(done["chunk_method"], "filesize");
    assert_eq!(done["chunk_size"], 384 << 10);
    assert_eq!(done["chunk_sizes"][0]["size"], 384 << 10);
    let info = Command::new(BIN)
        .args(["info", "c.spipe"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&info.stdout).contains("384 KiB"));

    // hillclimb: the container says its chunks vary; it restores.
    let out = Command::new(BIN)
        .args([
            "process",
            "in.bin",
            "-o",
            "h.spipe",
            "--chunk-method",
            "hillclimb",
            "-v",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let info = Command::new(BIN)
        .args(["info", "h.spipe"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&info.stdout).contains("up to 4 MiB (varies)"));
    let back = Command::new(BIN)
        .args(["restore", "h.spipe", "-o", "back.bin"])
        .current_dir(dir.path())
        .status()
        .expect("run");
    assert!(back.success());
    assert!(std::fs::read(dir.path().join("back.bin")).expect("read") == data);
}

/// The golden hill-climbed container (tests/data) has the variable flag and
/// records of several lengths, and restores to its manifest hash through
/// `cli/tests/golden_data.rs`; here: that it still exercises variable lengths.
#[test]
fn the_golden_variable_container_has_chunks_of_several_lengths() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("tests/data/v-hillclimb-zstd3-blake3.spipe");
    let bytes = std::fs::read(path).expect("golden file");
    let mut r = &bytes[..];
    let header = Header::read_from(&mut r).expect("header");
    assert!(header.variable_chunks);
    let mut walker = Walker::new(&header);
    let mut payload = Vec::new();
    let mut lens = std::collections::BTreeSet::new();
    while let Item::Chunk { head, .. } = walker.next(&mut r, &mut payload).expect("record") {
        if !head.is_last() {
            lens.insert(head.original_len);
        }
    }
    assert_eq!(
        lens.into_iter().collect::<Vec<_>>(),
        vec![128 << 10, 256 << 10, 384 << 10]
    );
}

/// The default chunk of a zstd list is zstd's frame size, cut down so that
/// a file still gets four chunks, and the binary restores it on its own
/// (no `zstd` on the PATH: the codec is the library's).
#[test]
fn the_default_chunk_follows_zstd_and_restores_without_a_zstd_binary() {
    use std::process::Command;
    watchdog(120, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = mixed_data(20 << 20, 9);
        std::fs::write(dir.path().join("in.bin"), &data).expect("write");
        let run = |args: &[&str]| {
            let out = Command::new(BIN)
                .args(args)
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", "")
                .output()
                .expect("run");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let header = |name: &str| {
            let bytes = std::fs::read(dir.path().join(name)).expect("container");
            Header::read_from(&mut &bytes[..]).expect("header")
        };
        // 20 MiB at zstd:3 (8 MiB frames): four chunks of 5 MiB.
        run(&["process", "in.bin", "-o", "z3.spipe", "-s", "zstd:3"]);
        assert_eq!(header("z3.spipe").chunk_size, 5 << 20);
        assert!(!header("z3.spipe").variable_chunks);
        run(&["restore", "z3.spipe", "-o", "z3.out"]);
        assert!(std::fs::read(dir.path().join("z3.out")).expect("restored") == data);
        // An explicit size wins; a list without zstd or brotli keeps 1 MiB.
        run(&[
            "process",
            "in.bin",
            "-o",
            "c.spipe",
            "-s",
            "zstd:3",
            "--chunk-size",
            "2MiB",
        ]);
        assert_eq!(header("c.spipe").chunk_size, 2 << 20);
        run(&["process", "in.bin", "-o", "l.spipe", "-s", "lz4"]);
        assert_eq!(header("l.spipe").chunk_size, 1 << 20);
        run(&["restore", "l.spipe", "-o", "l.out"]);
        assert!(std::fs::read(dir.path().join("l.out")).expect("restored") == data);
    });
}
