//! The standard formats (`.zst`, `.gz`, BGZF) through the library, each
//! held to the same contract: every size around the chunk boundaries, at
//! 1, 2, 4 and 8 threads as the equivalence test runs, round-trips through
//! the parallel path (a file, laid out), the stream path and the
//! sequential path; restore tells the format by its magic; the builder
//! refuses what a format cannot carry; a key given for a plaintext file is
//! refused; the `std::io` adapters speak each format.
//!
//! What is particular to each (forged seek tables, BGZF size fields, the
//! files the real tools write) is in `zst.rs` and `gz.rs`; the real tools
//! read and write these files in `cli/tests/zst.rs` and `cli/tests/gz.rs`.

use std::fs;
use std::io;

use crate::common::{mixed_data, watchdog};
use syncpipe::stages::{parse_stages, StageSpec};
use syncpipe::{ErrorKind, Format, Overwrite, Pipeline, Secret};

pub const CHUNK: usize = 64 << 10;
/// Input bytes of a BGZF block.
const BGZF_BLOCK: usize = 65280;
const FORMATS: [Format; 3] = [Format::Zst, Format::Gz, Format::Bgzf];

/// The format's one compression stage, at the tools' default level.
fn stage(format: Format) -> StageSpec {
    match format {
        Format::Zst => StageSpec::Zstd(3),
        _ => StageSpec::Gzip(6),
    }
}

pub fn pipeline(format: Format, threads: usize) -> Pipeline {
    Pipeline::builder()
        .format(format)
        .stage(stage(format))
        .chunk_size(CHUNK)
        .threads(threads)
        .build()
        .expect("a pipeline of a standard format")
}

/// `file` is refused by the file path (laid out first), leaving nothing
/// in the folder. With `intact: None` the damage is in the data, so the
/// stream path refuses it too; a forged seek table is skipped by a stream
/// decode, as by `zstd -d`, which then restores the `intact` bytes.
pub fn expect_integrity(p: &Pipeline, file: &[u8], what: &str, intact: Option<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, out) = (dir.path().join("x.in"), dir.path().join("x"));
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

/// The original of the `.zst` and `.gz` golden files
/// (`tests/data/README.md`).
pub fn golden_original() -> Vec<u8> {
    (0..20000)
        .flat_map(|i| format!("line {i}: syncpipe golden zst\n").into_bytes())
        .collect()
}

pub fn golden(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    fs::read(format!("{path}{name}")).expect("golden file")
}

/// Each golden file `name` restores through the file path to the golden
/// original, decoding `jobs` units in parallel (0: the sequential path).
pub fn golden_files_restore(p: &Pipeline, cases: &[(&str, u64)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let want = golden_original();
    for &(name, jobs) in cases {
        let input = dir.path().join(name);
        fs::write(&input, golden(name)).expect("write");
        let back = dir.path().join("back");
        let r = p
            .restore_path(&input, &back, Overwrite::Replace)
            .expect(name);
        assert!(fs::read(&back).expect("read") == want, "{name}");
        assert_eq!(r.chunks, jobs, "{name}: units decoded in parallel");
    }
}

/// Jobs decoded in parallel when a `len`-byte input is restored from a
/// file: a zstd frame per chunk; gzip members (one per chunk, or BGZF's
/// 65,280-byte blocks) grouped up to 1 MiB of content, 16 to a job here.
fn restored_units(format: Format, len: usize) -> u64 {
    let units = match format {
        Format::Zst => len.div_ceil(CHUNK),
        Format::Bgzf => len.div_ceil(BGZF_BLOCK).div_ceil(16),
        _ => len.div_ceil(CHUNK).div_ceil(16),
    };
    units.max(1) as u64
}

#[test]
fn every_size_round_trips_through_files_and_streams() {
    watchdog(300, || {
        let dir = tempfile::tempdir().expect("tempdir");
        for format in FORMATS {
            for threads in [1, 2, 4, 8] {
                let p = pipeline(format, threads);
                for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK / 2, 3 << 20] {
                    let what = format!("{format}, {len} bytes, {threads} threads");
                    let data = mixed_data(len, len as u64 + 1);
                    let (input, out, back) = (
                        dir.path().join("in"),
                        dir.path().join("in.out"),
                        dir.path().join("back"),
                    );
                    fs::write(&input, &data).expect("write");
                    let written = p
                        .process_path(&input, &out, Overwrite::Replace)
                        .expect("process");
                    assert_eq!(written.bytes_out, fs::metadata(&out).expect("meta").len());
                    // The file path lays the units out and decodes them in
                    // parallel.
                    let restored = p
                        .restore_path(&out, &back, Overwrite::Replace)
                        .expect("restore");
                    assert!(fs::read(&back).expect("read") == data, "{what}");
                    assert_eq!(restored.chunks, restored_units(format, len), "{what}");
                    assert_eq!(
                        p.verify_path(&out).expect("verify").original_bytes,
                        len as u64
                    );
                    // A stream has no layout: one sequential decode.
                    let file = fs::read(&out).expect("read");
                    let mut again = Vec::new();
                    let streamed = p.restore(&file[..], &mut again).expect("stream restore");
                    assert!(again == data, "{what}");
                    assert_eq!(streamed.chunks, 0, "{what}: sequential");
                    // And the stream engine writes the same bytes as the file
                    // path.
                    let mut from_stream = Vec::new();
                    p.run(&data[..], &mut from_stream).expect("run");
                    assert!(from_stream == file, "{what}");
                }
                assert!(p.governor().all_returned());
            }
        }
    });
}

