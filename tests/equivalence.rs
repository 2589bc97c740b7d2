//! The one core test: every configuration gives the same container bytes as
//! the one-thread path, and every container restores byte-identical.
//!
//! threads {1,2,4,8} × depth {1,2,16} × chunk size {tiny, 64 KiB, default}
//! × sizes {0, 1, chunk−1, chunk, chunk+1, many chunks} × every stage list,
//! with both spawn styles (rayon tasks, dedicated threads) over the grid.

use crate::common::{mixed_data, watchdog};
use syncpipe::stages::parse_stages;
use syncpipe::Overwrite;
use syncpipe::{Pipeline, ReaderKind, SpawnStyle};

const STAGE_LISTS: &[&str] = &[
    "passthrough",
    "sha256",
    "zstd:3,blake3",
    "zstd:1",
    "lz4,sha256",
    "gzip:6",
    "brotli:5,blake3",
];

const THREADS: &[usize] = &[1, 2, 4, 8];
const DEPTHS: &[usize] = &[1, 2, 16];
/// A prime "tiny" size so chunk boundaries fall everywhere in the data.
const TINY: usize = 37;
const CHUNKS: &[usize] = &[TINY, 64 << 10, syncpipe::limits::DEFAULT_CHUNK_SIZE];

fn sizes(chunk: usize) -> Vec<usize> {
    // "Many" is kept modest at the 1 MiB default so the suite stays quick.
    let many = if chunk >= 1 << 20 {
        3 * chunk + 12_345
    } else {
        40 * chunk + 7
    };
    vec![0, 1, chunk - 1, chunk, chunk + 1, many]
}

fn pipeline(stages: &str, chunk: usize, threads: usize, depth: usize) -> Pipeline {
    // Both spawn styles, alternating over the grid so that each meets every
    // thread count (and the suite takes no longer): same bytes required.
    let style = if (threads + depth).is_multiple_of(2) {
        SpawnStyle::Threads
    } else {
        SpawnStyle::Rayon
    };
    Pipeline::builder()
        .stages(parse_stages(stages).expect("valid stage list"))
        .chunk_size(chunk)
        .threads(threads)
        .channel_depth(depth)
        .spawn_style(style)
        .build()
        .expect("valid settings")
}

fn check_stage_list(stages: &'static str) {
    for &chunk in CHUNKS {
        for size in sizes(chunk) {
            let data = mixed_data(size, size as u64 + 7);
            let reference = {
                let p = pipeline(stages, chunk, 1, 1);
                let mut out = Vec::new();
                let report = p.run(&data[..], &mut out).expect("process");
                assert_eq!(report.bytes_in, size as u64);
                assert_eq!(report.chunks, (size.max(1)).div_ceil(chunk) as u64);
                assert!(p.governor().all_returned());
                out
            };
            for &threads in THREADS {
                for &depth in DEPTHS {
                    let p = pipeline(stages, chunk, threads, depth);
                    let mut container = Vec::new();
                    p.run(&data[..], &mut container).expect("process");
                    assert!(
                        container == reference,
                        "{stages}: container differs from the one-thread path \
                         (chunk {chunk}, size {size}, threads {threads}, depth {depth}, {:?})",
                        p.config().spawn_style
                    );
                    let mut restored = Vec::new();
                    p.restore(&container[..], &mut restored).expect("restore");
                    assert!(
                        restored == data,
                        "{stages}: restore differs (chunk {chunk}, size {size}, threads {threads}, depth {depth}, {:?})",
                        p.config().spawn_style
                    );
                    assert!(p.governor().all_returned(), "permits leaked");
                }
            }
        }
    }
}

// One test per stage list so they run in parallel and a failure names the
// stage; each under a watchdog so a deadlock fails instead of hanging.
#[test]
fn every_configuration_passthrough() {
    watchdog(300, || check_stage_list(STAGE_LISTS[0]));
}

#[test]
fn every_configuration_checksum_only() {
    watchdog(300, || check_stage_list(STAGE_LISTS[1]));
}

#[test]
fn every_configuration_zstd3_blake3() {
    watchdog(300, || check_stage_list(STAGE_LISTS[2]));
}

