//! Integration tests of the `syncpipe` binary: each test runs the real
//! executable on its own temp directory (fd's `TestEnv` style) and checks
//! exit codes, exact bytes, messages and which files exist afterwards.
//!
//! They cover the command-line tool itself: process, restore, verify,
//! info; exit codes; safe outputs.
//!
//! Inputs are small (a few chunks of 16 KiB) so the whole file runs in a
//! few seconds on two cores, even against a debug build.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

/// Chunk size used by most tests, and the flag that selects it.
const CHUNK: usize = 16 << 10;
const CHUNK_ARG: &str = "16KiB";

/// Sizes around the chunk boundaries: 0, 1, chunk − 1, chunk, chunk + 1,
/// several chunks with a short tail.
const SIZES: [usize; 6] = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 123];

// ---------------------------------------------------------------------------
// Test environment
// ---------------------------------------------------------------------------

/// A temp directory that the binary runs in.
struct TestEnv {
    dir: tempfile::TempDir,
}

/// What one run of the binary gave back.
struct Run {
    cmdline: String,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    /// Asserts the exit code (printing the command and stderr on failure).
    #[track_caller]
    fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "`{}` exited with {:?}, expected {expected}; stderr:\n{}",
            self.cmdline,
            self.code,
            self.stderr
        );
        self
    }

    /// Asserts success and returns the run.
    #[track_caller]
    fn ok(self) -> Self {
        self.code(0);
        self
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "`{}`: stderr does not contain {needle:?}:\n{}",
            self.cmdline,
            self.stderr
        );
        self
    }

    fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }
}

impl TestEnv {
    fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        fs::write(self.path(name), bytes).expect("write test file");
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).symlink_metadata().is_ok()
    }

    fn mode(&self, name: &str) -> u32 {
        fs::metadata(self.path(name)).expect("metadata").mode() & 0o7777
    }

    fn set_mode(&self, name: &str, mode: u32) {
        fs::set_permissions(self.path(name), fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Every name in the directory (hidden ones too), sorted.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .expect("read_dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the binary with stdin closed (reads see end of input).
    fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        finish(args, cmd.output().expect("run syncpipe"))
    }

    /// Runs the binary with `input` piped on stdin.
    fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn syncpipe");
        let mut stdin = child.stdin.take().expect("stdin pipe");
        let input = input.to_vec();
        // Fed from a thread: the child may fill its stdout pipe before it
        // has read all of stdin.
        let feeder = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait for syncpipe");
        feeder.join().expect("stdin feeder");
        finish(args, out)
    }
}