/// A spipe pipeline restores every format: it is told by its magic, not
/// by the pipeline's setting.
#[test]
fn restore_detects_the_format_whatever_the_pipeline_writes() {
    let data = mixed_data(300_000, 9);
    let spipe = Pipeline::builder().threads(2).build().expect("default");
    for format in FORMATS {
        let mut file = Vec::new();
        pipeline(format, 2).run(&data[..], &mut file).expect("run");
        assert_eq!(Format::detect(&file), Some(format));
        let mut back = Vec::new();
        spipe.restore(&file[..], &mut back).expect("restore");
        assert!(back == data, "{format}");
    }
}

#[test]
fn the_builder_refuses_what_the_formats_cannot_carry() {
    for format in FORMATS {
        let codec = format.codec().expect("a standard format");
        let refused = |b: syncpipe::PipelineBuilder, what: &str| {
            let e = b.format(format).build().expect_err(what);
            assert_eq!(e.kind(), ErrorKind::Usage, "{format}: {what}");
            e.to_string()
        };
        let e = refused(Pipeline::builder().stage(StageSpec::Lz4), "lz4");
        assert!(e.contains(&format!("one stage, {codec}")), "{e}");
        let other = if codec == "zstd" { "gzip:6" } else { "zstd:3" };
        let e = refused(
            Pipeline::builder().stages(parse_stages(other).expect("list")),
            "the other codec",
        );
        assert!(e.contains(&format!("one stage, {codec}")), "{e}");
        let e = refused(
            Pipeline::builder().stages(parse_stages(&format!("{codec},sha256")).expect("list")),
            "a checksum",
        );
        assert!(e.contains("sha256"), "{e}");
        let e = refused(
            Pipeline::builder()
                .stages(parse_stages(&format!("{codec},aes-256-gcm")).expect("list"))
                .secret(Secret::passphrase("pw").expect("secret")),
            "a cipher",
        );
        assert!(e.contains("encrypted"), "{e}");
        // The default checksum is dropped, not refused.
        let p = Pipeline::builder()
            .format(format)
            .stage(stage(format))
            .build()
            .expect("defaults");
        assert_eq!(p.config().checksum, None);
        // An Encoder writes containers only.
        let e = p.encoder(None, 0).expect_err("encoder");
        assert_eq!(e.kind(), ErrorKind::Usage);
    }
}

/// A key given for a plaintext format is refused as for an unencrypted
/// container: a plaintext file may have been put where an encrypted one
/// was expected.
#[test]
fn a_key_for_a_plaintext_format_is_refused_before_any_output() {
    let keyed = Pipeline::builder()
        .secret(Secret::passphrase("pw").expect("secret"))
        .build()
        .expect("keyed");
    for format in FORMATS {
        let mut file = Vec::new();
        pipeline(format, 1)
            .run(&b"hello"[..], &mut file)
            .expect("run");
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("h.x"), &file).expect("write");
        let e = keyed
            .restore_path(
                &dir.path().join("h.x"),
                &dir.path().join("h"),
                Overwrite::Refuse,
            )
            .expect_err("keyed");
        assert_eq!(e.kind(), ErrorKind::Integrity, "{format}: {e}");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
        let e = keyed.restore(&file[..], io::sink()).expect_err("keyed");
        assert_eq!(e.kind(), ErrorKind::Integrity, "{format} (stream): {e}");
    }
}

/// The `std::io` adapters speak the formats too: a `ParWriter` writes what
/// `Pipeline::run` writes, and a `ParReader` of any pipeline reads it back.
#[test]
fn the_io_adapters_write_and_read_every_format() {
    use std::io::{Read, Write};
    watchdog(60, || {
        let data = mixed_data(5 * CHUNK + 3, 17);
        let reader = Pipeline::builder().threads(2).build().expect("default");
        for format in FORMATS {
            let p = pipeline(format, 2);
            let mut w = p.par_writer(Vec::new());
            for piece in data.chunks(10_000) {
                w.write_all(piece).expect("write");
            }
            let written = w.finish().expect("finish");
            let mut direct = Vec::new();
            p.run(&data[..], &mut direct).expect("run");
            assert!(written == direct, "{format}");
            let mut back = Vec::new();
            reader
                .par_reader(&written[..])
                .read_to_end(&mut back)
                .expect("read");
            assert!(back == data, "{format}");
        }
    });
}