#[test]
fn every_configuration_zstd1() {
    watchdog(300, || check_stage_list(STAGE_LISTS[3]));
}

#[test]
fn every_configuration_lz4_sha256() {
    watchdog(300, || check_stage_list(STAGE_LISTS[4]));
}

#[test]
fn every_configuration_gzip() {
    watchdog(300, || check_stage_list(STAGE_LISTS[5]));
}

#[test]
fn every_configuration_brotli_blake3() {
    watchdog(300, || check_stage_list(STAGE_LISTS[6]));
}

/// The through-a-file path (temp file + rename) gives the same bytes as the
/// stream path, apart from the header's length and mode fields.
#[test]
fn path_and_stream_agree_on_records() {
    watchdog(60, || {
        let dir = tempfile::tempdir().expect("tempdir");
        // Over 8 MiB of output on both sides, so the early-writeback path of
        // the output file runs.
        let data = mixed_data(20 << 20, 3);
        let input = dir.path().join("in.bin");
        std::fs::write(&input, &data).expect("write input");
        let p = pipeline("lz4,blake3", 64 << 10, 2, 2);
        let out = dir.path().join("in.bin.spipe");
        p.process_path(&input, &out, Overwrite::Refuse)
            .expect("process_path");
        let back = dir.path().join("back.bin");
        p.restore_path(&out, &back, Overwrite::Refuse)
            .expect("restore_path");
        assert_eq!(std::fs::read(&back).expect("read back"), data);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 3, "no temp files left: {names:?}");
    });
}

/// Eight stages (the format's maximum) with the last one skipped on
/// incompressible chunks: the skip mask uses its top bit.
#[test]
fn eight_stages_with_skips_round_trip() {
    watchdog(60, || {
        let copy = |i: &[u8], o: &mut Vec<u8>| -> syncpipe::Result<()> {
            o.extend_from_slice(i);
            Ok(())
        };
        let mut b = Pipeline::builder().chunk_size(4096).threads(2);
        for i in 0..7 {
            b = b.custom_stage(syncpipe::stage::from_fn(format!("copy{i}"), copy, copy));
        }
        let p = b
            .stage(syncpipe::stages::StageSpec::Lz4)
            .build()
            .expect("8 stages");
        let data = mixed_data(100_000, 12);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        let info = syncpipe::inspect(&container[..]).expect("inspect");
        assert!(info.stored_raw > 0, "some chunks skip lz4 (bit 7)");
        let mut back = Vec::new();
        p.restore(&container[..], &mut back).expect("restore");
        assert_eq!(back, data);
    });
}

#[test]
fn duplicate_custom_stage_names_are_refused() {
    let copy = |i: &[u8], o: &mut Vec<u8>| -> syncpipe::Result<()> {
        o.extend_from_slice(i);
        Ok(())
    };
    let e = Pipeline::builder()
        .custom_stage(syncpipe::stage::from_fn("same", copy, copy))
        .custom_stage(syncpipe::stage::from_fn("same", copy, copy))
        .build()
        .expect_err("duplicate names");
    assert_eq!(e.kind(), syncpipe::ErrorKind::Usage);
}

/// A hostile header cannot make restore create a setuid or world-writable
/// special file: the mode is masked to the permission bits and the umask.
#[test]
fn restored_mode_drops_setuid() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pipeline("lz4", 4096, 1, 1);
    let mut container = Vec::new();
    p.run(&b"payload"[..], &mut container).expect("process");
    let mut r = &container[..];
    let mut header = syncpipe::format::Header::read_from(&mut r).expect("header");
    header.mode = 0o4777;
    let mut forged = header.encode();
    forged.extend_from_slice(r);
    let path = dir.path().join("x.spipe");
    std::fs::write(&path, &forged).expect("write");
    let out = dir.path().join("x");
    p.restore_path(&path, &out, Overwrite::Refuse)
        .expect("restore");
    let mode = std::fs::metadata(&out).expect("meta").permissions().mode() & 0o7777;
    // The permission bits, less this process's umask (as tar without -p).
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).expect("octal"))
        .expect("Umask line");
    assert_eq!(mode, 0o777 & !umask);
}

