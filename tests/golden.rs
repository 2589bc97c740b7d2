//! Golden files: container format v1 frozen on disk.
//!
//! `tests/data/*.spipe` are containers written by syncpipe when format v1
//! was specified (`docs/format.md`). These tests check that:
//!
//! 1. every golden container still restores to exactly its original;
//! 2. where the codec's output is fixed by the pinned dependencies
//!    (`passthrough` and `lz4`), processing the original today gives the
//!    golden bytes exactly, so the writer has not drifted either;
//! 3. `syncpipe::inspect` reports the expected header, chunk count, original
//!    length and raw-stored chunks;
//! 4. an independent reader written from `docs/format.md` alone (below, using
//!    no syncpipe parsing code) accepts every golden file, so the document
//!    and the code describe the same bytes.
//!
//! The originals are not stored: they come from [`original`], a frozen
//! deterministic generator whose output is pinned by a SHA-256 in
//! [`generator_is_frozen`].
//!
//! # Regenerating
//!
//! Never needed for a change that keeps format v1. A change to the format
//! needs a new version number (see `docs/format.md`), new golden files
//! beside these, and these kept as long as v1 is read. Should the files have
//! to be rewritten anyway (a golden case added, say), run
//!
//! ```text
//! SYNCPIPE_REGEN_GOLDEN=1 cargo test -p syncpipe --test integration -- --ignored golden::regenerate
//! ```
//!
//! and review the diff of `tests/data/`. Without the variable the ignored
//! test writes nothing, so `cargo test -- --ignored` is harmless.

use std::error::Error as StdError;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use syncpipe::stages::{parse_stages, ChecksumKind};
use syncpipe::Overwrite;
use syncpipe::Pipeline;

type TestResult = Result<(), Box<dyn StdError>>;

/// Chunk size of every golden case but `hello` (which uses the default).
const CHUNK: usize = 64 << 10;

/// Length of the mixed input: three full 64 KiB chunks and a short last one.
const MIXED_LEN: usize = 200_000;

/// SHA-256 of `original(Input::Mixed)`: pins the generator.
const MIXED_SHA256: &str = "7130a39fc2ae2f259014acfa4e68abf78e43b479e28a934046756501c47349e3";

/// The original bytes of a golden case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// No bytes.
    Empty,
    /// `hello`: the worked example of `docs/format.md`.
    Hello,
    /// [`MIXED_LEN`] bytes: text, then noise, then a text/binary mix.
    Mixed,
}

/// How the container was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `Pipeline::run` on a reader: original length unknown, mode 0.
    Run,
    /// `Pipeline::process_path` on a file with mode 0o644: original length
    /// and mode recorded in the header.
    Path,
}

/// The mode given to the input file of [`Via::Path`] cases.
const PATH_MODE: u32 = 0o644;

struct Case {
    /// File name under `tests/data/`.
    file: &'static str,
    input: Input,
    /// Stage list, as `parse_stages` reads it.
    stages: &'static str,
    chunk_size: usize,
    via: Via,
    /// Byte-for-byte reproducible by today's build (passthrough and lz4 only:
    /// zstd, deflate and brotli output may change between codec versions
    /// without the format changing).
    reproducible: bool,
    /// Expected `(stage id, param)` pairs in the header.
    stage_ids: &'static [(u8, i32)],
    checksum: Option<ChecksumKind>,
    chunks: u64,
    /// Records with a non-zero skip mask (stored raw by the compressor).
    stored_raw: u64,
}

