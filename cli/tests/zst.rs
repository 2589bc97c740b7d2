//! `--format zst` against the real `zstd`: what syncpipe writes, `zstd -d`
//! restores and `zstd -l` lists (its frames and the seek table's skippable
//! frame); what `zstd` writes (one frame, frames concatenated, a stream of
//! unknown size), syncpipe restores, in parallel or sequentially. Each
//! case `cmp`s the original.
//!
//! Needs `zstd` on the PATH; without it the tests say so and pass, unless
//! `SYNCPIPE_REQUIRE_ZSTD=1` (CI sets it when it could install zstd).

use std::fs;
use std::process::Command;

use crate::common::{mixed_data, watchdog};
use crate::real_tools::{have, inputs, ok, run};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const CHUNK: usize = 64 << 10;

/// Whether `zstd` is there to test against.
fn have_zstd() -> bool {
    have(&["zstd"], "SYNCPIPE_REQUIRE_ZSTD")
}

#[test]
fn zstd_restores_what_syncpipe_writes() {
    if !have_zstd() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for (name, data) in inputs(CHUNK, &[]) {
        fs::write(d.join(&name), &data).expect("write");
        for threads in ["1", "2", "4"] {
            let zst = format!("{name}.zst");
            ok(
                d,
                BIN,
                &[
                    "-q",
                    "process",
                    &name,
                    "--format",
                    "zst",
                    "--chunk-size",
                    "64KiB",
                    "-T",
                    threads,
                    "-f",
                ],
            );
            let back = ok(d, "zstd", &["-d", "-c", &zst]);
            assert!(back.stdout == data, "{name} -T {threads}: zstd -d differs");
            ok(d, "zstd", &["-t", "-q", &zst]);
        }
        // Each chunk is a frame, and the seek table is one skippable frame.
        let listed = ok(d, "zstd", &["-lv", &format!("{name}.zst")]);
        let text = String::from_utf8_lossy(&listed.stdout).into_owned();
        let frames = data.len().div_ceil(CHUNK).max(1);
        assert!(
            text.contains(&format!("# Zstandard Frames: {frames}")),
            "{name}: {text}"
        );
        assert!(text.contains("# Skippable Frames: 1"), "{name}: {text}");
        assert!(text.contains("Check: XXH64"), "{name}: {text}");
        // And syncpipe reads its own file back, under the stripped name.
        fs::remove_file(d.join(&name)).expect("rm");
        ok(d, BIN, &["-q", "restore", &format!("{name}.zst")]);
        assert!(fs::read(d.join(&name)).expect("read") == data, "{name}");
    }
}

#[test]
fn syncpipe_restores_what_zstd_writes() {
    if !have_zstd() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = mixed_data(5 << 20, 21);
    fs::write(d.join("orig"), &data).expect("write");
    // One frame with its size (zstd of a file), with several threads,
    // without a checksum, of unknown size (zstd of a pipe), and frames
    // concatenated (two files' .zst joined: one valid stream).
    ok(d, "zstd", &["-q", "-3", "orig", "-o", "one.zst"]);
    ok(d, "zstd", &["-q", "-19", "-T2", "orig", "-o", "t2.zst"]);
    ok(
        d,
        "zstd",
        &["-q", "--no-check", "orig", "-o", "nocheck.zst"],
    );
    ok(d, "bash", &["-c", "cat orig | zstd -q -c > piped.zst"]);
    fs::write(d.join("a"), &data[..1 << 20]).expect("write");
    fs::write(d.join("b"), &data[1 << 20..]).expect("write");
    ok(d, "zstd", &["-q", "a", "b"]);
    ok(d, "bash", &["-c", "cat a.zst b.zst > joined.zst"]);
    let mut files = vec![
        "one.zst",
        "t2.zst",
        "nocheck.zst",
        "piped.zst",
        "joined.zst",
    ];
    // pzstd (in the same package): a skippable frame before each frame.
    if Command::new("pzstd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        ok(d, "pzstd", &["-q", "-p", "2", "orig", "-o", "pz.zst"]);
        files.push("pz.zst");
    }
    for f in files {
        let out = d.join(format!("{f}.out"));
        let out = out.to_str().expect("utf-8");
        ok(d, BIN, &["-q", "restore", f, "-o", out, "-f"]);
        assert!(fs::read(out).expect("read") == data, "{f}");
        ok(d, BIN, &["-q", "verify", f]);
        // From a pipe: one sequential decode.
        let piped = ok(
            d,
            "bash",
            &["-c", &format!("'{BIN}' -q restore - -c < {f}")],
        );
        assert!(piped.stdout == data, "{f} from stdin");
    }
    // The concatenation has two frames of known size: decoded in parallel.
    let v = ok(d, BIN, &["-v", "restore", "joined.zst", "-o", "j", "-f"]);
    let err = String::from_utf8_lossy(&v.stderr).into_owned();
    assert!(err.contains("chunks 2,"), "{err}");
}