/// The path APIs with each reader (`read(2)`, memory map) and each spawn
/// style: byte-identical containers, and restores equal to the original.
#[test]
fn every_reader_and_spawn_style_through_the_path_apis() {
    watchdog(120, || {
        let dir = tempfile::tempdir().expect("temp dir");
        for (i, size) in [0usize, 1, 65_536, 300_001].into_iter().enumerate() {
            let input = dir.path().join(format!("in{i}"));
            let data = mixed_data(size, 99 + i as u64);
            std::fs::write(&input, &data).expect("write input");
            let mut reference: Option<Vec<u8>> = None;
            // The mmap reader is there with the `mmap` feature (which the
            // CLI's build turns on for the whole workspace).
            let readers: &[ReaderKind] = if cfg!(feature = "mmap") {
                &[ReaderKind::Buffered, ReaderKind::Mmap]
            } else {
                &[ReaderKind::Buffered]
            };
            for &reader in readers {
                for style in [SpawnStyle::Rayon, SpawnStyle::Threads] {
                    let p = Pipeline::builder()
                        .stages(parse_stages("zstd:3,sha256").expect("valid"))
                        .chunk_size(64 << 10)
                        .threads(2)
                        .reader(reader)
                        .spawn_style(style)
                        .build()
                        .expect("valid settings");
                    let out = dir.path().join(format!("c{i}-{reader}-{style:?}"));
                    p.process_path(&input, &out, Overwrite::Refuse)
                        .expect("process");
                    let container = std::fs::read(&out).expect("read container");
                    // Into a writer (stdout) the same bytes: length, mode
                    // and the small-file path as for a file.
                    let mut written = Vec::new();
                    p.process_from_path(&input, &mut written)
                        .expect("process into a writer");
                    assert!(
                        written == container,
                        "size {size}: process_from_path wrote other bytes"
                    );
                    match &reference {
                        None => reference = Some(container),
                        Some(r) => assert!(
                            *r == container,
                            "size {size}: {reader}/{style:?} wrote other bytes"
                        ),
                    }
                    let back = dir.path().join(format!("b{i}-{reader}-{style:?}"));
                    p.restore_path(&out, &back, Overwrite::Refuse)
                        .expect("restore");
                    assert!(std::fs::read(&back).expect("read back") == data);
                    assert!(p.governor().all_returned(), "permits leaked");
                }
            }
        }
    });
}