const CASES: &[Case] = &[
    Case {
        file: "empty-passthrough-sha256.spipe",
        input: Input::Empty,
        stages: "passthrough,sha256",
        chunk_size: CHUNK,
        via: Via::Run,
        reproducible: true,
        stage_ids: &[(5, 0)],
        checksum: Some(ChecksumKind::Sha256),
        chunks: 1,
        stored_raw: 0,
    },
    Case {
        file: "hello-passthrough-sha256.spipe",
        input: Input::Hello,
        stages: "passthrough,sha256",
        chunk_size: 1 << 20,
        via: Via::Run,
        reproducible: true,
        stage_ids: &[(5, 0)],
        checksum: Some(ChecksumKind::Sha256),
        chunks: 1,
        stored_raw: 0,
    },
    Case {
        file: "hello-path-passthrough-sha256.spipe",
        input: Input::Hello,
        stages: "passthrough,sha256",
        chunk_size: 1 << 20,
        via: Via::Path,
        reproducible: true,
        stage_ids: &[(5, 0)],
        checksum: Some(ChecksumKind::Sha256),
        chunks: 1,
        stored_raw: 0,
    },
    Case {
        file: "mixed-passthrough-sha256.spipe",
        input: Input::Mixed,
        stages: "passthrough,sha256",
        chunk_size: CHUNK,
        via: Via::Run,
        reproducible: true,
        stage_ids: &[(5, 0)],
        checksum: Some(ChecksumKind::Sha256),
        chunks: 4,
        stored_raw: 0,
    },
    Case {
        file: "mixed-lz4-blake3.spipe",
        input: Input::Mixed,
        stages: "lz4,blake3",
        chunk_size: CHUNK,
        via: Via::Run,
        reproducible: true,
        stage_ids: &[(2, 0)],
        checksum: Some(ChecksumKind::Blake3),
        chunks: 4,
        stored_raw: 1,
    },
    Case {
        file: "mixed-zstd3-blake3.spipe",
        input: Input::Mixed,
        stages: "zstd:3,blake3",
        chunk_size: CHUNK,
        via: Via::Run,
        reproducible: false,
        stage_ids: &[(1, 3)],
        checksum: Some(ChecksumKind::Blake3),
        chunks: 4,
        stored_raw: 1,
    },
    Case {
        file: "mixed-gzip6.spipe",
        input: Input::Mixed,
        stages: "gzip:6",
        chunk_size: CHUNK,
        via: Via::Run,
        reproducible: false,
        stage_ids: &[(3, 6)],
        checksum: None,
        chunks: 4,
        stored_raw: 1,
    },
    Case {
        file: "mixed-brotli5-sha256.spipe",
        input: Input::Mixed,
        stages: "brotli:5,sha256",
        chunk_size: CHUNK,
        via: Via::Run,
        reproducible: false,
        stage_ids: &[(4, 5)],
        checksum: Some(ChecksumKind::Sha256),
        chunks: 4,
        stored_raw: 1,
    },
];

/// `tests/data/`.
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The golden container of `case`, or a failure that says how to make it.
fn golden(case: &Case) -> Vec<u8> {
    let path = golden_dir().join(case.file);
    fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e} (see the top of tests/golden.rs)",
            path.display()
        )
    })
}

/// The original bytes. FROZEN: the golden files were made from exactly
/// these bytes; any change here breaks them (and `generator_is_frozen`).
fn original(input: Input) -> Vec<u8> {
    match input {
        Input::Empty => Vec::new(),
        Input::Hello => b"hello".to_vec(),
        Input::Mixed => mixed(),
    }
}

