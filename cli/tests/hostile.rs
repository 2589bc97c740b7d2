//! Hostile containers: decompression bombs for every codec, and the parser
//! bounds that make them harmless.
//!
//! Each bomb is a real one: 64 MiB of zeros compressed by the codec, put in
//! a container that declares 1 MiB chunks, with every CRC fixed so that
//! nothing but the size bound can catch it. Restoring it must fail as an
//! integrity error (exit 3) naming the limit, leave no output (not even a
//! temp file), and never hold the 64 MiB: every restore child runs with its
//! private memory capped below that (`RLIMIT_DATA`), and an honest 1 MiB
//! chunk restores fine under the same cap.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use syncpipe::format::{Header, RecordHead, Trailer, FLAG_LAST};
use syncpipe::stage::ChunkInfo;
use syncpipe::stages::{parse_stages, StageSpec};
use syncpipe::Pipeline;

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

/// The chunk size the bombs declare.
const CHUNK: usize = 1 << 20;

/// What each bomb expands to.
const BOMB: usize = 64 << 20;

/// The private writable memory a restore child may map: its chunk buffers
/// (a few MiB at 1 MiB chunks), thread stacks and allocator arenas, with
/// room to spare, but well below [`BOMB`].
const DATA_LIMIT: u64 = 48 << 20;

/// A container whose one record holds `spec`'s compression of [`BOMB`]
/// zeros while claiming a full 1 MiB chunk, and the honest container of
/// one 1 MiB chunk of zeros it was made from.
fn bomb_container(spec: &str) -> (Vec<u8>, Vec<u8>) {
    let stages = parse_stages(spec).expect("valid spec");
    // A real container of the right shape gives the header (stage ids and
    // parameters exactly as the writer records them).
    let pipeline = Pipeline::builder()
        .stages(stages.clone())
        .chunk_size(CHUNK)
        .checksum(None)
        .build()
        .expect("valid pipeline");
    let mut honest = Vec::new();
    pipeline
        .run(&vec![0u8; CHUNK][..], &mut honest)
        .expect("honest run");
    let (header, header_bytes) = Header::read_with_bytes(&mut &honest[..]).expect("own header");
    assert_eq!(header.original_len, None, "read from a stream: no length");

    let codec: &StageSpec = stages.transforms.first().expect("one stage");
    let stage = codec.build().expect("stage");
    let info = ChunkInfo {
        index: 0,
        last: true,
        limit: usize::MAX,
    };
    let mut payload = Vec::new();
    stage
        .forward(&info, &vec![0u8; BOMB], &mut payload)
        .expect("compress the bomb");
    assert!(
        payload.len() <= syncpipe::format::max_payload(CHUNK),
        "{spec}: the bomb ({} bytes) must fit the payload bound, so only the size bound catches it",
        payload.len()
    );

    let head = RecordHead {
        index: 0,
        flags: FLAG_LAST,
        skip_mask: 0,
        original_len: CHUNK as u32,
        payload_len: payload.len() as u32,
    };
    let mut record = Vec::new();
    head.encode(None, &mut record);
    record.extend_from_slice(&payload);
    let crc = crc32fast::hash(&record);
    record.extend_from_slice(&crc.to_le_bytes());
    let trailer = Trailer {
        chunk_count: 1,
        original_len: CHUNK as u64,
        digest: None,
    };
    let mut out = header_bytes;
    out.extend_from_slice(&record);
    out.extend_from_slice(&trailer.encode());
    (out, honest)
}