fn finish(args: &[&str], out: std::process::Output) -> Run {
    Run {
        cmdline: format!("syncpipe {}", args.join(" ")),
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------

/// xorshift64: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `len` bytes mixing text-like runs (compressible) with random stretches
/// (incompressible), the same for the same seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 10] = [
        b"the ",
        b"chunk ",
        b"stream ",
        b"governor ",
        b"permit ",
        b"record ",
        b"trailer ",
        b"\n",
        b"2024 ",
        b"syncpipe ",
    ];
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(len + 4096);
    while out.len() < len {
        let r = rng.next();
        if r.is_multiple_of(4) {
            for _ in 0..(r >> 8) % 128 {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            for _ in 0..(r >> 8) % 256 {
                out.extend_from_slice(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
            }
        }
    }
    out.truncate(len);
    out
}

/// `len` random bytes (incompressible).
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Container layout (docs/format.md, src/format/), parsed independently
// ---------------------------------------------------------------------------

const MAGIC: &[u8; 8] = b"\x89SPIPE\r\n";
/// Magic, version, header body length.
const FIXED_HEADER: usize = 8 + 2 + 4;
/// Tag, index, flags, skip mask, original length, payload length.
const RECORD_HEAD: usize = 1 + 8 + 1 + 1 + 4 + 4;
const DIGEST: usize = 32;

/// Byte offsets of one chunk record.
#[derive(Debug, Clone, Copy)]
struct Rec {
    start: usize,
    payload: usize,
    payload_len: usize,
    /// One past the record's CRC.
    end: usize,
}

/// Byte offsets of a whole container.
#[derive(Debug)]
struct Layout {
    header_len: usize,
    digest_len: usize,
    records: Vec<Rec>,
    trailer: usize,
}

fn u32_at(c: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(c[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(c: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(c[at..at + 8].try_into().expect("8 bytes"))
}

/// Walks a valid container by its length fields.
fn layout(c: &[u8]) -> Layout {
    assert_eq!(&c[..8], MAGIC, "magic");
    let body_len = u32_at(c, 10) as usize;
    let header_len = FIXED_HEADER + body_len + 4;
    // Body: flags u16, chunk size u32, original length u64, mode u32, then
    // the checksum id.
    let digest_len = if c[FIXED_HEADER + 18] == 0 { 0 } else { DIGEST };
    let mut records = Vec::new();
    let mut pos = header_len;
    while c[pos] == b'C' {
        let payload_len = u32_at(c, pos + 15) as usize;
        let payload = pos + RECORD_HEAD + digest_len;
        let end = payload + payload_len + 4;
        records.push(Rec {
            start: pos,
            payload,
            payload_len,
            end,
        });
        pos = end;
    }
    assert_eq!(c[pos], b'T', "trailer tag at {pos}");
    assert_eq!(c.len() - pos, 1 + 16 + digest_len + 4, "trailer length");
    Layout {
        header_len,
        digest_len,
        records,
        trailer: pos,
    }
}

/// Recomputes the CRC of record `r` after its bytes were changed.
fn reseal(c: &mut [u8], r: Rec) {
    let crc = crc32fast::hash(&c[r.start..r.end - 4]);
    c[r.end - 4..r.end].copy_from_slice(&crc.to_le_bytes());
}

/// Number of records a container of `len` bytes has (an empty input has
/// one empty, final chunk).
fn expected_chunks(len: usize, chunk: usize) -> usize {
    len.div_ceil(chunk).max(1)
}

// ---------------------------------------------------------------------------
// Shared scenarios
// ---------------------------------------------------------------------------

/// Processes and restores every size of [`SIZES`] with `spec`, using the
/// default names, and checks the bytes, the record count and `verify`.
fn round_trip_all_sizes(spec: &str) {
    let env = TestEnv::new();
    for (i, &size) in SIZES.iter().enumerate() {
        let original = data(size, 100 + i as u64);
        let name = format!("x{size}.bin");
        let container = format!("{name}.spipe");
        env.write(&name, &original);
        env.run(&["process", &name, "-s", spec, "--chunk-size", CHUNK_ARG])
            .ok();
        assert!(env.exists(&container), "{spec}/{size}: {container} missing");
        let c = env.read(&container);
        assert_eq!(
            layout(&c).records.len(),
            expected_chunks(size, CHUNK),
            "{spec}/{size}: records"
        );
        env.run(&["verify", &container]).ok();
        // Restore by the default name: `x.bin.spipe` gives back `x.bin`.
        fs::remove_file(env.path(&name)).expect("remove original");
        env.run(&["restore", &container]).ok();
        assert!(
            env.read(&name) == original,
            "{spec}/{size}: restored bytes differ"
        );
    }
    // Nothing but the inputs and containers: no temp files left behind.
    let mut expected: Vec<String> = SIZES
        .iter()
        .flat_map(|s| [format!("x{s}.bin"), format!("x{s}.bin.spipe")])
        .collect();
    expected.sort();
    assert_eq!(env.listing(), expected, "{spec}");
}

/// Builds a container `name` of `chunks` full chunks plus a short tail and
/// returns its bytes.
fn make_container(env: &TestEnv, name: &str, spec: &str, chunks: usize, seed: u64) -> Vec<u8> {
    let original = data(chunks * CHUNK + 777, seed);
    let input = format!("{name}.in");
    env.write(&input, &original);
    env.run(&[
        "process",
        &input,
        "-o",
        name,
        "-s",
        spec,
        "--chunk-size",
        CHUNK_ARG,
        "--force",
    ])
    .ok();
    fs::remove_file(env.path(&input)).expect("remove input");
    env.read(name)
}

/// Runs `restore` (to a file), `verify` and `info` on a damaged container
/// `name`; all must exit 3 with `needle` in stderr and leave the directory as
/// it was. `info` only checks framing, so it is run only when `framing` is
/// true.
#[track_caller]
fn assert_rejected(env: &TestEnv, name: &str, needle: &str, framing: bool) {
    let before = env.listing();
    env.run(&["restore", name, "-o", "restored.out"])
        .code(3)
        .stderr_has(needle)
        .stderr_has(name);
    env.run(&["verify", name]).code(3).stderr_has(needle);
    if framing {
        env.run(&["info", name]).code(3).stderr_has(needle);
    }
    assert_eq!(env.listing(), before, "a failed run left files behind");
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

#[test]
fn round_trip_zstd3_blake3_default() {
    round_trip_all_sizes("zstd:3,blake3");
}

#[test]
fn round_trip_zstd19() {
    round_trip_all_sizes("zstd:19");
}

#[test]
fn round_trip_lz4_sha256() {
    round_trip_all_sizes("lz4,sha256");
}

#[test]
fn round_trip_gzip6() {
    round_trip_all_sizes("gzip:6");
}

#[test]
fn round_trip_deflate1() {
    round_trip_all_sizes("deflate:1");
}

#[test]
fn round_trip_brotli5() {
    round_trip_all_sizes("brotli:5");
}

#[test]
fn round_trip_passthrough() {
    round_trip_all_sizes("passthrough");
}

#[test]
fn round_trip_checksum_only_sha256() {
    round_trip_all_sizes("sha256");
}

#[test]
fn default_stages_are_zstd3_blake3() {
    let env = TestEnv::new();
    let original = data(3 * CHUNK, 7);
    env.write("x.bin", &original);
    env.run(&["process", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    env.run(&[
        "process",
        "x.bin",
        "-o",
        "explicit.spipe",
        "-s",
        "zstd:3,blake3",
        "--chunk-size",
        CHUNK_ARG,
    ])
    .ok();
    assert!(env.read("x.bin.spipe") == env.read("explicit.spipe"));
    let info = env.run(&["info", "x.bin.spipe"]).ok().stdout_text();
    assert!(info.contains("stages:         zstd:3\n"), "{info}");
    assert!(info.contains("checksum:       blake3\n"), "{info}");
}

#[test]
fn default_names_keep_inner_dots() {
    let env = TestEnv::new();
    let original = data(20_000, 8);
    env.write("archive.tar.gz", &original);
    env.run(&["process", "archive.tar.gz"]).ok();
    assert!(env.exists("archive.tar.gz.spipe"));
    fs::remove_file(env.path("archive.tar.gz")).expect("remove");
    env.run(&["restore", "archive.tar.gz.spipe"]).ok();
    assert!(env.read("archive.tar.gz") == original);
    assert_eq!(env.listing(), ["archive.tar.gz", "archive.tar.gz.spipe"]);
}

#[test]
fn paths_in_subdirectories_get_default_names_beside_them() {
    let env = TestEnv::new();
    fs::create_dir(env.path("sub")).expect("mkdir");
    let original = data(40_000, 9);
    env.write("sub/x.bin", &original);
    env.run(&["process", "sub/x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    assert!(env.exists("sub/x.bin.spipe"));
    fs::remove_file(env.path("sub/x.bin")).expect("remove");
    env.run(&["restore", "sub/x.bin.spipe"]).ok();
    assert!(env.read("sub/x.bin") == original);
    assert_eq!(env.listing(), ["sub"]);
}

#[test]
fn compressors_shrink_text_and_store_random_chunks_raw() {
    let env = TestEnv::new();
    let text = data(6 * CHUNK, 10);
    env.write("text.bin", &text);
    env.run(&["process", "text.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    assert!(
        env.read("text.bin.spipe").len() < text.len() / 2,
        "text-like data should compress well"
    );

    // Random data does not shrink: every chunk is stored raw, and the
    // container costs only its framing.
    let noise = random(4 * CHUNK, 11);
    env.write("noise.bin", &noise);
    env.run(&["process", "noise.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    let c = env.read("noise.bin.spipe");
    let l = layout(&c);
    assert_eq!(l.records.len(), 4);
    for (i, r) in l.records.iter().enumerate() {
        assert_eq!(r.payload_len, CHUNK, "raw payload");
        assert_eq!(c[r.start + 10], 1, "skip mask: zstd skipped");
        assert!(
            c[r.payload..r.payload + CHUNK] == noise[i * CHUNK..(i + 1) * CHUNK],
            "record {i} holds the chunk as read"
        );
    }
    let info = env.run(&["info", "noise.bin.spipe"]).ok().stdout_text();
    assert!(
        info.contains("chunks:         4 (4 stored raw)\n"),
        "{info}"
    );
    env.run(&["restore", "noise.bin.spipe", "-o", "noise.out"])
        .ok();
    assert!(env.read("noise.out") == noise);
}

/// 4 KiB is the smallest chunk the flag takes (one byte made a 16 MiB file
/// a 924 MiB container): it works at the edge, and 1 is refused.
#[test]
fn the_smallest_chunk_size_works_and_a_smaller_one_is_refused() {
    let env = TestEnv::new();
    let original = data(10 * 4096 - 7, 3);
    env.write("tiny", &original);
    env.run(&["process", "tiny", "--chunk-size", "1", "-s", "lz4,sha256"])
        .code(2)
        .stderr_has("outside 4 KiB ..= 64 MiB");
    env.run(&[
        "process",
        "tiny",
        "--chunk-size",
        "4KiB",
        "-s",
        "lz4,sha256",
    ])
    .ok();
    let c = env.read("tiny.spipe");
    assert_eq!(layout(&c).records.len(), 10);
    env.run(&["restore", "tiny.spipe", "-o", "tiny.out"]).ok();
    assert_eq!(env.read("tiny.out"), original);
}

#[test]
fn container_layout_matches_the_format() {
    let env = TestEnv::new();
    let original = data(3 * CHUNK + 5, 12);
    env.write("x.bin", &original);
    env.set_mode("x.bin", 0o640);
    env.run(&[
        "process",
        "x.bin",
        "-s",
        "passthrough,sha256",
        "--chunk-size",
        CHUNK_ARG,
    ])
    .ok();
    let c = env.read("x.bin.spipe");
    let l = layout(&c);
    assert_eq!(u16::from_le_bytes([c[8], c[9]]), 1, "version");
    let h = FIXED_HEADER;
    assert_eq!(u32_at(&c, h + 2) as usize, CHUNK, "chunk size");
    assert_eq!(u64_at(&c, h + 6), original.len() as u64, "original length");
    assert_eq!(u32_at(&c, h + 14), 0o640, "mode");
    assert_eq!(c[h + 18], 1, "checksum id: sha256");
    assert_eq!(c[h + 19], 1, "one stage");
    assert_eq!(c[h + 20], 5, "stage id: passthrough");
    let header_crc = crc32fast::hash(&c[..l.header_len - 4]);
    assert_eq!(u32_at(&c, l.header_len - 4), header_crc, "header crc");

    assert_eq!(l.records.len(), 4);
    for (i, r) in l.records.iter().enumerate() {
        let last = i == 3;
        let len = if last { 5 } else { CHUNK };
        let chunk = &original[i * CHUNK..i * CHUNK + len];
        assert_eq!(u64_at(&c, r.start + 1), i as u64, "index");
        assert_eq!(c[r.start + 9], u8::from(last), "flags");
        assert_eq!(c[r.start + 10], 0, "skip mask");
        assert_eq!(u32_at(&c, r.start + 11) as usize, len, "original length");
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(chunk).into();
        assert_eq!(
            &c[r.start + RECORD_HEAD..r.payload],
            &digest,
            "chunk digest"
        );
        assert!(&c[r.payload..r.payload + r.payload_len] == chunk, "payload");
        let crc = crc32fast::hash(&c[r.start..r.end - 4]);
        assert_eq!(u32_at(&c, r.end - 4), crc, "record crc");
    }
    let t = l.trailer;
    assert_eq!(u64_at(&c, t + 1), 4, "trailer chunk count");
    assert_eq!(u64_at(&c, t + 9), original.len() as u64, "trailer length");
    let whole: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&original).into();
    assert_eq!(&c[t + 17..t + 17 + DIGEST], &whole, "whole-file digest");
    assert_eq!(l.digest_len, DIGEST);
}

// ---------------------------------------------------------------------------
// Inputs and outputs on disk
// ---------------------------------------------------------------------------

#[test]
fn original_is_untouched_by_process_and_restore() {
    let env = TestEnv::new();
    let original = data(4 * CHUNK + 1, 13);
    env.write("x.bin", &original);
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let set_old_mtime = |name: &str| {
        File::options()
            .write(true)
            .open(env.path(name))
            .and_then(|f| f.set_modified(past))
            .expect("set mtime");
    };
    let mtime = |name: &str| {
        fs::metadata(env.path(name))
            .expect("meta")
            .modified()
            .expect("mtime")
    };
    set_old_mtime("x.bin");

    env.run(&["process", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    assert!(env.read("x.bin") == original, "input changed by process");
    assert_eq!(mtime("x.bin"), past, "input mtime changed by process");

    let container = env.read("x.bin.spipe");
    set_old_mtime("x.bin.spipe");
    env.run(&["restore", "x.bin.spipe", "-o", "copy.bin"]).ok();
    env.run(&["verify", "x.bin.spipe"]).ok();
    env.run(&["info", "x.bin.spipe"]).ok();
    assert!(env.read("x.bin.spipe") == container, "container changed");
    assert_eq!(mtime("x.bin.spipe"), past, "container mtime changed");
    assert!(env.read("copy.bin") == original);
    assert!(env.read("x.bin") == original);
    assert_eq!(mtime("x.bin"), past);
}

#[test]
fn existing_output_is_refused_without_force() {
    let env = TestEnv::new();
    let original = data(3 * CHUNK, 14);
    env.write("x.bin", &original);
    env.write("x.bin.spipe", b"keep me");

    env.run(&["process", "x.bin"])
        .code(2)
        .stderr_has("x.bin.spipe")
        .stderr_has("already exists")
        .stderr_has("-f");
    assert_eq!(env.read("x.bin.spipe"), b"keep me");
    assert_eq!(env.listing(), ["x.bin", "x.bin.spipe"]);

    env.run(&["process", "x.bin", "-f"]).ok();
    assert_ne!(env.read("x.bin.spipe"), b"keep me");
    env.run(&["verify", "x.bin.spipe"]).ok();

    // The same for restore: `x.bin` exists.
    env.run(&["restore", "x.bin.spipe"])
        .code(2)
        .stderr_has("already exists")
        .stderr_has("-f");
    env.write("x.bin", b"old contents");
    env.run(&["restore", "x.bin.spipe", "--force"]).ok();
    assert!(env.read("x.bin") == original);
    assert_eq!(env.listing(), ["x.bin", "x.bin.spipe"]);
}

#[test]
fn existing_output_is_refused_for_stdin_input_too() {
    let env = TestEnv::new();
    env.write("out.spipe", b"keep me");
    env.run_stdin(&["process", "-", "-o", "out.spipe"], b"data")
        .code(2)
        .stderr_has("-f");
    assert_eq!(env.read("out.spipe"), b"keep me");
    env.run_stdin(&["process", "-", "-o", "out.spipe", "-f"], b"data")
        .ok();
    env.write("out.bin", b"keep me too");
    let c = env.read("out.spipe");
    env.run_stdin(&["restore", "-", "-o", "out.bin"], &c)
        .code(2)
        .stderr_has("-f");
    assert_eq!(env.read("out.bin"), b"keep me too");
    env.run_stdin(&["restore", "-", "-o", "out.bin", "-f"], &c)
        .ok();
    assert_eq!(env.read("out.bin"), b"data");
}

#[test]
fn input_as_output_is_refused() {
    let env = TestEnv::new();
    let original = data(2 * CHUNK, 15);
    env.write("x.bin", &original);
    for args in [
        &["process", "x.bin", "-o", "x.bin"][..],
        &["process", "x.bin", "-o", "x.bin", "-f"][..],
        &["process", "x.bin", "-o", "./x.bin", "-f"][..],
    ] {
        env.run(args)
            .code(2)
            .stderr_has("same file")
            .stderr_has("x.bin");
        assert!(env.read("x.bin") == original, "{args:?} changed the input");
    }
    env.run(&["process", "x.bin"]).ok();
    let container = env.read("x.bin.spipe");
    env.run(&["restore", "x.bin.spipe", "-o", "x.bin.spipe", "-f"])
        .code(2)
        .stderr_has("same file");
    assert!(env.read("x.bin.spipe") == container);
    assert_eq!(env.listing(), ["x.bin", "x.bin.spipe"]);
}

#[test]
fn output_symlinked_to_input_is_refused() {
    let env = TestEnv::new();
    let original = data(2 * CHUNK, 16);
    env.write("x.bin", &original);
    symlink("x.bin", env.path("link")).expect("symlink");
    env.run(&["process", "x.bin", "-o", "link", "-f"])
        .code(2)
        .stderr_has("same file");
    // Through the default name too: `x.bin.spipe` points at the input.
    symlink("x.bin", env.path("x.bin.spipe")).expect("symlink");
    env.run(&["process", "x.bin", "-f"])
        .code(2)
        .stderr_has("same file");
    // And a hard link.
    fs::hard_link(env.path("x.bin"), env.path("hard")).expect("hard link");
    env.run(&["process", "x.bin", "-o", "hard", "-f"])
        .code(2)
        .stderr_has("same file");
    assert!(env.read("x.bin") == original);
    assert!(fs::symlink_metadata(env.path("link"))
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(env.listing(), ["hard", "link", "x.bin", "x.bin.spipe"]);
}

#[test]
fn missing_input_exits_1_and_names_it() {
    let env = TestEnv::new();
    for args in [
        &["process", "missing.bin"][..],
        &["process", "missing.bin", "-c"][..],
        &["restore", "missing.bin.spipe"][..],
        &["verify", "missing.bin.spipe"][..],
        &["info", "missing.bin.spipe"][..],
    ] {
        env.run(args).code(1).stderr_has("missing.bin");
    }
    assert!(env.listing().is_empty());
}

#[test]
fn directory_input_exits_2() {
    let env = TestEnv::new();
    fs::create_dir(env.path("d")).expect("mkdir");
    fs::create_dir(env.path("d.spipe")).expect("mkdir");
    for args in [
        &["process", "d"][..],
        &["process", "d", "-c"][..],
        &["process", "d", "-o", "out.spipe"][..],
        &["restore", "d.spipe", "-o", "out.bin"][..],
        &["verify", "d.spipe"][..],
        &["info", "d.spipe"][..],
    ] {
        env.run(args).code(2).stderr_has("directory");
    }
    assert_eq!(env.listing(), ["d", "d.spipe"]);
}

#[test]
fn directory_as_output_exits_2() {
    let env = TestEnv::new();
    env.write("x.bin", b"some bytes");
    fs::create_dir(env.path("out")).expect("mkdir");
    env.run(&["process", "x.bin", "-o", "out", "-f"])
        .code(2)
        .stderr_has("directory");
    assert!(fs::read_dir(env.path("out")).expect("out").next().is_none());
    assert_eq!(env.listing(), ["out", "x.bin"]);
}

#[test]
fn output_in_a_missing_directory_exits_1() {
    let env = TestEnv::new();
    env.write("x.bin", b"some bytes");
    env.run(&["process", "x.bin", "-o", "nowhere/x.spipe"])
        .code(1)
        .stderr_has("nowhere/x.spipe");
    assert_eq!(env.listing(), ["x.bin"]);
}

#[test]
fn permission_bits_are_restored() {
    let env = TestEnv::new();
    for (i, mode) in [0o640u32, 0o600, 0o755, 0o444].into_iter().enumerate() {
        let name = format!("m{mode:o}");
        let original = data(CHUNK + i, 17 + i as u64);
        env.write(&name, &original);
        env.set_mode(&name, mode);
        env.run(&["process", &name, "--chunk-size", CHUNK_ARG]).ok();
        let container = format!("{name}.spipe");
        assert_eq!(env.mode(&container), mode, "container of {mode:o}");
        let restored = format!("{name}.out");
        env.run(&["restore", &container, "-o", &restored]).ok();
        assert_eq!(env.mode(&restored), mode, "restored {mode:o}");
        assert!(env.read(&restored) == original);
        // Restoring from stdin into a file keeps the recorded mode too.
        let from_stdin = format!("{name}.stdin");
        env.run_stdin(&["restore", "-", "-o", &from_stdin], &env.read(&container))
            .ok();
        assert_eq!(env.mode(&from_stdin), mode, "restored from stdin {mode:o}");
    }
}

/// A file made from stdin has no mode to copy: it should get the usual
/// `0666 & !umask`, like any new file (gzip, zstd and cp do), not the temp
/// file's private 0600.
#[test]

fn outputs_without_a_recorded_mode_follow_the_umask() {
    let env = TestEnv::new();
    // A file created the ordinary way shows the umask the child inherits.
    env.write("probe", b"");
    let usual = env.mode("probe");
    env.run_stdin(&["process", "-", "-o", "s.spipe"], b"from stdin")
        .ok();
    assert_eq!(
        format!("{:o}", env.mode("s.spipe")),
        format!("{usual:o}"),
        "container made from stdin"
    );
    // `-c` records no mode either.
    env.write("x.bin", b"from a file");
    let c = env.run(&["process", "x.bin", "-c"]).ok().stdout;
    env.write("c.spipe", &c);
    for (container, restored, bytes) in [
        ("s.spipe", "s.out", &b"from stdin"[..]),
        ("c.spipe", "c.out", b"from a file"),
    ] {
        env.run(&["restore", container, "-o", restored]).ok();
        assert_eq!(env.read(restored), bytes);
        assert_eq!(
            format!("{:o}", env.mode(restored)),
            format!("{usual:o}"),
            "{restored}: restored from a mode-less container"
        );
    }
}

// ---------------------------------------------------------------------------
// Damaged containers
// ---------------------------------------------------------------------------

#[test]
fn flipped_payload_byte_names_the_chunk() {
    let env = TestEnv::new();
    for (s, spec) in [
        "passthrough",
        "lz4",
        "passthrough,sha256",
        "lz4,sha256",
        "zstd:3,blake3",
    ]
    .into_iter()
    .enumerate()
    {
        let good = make_container(&env, "good.spipe", spec, 5, 20 + s as u64);
        let l = layout(&good);
        assert_eq!(l.records.len(), 6);
        for k in [0usize, 2, 5] {
            let r = l.records[k];
            let mut bad = good.clone();
            bad[r.payload + r.payload_len / 2] ^= 0x40;
            env.write("bad.spipe", &bad);
            assert_rejected(&env, "bad.spipe", &format!("chunk {k}: "), true);
            assert!(
                env.run(&["verify", "bad.spipe"]).stderr.contains("corrupt"),
                "{spec}: chunk {k}"
            );
        }
        fs::remove_file(env.path("good.spipe")).expect("rm");
        fs::remove_file(env.path("bad.spipe")).expect("rm");
    }
    assert!(env.listing().is_empty());
}

#[test]
fn flipped_payload_with_forged_crc_is_caught_by_the_chunk_digest() {
    let env = TestEnv::new();
    for (s, spec) in ["passthrough,sha256", "lz4,blake3", "sha256"]
        .into_iter()
        .enumerate()
    {
        let good = make_container(&env, "good.spipe", spec, 4, 30 + s as u64);
        let l = layout(&good);
        for k in [1usize, 4] {
            let r = l.records[k];
            let mut bad = good.clone();
            bad[r.payload + 3] ^= 0x01;
            reseal(&mut bad, r);
            env.write("bad.spipe", &bad);
            // The framing is intact: `info` accepts it; decoding does not.
            env.run(&["info", "bad.spipe"]).ok();
            assert_rejected(&env, "bad.spipe", &format!("chunk {k}: "), false);
        }
    }
}

#[test]
fn failed_restore_keeps_the_existing_output() {
    let env = TestEnv::new();
    let good = make_container(&env, "x.spipe", "zstd:3,blake3", 4, 40);
    let l = layout(&good);
    let mut bad = good.clone();
    let r = l.records[3];
    bad[r.payload] ^= 0xff;
    env.write("x.spipe", &bad);
    env.write("x", b"the previous output");
    env.run(&["restore", "x.spipe", "-f"])
        .code(3)
        .stderr_has("chunk 3: ");
    assert_eq!(env.read("x"), b"the previous output");
    assert_eq!(env.listing(), ["x", "x.spipe"]);
}

#[test]
fn truncated_containers_are_refused() {
    let env = TestEnv::new();
    for (s, spec) in ["zstd:3,blake3", "passthrough"].into_iter().enumerate() {
        let good = make_container(&env, "good.spipe", spec, 3, 50 + s as u64);
        let l = layout(&good);
        let r1 = l.records[1];
        let cuts = [
            ("inside the magic", 5),
            ("inside the fixed header", 12),
            ("inside the header body", l.header_len - 8),
            ("inside the header crc", l.header_len - 1),
            ("right after the header", l.header_len),
            ("inside a record head", r1.start + 3),
            ("inside a record payload", r1.payload + 10),
            ("inside a record crc", r1.end - 1),
            ("at a record boundary", r1.end),
            ("right before the trailer", l.trailer),
            ("inside the trailer", l.trailer + 5),
            ("the last byte dropped", good.len() - 1),
        ];
        for (what, at) in cuts {
            env.write("cut.spipe", &good[..at]);
            let before = env.listing();
            for args in [
                &["restore", "cut.spipe", "-o", "out.bin"][..],
                &["verify", "cut.spipe"][..],
                &["info", "cut.spipe"][..],
            ] {
                let run = env.run(args);
                run.code(3);
                assert!(
                    run.stderr.contains("truncated") || run.stderr.contains("too short"),
                    "{spec}, cut {what} ({at}): {:?}: {}",
                    args,
                    run.stderr
                );
            }
            assert_eq!(env.listing(), before, "{spec}, cut {what}");
        }
        fs::remove_file(env.path("good.spipe")).expect("rm");
    }
}

#[test]
fn empty_file_is_refused() {
    let env = TestEnv::new();
    env.write("empty.spipe", b"");
    assert_rejected(&env, "empty.spipe", "not a syncpipe container", true);
    env.run(&["restore", "empty.spipe"])
        .code(3)
        .stderr_has("not a syncpipe container");
    assert_eq!(env.listing(), ["empty.spipe"]);
}

#[test]
fn non_container_is_refused() {
    let env = TestEnv::new();
    env.write("notes.txt.spipe", &data(10_000, 60));
    assert_rejected(&env, "notes.txt.spipe", "not a syncpipe container", true);
    env.run(&["restore", "notes.txt.spipe"])
        .code(3)
        .stderr_has("not a syncpipe container");
    // A container that went through a newline-translating transport.
    let env2 = TestEnv::new();
    let good = make_container(&env2, "x.spipe", "zstd:3,blake3", 1, 61);
    let mangled: Vec<u8> = good
        .windows(2)
        .filter(|w| w != b"\r\n")
        .map(|w| w[0])
        .chain(good.last().copied())
        .collect();
    env2.write("mangled.spipe", &mangled);
    assert_rejected(&env2, "mangled.spipe", "not a syncpipe container", true);
    assert_eq!(env.listing(), ["notes.txt.spipe"]);
}

#[test]
fn data_after_the_trailer_is_refused() {
    let env = TestEnv::new();
    let good = make_container(&env, "good.spipe", "zstd:3,blake3", 2, 62);
    for extra in [&b"\0"[..], b"garbage", &good[..]] {
        let mut bad = good.clone();
        bad.extend_from_slice(extra);
        env.write("bad.spipe", &bad);
        assert_rejected(&env, "bad.spipe", "after the trailer", true);
    }
}

#[test]
fn reordered_records_are_refused() {
    let env = TestEnv::new();
    for (s, spec) in ["passthrough", "zstd:3,blake3"].into_iter().enumerate() {
        let good = make_container(&env, "good.spipe", spec, 4, 70 + s as u64);
        let l = layout(&good);
        let (r1, r2) = (l.records[1], l.records[2]);
        // Records 1 and 2 swapped.
        let mut swapped = good[..r1.start].to_vec();
        swapped.extend_from_slice(&good[r2.start..r2.end]);
        swapped.extend_from_slice(&good[r1.start..r1.end]);
        swapped.extend_from_slice(&good[r2.end..]);
        assert_eq!(swapped.len(), good.len());
        env.write("bad.spipe", &swapped);
        assert_rejected(&env, "bad.spipe", "out of order", true);
        env.run(&["verify", "bad.spipe"]).stderr_has("chunk 1: ");

        // Record 1 dropped.
        let mut dropped = good[..r1.start].to_vec();
        dropped.extend_from_slice(&good[r1.end..]);
        env.write("bad.spipe", &dropped);
        assert_rejected(&env, "bad.spipe", "out of order", true);

        // Record 1 repeated.
        let mut repeated = good[..r2.start].to_vec();
        repeated.extend_from_slice(&good[r1.start..]);
        env.write("bad.spipe", &repeated);
        assert_rejected(&env, "bad.spipe", "out of order", true);
    }
}

#[test]
fn spliced_containers_are_refused() {
    let env = TestEnv::new();
    for (s, spec) in ["zstd:3,blake3", "lz4,sha256", "sha256"]
        .into_iter()
        .enumerate()
    {
        // Same settings, same length, different data.
        let ca = make_container(&env, "a.spipe", spec, 4, 80 + s as u64);
        let cb = make_container(&env, "b.spipe", spec, 4, 90 + s as u64);
        let (la, lb) = (layout(&ca), layout(&cb));
        assert_eq!(ca.len() - la.trailer, cb.len() - lb.trailer);
        assert_ne!(ca[la.trailer..], cb[lb.trailer..]);
        // Head of A (header and records 0..2) + tail of B (records 2.. and
        // the trailer): every record is intact, the whole is not.
        let mut spliced = ca[..la.records[2].start].to_vec();
        spliced.extend_from_slice(&cb[lb.records[2].start..]);
        env.write("spliced.spipe", &spliced);
        assert_rejected(&env, "spliced.spipe", "mismatch", false);

        // Only B's trailer on A's records: the digest in the trailer is B's.
        let mut spliced = ca[..la.trailer].to_vec();
        spliced.extend_from_slice(&cb[lb.trailer..]);
        env.write("spliced.spipe", &spliced);
        assert_rejected(&env, "spliced.spipe", "mismatch", false);
    }
    // A longer container's head on a shorter one's tail: the counts differ.
    let long = make_container(&env, "long.spipe", "zstd:3,blake3", 5, 99);
    let short = make_container(&env, "short.spipe", "zstd:3,blake3", 2, 98);
    let (ll, ls) = (layout(&long), layout(&short));
    let mut spliced = long[..ll.records[4].start].to_vec();
    spliced.extend_from_slice(&short[ls.records[2].start..]);
    env.write("spliced.spipe", &spliced);
    assert_rejected(&env, "spliced.spipe", "chunk 4: ", true);
}

#[test]
fn forged_trailer_counts_are_refused() {
    let env = TestEnv::new();
    let good = make_container(&env, "good.spipe", "passthrough", 3, 100);
    let l = layout(&good);
    let mut bad = good.clone();
    let t = l.trailer;
    // Claim one chunk fewer, with a matching CRC.
    bad[t + 1..t + 9].copy_from_slice(&3u64.to_le_bytes());
    let crc = crc32fast::hash(&bad[t..bad.len() - 4]);
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    env.write("bad.spipe", &bad);
    let before = env.listing();
    env.run(&["restore", "bad.spipe", "-o", "out"])
        .code(3)
        .stderr_has("trailer says 3 chunks");
    env.run(&["verify", "bad.spipe"]).code(3);
    assert_eq!(env.listing(), before);
}

// ---------------------------------------------------------------------------
// stdin and stdout
// ---------------------------------------------------------------------------

#[test]
fn stdin_to_stdout_round_trip() {
    let env = TestEnv::new();
    let original = data(5 * CHUNK + 321, 110);
    let container = env
        .run_stdin(&["process", "-", "--chunk-size", CHUNK_ARG], &original)
        .ok()
        .stdout;
    assert_eq!(layout(&container).records.len(), 6);
    let restored = env.run_stdin(&["restore", "-"], &container).ok().stdout;
    assert!(restored == original, "stdin → stdout round trip differs");
    let verified = env.run_stdin(&["verify", "-"], &container).ok();
    assert!(
        verified.stdout_text().starts_with("-: ok ("),
        "{}",
        verified.stdout_text()
    );
    let info = env.run_stdin(&["info", "-"], &container).ok().stdout_text();
    assert!(
        info.contains(&format!("original size:  {} bytes\n", original.len())),
        "{info}"
    );
    // Nothing was written to the directory.
    assert!(env.listing().is_empty());

    // The records and trailer are the same as for the file: only the header
    // (original length, mode) can differ.
    env.write("x.bin", &original);
    env.run(&["process", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    let from_file = env.read("x.bin.spipe");
    let (lf, ls) = (layout(&from_file), layout(&container));
    assert!(from_file[lf.header_len..] == container[ls.header_len..]);
}

#[test]
fn stdout_flags_write_no_file() {
    let env = TestEnv::new();
    let original = data(3 * CHUNK + 1, 120);
    env.write("x.bin", &original);
    let c1 = env
        .run(&["process", "x.bin", "-c", "--chunk-size", CHUNK_ARG])
        .ok()
        .stdout;
    let c2 = env
        .run(&["process", "x.bin", "-o", "-", "--chunk-size", CHUNK_ARG])
        .ok()
        .stdout;
    assert!(c1 == c2);
    assert_eq!(env.listing(), ["x.bin"], "-c must not create x.bin.spipe");
    assert_eq!(layout(&c1).records.len(), 4);
    // A file to stdout is the file's container, header included (length
    // and mode), large or small (the small-file path).
    env.write("s.bin", &original[..4096]);
    for name in ["x.bin", "s.bin"] {
        let piped = env
            .run(&["process", name, "-c", "--chunk-size", CHUNK_ARG])
            .ok()
            .stdout;
        env.run(&["process", name, "-o", "f.spipe", "--chunk-size", CHUNK_ARG])
            .ok();
        assert!(piped == env.read("f.spipe"), "{name}: -c and -o differ");
        let info = env.run(&["info", "f.spipe"]).ok().stdout_text();
        assert!(info.contains("mode:"), "{name}: {info}");
        std::fs::remove_file(env.path("f.spipe")).expect("rm");
    }
    std::fs::remove_file(env.path("s.bin")).expect("rm");

    env.write("y.spipe", &c1);
    let r1 = env.run(&["restore", "y.spipe", "-o", "-"]).ok().stdout;
    let r2 = env.run(&["restore", "y.spipe", "-c"]).ok().stdout;
    assert!(r1 == original && r2 == original);
    assert_eq!(
        env.listing(),
        ["x.bin", "y.spipe"],
        "-o - must not create y"
    );
}

#[test]
fn stdin_to_a_named_output() {
    let env = TestEnv::new();
    let original = data(2 * CHUNK + 9, 130);
    env.run_stdin(
        &["process", "-", "-o", "s.spipe", "--chunk-size", CHUNK_ARG],
        &original,
    )
    .ok();
    env.run(&["restore", "s.spipe"]).ok();
    assert!(env.read("s") == original);
    let c = env.read("s.spipe");
    env.run_stdin(&["restore", "-", "-o", "t"], &c).ok();
    assert!(env.read("t") == original);
    assert_eq!(env.listing(), ["s", "s.spipe", "t"]);
}

#[test]
fn corrupt_container_on_stdin_exits_3() {
    let env = TestEnv::new();
    let good = make_container(&env, "good.spipe", "lz4,sha256", 3, 140);
    let r = layout(&good).records[2];
    let mut bad = good.clone();
    bad[r.payload + 1] ^= 0x08;
    env.run_stdin(&["restore", "-"], &bad)
        .code(3)
        .stderr_has("chunk 2: ");
    env.run_stdin(&["restore", "-", "-o", "out"], &bad)
        .code(3)
        .stderr_has("chunk 2: ");
    env.run_stdin(&["verify", "-"], &bad)
        .code(3)
        .stderr_has("chunk 2: ");
    assert_eq!(env.listing(), ["good.spipe"]);
}

#[test]
fn a_reader_that_goes_away_ends_the_run_by_sigpipe() {
    let env = TestEnv::new();
    // Larger than a pipe buffer, so the writer meets the closed pipe.
    env.write("x.bin", &random(1 << 20, 145));
    env.run(&["process", "x.bin", "-o", "x.spipe", "-s", "passthrough"])
        .ok();
    for args in [
        &[
            "process",
            "x.bin",
            "-c",
            "-s",
            "passthrough",
            "--chunk-size",
            "64KiB",
        ][..],
        &["restore", "x.spipe", "-c"][..],
    ] {
        let mut child = env
            .command(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        // Read a little, then go away (as `head -c 10` does).
        let mut head = [0u8; 10];
        std::io::Read::read_exact(&mut stdout, &mut head).expect("first bytes");
        drop(stdout);
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // As zstd and gzip end: killed by SIGPIPE (the shell's 141), no
        // message, nothing left behind.
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr, "", "{args:?}");
    }
    assert_eq!(env.listing(), ["x.bin", "x.spipe"]);
}

// ---------------------------------------------------------------------------
// Usage errors
// ---------------------------------------------------------------------------

#[test]
fn restore_without_spipe_suffix_needs_an_output_name() {
    let env = TestEnv::new();
    let original = data(1000, 150);
    env.write("x.bin", &original);
    env.run(&["process", "x.bin", "-o", "container.bin"]).ok();
    env.run(&["restore", "container.bin"])
        .code(2)
        .stderr_has("container.bin")
        .stderr_has("-o");
    assert_eq!(env.listing(), ["container.bin", "x.bin"]);
    env.run(&["restore", "container.bin", "-o", "y.bin"]).ok();
    assert!(env.read("y.bin") == original);
}

#[test]
fn bad_stage_specs_exit_2() {
    let env = TestEnv::new();
    env.write("x.bin", b"some bytes");
    let table = [
        ("zstd:0", "zstd level 0 is out of range"),
        ("zstd:99", "zstd level 99 is out of range"),
        ("nope", "unknown stage 'nope'"),
        ("zstd,lz4", "zstd and lz4 both compress"),
        ("sha256,blake3", "sha256 and blake3 are both checksums"),
        ("", "empty stage list"),
        ("lz4:3", "lz4 takes no parameter"),
        ("zstd:abc", "bad level 'abc'"),
        ("zstd,zstd", "appears twice"),
        (
            "passthrough,gzip",
            "passthrough cannot be combined with gzip",
        ),
    ];
    for (spec, message) in table {
        env.run(&["process", "x.bin", "-s", spec])
            .code(2)
            .stderr_has(message);
        // Checked before any input is opened.
        env.run(&["process", "missing.bin", "--stages", spec])
            .code(2)
            .stderr_has(message);
    }
    assert_eq!(env.listing(), ["x.bin"]);
}

#[test]
fn bad_chunk_sizes_exit_2() {
    let env = TestEnv::new();
    env.write("x.bin", b"some bytes");
    for size in ["0", "1", "4095", "65MiB", "abc", "-1", "4GiB", "12XB", ""] {
        // `=` so that clap takes "-1" as the value, not as a flag.
        env.run(&["process", "x.bin", &format!("--chunk-size={size}")])
            .code(2)
            .stderr_has("--chunk-size");
    }
    assert_eq!(env.listing(), ["x.bin"]);
    // The boundaries themselves are accepted.
    for (size, name) in [
        ("4KiB", "a.spipe"),
        ("64KiB", "b.spipe"),
        ("65536", "c.spipe"),
    ] {
        env.run(&["process", "x.bin", "--chunk-size", size, "-o", name])
            .ok();
    }
    assert!(env.read("b.spipe") == env.read("c.spipe"));
}

#[test]
fn bad_flags_exit_2() {
    let env = TestEnv::new();
    env.write("x.bin", b"some bytes");
    for args in [
        &["process"][..],
        &["process", "x.bin", "--no-such-flag"][..],
        &["frobnicate", "x.bin"][..],
        &["process", "x.bin", "-q", "-v"][..],
        &["process", "x.bin", "-o", "y", "-c"][..],
        &["process", "x.bin", "-T", "many"][..],
        &[][..],
    ] {
        env.run(args).code(2);
    }
    assert_eq!(env.listing(), ["x.bin"]);
}

#[test]
fn help_shows_the_exit_code_table() {
    let env = TestEnv::new();
    for args in [
        &["--help"][..],
        &["process", "--help"][..],
        &["restore", "--help"][..],
    ] {
        let out = env.run(args).ok().stdout_text();
        for needle in ["Exit codes:", "130", "143", "integrity", "usage error"] {
            assert!(out.contains(needle), "{args:?}: no {needle:?} in:\n{out}");
        }
    }
    let version = env.run(&["--version"]).ok().stdout_text();
    assert_eq!(version, format!("syncpipe {}\n", env!("CARGO_PKG_VERSION")));
}

// ---------------------------------------------------------------------------
// info, verify, output levels
// ---------------------------------------------------------------------------

#[test]
fn info_shows_header_and_statistics() {
    let env = TestEnv::new();
    let original = data(5 * CHUNK + 3, 160);
    env.write("x.bin", &original);
    env.set_mode("x.bin", 0o640);
    env.run(&["process", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    let info = env.run(&["info", "x.bin.spipe"]).ok().stdout_text();
    let blake = hex(blake3::hash(&original).as_bytes());
    for line in [
        "file:           x.bin.spipe".to_string(),
        "format:         syncpipe container v1".to_string(),
        "stages:         zstd:3".to_string(),
        "checksum:       blake3".to_string(),
        "chunk size:     16 KiB".to_string(),
        format!("original size:  {} bytes", original.len()),
        "mode:           0640".to_string(),
        format!("digest:         blake3 {blake}"),
    ] {
        assert!(
            info.lines().any(|l| l == line),
            "no line {line:?} in:\n{info}"
        );
    }
    assert!(info.contains("chunks:         6 ("), "{info}");

    env.run(&[
        "process",
        "x.bin",
        "-o",
        "s.spipe",
        "-s",
        "brotli:5,sha256",
        "--chunk-size",
        "4KiB",
    ])
    .ok();
    let info = env.run(&["info", "s.spipe"]).ok().stdout_text();
    let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&original).into();
    for line in [
        "stages:         brotli:5".to_string(),
        "checksum:       sha256".to_string(),
        "chunk size:     4 KiB".to_string(),
        format!("digest:         sha256 {}", hex(&sha)),
    ] {
        assert!(
            info.lines().any(|l| l == line),
            "no line {line:?} in:\n{info}"
        );
    }
    assert!(info.contains("chunks:         21 ("), "{info}");

    env.run(&["process", "x.bin", "-o", "p.spipe", "-s", "passthrough"])
        .ok();
    let info = env.run(&["info", "p.spipe"]).ok().stdout_text();
    assert!(info.contains("stages:         passthrough\n"), "{info}");
    assert!(info.contains("checksum:       none\n"), "{info}");
    assert!(!info.contains("digest:"), "{info}");
}

#[test]

fn info_names_the_stages_of_a_checksum_only_container() {
    let env = TestEnv::new();
    env.write("x.bin", b"some bytes");
    env.run(&["process", "x.bin", "-s", "sha256"]).ok();
    let info = env.run(&["info", "x.bin.spipe"]).ok().stdout_text();
    let stages = info
        .lines()
        .find_map(|l| l.strip_prefix("stages:"))
        .expect("a stages line");
    assert!(!stages.trim().is_empty(), "blank stages line in:\n{info}");
}

#[test]
fn verify_prints_ok_and_the_digest() {
    let env = TestEnv::new();
    let original = data(3 * CHUNK + 10, 170);
    env.write("x.bin", &original);
    env.run(&["process", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    let out = env.run(&["verify", "x.bin.spipe"]).ok();
    assert_eq!(
        out.stdout_text(),
        format!(
            "x.bin.spipe: ok ({} bytes in 4 chunks, blake3 {})\n",
            original.len(),
            hex(blake3::hash(&original).as_bytes())
        )
    );
    assert_eq!(out.stderr, "");
    env.run(&["process", "x.bin", "-o", "n.spipe", "-s", "lz4"])
        .ok();
    let out = env.run(&["verify", "n.spipe"]).ok();
    assert_eq!(
        out.stdout_text(),
        format!("n.spipe: ok ({} bytes in 1 chunks)\n", original.len())
    );
    assert_eq!(env.listing(), ["n.spipe", "x.bin", "x.bin.spipe"]);
}

#[test]
fn verbose_prints_a_summary_and_quiet_prints_nothing() {
    let env = TestEnv::new();
    let original = data(5 * CHUNK + 1, 180);
    env.write("x.bin", &original);

    let out = env
        .run(&["-v", "process", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    assert!(out.stdout.is_empty());
    out.stderr_has("processed").stderr_has("chunks 6");
    let out = env
        .run(&["restore", "x.bin.spipe", "-o", "y.bin", "--verbose"])
        .ok();
    out.stderr_has("restored").stderr_has("chunks 6");
    assert!(env.read("y.bin") == original);

    for args in [
        &[
            "-q",
            "process",
            "x.bin",
            "-o",
            "q.spipe",
            "--chunk-size",
            CHUNK_ARG,
        ][..],
        &["restore", "q.spipe", "-o", "q.bin", "--quiet"][..],
        &["verify", "q.spipe", "-q"][..],
    ] {
        let out = env.run(args).ok();
        assert!(
            out.stdout.is_empty(),
            "{args:?}: stdout {:?}",
            out.stdout_text()
        );
        assert_eq!(out.stderr, "", "{args:?}");
    }
    assert!(env.read("q.bin") == original);

    // Off a terminal, with neither flag, a successful run prints nothing,
    // as zstd and gzip (each stage of a shell pipe would add a line);
    // the one-line summary is for a terminal or -v.
    for args in [
        &["process", "x.bin", "-o", "plain.spipe"][..],
        &["restore", "plain.spipe", "-o", "plain.bin"][..],
        &["process", "-", "-o", "stdin.spipe"][..],
    ] {
        let out = env.run_stdin(args, &original).ok();
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(out.stderr, "", "{args:?}");
    }
    let out = env
        .run_stdin(&["restore", "-"], &env.read("plain.spipe"))
        .ok();
    assert!(out.stdout == original);
    assert_eq!(out.stderr, "");

    // Errors are still printed under -q.
    env.run(&["-q", "process", "x.bin", "-o", "q.spipe"])
        .code(2)
        .stderr_has("already exists");
}

// ---------------------------------------------------------------------------
// Tuning does not change the bytes
// ---------------------------------------------------------------------------

#[test]
fn container_bytes_do_not_depend_on_tuning() {
    let env = TestEnv::new();
    let original = data(12 * CHUNK + 99, 190);
    env.write("x.bin", &original);
    let tunings: [&[&str]; 8] = [
        &["-T", "1"],
        &["-T", "2"],
        &["-T", "8"],
        &["--channel-depth", "1"],
        &["--cpu-tokens", "1"],
        &["--io-tokens", "1"],
        &[
            "-T",
            "8",
            "--cpu-tokens",
            "3",
            "--channel-depth",
            "1",
            "--io-tokens",
            "1",
        ],
        &[],
    ];
    for spec in ["zstd:3,blake3", "lz4,sha256"] {
        let mut reference: Option<Vec<u8>> = None;
        for (i, tuning) in tunings.iter().enumerate() {
            let name = format!("t{i}.spipe");
            let mut args = vec![
                "process",
                "x.bin",
                "-o",
                &name,
                "-s",
                spec,
                "--chunk-size",
                CHUNK_ARG,
            ];
            args.extend_from_slice(tuning);
            env.run(&args).ok();
            let c = env.read(&name);
            match &reference {
                None => reference = Some(c),
                Some(r) => assert!(*r == c, "{spec} {tuning:?}: container differs from -T 1"),
            }
            // Restoring under the same tuning gives the original back.
            let restored = format!("t{i}.out");
            let mut args = vec!["restore", &name, "-o", &restored];
            args.extend_from_slice(tuning);
            env.run(&args).ok();
            assert!(env.read(&restored) == original, "{spec} {tuning:?}");
            fs::remove_file(env.path(&name)).expect("rm");
            fs::remove_file(env.path(&restored)).expect("rm");
        }
    }
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/// Waits until a syncpipe temp file (`.NAME.syncpipe-tmp.HOST.PID.RANDOM`) appears.
fn wait_for_temp_file(env: &TestEnv, child: &mut Child) {
    let start = Instant::now();
    while !env.listing().iter().any(|n| n.contains(".syncpipe-tmp.")) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("syncpipe ended early: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no temp file appeared"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigint_exits_130_and_removes_the_temp_output() {
    let env = TestEnv::new();
    let mut child = env
        .command(&["process", "-", "-o", "out.spipe", "--chunk-size", CHUNK_ARG])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&data(3 * CHUNK, 200)).expect("feed");
    // The temp file exists only after the signal handlers are installed.
    wait_for_temp_file(&env, &mut child);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    // The reader is blocked on the open pipe; closing it lets it see the flag.
    thread::sleep(Duration::from_millis(50));
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.listing().is_empty(), "left behind: {:?}", env.listing());
}

// ---------------------------------------------------------------------------
// Help, man pages, info --json
// ---------------------------------------------------------------------------

/// Runs `program args` with a deadline (a renderer that hangs fails the
/// test instead of holding it up); `None` when the program is not
/// installed.
fn run_tool(program: &str, args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    let mut child = match Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("{program}: {e}"),
    };
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{program} did not finish in 30 s");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn man_writes_a_page_per_subcommand_and_prints_each() {
    let env = TestEnv::new();
    env.run(&["man", "--dir", "pages"]).ok();
    let mut names: Vec<String> = fs::read_dir(env.path("pages"))
        .expect("pages")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let subs = [
        "bench",
        "completions",
        "info",
        "man",
        "process",
        "restore",
        "verify",
    ];
    let mut want: Vec<String> = subs.iter().map(|s| format!("syncpipe-{s}.1")).collect();
    want.push("syncpipe.1".to_owned());
    assert_eq!(names, want);
    assert_eq!(env.run(&["man"]).ok().stdout, env.read("pages/syncpipe.1"));
    for sub in subs {
        let page = env.run(&["man", sub]).ok().stdout;
        assert_eq!(page, env.read(&format!("pages/syncpipe-{sub}.1")), "{sub}");
        let page = String::from_utf8(page).expect("UTF-8");
        assert!(page.contains(&format!(".TH syncpipe-{sub} 1")), "{sub}");
    }
    let process = String::from_utf8(env.read("pages/syncpipe-process.1")).expect("UTF-8");
    for flag in [
        "shard",
        "skip\\-existing",
        "batch\\-small",
        "chunk\\-method",
        "stages",
    ] {
        assert!(
            process.contains(&format!("\\-\\-{flag}")),
            "process page lacks --{flag}"
        );
    }
    // A page that does not exist, and a page with --dir, are usage errors.
    env.run(&["man", "nosuch"]).code(2);
    env.run(&["man", "process", "--dir", "pages"]).code(2);
}

/// Renders a page as man shows it and checks that each exit code starts a
/// line of its own with its meaning beside it.
#[test]
fn man_renders_the_exit_codes_one_per_line() {
    let env = TestEnv::new();
    env.run(&["man", "--dir", "."]).ok();
    for page in ["syncpipe.1", "syncpipe-verify.1"] {
        let path = env.path(page);
        let path = path.to_str().expect("UTF-8 path");
        let width = [("MANWIDTH", "80"), ("MAN_KEEP_FORMATTING", "0")];
        let Some(text) = run_tool("groff", &["-man", "-Tutf8", "-P-cbou", path], &[])
            .or_else(|| run_tool("mandoc", &["-Tutf8", path], &[]))
            .or_else(|| run_tool("man", &["-l", path], &width))
        else {
            eprintln!("note: no groff, mandoc or man here; rendering not checked");
            return;
        };
        // Overstrike bold (`c\bc`), in case the renderer used it.
        let text: String = {
            let mut out = String::new();
            for c in text.chars() {
                if c == '\u{8}' {
                    out.pop();
                } else {
                    out.push(c);
                }
            }
            out
        };
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| l.trim() != "EXIT STATUS")
            .collect();
        assert!(!rows.is_empty(), "{page}: no EXIT STATUS:\n{text}");
        for (code, word) in [
            (0, "success"),
            (1, "runtime"),
            (2, "usage"),
            (3, "integrity"),
            (4, "wrong"),
            (5, "some"),
            (130, "interrupted"),
            (143, "terminated"),
        ] {
            let row = rows.iter().find(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(&code.to_string()) && words.next() == Some(word)
            });
            assert!(
                row.is_some(),
                "{page}: no row `{code} {word}`:\n{}",
                rows.join("\n")
            );
        }
    }
}

#[test]
fn each_subcommand_help_speaks_of_that_subcommand() {
    let env = TestEnv::new();
    let help = |sub: &str| env.run(&[sub, "--help"]).ok().stdout_text();
    let process = help("process");
    let restore = help("restore");
    let verify = help("verify");
    for heading in [
        "Input and output:",
        "Stages and chunks:",
        "Keys:",
        "Many files:",
        "Tuning:",
        "Observability:",
    ] {
        assert!(process.contains(heading), "process --help lacks {heading}");
    }
    // In that order.
    let at = |h: &str| process.find(h).expect("heading");
    assert!(at("Input and output:") < at("Stages and chunks:"));
    assert!(at("Stages and chunks:") < at("Keys:"));
    assert!(at("Keys:") < at("Many files:"));
    assert!(at("Many files:") < at("Tuning:"));
    assert!(at("Tuning:") < at("Observability:"));
    assert!(process.contains("The container to write"));
    for (name, text) in [("restore", &restore), ("verify", &verify)] {
        for foreign in [
            "The container to write",
            "INPUT.spipe",
            "Write outputs under",
        ] {
            assert!(!text.contains(foreign), "{name} --help says {foreign:?}");
        }
        assert!(
            !text.contains("--chunk-size"),
            "{name} --help mentions --chunk-size"
        );
    }
    assert!(restore.contains("The file to restore into"));
    assert!(restore.contains("Write the restored files under DIR"));
    assert!(verify.contains("check their `*.spipe`, `*.zst`"));
    assert!(!verify.contains("--output") && !verify.contains("-o -"));
    // A subcommand lists only the global flags it acts on.
    let run_flags = [
        "--progress",
        "--metrics-interval",
        "--prometheus-file",
        "--metrics-listen",
    ];
    // (A flag's own line; the exit-code table names some flags too.)
    let lists = |text: &str, flag: &str| {
        text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(flag) || (l.starts_with('-') && l.contains(&format!(", {flag}")))
        })
    };
    assert!(lists(&process, "--prometheus-file") && lists(&process, "--verbose"));
    for sub in ["info", "completions", "man", "bench"] {
        let text = help(sub);
        for flag in run_flags {
            assert!(!lists(&text, flag), "{sub} --help lists {flag}");
        }
    }
    assert!(lists(&help("info"), "--json") && lists(&help("bench"), "--json"));
    assert!(help("bench").contains("bench_row"));
    assert!(!lists(&help("man"), "--json") && !lists(&help("completions"), "--json"));
    // bench detects the storage; its help says so.
    assert!(help("bench").contains("device under"));
    assert!(!help("bench").contains("no storage detection"));
}

#[test]
fn info_json_prints_the_header_as_one_object() {
    let env = TestEnv::new();
    env.write("x.bin", &data(3 * CHUNK + 5, 7));
    env.set_mode("x.bin", 0o640);
    env.run(&[
        "process",
        "x.bin",
        "--chunk-size",
        CHUNK_ARG,
        "-s",
        "lz4,sha256",
    ])
    .ok();
    for args in [
        &["info", "x.bin.spipe", "--json"][..],
        &["--json", "info", "x.bin.spipe"],
    ] {
        let out = env.run(args).ok().stdout_text();
        assert_eq!(out.lines().count(), 1, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["message_type"], "info");
        assert_eq!(v["file"], "x.bin.spipe");
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["stages"], serde_json::json!(["lz4"]));
        assert_eq!(v["checksum"], "sha256");
        assert_eq!(v["chunk_size"], CHUNK);
        assert_eq!(v["variable_chunks"], false);
        assert_eq!(v["original_bytes"], 3 * CHUNK + 5);
        assert_eq!(v["chunks"], 4);
        assert_eq!(v["mode"], 0o640);
        assert_eq!(v["encryption"], serde_json::Value::Null);
        let restored = env.run(&["verify", "x.bin.spipe"]).ok().stdout_text();
        let digest = v["digest"].as_str().expect("digest");
        assert!(restored.contains(digest), "{restored} / {digest}");
        let payload = v["payload_bytes"].as_u64().expect("payload");
        let ratio = v["ratio"].as_f64().expect("ratio");
        assert!((ratio - (3 * CHUNK + 5) as f64 / payload as f64).abs() < 1e-9);
    }
    // Encrypted: the cipher and key kind, no (keyed) digest.
    env.write("key", &[7u8; 32]);
    env.run(&[
        "process",
        "x.bin",
        "-o",
        "e.spipe",
        "-s",
        "zstd:1,chacha20-poly1305,blake3",
        "--key-file",
        "key",
    ])
    .ok();
    let out = env.run(&["info", "e.spipe", "--json"]).ok().stdout_text();
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["format_version"], 2);
    assert_eq!(v["encryption"]["cipher"], "chacha20-poly1305");
    assert_eq!(v["encryption"]["key"], "key_file");
    assert_eq!(v["encryption"]["argon2"], serde_json::Value::Null);
    assert_eq!(v["digest"], serde_json::Value::Null);
    // Not a container: exit 3, nothing on stdout.
    env.write("bad.spipe", b"not a container");
    let out = env.run(&["info", "bad.spipe", "--json"]);
    out.code(3);
    assert!(out.stdout.is_empty());
}

// ---------------------------------------------------------------------------
// Habits of zstd and gzip: --rm, times, -l
// ---------------------------------------------------------------------------

/// A file's (access, modification) times, to the second.
fn times(env: &TestEnv, name: &str) -> (i64, i64) {
    let m = fs::metadata(env.path(name)).expect("metadata");
    (m.atime(), m.mtime())
}

/// Gives a file explicit past times: atime 2001-09-09, mtime 2004-01-10.
fn set_past_times(env: &TestEnv, name: &str) -> (i64, i64) {
    let (a, m) = (1_000_000_000, 1_073_741_824);
    let at = |s: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(s as u64);
    let f = File::options()
        .write(true)
        .open(env.path(name))
        .expect("open");
    f.set_times(fs::FileTimes::new().set_accessed(at(a)).set_modified(at(m)))
        .expect("set_times");
    (a, m)
}

#[test]
fn times_go_from_the_input_to_the_container_and_back() {
    let env = TestEnv::new();
    let original = data(3 * CHUNK + 5, 301);
    env.write("x.bin", &original);
    let past = set_past_times(&env, "x.bin");
    env.run(&["process", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    assert_eq!(times(&env, "x.bin.spipe"), past, "the container's times");
    // Restore reads the container's header before the run: that look must
    // not make its access time now.
    env.run(&["restore", "x.bin.spipe", "-o", "y.bin"]).ok();
    // Looked at before it is read: reading a file whose access time is
    // older than its modification time moves it (relatime).
    assert_eq!(times(&env, "y.bin"), past, "the restored file's times");
    assert!(env.read("y.bin") == original);
    // The default name, with -f over an existing file, keeps them too.
    fs::remove_file(env.path("x.bin")).expect("rm");
    set_past_times(&env, "x.bin.spipe");
    env.run(&["restore", "x.bin.spipe"]).ok();
    assert_eq!(times(&env, "x.bin"), past);
    // Streams have no times: a container of stdin, a file restored from
    // stdin, are as new as any file.
    let before = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        - 60;
    env.run_stdin(&["process", "-", "-o", "s.spipe"], &original)
        .ok();
    assert!(times(&env, "s.spipe").1 >= before);
    env.run_stdin(&["restore", "-", "-o", "s.bin"], &env.read("x.bin.spipe"))
        .ok();
    assert!(times(&env, "s.bin").1 >= before);
    assert!(env.read("s.bin") == original);
}

#[test]
fn rm_removes_the_input_only_after_its_output_is_committed() {
    let env = TestEnv::new();
    let original = data(4 * CHUNK + 9, 302);
    env.write("x.bin", &original);
    env.run(&["process", "--rm", "x.bin", "--chunk-size", CHUNK_ARG])
        .ok();
    assert_eq!(env.listing(), ["x.bin.spipe"]);
    env.run(&["restore", "--rm", "x.bin.spipe"]).ok();
    assert_eq!(env.listing(), ["x.bin"]);
    assert!(env.read("x.bin") == original);

    // Encrypted: verified with the same key before the input goes.
    env.write("key", &[7u8; 32]);
    env.run(&[
        "process",
        "--rm",
        "x.bin",
        "-s",
        "zstd:3,aes-256-gcm,blake3",
        "--key-file",
        "key",
    ])
    .ok();
    assert_eq!(env.listing(), ["key", "x.bin.spipe"]);
    env.run(&["restore", "--rm", "x.bin.spipe", "--key-file", "key"])
        .ok();
    assert_eq!(env.listing(), ["key", "x.bin"]);
    assert!(env.read("x.bin") == original);

    // Never with stdout or stdin: a usage error, nothing removed.
    for args in [
        &["process", "--rm", "x.bin", "-c"][..],
        &["process", "--rm", "x.bin", "-o", "-"][..],
        &["process", "--rm", "-", "-o", "s.spipe"][..],
    ] {
        env.run_stdin(args, &original).code(2).stderr_has("--rm");
    }
    assert_eq!(env.listing(), ["key", "x.bin"]);

    // Never after a failure: an existing output (no -f), a container that
    // does not restore, the wrong key.
    env.write("x.bin.spipe", b"in the way");
    env.run(&["process", "--rm", "x.bin"])
        .code(2)
        .stderr_has("already exists");
    assert!(env.read("x.bin") == original);
    assert!(env.read("x.bin.spipe") == b"in the way");
    env.run(&["process", "x.bin", "-f", "-o", "good.spipe"])
        .ok();
    let mut bad = env.read("good.spipe");
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    env.write("bad.spipe", &bad);
    env.run(&["restore", "--rm", "bad.spipe", "-o", "bad.bin"])
        .code(3);
    assert!(env.exists("bad.spipe") && !env.exists("bad.bin"));
    env.run(&[
        "process",
        "x.bin",
        "-o",
        "enc.spipe",
        "-s",
        "lz4,aes-256-gcm",
        "--key-file",
        "key",
    ])
    .ok();
    env.write("other", &[8u8; 32]);
    env.run(&[
        "restore",
        "--rm",
        "enc.spipe",
        "-o",
        "enc.bin",
        "--key-file",
        "other",
    ])
    .code(4);
    assert!(env.exists("enc.spipe") && !env.exists("enc.bin"));
    // Not a regular file: refused before anything is written.
    env.run(&["process", "--rm", "/dev/null", "-o", "null.spipe"])
        .code(2)
        .stderr_has("regular files only");
    assert!(!env.exists("null.spipe"));
}

#[test]
fn level_sets_the_compressor_and_keeps_the_rest_of_the_list() {
    let env = TestEnv::new();
    let original = data(2 * CHUNK, 303);
    env.write("x.bin", &original);
    let info = |name: &str| String::from_utf8(env.run(&["info", name]).ok().stdout).expect("utf-8");
    env.run(&["process", "x.bin", "-l", "19", "-o", "l19.spipe"])
        .ok();
    let text = info("l19.spipe");
    assert!(text.contains("stages:         zstd:19\n"), "{text}");
    assert!(text.contains("checksum:       blake3"), "{text}");
    // Where `-s zstd:19` has no checksum.
    let text = info(&{
        env.run(&["process", "x.bin", "-s", "zstd:19", "-o", "s19.spipe"])
            .ok();
        "s19.spipe".to_string()
    });
    assert!(text.contains("checksum:       none"), "{text}");
    env.run(&[
        "process",
        "x.bin",
        "-s",
        "gzip,sha256",
        "--level",
        "1",
        "-o",
        "g1.spipe",
    ])
    .ok();
    let text = info("g1.spipe");
    assert!(
        text.contains("stages:         gzip:1\n") && text.contains("sha256"),
        "{text}"
    );
    env.run(&["restore", "g1.spipe", "-o", "g1.bin"]).ok();
    assert!(env.read("g1.bin") == original);
    for (args, why) in [
        (&["-l", "20"][..], "zstd level 20 is out of range 1..=19"),
        (&["-l", "0"][..], "zstd level 0 is out of range"),
        (
            &["-l", "-1", "-s", "gzip"][..],
            "gzip level -1 is out of range 1..=9",
        ),
        (
            &["-l", "12", "-s", "brotli"][..],
            "brotli quality 12 is out of range 0..=11",
        ),
        (&["-l", "3", "-s", "lz4,blake3"][..], "lz4, has none"),
        (&["-l", "3", "-s", "sha256"][..], "no compressor"),
    ] {
        let mut all = vec!["process", "x.bin", "-o", "refused.spipe"];
        all.extend_from_slice(args);
        env.run(&all).code(2).stderr_has(why);
    }
    assert!(!env.exists("refused.spipe"));
}

/// A small container (original length under 256 KiB) restores on the
/// calling thread, as a small file is processed: the same bytes, digest
/// checked, and no stream threads (`-v` has no per-thread CPU line); a
/// larger one is streamed.
#[test]
fn small_containers_restore_without_the_stream_threads() {
    let env = TestEnv::new();
    for (name, len, streamed) in [("small", 4096, false), ("large", 300_000, true)] {
        let original = data(len, 7);
        env.write(name, &original);
        env.run(&["process", name, "-o", "c.spipe", "-f"]).ok();
        let out = env
            .run(&["-v", "restore", "c.spipe", "-o", "back", "-f"])
            .ok();
        assert!(env.read("back") == original, "{name}");
        let err = &out.stderr;
        assert_eq!(err.contains("thread cpu:"), streamed, "{name}: {err}");
        assert!(
            err.contains("blake3 "),
            "{name}: the digest is checked: {err}"
        );
    }
}