#[test]
fn a_damaged_zst_exits_3_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::write(d.join("x"), mixed_data(300_000, 5)).expect("write");
    ok(
        d,
        BIN,
        &[
            "-q",
            "process",
            "x",
            "--format",
            "zst",
            "--chunk-size",
            "64KiB",
        ],
    );
    let z = fs::read(d.join("x.zst")).expect("read");
    fs::remove_file(d.join("x")).expect("rm");
    fs::write(d.join("cut.zst"), &z[..z.len() / 2]).expect("write");
    let mut flipped = z.clone();
    flipped[1000] ^= 0x20;
    fs::write(d.join("flip.zst"), &flipped).expect("write");
    for f in ["cut.zst", "flip.zst"] {
        for cmd in [vec!["restore", f], vec!["verify", f]] {
            let out = run(d, BIN, &cmd);
            assert_eq!(
                out.status.code(),
                Some(3),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let mut names: Vec<_> = fs::read_dir(d)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    assert_eq!(names, ["cut.zst", "flip.zst", "x.zst"]);
    // A key where none can apply is refused, as for a plain container.
    fs::write(d.join("pw"), "secret\n").expect("write");
    let out = run(d, BIN, &["restore", "x.zst", "--passphrase-file", "pw"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.join("x").exists());
}

#[test]
fn format_flags_are_checked_and_batches_follow_the_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir(d.join("tree")).expect("mkdir");
    for i in 0..5 {
        fs::write(
            d.join(format!("tree/f{i}")),
            mixed_data(10_000 + i * 70_000, i as u64),
        )
        .expect("write");
    }
    for (args, says) in [
        (
            vec!["process", "tree/f0", "--format", "zst", "-s", "lz4"],
            "one stage, zstd",
        ),
        (
            vec![
                "process",
                "tree/f0",
                "--format",
                "zst",
                "-s",
                "zstd:3,blake3",
            ],
            "blake3",
        ),
        (vec!["process", "tree/f0", "--format", "gif"], "gif"),
        (
            vec!["process", "-r", "tree", "--format", "zst", "--batch-small"],
            "--batch-small",
        ),
    ] {
        let out = run(d, BIN, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}"
        );
    }
    // -l keeps the format's default list: zstd alone.
    ok(
        d,
        BIN,
        &["-q", "process", "-r", "tree", "--format", "zst", "-l", "5"],
    );
    let mut names: Vec<_> = fs::read_dir(d.join("tree"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(
        names.iter().filter(|n| n.ends_with(".zst")).count() == 5,
        "{names:?}"
    );
    // A second walk skips the outputs, as `zstd -r` skips `.zst`.
    let again = run(d, BIN, &["process", "-r", "tree", "--format", "zst"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "all exist: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    ok(d, BIN, &["-q", "verify", "-r", "tree"]);
    for i in 0..5 {
        fs::remove_file(d.join(format!("tree/f{i}"))).expect("rm");
    }
    ok(d, BIN, &["-q", "restore", "-r", "tree"]);
    for i in 0..5 {
        let data = fs::read(d.join(format!("tree/f{i}"))).expect("restored");
        assert!(data == mixed_data(10_000 + i * 70_000, i as u64), "f{i}");
    }
}

/// A sequential decode (a frame of unknown size) into a closed pipe ends
/// by SIGPIPE as a container's restore does: the write's broken pipe is
/// not taken for corrupt data (exit 3).
#[test]
fn a_sequential_decode_into_a_closed_pipe_ends_by_sigpipe() {
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/zstd-1.5.4-stream.zst"
    );
    for input in [format!("'{golden}'"), format!("- < '{golden}'")] {
        let script = format!(
            "set -o pipefail; '{BIN}' restore {input} -c | head -c 10 >/dev/null; \
             echo \"status=${{PIPESTATUS[0]}}\""
        );
        let mut c = Command::new("bash");
        c.args(["-c", &script]);
        let out = watchdog(60, move || c.output().expect("run bash"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "status=141",
            "{input}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{input}: no message"
        );
    }
}
