//! The `.zst` format through the library: every size around the chunk
//! boundaries at several thread counts round-trips through the parallel
//! frame path, the stream path and the sequential path; hostile files
//! (cut, flipped, forged seek tables) are integrity errors that leave no
//! output; the builder refuses what the format cannot carry.
//!
//! The real `zstd` reads and writes these files in `cli/tests/zst.rs`.

use std::fs;
use std::io;

use crate::common::{mixed_data, watchdog};
use syncpipe::stages::{parse_stages, StageSpec};
use syncpipe::{ErrorKind, Format, Overwrite, Pipeline, Secret};

const CHUNK: usize = 64 << 10;

fn zst(threads: usize) -> Pipeline {
    Pipeline::builder()
        .format(Format::Zst)
        .stage(StageSpec::Zstd(3))
        .chunk_size(CHUNK)
        .threads(threads)
        .build()
        .expect("a zst pipeline")
}

#[test]
fn every_size_round_trips_through_files_and_streams() {
    watchdog(300, || {
        let dir = tempfile::tempdir().expect("tempdir");
        for threads in [1, 2, 4] {
            let p = zst(threads);
            for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK / 2, 3 << 20] {
                let data = mixed_data(len, len as u64 + 1);
                let (input, out, back) = (
                    dir.path().join("in"),
                    dir.path().join("in.zst"),
                    dir.path().join("back"),
                );
                fs::write(&input, &data).expect("write");
                let written = p
                    .process_path(&input, &out, Overwrite::Replace)
                    .expect("process");
                let frames = len.div_ceil(CHUNK).max(1) as u64;
                assert_eq!(written.chunks, frames, "len {len}");
                assert_eq!(written.bytes_out, fs::metadata(&out).expect("meta").len());
                // The file path lays the frames out from the seek table and
                // decodes them in parallel: one chunk per frame.
                let restored = p
                    .restore_path(&out, &back, Overwrite::Replace)
                    .expect("restore");
                assert!(
                    fs::read(&back).expect("read") == data,
                    "len {len} threads {threads}"
                );
                assert_eq!(restored.chunks, frames, "len {len}");
                assert_eq!(
                    p.verify_path(&out).expect("verify").original_bytes,
                    len as u64
                );
                // A stream has no layout: one sequential decode.
                let container = fs::read(&out).expect("read");
                let mut again = Vec::new();
                let streamed = p
                    .restore(&container[..], &mut again)
                    .expect("stream restore");
                assert!(again == data);
                assert_eq!(streamed.chunks, 0, "sequential");
                // And the stream engine writes the same bytes as the file path.
                let mut from_stream = Vec::new();
                p.run(&data[..], &mut from_stream).expect("run");
                assert!(from_stream == container, "len {len}");
            }
            assert!(p.governor().all_returned());
        }
    });
}

/// A spipe pipeline restores `.zst` files too: the format is told by its
/// magic, not by the pipeline's setting.
#[test]
fn restore_detects_the_format_whatever_the_pipeline_writes() {
    let data = mixed_data(300_000, 9);
    let mut z = Vec::new();
    zst(2).run(&data[..], &mut z).expect("run");
    let spipe = Pipeline::builder().threads(2).build().expect("default");
    let mut back = Vec::new();
    spipe.restore(&z[..], &mut back).expect("restore");
    assert!(back == data);
}

/// `file` is refused by the file path (laid out first). With
/// `intact: None` the damage is in the frames, so the stream path refuses
/// it too; a forged seek table is skipped by a stream decode, as by
/// `zstd -d`, which then restores the `intact` bytes of the frames.
fn expect_integrity(p: &Pipeline, file: &[u8], what: &str, intact: Option<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, out) = (dir.path().join("x.zst"), dir.path().join("x"));
    fs::write(&input, file).expect("write");
    let e = p
        .restore_path(&input, &out, Overwrite::Refuse)
        .expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Integrity, "{what}: {e}");
    assert_eq!(
        fs::read_dir(dir.path()).expect("list").count(),
        1,
        "{what}: no output, no temp"
    );
    let streamed = p.restore(file, io::sink());
    match intact {
        None => {
            let e = streamed.expect_err(what);
            assert_eq!(e.kind(), ErrorKind::Integrity, "{what} (stream): {e}");
        }
        Some(len) => assert_eq!(streamed.expect("intact frames").original_bytes, len),
    }
    assert!(p.governor().all_returned(), "{what}");
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