/// A xorshift64 step.
fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Chunk 0 (with 64 KiB chunks) is numbered text lines, chunk 1 is
/// xorshift noise (incompressible: every compressor stores it raw, so the
/// skip mask is exercised), and the rest mixes words with short runs of
/// noise, ending in a short last chunk.
fn mixed() -> Vec<u8> {
    let mut out = Vec::with_capacity(MIXED_LEN + 4096);
    let mut line = 0u32;
    while out.len() < CHUNK {
        out.extend_from_slice(
            format!("{line:05} the container is a header, records and a trailer\n").as_bytes(),
        );
        line += 1;
    }
    out.truncate(CHUNK);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    while out.len() < 2 * CHUNK {
        out.extend_from_slice(&xorshift(&mut s).to_le_bytes());
    }
    out.truncate(2 * CHUNK);
    let words: [&[u8]; 8] = [
        b"magic ",
        b"chunk ",
        b"trailer ",
        b"digest ",
        b"\x00\x01\x02 ",
        b"crc ",
        b"\n",
        b"\xff ",
    ];
    while out.len() < MIXED_LEN {
        let r = xorshift(&mut s);
        if r.is_multiple_of(4) {
            for _ in 0..(r >> 8) % 64 {
                out.extend_from_slice(&xorshift(&mut s).to_le_bytes());
            }
        } else {
            for _ in 0..(r >> 8) % 128 {
                out.extend_from_slice(words[(xorshift(&mut s) % 8) as usize]);
            }
        }
    }
    out.truncate(MIXED_LEN);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Processes `case`'s original as the golden file was made.
fn produce(case: &Case) -> Result<Vec<u8>, Box<dyn StdError>> {
    let pipeline = Pipeline::builder()
        .stages(parse_stages(case.stages)?)
        .chunk_size(case.chunk_size)
        .threads(1)
        .build()?;
    let data = original(case.input);
    match case.via {
        Via::Run => {
            let mut out = Vec::new();
            pipeline.run(&data[..], &mut out)?;
            Ok(out)
        }
        Via::Path => {
            let dir = tempfile::tempdir()?;
            let input = dir.path().join("original");
            let output = dir.path().join("container");
            fs::write(&input, &data)?;
            fs::set_permissions(&input, fs::Permissions::from_mode(PATH_MODE))?;
            pipeline.process_path(&input, &output, Overwrite::Refuse)?;
            Ok(fs::read(&output)?)
        }
    }
}

#[test]
fn generator_is_frozen() {
    assert_eq!(original(Input::Mixed).len(), MIXED_LEN);
    assert_eq!(
        hex(&ChecksumKind::Sha256.digest(&original(Input::Mixed))),
        MIXED_SHA256,
        "the generator of the golden originals changed: put it back"
    );
}

#[test]
fn golden_files_restore_to_their_originals() -> TestResult {
    // Whatever stages the pipeline is built with: restore follows the header.
    let pipeline = Pipeline::builder().build()?;
    for case in CASES {
        let bytes = golden(case);
        let mut out = Vec::new();
        let report = pipeline
            .restore(&bytes[..], &mut out)
            .map_err(|e| format!("{}: {e}", case.file))?;
        assert!(
            out == original(case.input),
            "{}: restored bytes differ from the original",
            case.file
        );
        assert_eq!(report.chunks, case.chunks, "{}", case.file);
        let mode = if case.via == Via::Path { PATH_MODE } else { 0 };
        assert_eq!(report.mode, Some(mode), "{}", case.file);
        pipeline
            .verify(&bytes[..])
            .map_err(|e| format!("verify {}: {e}", case.file))?;
    }
    Ok(())
}

#[test]
fn reproducible_codecs_write_the_golden_bytes() -> TestResult {
    let mut checked = 0;
    for case in CASES.iter().filter(|c| c.reproducible) {
        let now = produce(case)?;
        let then = golden(case);
        if now != then {
            let at = now.iter().zip(&then).position(|(a, b)| a != b);
            panic!(
                "{}: today's container differs from the golden file \
                 (lengths {} and {}, first difference at byte {at:?}); \
                 format v1 must not change (see docs/format.md)",
                case.file,
                now.len(),
                then.len()
            );
        }
        checked += 1;
    }
    assert!(checked >= 4);
    Ok(())
}

#[test]
fn inspect_reports_the_expected_framing() -> TestResult {
    for case in CASES {
        let bytes = golden(case);
        let data = original(case.input);
        let info = syncpipe::inspect(&bytes[..]).map_err(|e| format!("{}: {e}", case.file))?;
        let f = case.file;
        assert_eq!(info.chunks, case.chunks, "{f}");
        assert_eq!(info.original_len, data.len() as u64, "{f}");
        assert_eq!(info.stored_raw, case.stored_raw, "{f}");
        let h = &info.header;
        assert_eq!(h.chunk_size, case.chunk_size, "{f}");
        assert_eq!(h.checksum, case.checksum, "{f}");
        // The stage ids as written on the wire (the public view names them).
        let wire = syncpipe::format::Header::read_from(&mut &bytes[..])
            .map_err(|e| format!("{f}: {e}"))?;
        let ids: Vec<(u8, i32)> = wire.stages.iter().map(|s| (s.id, s.param)).collect();
        assert_eq!(ids, case.stage_ids, "{f}");
        match case.via {
            Via::Run => {
                assert_eq!(h.original_len, None, "{f}");
                assert_eq!(h.mode, 0, "{f}");
            }
            Via::Path => {
                assert_eq!(h.original_len, Some(data.len() as u64), "{f}");
                assert_eq!(h.mode, PATH_MODE, "{f}");
            }
        }
        let digest = case.checksum.map(|c| c.digest(&data));
        assert_eq!(info.digest, digest, "{f}");
    }
    Ok(())
}

/// A reader written from `docs/format.md` alone: little-endian fields,
/// CRC-32 (IEEE) per part, and every rule of the "Reading" section that
/// needs no codec. Passthrough payloads are compared with the original.
#[test]
fn golden_files_match_the_written_specification() -> TestResult {
    for case in CASES {
        let bytes = golden(case);
        let data = original(case.input);
        spec_read(&bytes, &data).map_err(|e| format!("{}: {e}", case.file))?;
    }
    Ok(())
}

struct Bytes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// Checks the CRC-32 that follows, over the bytes from `start` to here.
    fn crc(&mut self, start: usize) -> Result<(), String> {
        let want = crc32fast::hash(&self.buf[start..self.pos]);
        if self.u32()? != want {
            return Err(format!("CRC mismatch for bytes {start}..{}", self.pos - 4));
        }
        Ok(())
    }
}