/// Every chunk method restores byte-identical, through the stream and the
/// path APIs, with one and several threads; `fixed` and `filesize` give
/// the same bytes on every thread count (their sizes do not depend on
/// timing), and a `filesize` stream run agrees with a `fixed` run at the
/// size `filesize` picks for an unknown length.
#[test]
fn every_chunk_method_restores_byte_identical() {
    use syncpipe::tuner::{self, ChunkMethod};
    watchdog(240, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let lens = [
            0usize,
            1,
            tuner::MIN_CHUNK - 1,
            tuner::MIN_CHUNK,
            tuner::MIN_CHUNK + 1,
            5 * tuner::MIN_CHUNK + 77,
            (3 << 20) + 5,
        ];
        for stages in ["zstd:3,blake3", "lz4,sha256", "passthrough"] {
            for (i, &len) in lens.iter().enumerate() {
                let data = mixed_data(len, 300 + i as u64);
                let input = dir.path().join(format!("in{i}"));
                std::fs::write(&input, &data).expect("write input");
                for method in [
                    ChunkMethod::Fixed,
                    ChunkMethod::FileSize,
                    ChunkMethod::HillClimb,
                ] {
                    for threads in [1, 3] {
                        let p = Pipeline::builder()
                            .stages(parse_stages(stages).expect("valid"))
                            .chunk_method(method)
                            .threads(threads)
                            .channel_depth(2)
                            .build()
                            .expect("valid settings");
                        let what = format!("{stages} {method} len {len} threads {threads}");
                        let out = dir.path().join(format!("c{i}-{method}-{threads}"));
                        p.process_path(&input, &out, Overwrite::Replace)
                            .expect("process");
                        let container = std::fs::read(&out).expect("read container");
                        let back = dir.path().join(format!("b{i}-{method}-{threads}"));
                        p.restore_path(&out, &back, Overwrite::Replace)
                            .expect("restore");
                        assert!(std::fs::read(&back).expect("read back") == data, "{what}");
                        let mut restored = Vec::new();
                        p.restore(&container[..], &mut restored)
                            .expect("restore stream");
                        assert!(restored == data, "{what}: stream restore");
                        assert!(p.governor().all_returned(), "{what}: permits leaked");
                        // Sizes that do not depend on timing give the bytes of
                        // a one-thread fixed run at the size they chose.
                        let size = match method {
                            ChunkMethod::Fixed => syncpipe::limits::DEFAULT_CHUNK_SIZE,
                            ChunkMethod::FileSize => {
                                tuner::size_for_file(Some(len as u64), threads)
                            }
                            ChunkMethod::HillClimb => continue,
                        };
                        let fixed = Pipeline::builder()
                            .stages(parse_stages(stages).expect("valid"))
                            .chunk_size(size)
                            .threads(1)
                            .build()
                            .expect("valid settings");
                        let out1 = dir.path().join(format!("f{i}-{method}-{threads}"));
                        fixed
                            .process_path(&input, &out1, Overwrite::Replace)
                            .expect("process");
                        let reference = std::fs::read(&out1).expect("read container");
                        assert!(reference == container, "{what}: other bytes");
                    }
                }
                // From a stream the length is unknown: filesize falls back to
                // its largest pick, which fixed at that size reproduces.
                let run = |method| {
                    let p = Pipeline::builder()
                        .stages(parse_stages(stages).expect("valid"))
                        .chunk_method(method)
                        .chunk_size(tuner::FILESIZE_MAX)
                        .threads(2)
                        .build()
                        .expect("valid settings");
                    let mut out = Vec::new();
                    p.run(&data[..], &mut out).expect("process");
                    out
                };
                assert!(run(ChunkMethod::FileSize) == run(ChunkMethod::Fixed));
            }
        }
    });
}

/// The whole-file digest, however it is computed (merged from the workers'
/// BLAKE3 subtrees, or on the hasher thread), is the one-shot digest of the
/// input: chunk sizes that are whole subtrees, multiples of an odd number
/// of them, not aligned at all, and the hill climber's varying sizes.
#[test]
fn whole_file_digest_is_the_one_shot_digest() {
    use syncpipe::ChunkMethod;
    watchdog(300, || {
        let data = mixed_data(3_000_000, 99);
        for stages in ["lz4,blake3", "lz4,sha256"] {
            let kind = parse_stages(stages)
                .expect("valid")
                .checksum
                .expect("a checksum");
            for (chunk, method) in [
                (1 << 20, ChunkMethod::Fixed),
                (64 << 10, ChunkMethod::Fixed),
                (192 << 10, ChunkMethod::Fixed),
                (3 << 10, ChunkMethod::Fixed),
                (100_000, ChunkMethod::Fixed),
                (1000, ChunkMethod::Fixed),
                (128 << 10, ChunkMethod::HillClimb),
            ] {
                for len in [0, 1, chunk, 2 * chunk + 1, data.len()] {
                    let input = &data[..len.min(data.len())];
                    let p = Pipeline::builder()
                        .stages(parse_stages(stages).expect("valid"))
                        .chunk_size(chunk)
                        .chunk_method(method)
                        .threads(4)
                        .build()
                        .expect("valid settings");
                    let mut out = Vec::new();
                    let report = p.run(input, &mut out).expect("process");
                    let want = Some(kind.digest(input));
                    assert_eq!(
                        report.digest, want,
                        "{stages}, chunk {chunk} {method:?}, {len}"
                    );
                    let mut restored = Vec::new();
                    p.restore(&out[..], &mut restored).expect("restore");
                    assert!(restored == input, "{stages}, chunk {chunk}, {len}");
                    assert!(p.governor().all_returned(), "permits leaked");
                }
            }
        }
    });
}