/// Runs the binary with its private writable memory capped at
/// [`DATA_LIMIT`] (`RLIMIT_DATA`: heap and anonymous mappings), on two
/// threads so the cap does not depend on the machine's core count. A
/// decoder that materialised the bomb would fail to allocate and abort
/// instead of exiting 3.
fn run_capped(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["-T", "2", "--cpu-tokens", "2"])
        .current_dir(dir);
    // SAFETY: the closure runs between fork and exec and calls only
    // setrlimit, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: DATA_LIMIT as libc::rlim_t,
                rlim_max: DATA_LIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run the syncpipe binary")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn check_bomb(spec: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (bomb, honest) = bomb_container(spec);
    fs::write(dir.path().join("bomb.spipe"), bomb).expect("write");
    fs::write(dir.path().join("honest.spipe"), honest).expect("write");

    // The control: a genuine 1 MiB chunk restores fine under the same cap,
    // so the cap is not what stops the bomb.
    let out = run_capped(dir.path(), &["restore", "honest.spipe", "-o", "honest.out"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{spec}: honest container under the cap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(dir.path().join("honest.out")).expect("restored"),
        vec![0u8; CHUNK]
    );

    for args in [
        &["restore", "bomb.spipe", "-o", "out.bin"][..],
        &["verify", "bomb.spipe"][..],
    ] {
        let out = run_capped(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{spec} {args:?}: {stderr}");
        assert!(
            stderr.contains("more than the limit of 1048576 bytes"),
            "{spec} {args:?}: the message must name the bound: {stderr}"
        );
        assert!(!stderr.contains("panick"), "{spec}: {stderr}");
    }
    assert_eq!(
        listing(dir.path()),
        ["bomb.spipe", "honest.out", "honest.spipe"],
        "{spec}: no output, no temp file"
    );
}

#[test]
fn zstd_bomb_is_refused_with_bounded_memory() {
    check_bomb("zstd:3");
}

#[test]
fn lz4_bomb_is_refused_with_bounded_memory() {
    check_bomb("lz4");
}

#[test]
fn gzip_bomb_is_refused_with_bounded_memory() {
    check_bomb("gzip:9");
}

#[test]
fn brotli_bomb_is_refused_with_bounded_memory() {
    check_bomb("brotli:1");
}

/// The same bounds through the library, where the limit is the record's
/// own original length (a short last chunk): a frame may not decode past
/// what its record declares, even when that is below the chunk size.
#[test]
fn every_codec_refuses_to_decode_past_the_record_length() {
    for spec in ["zstd:3", "lz4", "gzip:6", "brotli:5"] {
        let stages = parse_stages(spec).expect("valid spec");
        let stage = stages.transforms[0].build().expect("stage");
        let info = ChunkInfo {
            index: 0,
            last: true,
            limit: usize::MAX,
        };
        let mut packed = Vec::new();
        stage
            .forward(&info, &[0u8; 100_000], &mut packed)
            .expect("compress");
        let mut out = Vec::new();
        let e = stage
            .inverse(
                &ChunkInfo {
                    limit: 99_999,
                    ..info
                },
                &packed,
                &mut out,
            )
            .expect_err("one byte over the limit");
        assert_eq!(e.kind(), syncpipe::ErrorKind::Integrity, "{spec}");
        assert!(
            e.to_string().contains("more than the limit of 99999 bytes"),
            "{spec}: {e}"
        );
        assert!(out.len() <= 99_999, "{spec}: {} bytes kept", out.len());
    }
}

/// A record that claims a payload longer than the format allows for its
/// chunk size is refused before its payload is read or allocated.
#[test]
fn oversized_record_length_is_refused_before_allocation() {
    let pipeline = Pipeline::builder()
        .chunk_size(4096)
        .checksum(None)
        .build()
        .expect("valid pipeline");
    let mut c = Vec::new();
    pipeline.run(&b"hello"[..], &mut c).expect("run");
    let (_, header_bytes) = Header::read_with_bytes(&mut &c[..]).expect("header");
    let head = RecordHead {
        index: 0,
        flags: FLAG_LAST,
        skip_mask: 0,
        original_len: 5,
        payload_len: u32::MAX,
    };
    let mut record = Vec::new();
    head.encode(None, &mut record);
    // No payload follows: a reader that trusted the length would try to
    // allocate 4 GiB before noticing the truncation.
    let mut bytes = header_bytes;
    bytes.extend_from_slice(&record);
    let e = pipeline
        .restore(&bytes[..], std::io::sink())
        .expect_err("hostile length");
    assert_eq!(e.kind(), syncpipe::ErrorKind::Integrity);
    assert!(e.to_string().contains("exceeds the bound"), "{e}");
}