fn spec_read(buf: &[u8], original: &[u8]) -> Result<(), String> {
    let mut b = Bytes { buf, pos: 0 };
    // Header.
    if b.take(8)? != b"\x89SPIPE\r\n" {
        return Err("bad magic".into());
    }
    if b.u16()? != 1 {
        return Err("not version 1".into());
    }
    let body_len = b.u32()? as usize;
    if body_len > 4096 {
        return Err("header too long".into());
    }
    let body_end = b.pos + body_len;
    if b.u16()? != 0 {
        return Err("header flags".into());
    }
    let chunk_size = b.u32()? as usize;
    if !(1..=64 << 20).contains(&chunk_size) {
        return Err("chunk size".into());
    }
    let original_len = match b.u64()? {
        u64::MAX => None,
        n => Some(n),
    };
    let _mode = b.u32()?;
    let checksum = match b.u8()? {
        0 => None,
        1 => Some(ChecksumKind::Sha256),
        2 => Some(ChecksumKind::Blake3),
        id => return Err(format!("checksum id {id}")),
    };
    let stage_count = b.u8()? as usize;
    if stage_count > 8 {
        return Err("too many stages".into());
    }
    let mut passthrough_only = true;
    for _ in 0..stage_count {
        let id = b.u8()?;
        let _param = b.u32()? as i32;
        let name_len = b.u8()? as usize;
        std::str::from_utf8(b.take(name_len)?).map_err(|e| e.to_string())?;
        passthrough_only &= id == 5;
    }
    if b.pos != body_end {
        return Err("header body length does not match its fields".into());
    }
    b.crc(0)?;
    let dlen = if checksum.is_some() { 32 } else { 0 };

    // Records.
    let (mut index, mut total, mut restored) = (0u64, 0u64, Vec::new());
    loop {
        let start = b.pos;
        match b.u8()? {
            b'C' => {
                if b.u64()? != index {
                    return Err(format!("record {index}: wrong index"));
                }
                let flags = b.u8()?;
                if flags & !1 != 0 {
                    return Err("record flags".into());
                }
                let last = flags & 1 != 0;
                let skip = b.u8()?;
                if stage_count < 8 && skip >> stage_count != 0 {
                    return Err("skip mask".into());
                }
                let olen = b.u32()? as usize;
                if olen > chunk_size || (!last && olen != chunk_size) {
                    return Err(format!("record {index}: original length {olen}"));
                }
                let plen = b.u32()? as usize;
                if plen > chunk_size + chunk_size / 8 + 4096 {
                    return Err("payload length".into());
                }
                let digest = b.take(dlen)?;
                let payload = b.take(plen)?;
                b.crc(start)?;
                let begin = total as usize;
                if let Some(c) = checksum {
                    let chunk = original
                        .get(begin..begin + olen)
                        .ok_or("more data than the original")?;
                    if c.digest(chunk)[..] != *digest {
                        return Err(format!("record {index}: digest"));
                    }
                }
                if passthrough_only {
                    if plen != olen {
                        return Err("passthrough payload length".into());
                    }
                    restored.extend_from_slice(payload);
                }
                index += 1;
                total += olen as u64;
                if last {
                    break;
                }
            }
            b'T' => return Err("trailer before the last chunk".into()),
            tag => return Err(format!("bad tag {tag:#x}")),
        }
    }

    // Trailer.
    let start = b.pos;
    if b.u8()? != b'T' {
        return Err("no trailer after the last chunk".into());
    }
    if b.u64()? != index || b.u64()? != total {
        return Err("trailer counts".into());
    }
    if original_len.is_some_and(|n| n != total) {
        return Err("header original length".into());
    }
    let digest = b.take(dlen)?;
    if let Some(c) = checksum {
        if c.digest(original)[..] != *digest {
            return Err("whole-file digest".into());
        }
    }
    b.crc(start)?;
    if b.pos != buf.len() {
        return Err("data after the trailer".into());
    }
    if total != original.len() as u64 {
        return Err("original length".into());
    }
    if passthrough_only && restored != original {
        return Err("passthrough payloads differ from the original".into());
    }
    Ok(())
}

/// Rewrites every golden file from today's build. Ignored, and a no-op
/// unless `SYNCPIPE_REGEN_GOLDEN=1`: see the top of this file.
#[test]
#[ignore = "rewrites tests/data/; needs SYNCPIPE_REGEN_GOLDEN=1"]
fn regenerate_golden_files() -> TestResult {
    if std::env::var("SYNCPIPE_REGEN_GOLDEN").as_deref() != Ok("1") {
        eprintln!("SYNCPIPE_REGEN_GOLDEN is not 1: golden files left as they are");
        return Ok(());
    }
    let dir = golden_dir();
    fs::create_dir_all(&dir)?;
    for case in CASES {
        let bytes = produce(case)?;
        fs::write(dir.join(case.file), &bytes)?;
        eprintln!("wrote {} ({} bytes)", case.file, bytes.len());
    }
    eprintln!(
        "original(Mixed) sha256 {}",
        hex(&ChecksumKind::Sha256.digest(&original(Input::Mixed)))
    );
    Ok(())
}
