//! What is particular to the `.zst` format through the library: hostile
//! files (cut, forged seek tables) are integrity errors that leave no
//! output; the writer's bytes are frozen; the files `zstd` itself writes
//! restore through the path their layout allows. The contract every
//! standard format keeps is in `standard_formats.rs`.
//!
//! The real `zstd` reads and writes these files in `cli/tests/zst.rs`.

use std::fs;

use crate::common::{mixed_data, watchdog};
use crate::standard_formats::{
    expect_integrity, golden, golden_files_restore, golden_original, pipeline, CHUNK,
};
use syncpipe::stages::StageSpec;
use syncpipe::{ErrorKind, Format, Overwrite, Pipeline};

fn zst(threads: usize) -> Pipeline {
    pipeline(Format::Zst, threads)
}

#[test]
fn damaged_and_forged_files_are_integrity_errors_that_leave_nothing() {
    watchdog(120, || {
        let p = zst(2);
        let data = mixed_data(4 * CHUNK + 100, 3);
        let mut z = Vec::new();
        p.run(&data[..], &mut z).expect("run");
        // Cut inside the last data frame, and just before the table.
        let table_len = 8 + 5 * 8 + 9;
        expect_integrity(&p, &z[..z.len() - table_len - 3], "cut frame", None);
        expect_integrity(&p, &z[..z.len() / 2], "cut in half", None);
        // A flipped byte inside a frame: zstd's checksum or its decoder.
        let mut flipped = z.clone();
        flipped[CHUNK / 4] ^= 0x10;
        expect_integrity(&p, &flipped, "flipped byte", None);
        // A seek table whose sizes do not add up to the file.
        let mut forged = z.clone();
        let first_entry = z.len() - table_len + 8;
        forged[first_entry] ^= 0x01;
        expect_integrity(
            &p,
            &forged,
            "forged compressed size",
            Some(data.len() as u64),
        );
        // One that claims the wrong decompressed size for a frame.
        let mut lying = z.clone();
        lying[first_entry + 4] ^= 0x01;
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("l.zst"), &lying).expect("write");
        let e = p
            .restore_path(
                &dir.path().join("l.zst"),
                &dir.path().join("l"),
                Overwrite::Refuse,
            )
            .expect_err("lying table");
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert!(!dir.path().join("l").exists());
        // A frame count the file cannot hold is refused before any work.
        let mut huge = z.clone();
        let count = z.len() - 9;
        huge[count..count + 4].copy_from_slice(&0x0700_0000u32.to_le_bytes());
        expect_integrity(&p, &huge, "huge frame count", Some(data.len() as u64));
    });
}

/// The writer's bytes are frozen: the same input, level and chunk size
/// give the golden file (zstd's output is deterministic for one library
/// version, which `Cargo.lock` pins).
#[test]
fn the_writer_writes_the_golden_bytes() {
    let p = Pipeline::builder()
        .format(Format::Zst)
        .stage(StageSpec::Zstd(3))
        .chunk_size(64 << 10)
        .threads(2)
        .build()
        .expect("zst");
    let mut out = Vec::new();
    p.run(&golden_original()[..], &mut out).expect("run");
    assert!(
        out == golden("syncpipe-zst3-64k.zst"),
        "the zst writer's bytes changed"
    );
}

/// zstd's own files: one frame (decoded as one job), a frame of unknown
/// size (sequential), two frames (walked from their block headers).
#[test]
fn files_written_by_zstd_restore_through_the_right_path() {
    golden_files_restore(
        &zst(2),
        &[
            ("zstd-1.5.4-19.zst", 1),
            ("zstd-1.5.4-stream.zst", 0),
            ("zstd-1.5.4-two-frames.zst", 2),
            ("syncpipe-zst3-64k.zst", 10),
        ],
    );
}