#[test]
fn the_builder_refuses_what_the_format_cannot_carry() {
    let refused = |b: syncpipe::PipelineBuilder, what: &str| {
        let e = b.format(Format::Zst).build().expect_err(what);
        assert_eq!(e.kind(), ErrorKind::Usage, "{what}");
        e.to_string()
    };
    let e = refused(Pipeline::builder().stage(StageSpec::Lz4), "lz4");
    assert!(e.contains("one stage, zstd"), "{e}");
    let e = refused(
        Pipeline::builder().stages(parse_stages("zstd:3,sha256").expect("list")),
        "a checksum",
    );
    assert!(e.contains("sha256"), "{e}");
    let e = refused(
        Pipeline::builder()
            .stages(parse_stages("zstd:3,aes-256-gcm").expect("list"))
            .secret(Secret::passphrase("pw").expect("secret")),
        "a cipher",
    );
    assert!(e.contains("encrypted"), "{e}");
    // The default checksum is dropped, not refused.
    let p = Pipeline::builder()
        .format(Format::Zst)
        .build()
        .expect("defaults");
    assert_eq!(p.config().checksum, None);
    // An Encoder writes containers only.
    let e = p.encoder(None, 0).expect_err("encoder");
    assert_eq!(e.kind(), ErrorKind::Usage);
}

/// A key given for a `.zst` is refused as for an unencrypted container:
/// a plaintext file may have been put where an encrypted one was expected.
#[test]
fn a_key_for_a_zst_file_is_refused_before_any_output() {
    let mut z = Vec::new();
    zst(1).run(&b"hello"[..], &mut z).expect("run");
    let keyed = Pipeline::builder()
        .secret(Secret::passphrase("pw").expect("secret"))
        .build()
        .expect("keyed");
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("h.zst"), &z).expect("write");
    let e = keyed
        .restore_path(
            &dir.path().join("h.zst"),
            &dir.path().join("h"),
            Overwrite::Refuse,
        )
        .expect_err("keyed");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
}

/// The original of the `.zst` golden files (`tests/data/README.md`).
fn golden_original() -> Vec<u8> {
    (0..20000)
        .flat_map(|i| format!("line {i}: syncpipe golden zst\n").into_bytes())
        .collect()
}

fn golden(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    fs::read(format!("{path}{name}")).expect("golden file")
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
    let dir = tempfile::tempdir().expect("tempdir");
    let p = zst(2);
    let want = golden_original();
    for (name, chunks) in [
        ("zstd-1.5.4-19.zst", 1),
        ("zstd-1.5.4-stream.zst", 0),
        ("zstd-1.5.4-two-frames.zst", 2),
        ("syncpipe-zst3-64k.zst", 10),
    ] {
        let input = dir.path().join(name);
        fs::write(&input, golden(name)).expect("write");
        let back = dir.path().join("back");
        let r = p
            .restore_path(&input, &back, Overwrite::Replace)
            .expect(name);
        assert!(fs::read(&back).expect("read") == want, "{name}");
        assert_eq!(r.chunks, chunks, "{name}: frames decoded in parallel");
    }
}

/// The `std::io` adapters speak the format too: a `ParWriter` of a zst
/// pipeline writes what `Pipeline::run` writes, and a `ParReader` of any
/// pipeline reads it back.
#[test]
fn the_io_adapters_write_and_read_zst() {
    use std::io::{Read, Write};
    watchdog(60, || {
        let p = zst(2);
        let data = mixed_data(5 * CHUNK + 3, 17);
        let mut w = p.par_writer(Vec::new());
        for piece in data.chunks(10_000) {
            w.write_all(piece).expect("write");
        }
        let written = w.finish().expect("finish");
        let mut direct = Vec::new();
        p.run(&data[..], &mut direct).expect("run");
        assert!(written == direct);
        let reader = Pipeline::builder().threads(2).build().expect("default");
        let mut back = Vec::new();
        reader
            .par_reader(&written[..])
            .read_to_end(&mut back)
            .expect("read");
        assert!(back == data);
    });
}
