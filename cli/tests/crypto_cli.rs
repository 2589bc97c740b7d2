//! The tamper matrix of encrypted containers, through the real binary:
//! truncation at many offsets, flipped bytes in every header
//! field and record field, reordered / duplicated / appended / dropped /
//! spliced records, a forged last flag, wrong secrets, key sources, `info`
//! without a key and the terminal prompt.
//!
//! Every refused container is run through `restore FILE -o out/restored`
//! (the library's temp-file path), `restore - -o out/restored` (the CLI's
//! own temp-file path, stdin input) and `verify`; each must give the exact
//! exit code, a message naming the chunk where one applies, and leave
//! `out/` empty (no output, no temp file) and the working directory as it
//! was.
//!
//! The containers are parsed here from `docs/format.md` and `src/format/`
//! independently of the library: header length from bytes 10..14 (+ 18),
//! records by their length fields. Where the point of a case is to get past
//! the CRC-32 (anyone can recompute it), the CRC of the part that changed is
//! fixed up; a few cases leave it alone on purpose.
//!
//! Observed exit codes for header tampering (CRC fixed), documented here
//! because they follow from the key hierarchy: a changed KDF input (Argon2
//! m, t, p, salt) or file nonce derives other keys, so the key check fails
//! and the run exits 4 (wrong key), as does a changed key-check value
//! itself (indistinguishable from a wrong key by design). A changed chunk
//! size, original length, mode, checksum id, stage, or cipher id (to the
//! other valid cipher) keeps the key check and fails the header MAC: exit 3
//! ("header authentication failed"). Values the parser refuses (unknown
//! ids, KDF costs above the caps, version 1/3, reserved flags) exit 3 before
//! any key work.
//!
//! Containers for the tamper tests are made from stdin, so the header's
//! original length is "unknown": a consistently re-framed container
//! (indices, trailer and CRCs fixed) can then only be caught by the AEAD.
//!
//! Key derivation is made cheap with `--argon2 m=64,t=1,p=1`, chunks are
//! 4 KiB and inputs a few chunks, so the file runs in a few seconds.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use crate::common::{mixed_data, watchdog};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
/// The environment variable that names a passphrase file.
const PASSPHRASE_ENV: &str = "SYNCPIPE_PASSPHRASE_FILE";

const CHUNK: usize = 4096;
const CHUNK_ARG: &str = "4KiB";
const ARGON2: &str = "m=64,t=1,p=1";
const AES: &str = "zstd:3,aes-256-gcm,sha256";
const CHACHA: &str = "lz4,chacha20-poly1305,blake3";
const SPECS: [&str; 2] = [AES, CHACHA];

/// Most inputs: 5 full chunks and a short tail, so 6 records (0..=5).
const FULL_CHUNKS: usize = 5;
const TAIL: usize = 1234;
const RECORDS: usize = FULL_CHUNKS + 1;
const LAST: u64 = FULL_CHUNKS as u64;

/// Contents of the passphrase files (first line is the passphrase).
const PASSPHRASE: &[u8] = b"correct horse battery staple\n";
const OTHER_PASSPHRASE: &[u8] = b"correct horse battery stapler\n";

/// The key arguments most runs use.
const PASS: [&str; 2] = ["--passphrase-file", "pass"];

/// Seconds a test may run before the watchdog fails it.
const WATCHDOG: u64 = 120;

// ---------------------------------------------------------------------------
// Test environment
// ---------------------------------------------------------------------------

/// A temp directory the binary runs in, with `pass`, `wrong-pass` and an
/// empty `out/` for restored files.
struct Env {
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

    #[track_caller]
    fn ok(self) -> Self {
        self.code(0);
        self
    }

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
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The chunk the error message names (`chunk N: `), if any.
    fn chunk(&self) -> Option<u64> {
        let s = &self.stderr;
        let mut from = 0;
        while let Some(i) = s[from..].find("chunk ") {
            let rest = &s[from + i + "chunk ".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && rest[digits.len()..].starts_with(':') {
                return digits.parse().ok();
            }
            from += i + 1;
        }
        None
    }
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("create a temp dir"),
        };
        env.write("pass", PASSPHRASE);
        env.write("wrong-pass", OTHER_PASSPHRASE);
        fs::create_dir(env.path("out")).expect("create out/");
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        fs::write(self.path(name), bytes).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).symlink_metadata().is_ok()
    }

    /// Every name in the working directory (hidden ones too), sorted.
    fn listing(&self) -> Vec<String> {
        listing_of(self.dir.path())
    }

    /// Every name in `out/` (hidden ones too: temp files start with a dot).
    fn out_listing(&self) -> Vec<String> {
        listing_of(&self.path("out"))
    }

    #[track_caller]
    fn assert_out_empty(&self, what: &str) {
        assert_eq!(
            self.out_listing(),
            Vec::<String>::new(),
            "{what}: out/ must hold no output and no temp file"
        );
    }

    /// The binary with `args`, in the temp dir, with no passphrase from the
    /// environment unless a test sets one.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove(PASSPHRASE_ENV)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the binary with stdin closed (not a terminal).
    fn run(&self, args: &[&str]) -> Run {
        self.run_cmd(self.command(args), args, None)
    }

    /// Runs the binary with `input` piped on stdin.
    fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        self.run_cmd(self.command(args), args, Some(input))
    }

    fn run_cmd(&self, mut cmd: Command, args: &[&str], input: Option<&[u8]>) -> Run {
        let cmdline = format!("syncpipe {}", args.join(" "));
        let out = match input {
            None => cmd
                .stdin(Stdio::null())
                .output()
                .expect("run the syncpipe binary"),
            Some(input) => {
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .spawn()
                    .expect("spawn the syncpipe binary");
                let mut stdin = child.stdin.take().expect("the child's stdin pipe");
                let input = input.to_vec();
                // Fed from a thread: the child may fill its stdout pipe
                // before it reads all of stdin, or exit without reading it.
                let feeder = thread::spawn(move || {
                    let _ = stdin.write_all(&input);
                });
                let out = child.wait_with_output().expect("wait for syncpipe");
                feeder.join().expect("join the stdin feeder");
                out
            }
        };
        Run {
            cmdline,
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Encrypts `input`, read from stdin (so the header's original length
    /// is unknown), into `name` with the passphrase in `pass`.
    fn encrypt(&self, spec: &str, input: &[u8], name: &str) -> Vec<u8> {
        self.run_stdin(
            &[
                "process",
                "-",
                "-o",
                name,
                "-s",
                spec,
                "--chunk-size",
                CHUNK_ARG,
                "--argon2",
                ARGON2,
                "--passphrase-file",
                "pass",
                "--force",
            ],
            input,
        )
        .ok();
        self.read(name)
    }

    /// Encrypts the file `input` into `name` with the given key arguments.
    fn encrypt_file(&self, spec: &str, input: &str, name: &str, key: &[&str]) -> Vec<u8> {
        let mut args = vec![
            "process",
            input,
            "-o",
            name,
            "-s",
            spec,
            "--chunk-size",
            CHUNK_ARG,
            "--force",
        ];
        if key.first() != Some(&"--key-file") {
            args.extend(["--argon2", ARGON2]);
        }
        args.extend(key);
        self.run(&args).ok();
        self.read(name)
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn listing_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("read a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The standard input: 5 full chunks of mixed text and noise (so some
/// chunks are compressed and some stored raw) and a short tail.
fn input(seed: u64) -> Vec<u8> {
    mixed_data(FULL_CHUNKS * CHUNK + TAIL, seed)
}

/// `n` bytes from the system's random source.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Container layout, parsed independently (docs/format.md, src/format/)
// ---------------------------------------------------------------------------

const MAGIC: &[u8; 8] = b"\x89SPIPE\r\n";
/// Magic, version, header body length.
const FIXED_HEADER: usize = 8 + 2 + 4;
/// Tag, index, flags, skip mask, original length, payload length.
const RECORD_HEAD: usize = 1 + 8 + 1 + 1 + 4 + 4;
const DIGEST: usize = 32;
const AEAD_TAG: usize = 16;
const FLAG_LAST: u8 = 0x01;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Recomputes the trailing CRC-32 of a part (header, record or trailer:
/// each ends with the CRC of all its bytes before it).
fn reseal(part: &mut [u8]) {
    let n = part.len() - 4;
    let crc = crc32fast::hash(&part[..n]);
    part[n..].copy_from_slice(&crc.to_le_bytes());
}

/// A container cut into its parts, each with its own CRC.
#[derive(Clone, Debug)]
struct Parts {
    header: Vec<u8>,
    records: Vec<Vec<u8>>,
    trailer: Vec<u8>,
    digest_len: usize,
}

impl Parts {
    /// Walks a valid container by its length fields.
    fn parse(c: &[u8]) -> Parts {
        assert_eq!(&c[..8], MAGIC, "magic");
        assert_eq!(
            u16::from_le_bytes([c[8], c[9]]),
            2,
            "encrypted containers are version 2"
        );
        let header_len = FIXED_HEADER + u32_at(c, 10) as usize + 4;
        // Body: flags u16, chunk size u32, original length u64, mode u32,
        // then the checksum id.
        // Version-2 records carry no digest (the AEAD tag authenticates
        // each chunk); the trailer keeps a keyed whole-file digest when the
        // header names a checksum.
        let trailer_digest = if c[FIXED_HEADER + 18] == 0 { 0 } else { DIGEST };
        let digest_len = 0;
        let mut records = Vec::new();
        let mut pos = header_len;
        while c[pos] == b'C' {
            let payload_len = u32_at(c, pos + 15) as usize;
            let end = pos + RECORD_HEAD + digest_len + payload_len + 4;
            records.push(c[pos..end].to_vec());
            pos = end;
        }
        assert_eq!(c[pos], b'T', "trailer tag at {pos}");
        assert_eq!(c.len() - pos, 1 + 16 + trailer_digest + 4, "trailer length");
        Parts {
            header: c[..header_len].to_vec(),
            records,
            trailer: c[pos..].to_vec(),
            digest_len,
        }
    }

    fn join(&self) -> Vec<u8> {
        let mut c = self.header.clone();
        for r in &self.records {
            c.extend_from_slice(r);
        }
        c.extend_from_slice(&self.trailer);
        c
    }

    /// Offset where record `k` starts, for every k, then where the trailer
    /// starts: every record boundary of the container.
    fn boundaries(&self) -> Vec<usize> {
        let mut at = vec![self.header.len()];
        for r in &self.records {
            at.push(at.last().expect("one boundary at least") + r.len());
        }
        at
    }

    /// Where record `k`'s payload (ciphertext then tag) lies inside the
    /// record.
    fn payload(&self, k: usize) -> std::ops::Range<usize> {
        let r = &self.records[k];
        RECORD_HEAD + self.digest_len..r.len() - 4
    }

    /// Renumbers the records from `k` on to their positions (CRCs fixed)
    /// and makes the trailer agree: only the AEAD can then tell.
    fn renumber_from(&mut self, k: usize) {
        for (i, r) in self.records.iter_mut().enumerate().skip(k) {
            set_index(r, i as u64);
            reseal(r);
        }
        self.fix_trailer();
    }

    /// Makes the trailer agree with the records (count and original
    /// length), CRC fixed. The keyed whole-file digest cannot be fixed.
    fn fix_trailer(&mut self) {
        let count = self.records.len() as u64;
        let total: u64 = self.records.iter().map(|r| u64::from(u32_at(r, 11))).sum();
        self.trailer[1..9].copy_from_slice(&count.to_le_bytes());
        self.trailer[9..17].copy_from_slice(&total.to_le_bytes());
        reseal(&mut self.trailer);
    }
}

fn set_index(rec: &mut [u8], index: u64) {
    rec[1..9].copy_from_slice(&index.to_le_bytes());
}

fn set_payload_len(rec: &mut [u8], len: u32) {
    rec[15..19].copy_from_slice(&len.to_le_bytes());
}

/// One field of a version-2 header, in container offsets.
#[derive(Clone, Copy, Debug)]
struct Field {
    name: &'static str,
    at: usize,
    len: usize,
}

/// The header's fields, walked from its bytes (src/format/,
/// `Header::encode`): the v1 body, then cipher id, kdf id, Argon2 m, t, p
/// and salt (kdf 1 only), file nonce, key check, MAC, and the CRC.
fn header_fields(h: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut at = 0;
    let mut push = |name: &'static str, len: usize, at: &mut usize| {
        fields.push(Field { name, at: *at, len });
        *at += len;
    };
    push("magic", 8, &mut at);
    push("version", 2, &mut at);
    push("header_len", 4, &mut at);
    push("flags", 2, &mut at);
    push("chunk_size", 4, &mut at);
    push("original_len", 8, &mut at);
    push("mode", 4, &mut at);
    push("checksum_id", 1, &mut at);
    let stage_count = h[at] as usize;
    push("stage_count", 1, &mut at);
    for _ in 0..stage_count {
        push("stage_id", 1, &mut at);
        push("stage_param", 4, &mut at);
        let name_len = h[at] as usize;
        push("stage_name_len", 1, &mut at);
        push("stage_name", name_len, &mut at);
    }
    push("cipher_id", 1, &mut at);
    let kdf = h[at];
    push("kdf_id", 1, &mut at);
    if kdf == 1 {
        push("argon2_m", 4, &mut at);
        push("argon2_t", 4, &mut at);
        push("argon2_p", 4, &mut at);
        push("salt", 16, &mut at);
    }
    push("file_nonce", 32, &mut at);
    push("key_check", 32, &mut at);
    push("mac", 32, &mut at);
    push("crc", 4, &mut at);
    assert_eq!(at, h.len(), "the header fields cover the header exactly");
    fields
}

#[track_caller]
fn field(h: &[u8], name: &str) -> Field {
    header_fields(h)
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("the header has no field {name}"))
}

// ---------------------------------------------------------------------------
// The check every refused container goes through
// ---------------------------------------------------------------------------

/// Where the error message must point.
#[derive(Clone, Copy, Debug)]
enum At {
    /// A header-level or trailer-level failure: no chunk named.
    NoChunk,
    /// Exactly this chunk.
    Chunk(u64),
    /// One of these chunks (inclusive): several records are bad and they
    /// are decoded in parallel, so which is reported first is not fixed.
    Between(u64, u64),
}

#[track_caller]
fn check_run(r: &Run, what: &str, code: i32, needles: &[&str], at: At) {
    assert_eq!(
        r.code,
        Some(code),
        "{what}: `{}` exited with {:?}, expected {code}; stderr:\n{}",
        r.cmdline,
        r.code,
        r.stderr
    );
    assert!(
        needles.is_empty() || needles.iter().any(|n| r.stderr.contains(n)),
        "{what}: `{}`: stderr contains none of {needles:?}:\n{}",
        r.cmdline,
        r.stderr
    );
    let chunk = r.chunk();
    let fits = match at {
        At::NoChunk => chunk.is_none(),
        At::Chunk(n) => chunk == Some(n),
        At::Between(a, b) => chunk.is_some_and(|c| (a..=b).contains(&c)),
    };
    assert!(
        fits,
        "{what}: `{}`: expected the message to name {at:?}, it names {chunk:?}:\n{}",
        r.cmdline, r.stderr
    );
}

/// Writes `container` as `t.spipe` and checks that restore (file and
/// stdin input, both to `out/restored`) and verify refuse it with `code`,
/// one of `needles` in the message and the chunk `at`; and that nothing is
/// left in `out/` and the working directory is unchanged.
#[track_caller]
fn assert_refused(env: &Env, what: &str, container: &[u8], code: i32, needles: &[&str], at: At) {
    assert_refused_with(env, what, container, &PASS, code, needles, at);
}

#[track_caller]
fn assert_refused_with(
    env: &Env,
    what: &str,
    container: &[u8],
    key: &[&str],
    code: i32,
    needles: &[&str],
    at: At,
) {
    env.write("t.spipe", container);
    let before = env.listing();
    let with_key = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(key)
            .map(|s| (*s).to_string())
            .collect::<Vec<_>>()
    };
    let file = with_key(&["restore", "t.spipe", "-o", "out/restored"]);
    let stdin = with_key(&["restore", "-", "-o", "out/restored"]);
    let verify = with_key(&["verify", "t.spipe"]);
    let runs = [
        env.run(&as_strs(&file)),
        env.run_stdin(&as_strs(&stdin), container),
        env.run(&as_strs(&verify)),
    ];
    for r in &runs {
        check_run(r, what, code, needles, at);
    }
    eprintln!(
        "{what}: exit {:?}: {}",
        runs[0].code,
        runs[0].stderr.trim_end()
    );
    env.assert_out_empty(what);
    assert_eq!(
        env.listing(),
        before,
        "{what}: the run changed the directory"
    );
}

const CHUNK_AUTH: &[&str] = &["the chunk was altered, moved or taken from another file"];
const HEADER_AUTH: &[&str] = &["header authentication failed"];
const WRONG_KEY: &[&str] = &["wrong passphrase or key"];

// ---------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------

#[test]
fn truncation_inside_the_header_mid_record_and_at_record_boundaries() {
    watchdog(WATCHDOG, || {
        for (s, spec) in SPECS.iter().enumerate() {
            let env = Env::new();
            let c = env.encrypt(spec, &input(10 + s as u64), "c.spipe");
            let p = Parts::parse(&c);
            assert_eq!(p.records.len(), RECORDS, "{spec}: records");
            let h = p.header.len();
            let cut = |n: usize| c[..n].to_vec();

            // Inside the header: the fixed part, the body, the crypto
            // section, the MAC, the CRC.
            let mac = field(&p.header, "mac");
            for n in [
                0,
                1,
                7,
                8,
                13,
                14,
                30,
                field(&p.header, "salt").at + 3,
                mac.at,
                mac.at + 31,
                h - 4,
                h - 1,
            ] {
                assert_refused(
                    &env,
                    &format!("{spec}: truncated at {n} (inside the {h}-byte header)"),
                    &cut(n),
                    3,
                    &["truncated header", "too short"],
                    At::NoChunk,
                );
            }

            // Exactly at each record boundary: right after the header, before
            // each record (before the last one included), before the trailer.
            let bounds = p.boundaries();
            for (k, &n) in bounds.iter().enumerate() {
                assert_refused(
                    &env,
                    &format!("{spec}: truncated at the boundary before record {k}"),
                    &cut(n),
                    3,
                    &["truncated container: missing chunks or trailer"],
                    At::Chunk(k as u64),
                );
            }

            // Mid-record: in the head, the digest, the ciphertext, the tag, the
            // CRC; of a middle record and of the last.
            for k in [1, RECORDS - 1] {
                let start = bounds[k];
                let pay = p.payload(k);
                for (part, off) in [
                    ("tag byte", 1),
                    ("head", 7),
                    ("payload start", RECORD_HEAD + 5),
                    ("ciphertext", pay.start + (pay.len() - AEAD_TAG) / 2),
                    ("aead tag", pay.end - 3),
                    ("crc", pay.end + 2),
                ] {
                    assert_refused(
                        &env,
                        &format!("{spec}: truncated in record {k}'s {part}"),
                        &cut(start + off),
                        3,
                        &["truncated record"],
                        At::Chunk(k as u64),
                    );
                }
            }

            // Inside the trailer.
            let t = bounds[RECORDS];
            for n in [t + 1, t + 9, c.len() - 1] {
                assert_refused(
                    &env,
                    &format!("{spec}: truncated inside the trailer at {n}"),
                    &cut(n),
                    3,
                    &["truncated trailer"],
                    At::NoChunk,
                );
            }

            // The last record removed, the trailer kept (as is, and made to
            // agree with the records left).
            let mut q = p.clone();
            q.records.pop();
            assert_refused(
                &env,
                &format!("{spec}: last record removed, trailer kept"),
                &q.join(),
                3,
                &["the trailer comes before the last chunk"],
                At::Chunk(LAST),
            );
            q.fix_trailer();
            assert_refused(
                &env,
                &format!("{spec}: last record removed, trailer fixed"),
                &q.join(),
                3,
                &["the trailer comes before the last chunk"],
                At::Chunk(LAST),
            );
            // ... and the trailer removed with it (= cut before the last
            // record, covered above too).
            q.trailer.clear();
            assert_refused(
                &env,
                &format!("{spec}: last record and trailer removed"),
                &q.join(),
                3,
                &["truncated container: missing chunks or trailer"],
                At::Chunk(LAST),
            );
        }
    });
}

/// Every 37th offset of a container processed from a file (so the header
/// records the original length): all refused with 3, nothing written.
#[test]
fn truncation_sweep_over_the_whole_container() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        env.write("in.bin", &input(20));
        let c = env.encrypt_file(CHACHA, "in.bin", "c.spipe", &PASS);
        let h = Parts::parse(&c).header.len();
        let mut n = 0;
        while n < c.len() {
            env.write("t.spipe", &c[..n]);
            let r = env.run(&[
                "restore",
                "t.spipe",
                "-o",
                "out/restored",
                "--passphrase-file",
                "pass",
            ]);
            let what = format!("truncated at {n} of {}", c.len());
            let needles = ["truncated", "too short"];
            // A cut inside the header or the trailer names no chunk.
            let trailer = c.len() - (1 + 16 + DIGEST + 4);
            let at = if n < h || n >= trailer {
                At::NoChunk
            } else {
                At::Between(0, LAST + 1)
            };
            check_run(&r, &what, 3, &needles, at);
            env.assert_out_empty(&what);
            n += 37;
        }
        env.run(&["verify", "c.spipe", "--passphrase-file", "pass"])
            .ok();
    });
}

// ---------------------------------------------------------------------------
// Header tampering
// ---------------------------------------------------------------------------

type Mutate = fn(&mut [u8]);

/// (field, change to the field's bytes, fix the header CRC, exit code,
/// message).
const HEADER_CASES: &[(&str, Mutate, bool, i32, &[&str])] = &[
    ("magic", |f| f[0] ^= 0x01, true, 3, &["bad magic"]),
    // CR LF turned into LF LF, as a newline-translating transfer might.
    ("magic", |f| f[6] = b'\n', false, 3, &["bad magic"]),
    // Version 1 has no crypto section: the section becomes trailing bytes.
    (
        "version",
        |f| f[0] = 1,
        true,
        3,
        &["trailing bytes in header"],
    ),
    (
        "version",
        |f| f[0] = 3,
        true,
        3,
        &["unsupported container version 3"],
    ),
    // A longer body swallows the CRC; no consistent fix-up exists.
    (
        "header_len",
        |f| f[0] += 1,
        false,
        3,
        &["header checksum mismatch"],
    ),
    (
        "header_len",
        |f| f[3] = 0x10,
        false,
        3,
        &["exceeds the limit"],
    ),
    // Bit 0 (variable chunk lengths) is a valid flag: only the MAC can
    // tell that it was set after the fact.
    ("flags", |f| f[0] = 1, true, 3, HEADER_AUTH),
    ("flags", |f| f[0] = 2, true, 3, &["unknown header flags"]),
    ("chunk_size", |f| f[1] ^= 0x30, true, 3, HEADER_AUTH),
    (
        "chunk_size",
        |f| f[1] ^= 0x30,
        false,
        3,
        &["header checksum mismatch"],
    ),
    ("original_len", |f| f[0] ^= 0x01, true, 3, HEADER_AUTH),
    ("mode", |f| f[0] ^= 0o44, true, 3, HEADER_AUTH),
    ("checksum_id", |f| f[0] ^= 0x03, true, 3, HEADER_AUTH),
    // Parsed differently from there on: some parse error or the MAC.
    (
        "stage_count",
        |f| f[0] = 0,
        true,
        3,
        &[
            "unknown kdf id",
            "trailing bytes in header",
            "header authentication failed",
        ],
    ),
    ("stage_id", |f| f[0] ^= 0x03, true, 3, HEADER_AUTH),
    ("stage_param", |f| f[0] ^= 0x01, true, 3, HEADER_AUTH),
    ("stage_name", |f| f[0] ^= 0x20, true, 3, HEADER_AUTH),
    // The other valid cipher: same keys, so the key check passes; the MAC
    // does not.
    ("cipher_id", |f| f[0] ^= 0x03, true, 3, HEADER_AUTH),
    ("cipher_id", |f| f[0] = 9, true, 3, &["unknown cipher id 9"]),
    // kdf 0 (raw key) has no Argon2 fields: the rest no longer fits.
    (
        "kdf_id",
        |f| f[0] = 0,
        true,
        3,
        &["trailing bytes in header"],
    ),
    ("kdf_id", |f| f[0] = 7, true, 3, &["unknown kdf id 7"]),
    // Valid KDF parameters, but other ones: another master key.
    ("argon2_m", |f| f[0] = 72, true, 4, WRONG_KEY),
    ("argon2_t", |f| f[0] = 2, true, 4, WRONG_KEY),
    ("argon2_p", |f| f[0] = 2, true, 4, WRONG_KEY),
    // Above the caps: refused before any key derivation.
    (
        "argon2_m",
        |f| f[3] = 0x01,
        true,
        3,
        &["refusing the header's key derivation"],
    ),
    (
        "argon2_t",
        |f| f[0] = 0,
        true,
        3,
        &["refusing the header's key derivation"],
    ),
    (
        "argon2_p",
        |f| f[0] = 17,
        true,
        3,
        &["refusing the header's key derivation"],
    ),
    ("salt", |f| f[0] ^= 0x01, true, 4, WRONG_KEY),
    ("salt", |f| f[15] ^= 0x80, true, 4, WRONG_KEY),
    (
        "salt",
        |f| f[7] ^= 0x10,
        false,
        3,
        &["header checksum mismatch"],
    ),
    ("file_nonce", |f| f[0] ^= 0x01, true, 4, WRONG_KEY),
    ("file_nonce", |f| f[31] ^= 0x80, true, 4, WRONG_KEY),
    // The key check itself: a wrong key cannot be told from an altered
    // check value.
    ("key_check", |f| f[0] ^= 0x01, true, 4, WRONG_KEY),
    ("mac", |f| f[0] ^= 0x01, true, 3, HEADER_AUTH),
    ("mac", |f| f[31] ^= 0x80, true, 3, HEADER_AUTH),
    (
        "mac",
        |f| f[16] ^= 0x04,
        false,
        3,
        &["header checksum mismatch"],
    ),
    (
        "crc",
        |f| f[0] ^= 0x01,
        false,
        3,
        &["header checksum mismatch"],
    ),
];

#[test]
fn header_tampering_each_field() {
    watchdog(WATCHDOG, || {
        for (s, spec) in SPECS.iter().enumerate() {
            let env = Env::new();
            let c = env.encrypt(spec, &input(30 + s as u64), "c.spipe");
            let p = Parts::parse(&c);
            let fields = header_fields(&p.header);
            // Every field is covered by at least one case.
            for f in &fields {
                assert!(
                    HEADER_CASES.iter().any(|(n, ..)| *n == f.name) || f.name == "stage_name_len",
                    "{spec}: no tamper case for header field {}",
                    f.name
                );
            }
            for &(name, mutate, fix_crc, code, needles) in HEADER_CASES {
                let f = field(&p.header, name);
                let mut q = p.clone();
                mutate(&mut q.header[f.at..f.at + f.len]);
                assert_ne!(q.header, p.header, "{spec}: case {name} changed nothing");
                if fix_crc {
                    reseal(&mut q.header);
                }
                let what = format!(
                    "{spec}: header field {name} altered ({} CRC fix)",
                    if fix_crc { "with" } else { "no" }
                );
                assert_refused(&env, &what, &q.join(), code, needles, At::NoChunk);
            }
            // The length of a stage name: the stage entry then ends
            // elsewhere, whatever it parses as.
            let f = field(&p.header, "stage_name_len");
            let mut q = p.clone();
            q.header[f.at] += 1;
            reseal(&mut q.header);
            assert_refused(
                &env,
                &format!("{spec}: stage name length altered"),
                &q.join(),
                3,
                &[],
                At::NoChunk,
            );
            // The untouched container still opens.
            env.run(&["verify", "c.spipe", "--passphrase-file", "pass"])
                .ok();
        }
    });
}

// ---------------------------------------------------------------------------
// Record tampering
// ---------------------------------------------------------------------------

/// (what, change to the record (digest length given), fix the record CRC,
/// message). Applied to a middle record and to the last one.
type RecordMutate = fn(&mut Vec<u8>, usize);

const RECORD_CASES: &[(&str, RecordMutate, bool, &[&str])] = &[
    ("tag byte", |r, _| r[0] = b'X', true, &["bad record tag"]),
    (
        "index + 1",
        |r, _| {
            let i = u64_at(r, 1);
            set_index(r, i + 1);
        },
        true,
        &["record out of order"],
    ),
    (
        "flags bit 1",
        |r, _| r[9] |= 0x02,
        true,
        &["unknown record flags"],
    ),
    ("skip mask bit 0", |r, _| r[10] ^= 0x01, true, CHUNK_AUTH),
    (
        "skip mask bit 1",
        |r, _| r[10] |= 0x02,
        true,
        &["bad skip mask"],
    ),
    (
        "payload start",
        |r, _| r[RECORD_HEAD + 3] ^= 0x01,
        true,
        CHUNK_AUTH,
    ),
    // The payload length, with the record re-framed to match (a byte of
    // the tag dropped or one added) and the CRC fixed.
    (
        "payload_len - 1, re-framed",
        |r, _| {
            let n = u32_at(r, 15);
            let crc_at = r.len() - 4;
            r.remove(crc_at - 1);
            set_payload_len(r, n - 1);
        },
        true,
        CHUNK_AUTH,
    ),
    (
        "payload_len + 1, re-framed",
        |r, _| {
            let n = u32_at(r, 15);
            let crc_at = r.len() - 4;
            r.insert(crc_at, 0);
            set_payload_len(r, n + 1);
        },
        true,
        CHUNK_AUTH,
    ),
    // The length field alone (CRC recomputed over the record as it was):
    // the framing shifts and the CRC no longer lines up.
    (
        "payload_len - 1, field only",
        |r, _| {
            let n = u32_at(r, 15);
            set_payload_len(r, n - 1);
        },
        true,
        &["record checksum mismatch"],
    ),
    (
        "payload_len over the bound",
        |r, _| set_payload_len(r, 0x7fff_ffff),
        true,
        &["exceeds the bound"],
    ),
    (
        "ciphertext first byte",
        |r, d| r[RECORD_HEAD + d] ^= 0x01,
        true,
        CHUNK_AUTH,
    ),
    (
        "ciphertext middle byte",
        |r, d| {
            let mid = RECORD_HEAD + d + (r.len() - 4 - AEAD_TAG - RECORD_HEAD - d) / 2;
            r[mid] ^= 0x80;
        },
        true,
        CHUNK_AUTH,
    ),
    (
        "aead tag first byte",
        |r, _| {
            let at = r.len() - 4 - AEAD_TAG;
            r[at] ^= 0x01;
        },
        true,
        CHUNK_AUTH,
    ),
    (
        "aead tag last byte",
        |r, _| {
            let at = r.len() - 5;
            r[at] ^= 0x80;
        },
        true,
        CHUNK_AUTH,
    ),
    // Without the CRC fix-up: the CRC catches it first.
    (
        "ciphertext, no CRC fix",
        |r, d| r[RECORD_HEAD + d] ^= 0x01,
        false,
        &["record checksum mismatch"],
    ),
    (
        "aead tag, no CRC fix",
        |r, _| {
            let at = r.len() - 5;
            r[at] ^= 0x80;
        },
        false,
        &["record checksum mismatch"],
    ),
    (
        "crc",
        |r, _| {
            let at = r.len() - 1;
            r[at] ^= 0x01;
        },
        false,
        &["record checksum mismatch"],
    ),
];

#[test]
fn record_tampering_each_field() {
    watchdog(WATCHDOG, || {
        for (s, spec) in SPECS.iter().enumerate() {
            let env = Env::new();
            let c = env.encrypt(spec, &input(40 + s as u64), "c.spipe");
            let p = Parts::parse(&c);
            for k in [1, RECORDS - 1] {
                for &(name, mutate, fix_crc, needles) in RECORD_CASES {
                    let mut q = p.clone();
                    mutate(&mut q.records[k], p.digest_len);
                    if fix_crc {
                        reseal(&mut q.records[k]);
                    }
                    assert_refused(
                        &env,
                        &format!("{spec}: record {k}: {name}"),
                        &q.join(),
                        3,
                        needles,
                        At::Chunk(k as u64),
                    );
                }
                // The original length: a middle record must be full (a
                // framing rule); the last one's is bound by the AEAD.
                let mut q = p.clone();
                let olen = u32_at(&q.records[k], 11);
                q.records[k][11..15].copy_from_slice(&(olen - 1).to_le_bytes());
                reseal(&mut q.records[k]);
                // The trailer made to agree, so that only the record can fail.
                q.fix_trailer();
                let needles: &[&str] = if k == RECORDS - 1 {
                    CHUNK_AUTH
                } else {
                    &["does not fit chunk size"]
                };
                assert_refused(
                    &env,
                    &format!("{spec}: record {k}: original_len - 1"),
                    &q.join(),
                    3,
                    needles,
                    At::Chunk(k as u64),
                );
            }
        }
    });
}

#[test]
fn trailer_tampering_is_refused() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let c = env.encrypt(AES, &input(50), "c.spipe");
        let p = Parts::parse(&c);
        // The keyed whole-file digest, CRC fixed: only the digest check
        // catches it, after every chunk authenticated.
        let mut q = p.clone();
        q.trailer[17] ^= 0x01;
        reseal(&mut q.trailer);
        assert_refused(
            &env,
            "trailer digest (CRC fixed)",
            &q.join(),
            3,
            &["whole-file sha256 mismatch"],
            At::NoChunk,
        );
        let mut q = p.clone();
        q.trailer[1] ^= 0x01;
        reseal(&mut q.trailer);
        assert_refused(
            &env,
            "trailer chunk count",
            &q.join(),
            3,
            &["trailer says"],
            At::NoChunk,
        );
        let mut q = p.clone();
        q.trailer[9] ^= 0x01;
        assert_refused(
            &env,
            "trailer original length (no CRC fix)",
            &q.join(),
            3,
            &["trailer checksum mismatch"],
            At::NoChunk,
        );
        let mut appended = c.clone();
        appended.push(0);
        assert_refused(
            &env,
            "a byte after the trailer",
            &appended,
            3,
            &["unexpected data after the trailer"],
            At::NoChunk,
        );
    });
}

// ---------------------------------------------------------------------------
// Reordered, duplicated, appended, dropped, spliced records; the last flag
// ---------------------------------------------------------------------------

#[test]
fn reordered_duplicated_appended_and_dropped_records() {
    watchdog(WATCHDOG, || {
        for (s, spec) in SPECS.iter().enumerate() {
            let env = Env::new();
            let c = env.encrypt(spec, &input(60 + s as u64), "c.spipe");
            let p = Parts::parse(&c);

            // Swap records 1 and 2 as they are: the index sequence breaks.
            let mut q = p.clone();
            q.records.swap(1, 2);
            assert_refused(
                &env,
                &format!("{spec}: records 1 and 2 swapped"),
                &q.join(),
                3,
                &["record out of order: found chunk 2"],
                At::Chunk(1),
            );
            // Swapped with the indices and CRCs fixed: only the AEAD (the
            // nonce holds the index) can tell.
            set_index(&mut q.records[1], 1);
            set_index(&mut q.records[2], 2);
            reseal(&mut q.records[1]);
            reseal(&mut q.records[2]);
            assert_refused(
                &env,
                &format!("{spec}: records 1 and 2 swapped, indices fixed"),
                &q.join(),
                3,
                CHUNK_AUTH,
                At::Between(1, 2),
            );

            // Duplicate record 1 right after itself.
            let mut q = p.clone();
            q.records.insert(2, p.records[1].clone());
            assert_refused(
                &env,
                &format!("{spec}: record 1 duplicated"),
                &q.join(),
                3,
                &["record out of order: found chunk 1"],
                At::Chunk(2),
            );
            // ... with every index from there renumbered and the trailer
            // made to agree: the AEAD again.
            q.renumber_from(2);
            assert_refused(
                &env,
                &format!("{spec}: record 1 duplicated, indices and trailer fixed"),
                &q.join(),
                3,
                CHUNK_AUTH,
                At::Between(2, LAST + 1),
            );

            // Append a record after the last one: a copy of the last, and a
            // copy of record 0, each with the next index, CRC and trailer
            // fixed.
            for (src, name) in [(RECORDS - 1, "the last record"), (0, "record 0")] {
                let mut q = p.clone();
                let mut extra = p.records[src].clone();
                set_index(&mut extra, RECORDS as u64);
                reseal(&mut extra);
                q.records.push(extra);
                q.fix_trailer();
                assert_refused(
                    &env,
                    &format!("{spec}: a copy of {name} appended after the last"),
                    &q.join(),
                    3,
                    &["chunk after the last chunk"],
                    At::Chunk(RECORDS as u64),
                );
            }

            // Drop record 2: the index sequence breaks ...
            let mut q = p.clone();
            q.records.remove(2);
            assert_refused(
                &env,
                &format!("{spec}: record 2 dropped"),
                &q.join(),
                3,
                &["record out of order: found chunk 3"],
                At::Chunk(2),
            );
            // ... and with the later records renumbered and the trailer
            // fixed, the AEAD catches it.
            q.renumber_from(2);
            assert_refused(
                &env,
                &format!("{spec}: record 2 dropped, indices and trailer fixed"),
                &q.join(),
                3,
                CHUNK_AUTH,
                At::Between(2, LAST - 1),
            );
        }
    });
}

#[test]
fn record_spliced_from_another_file_with_the_same_passphrase() {
    watchdog(WATCHDOG, || {
        for (s, spec) in SPECS.iter().enumerate() {
            let env = Env::new();
            // The same input, the same passphrase, the same settings: the
            // records have the same index, lengths and framing.
            let data = input(70 + s as u64);
            let a = Parts::parse(&env.encrypt(spec, &data, "a.spipe"));
            let b = Parts::parse(&env.encrypt(spec, &data, "b.spipe"));
            for k in [0, 2, RECORDS - 1] {
                assert_eq!(
                    a.records[k].len(),
                    b.records[k].len(),
                    "{spec}: record {k} should frame alike in both files"
                );
                assert_eq!(a.records[k][..RECORD_HEAD], b.records[k][..RECORD_HEAD]);
                let mut q = a.clone();
                q.records[k] = b.records[k].clone();
                assert_refused(
                    &env,
                    &format!("{spec}: record {k} spliced from another file"),
                    &q.join(),
                    3,
                    CHUNK_AUTH,
                    At::Chunk(k as u64),
                );
            }
            // The other file's whole body under this file's header.
            let mut q = b.clone();
            q.header = a.header.clone();
            assert_refused(
                &env,
                &format!("{spec}: all records and trailer from another file"),
                &q.join(),
                3,
                CHUNK_AUTH,
                At::Between(0, LAST),
            );
        }
    });
}

#[test]
fn forged_last_flag_is_refused() {
    watchdog(WATCHDOG, || {
        for (s, spec) in SPECS.iter().enumerate() {
            let env = Env::new();
            let c = env.encrypt(spec, &input(80 + s as u64), "c.spipe");
            let p = Parts::parse(&c);
            // Record 2 claims to be the last, CRC fixed, the rest kept.
            let mut q = p.clone();
            q.records[2][9] |= FLAG_LAST;
            reseal(&mut q.records[2]);
            assert_refused(
                &env,
                &format!("{spec}: record 2 claims to be last"),
                &q.join(),
                3,
                &[CHUNK_AUTH[0], "chunk after the last chunk"],
                At::Between(2, 3),
            );
            // A forged truncation: record 2 claims to be last, the rest is
            // dropped and the trailer agrees. Only the AEAD (the nonce's
            // last-chunk byte) can catch it.
            q.records.truncate(3);
            q.fix_trailer();
            assert_refused(
                &env,
                &format!("{spec}: truncated after record 2, which claims to be last"),
                &q.join(),
                3,
                CHUNK_AUTH,
                At::Chunk(2),
            );
            // The real last record made to claim it is not: it is short, so
            // the framing refuses it.
            let mut q = p.clone();
            q.records[RECORDS - 1][9] &= !FLAG_LAST;
            reseal(&mut q.records[RECORDS - 1]);
            assert_refused(
                &env,
                &format!("{spec}: the last record claims not to be last"),
                &q.join(),
                3,
                &["does not fit chunk size"],
                At::Chunk(LAST),
            );
        }
    });
}

/// An input that is a whole number of chunks: the last record is full, so
/// clearing its last flag passes the framing and only the AEAD (or the
/// missing last record before the trailer) catches it.
#[test]
fn cleared_last_flag_on_a_full_last_chunk_is_refused() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let c = env.encrypt(CHACHA, &mixed_data(4 * CHUNK, 85), "c.spipe");
        let mut p = Parts::parse(&c);
        assert_eq!(p.records.len(), 4);
        p.records[3][9] &= !FLAG_LAST;
        reseal(&mut p.records[3]);
        assert_refused(
            &env,
            "a full last record claims not to be last",
            &p.join(),
            3,
            &[CHUNK_AUTH[0], "the trailer comes before the last chunk"],
            At::Between(3, 4),
        );
    });
}

// ---------------------------------------------------------------------------
// Restore to stdout
// ---------------------------------------------------------------------------

/// Asserts that `out` is `original[..k * CHUNK]` for some k <= `max_chunks`
/// and returns k.
#[track_caller]
fn assert_whole_chunk_prefix(what: &str, out: &[u8], original: &[u8], max_chunks: usize) -> usize {
    assert_eq!(
        out.len() % CHUNK,
        0,
        "{what}: {} bytes reached stdout, not a whole number of chunks",
        out.len()
    );
    let k = out.len() / CHUNK;
    assert!(
        k <= max_chunks,
        "{what}: {k} chunks reached stdout, at most {max_chunks} are authentic"
    );
    assert!(
        out == &original[..out.len()],
        "{what}: stdout is not a prefix of the original"
    );
    k
}

#[test]
fn stdout_restore_of_a_truncated_container_emits_only_authenticated_chunks() {
    watchdog(WATCHDOG, || {
        // 100 chunks: more than the writer's 256 KiB buffer, so some output
        // can reach stdout before the failure.
        let env = Env::new();
        let original = mixed_data(99 * CHUNK + 777, 90);
        let c = env.encrypt(CHACHA, &original, "c.spipe");
        let p = Parts::parse(&c);
        let n = p.records.len();
        assert_eq!(n, 100);
        let bounds = p.boundaries();
        let restore_c = |container: &[u8]| {
            env.write("t.spipe", container);
            env.run(&["restore", "t.spipe", "-c", "--passphrase-file", "pass"])
        };

        let cases: Vec<(&str, Vec<u8>, u64, usize)> = vec![
            (
                "cut before the final record",
                c[..bounds[n - 1]].to_vec(),
                (n - 1) as u64,
                n - 1,
            ),
            (
                "cut inside the final record",
                c[..bounds[n - 1] + 100].to_vec(),
                (n - 1) as u64,
                n - 1,
            ),
            (
                "cut before the trailer",
                c[..bounds[n]].to_vec(),
                n as u64,
                n,
            ),
            (
                "cut inside record 70",
                c[..bounds[70] + 50].to_vec(),
                70,
                70,
            ),
        ];
        for (what, container, chunk, max_chunks) in cases {
            let r = restore_c(&container);
            let needle = if what.contains("inside") {
                "truncated record"
            } else {
                "truncated container"
            };
            check_run(&r, what, 3, &[needle], At::Chunk(chunk));
            let k = assert_whole_chunk_prefix(what, &r.stdout, &original, max_chunks);
            eprintln!("{what}: exit 3, {k} whole chunks reached stdout");
        }

        // A forged truncation: record 60 claims to be last, the rest is
        // gone, the trailer agrees. Record 60 must not reach stdout.
        let mut q = p.clone();
        q.records[60][9] |= FLAG_LAST;
        reseal(&mut q.records[60]);
        q.records.truncate(61);
        q.fix_trailer();
        let r = restore_c(&q.join());
        let what = "record 60 forged as last";
        check_run(&r, what, 3, CHUNK_AUTH, At::Chunk(60));
        let k = assert_whole_chunk_prefix(what, &r.stdout, &original, 60);
        eprintln!("{what}: exit 3, {k} whole chunks reached stdout");

        // The intact container, for comparison.
        let r = restore_c(&c).ok();
        assert!(r.stdout == original, "the intact container restores");
    });
}

// ---------------------------------------------------------------------------
// Wrong secrets
// ---------------------------------------------------------------------------

#[test]
fn wrong_passphrase_exits_4_and_writes_nothing() {
    watchdog(WATCHDOG, || {
        for (s, spec) in SPECS.iter().enumerate() {
            let env = Env::new();
            let c = env.encrypt(spec, &input(100 + s as u64), "c.spipe");
            assert_refused_with(
                &env,
                &format!("{spec}: wrong passphrase"),
                &c,
                &["--passphrase-file", "wrong-pass"],
                4,
                WRONG_KEY,
                At::NoChunk,
            );
            // An existing output survives a wrong passphrase, even with -f.
            env.write("out/keep", b"precious");
            for input in ["c.spipe", "-"] {
                let args = [
                    "restore",
                    input,
                    "-o",
                    "out/keep",
                    "-f",
                    "--passphrase-file",
                    "wrong-pass",
                ];
                let r = if input == "-" {
                    env.run_stdin(&args, &c)
                } else {
                    env.run(&args)
                };
                r.code(4).stderr_has(WRONG_KEY[0]);
                assert_eq!(env.read("out/keep"), b"precious", "{spec}: output kept");
                assert_eq!(env.out_listing(), ["keep"], "{spec}: no temp file left");
            }
            fs::remove_file(env.path("out/keep")).expect("remove out/keep");
        }
    });
}

#[test]
fn wrong_key_file_and_the_wrong_kind_of_secret_exit_4() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        env.write("key", &random_bytes(32));
        env.write("other-key", &random_bytes(32));
        env.write("in.bin", &input(110));
        for spec in SPECS {
            let keyed = env.encrypt_file(spec, "in.bin", "k.spipe", &["--key-file", "key"]);
            let pass = env.encrypt_file(spec, "in.bin", "p.spipe", &PASS);
            assert_refused_with(
                &env,
                &format!("{spec}: wrong key file"),
                &keyed,
                &["--key-file", "other-key"],
                4,
                WRONG_KEY,
                At::NoChunk,
            );
            assert_refused_with(
                &env,
                &format!("{spec}: a passphrase for a key-file container"),
                &keyed,
                &PASS,
                4,
                &["encrypted with a key file, not a passphrase"],
                At::NoChunk,
            );
            assert_refused_with(
                &env,
                &format!("{spec}: a key file for a passphrase container"),
                &pass,
                &["--key-file", "key"],
                4,
                &["encrypted with a passphrase, not a key file"],
                At::NoChunk,
            );
            // The right ones open them.
            env.run(&["verify", "k.spipe", "--key-file", "key"]).ok();
            env.run(&["verify", "p.spipe", "--passphrase-file", "pass"])
                .ok();
        }
    });
}

// ---------------------------------------------------------------------------
// Key sources
// ---------------------------------------------------------------------------

/// Restores `container` to `out/r` with `key` and checks the bytes.
#[track_caller]
fn assert_restores(env: &Env, container: &str, key: &[&str], original: &[u8]) {
    let mut args = vec!["restore", container, "-o", "out/r", "-f"];
    args.extend(key);
    env.run(&args).ok();
    assert!(
        env.read("out/r") == original,
        "{container}: restored bytes differ"
    );
    fs::remove_file(env.path("out/r")).expect("remove out/r");
}

#[test]
fn passphrase_fd_round_trip() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let original = input(120);
        env.write("in.bin", &original);
        // The passphrase on the child's stdin, read as descriptor 0.
        env.run_stdin(
            &[
                "process",
                "in.bin",
                "-o",
                "c.spipe",
                "-s",
                AES,
                "--chunk-size",
                CHUNK_ARG,
                "--argon2",
                ARGON2,
                "--passphrase-fd",
                "0",
            ],
            PASSPHRASE,
        )
        .ok();
        // The same first line from a file opens it, and so does the fd.
        assert_restores(&env, "c.spipe", &PASS, &original);
        env.run_stdin(
            &["restore", "c.spipe", "-o", "out/r", "--passphrase-fd", "0"],
            PASSPHRASE,
        )
        .ok();
        assert!(env.read("out/r") == original, "restored through the fd");
        // A wrong passphrase through the fd: 4.
        fs::remove_file(env.path("out/r")).expect("remove out/r");
        env.run_stdin(
            &["restore", "c.spipe", "-o", "out/r", "--passphrase-fd", "0"],
            OTHER_PASSPHRASE,
        )
        .code(4);
        env.assert_out_empty("wrong passphrase through the fd");
    });
}

#[test]
fn passphrase_file_from_the_environment_round_trip() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let original = input(130);
        env.write("in.bin", &original);
        let with_env = |args: &[&str], file: &str| {
            let mut cmd = env.command(args);
            cmd.env(PASSPHRASE_ENV, env.path(file));
            env.run_cmd(cmd, args, None)
        };
        with_env(
            &[
                "process",
                "in.bin",
                "-o",
                "c.spipe",
                "-s",
                CHACHA,
                "--chunk-size",
                CHUNK_ARG,
                "--argon2",
                ARGON2,
            ],
            "pass",
        )
        .ok();
        with_env(&["restore", "c.spipe", "-o", "out/r"], "pass").ok();
        assert!(
            env.read("out/r") == original,
            "restored with the env passphrase"
        );
        fs::remove_file(env.path("out/r")).expect("remove out/r");
        // A flag wins over the environment.
        with_env(
            &[
                "restore",
                "c.spipe",
                "-o",
                "out/r",
                "--passphrase-file",
                "pass",
            ],
            "wrong-pass",
        )
        .ok();
        fs::remove_file(env.path("out/r")).expect("remove out/r");
        // The wrong passphrase from the environment: 4, nothing written.
        with_env(&["restore", "c.spipe", "-o", "out/r"], "wrong-pass")
            .code(4)
            .stderr_has(WRONG_KEY[0]);
        env.assert_out_empty("wrong passphrase from the environment");
        // And the file alone opens it too.
        assert_restores(&env, "c.spipe", &PASS, &original);
    });
}

#[test]
fn key_file_round_trip() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let original = input(140);
        env.write("in.bin", &original);
        env.write("key", &random_bytes(32));
        for spec in SPECS {
            env.encrypt_file(spec, "in.bin", "c.spipe", &["--key-file", "key"]);
            assert_restores(&env, "c.spipe", &["--key-file", "key"], &original);
            let info = env.run(&["info", "c.spipe"]).ok();
            assert!(
                info.stdout_text().contains("raw 32-byte key"),
                "info names the key kind:\n{}",
                info.stdout_text()
            );
        }
        // --argon2 means nothing for a key file: refused.
        env.run(&[
            "process",
            "in.bin",
            "-o",
            "x.spipe",
            "-s",
            AES,
            "--key-file",
            "key",
            "--argon2",
            ARGON2,
        ])
        .code(2)
        .stderr_has("--argon2");
        assert!(!env.exists("x.spipe"), "no container after a usage error");
    });
}

#[test]
fn no_key_source_and_no_terminal_exits_2() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        env.write("in.bin", &input(150));
        let before = env.listing();
        env.run(&[
            "process", "in.bin", "-o", "c.spipe", "-s", AES, "--argon2", ARGON2,
        ])
        .code(2)
        .stderr_has("--passphrase-file");
        assert_eq!(env.listing(), before, "process left nothing");

        let c = env.encrypt(AES, &input(150), "c.spipe");
        let before = env.listing();
        env.run(&["restore", "c.spipe", "-o", "out/r"])
            .code(2)
            .stderr_has("--passphrase-file");
        env.run(&["verify", "c.spipe"])
            .code(2)
            .stderr_has("--passphrase-file");
        // stdin a pipe (holding the container): still no terminal to ask on.
        env.run_stdin(&["restore", "-", "-o", "out/r"], &c)
            .code(2)
            .stderr_has("--passphrase-file");
        env.assert_out_empty("no key source");
        assert_eq!(env.listing(), before, "restore left nothing");
    });
}

#[test]
fn key_flags_without_a_cipher_stage_exit_2() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        env.write("in.bin", &input(160));
        env.write("key", &random_bytes(32));
        let before = env.listing();
        let base = ["process", "in.bin", "-o", "x.spipe", "-s", "zstd:3,sha256"];
        for extra in [
            &["--passphrase-file", "pass"][..],
            &["--key-file", "key"][..],
            &["--passphrase-fd", "0"][..],
            &["--argon2", ARGON2][..],
        ] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            env.run(&args).code(2).stderr_has("no cipher");
        }
        assert_eq!(env.listing(), before, "no container after a usage error");
    });
}

#[test]
fn key_file_of_the_wrong_length_exits_2() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        env.write("in.bin", &input(170));
        env.write("key", &random_bytes(32));
        env.write("short-key", &random_bytes(31));
        env.write("long-key", &random_bytes(33));
        env.encrypt_file(AES, "in.bin", "c.spipe", &["--key-file", "key"]);
        let before = env.listing();
        for (file, found) in [("short-key", "has 31"), ("long-key", "more than 32")] {
            env.run(&[
                "process",
                "in.bin",
                "-o",
                "x.spipe",
                "-s",
                AES,
                "--key-file",
                file,
            ])
            .code(2)
            .stderr_has("exactly 32")
            .stderr_has(found);
            env.run(&["restore", "c.spipe", "-o", "out/r", "--key-file", file])
                .code(2)
                .stderr_has("exactly 32");
        }
        env.assert_out_empty("key file of the wrong length");
        assert_eq!(env.listing(), before, "nothing written");
    });
}

#[test]
fn two_key_flags_exit_2() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        env.write("in.bin", &input(180));
        env.write("key", &random_bytes(32));
        env.encrypt(AES, &input(180), "c.spipe");
        let before = env.listing();
        let pairs: [[&str; 4]; 3] = [
            ["--passphrase-file", "pass", "--key-file", "key"],
            ["--passphrase-file", "pass", "--passphrase-fd", "0"],
            ["--passphrase-fd", "0", "--key-file", "key"],
        ];
        for pair in pairs {
            let process: Vec<&str> = ["process", "in.bin", "-o", "x.spipe", "-s", AES]
                .iter()
                .chain(&pair)
                .copied()
                .collect();
            let restore: Vec<&str> = ["restore", "c.spipe", "-o", "out/r"]
                .iter()
                .chain(&pair)
                .copied()
                .collect();
            for args in [process, restore] {
                env.run(&args).code(2).stderr_has("cannot be used with");
            }
        }
        env.assert_out_empty("two key flags");
        assert_eq!(env.listing(), before, "nothing written");
    });
}

// ---------------------------------------------------------------------------
// Fresh randomness per file; info without a key
// ---------------------------------------------------------------------------

#[test]
fn same_input_encrypted_twice_gives_different_bytes() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let original = input(190);
        env.write("in.bin", &original);
        for spec in SPECS {
            let a = env.encrypt_file(spec, "in.bin", "a.spipe", &PASS);
            let b = env.encrypt_file(spec, "in.bin", "b.spipe", &PASS);
            assert_ne!(a, b, "{spec}: two encryptions must differ");
            let (pa, pb) = (Parts::parse(&a), Parts::parse(&b));
            for name in ["salt", "file_nonce", "key_check", "mac"] {
                let f = field(&pa.header, name);
                assert_ne!(
                    pa.header[f.at..f.at + f.len],
                    pb.header[f.at..f.at + f.len],
                    "{spec}: {name} must be fresh per file"
                );
            }
            assert_eq!(pa.records.len(), pb.records.len());
            for (k, (ra, rb)) in pa.records.iter().zip(&pb.records).enumerate() {
                assert_ne!(
                    ra[RECORD_HEAD..],
                    rb[RECORD_HEAD..],
                    "{spec}: record {k}'s digest and ciphertext must differ"
                );
            }
            assert_restores(&env, "a.spipe", &PASS, &original);
            assert_restores(&env, "b.spipe", &PASS, &original);
        }
    });
}

#[test]
fn info_needs_no_key_and_hides_the_plaintext_digest() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let original = input(200);
        env.write("in.bin", &original);
        let cases = [
            (
                AES,
                "aes-256-gcm",
                "sha256",
                hex(&Sha256::digest(&original)),
            ),
            (
                CHACHA,
                "chacha20-poly1305",
                "blake3",
                blake3::hash(&original).to_hex().to_string(),
            ),
        ];
        for (spec, cipher, checksum, digest) in cases {
            let c = env.encrypt_file(spec, "in.bin", "c.spipe", &PASS);
            let info = env.run(&["info", "c.spipe"]).ok();
            let text = info.stdout_text();
            for needle in [
                "syncpipe container v2",
                cipher,
                "argon2id m=64,t=1,p=1",
                checksum,
                "keyed",
            ] {
                assert!(
                    text.contains(needle),
                    "{spec}: info lacks {needle:?}:\n{text}"
                );
            }
            assert!(
                !text.contains(&digest),
                "{spec}: info prints the plaintext {checksum} without a key:\n{text}"
            );
            // Nor the stored (keyed) trailer digest.
            let p = Parts::parse(&c);
            let stored = hex(&p.trailer[17..17 + DIGEST]);
            assert!(
                !text.contains(&stored),
                "{spec}: info prints the stored digest"
            );
            // With the key, verify shows the plaintext digest: the check
            // above compares against the right value.
            let v = env
                .run(&["verify", "c.spipe", "--passphrase-file", "pass"])
                .ok();
            assert!(
                v.stdout_text().contains(&digest),
                "{spec}: verify shows the digest:\n{}",
                v.stdout_text()
            );
        }
    });
}

// ---------------------------------------------------------------------------
// The terminal prompt
// ---------------------------------------------------------------------------

/// Runs `cmd` under `script` (a pseudo-terminal as stdin and controlling
/// terminal), typing `typed` into it. `None` if `script` is not installed.
fn run_in_terminal(env: &Env, cmd: &str, typed: &[u8]) -> Option<Run> {
    let available = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        return None;
    }
    let mut c = Command::new("script");
    c.args(["-qec", cmd, "/dev/null"])
        .current_dir(env.dir.path())
        .env_remove(PASSPHRASE_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Some(env.run_cmd(c, &["(script)", cmd], Some(typed)))
}

#[test]
fn terminal_prompt_asks_twice_when_encrypting() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        let original = input(210);
        env.write("in.bin", &original);
        let process = |out: &str| {
            format!(
                "'{BIN}' process in.bin -o {out} -s {AES} --chunk-size {CHUNK_ARG} --argon2 {ARGON2}"
            )
        };
        let pass_line = PASSPHRASE;
        let twice = [pass_line, pass_line].concat();
        let Some(r) = run_in_terminal(&env, &process("p.spipe"), &twice) else {
            eprintln!("note: `script` is not installed; the terminal prompt test is skipped");
            return;
        };
        r.code(0);
        let shown = r.stdout_text();
        assert!(
            shown.contains("Passphrase: ") && shown.contains("Passphrase (again): "),
            "encrypting asks twice:\n{shown}"
        );
        // The passphrase typed at the prompt is the one in `pass`.
        assert_restores(&env, "p.spipe", &PASS, &original);

        // A mismatched confirmation: 2, nothing written.
        let mismatched = [pass_line, OTHER_PASSPHRASE].concat();
        let r = run_in_terminal(&env, &process("q.spipe"), &mismatched)
            .expect("script was available a moment ago");
        r.code(2);
        assert!(
            r.stdout_text().contains("do not match"),
            "mismatch message:\n{}",
            r.stdout_text()
        );
        assert!(!env.exists("q.spipe"), "no container after a mismatch");

        // Restoring asks once; a wrong passphrase at the prompt gives 4.
        let restore = format!("'{BIN}' restore p.spipe -o out/r");
        let r = run_in_terminal(&env, &restore, pass_line).expect("script is available");
        r.code(0);
        assert!(
            !r.stdout_text().contains("again"),
            "restoring asks once:\n{}",
            r.stdout_text()
        );
        assert!(env.read("out/r") == original, "restored through the prompt");
        fs::remove_file(env.path("out/r")).expect("remove out/r");
        let r = run_in_terminal(&env, &restore, OTHER_PASSPHRASE).expect("script is available");
        r.code(4);
        env.assert_out_empty("wrong passphrase at the prompt");
    });
}

// ---------------------------------------------------------------------------
// Edge cases
// ---------------------------------------------------------------------------

/// An empty input is one empty, final record holding only the AEAD tag.
#[test]
fn empty_input_round_trips_and_its_only_record_is_protected() {
    watchdog(WATCHDOG, || {
        for spec in SPECS {
            let env = Env::new();
            env.write("empty", b"");
            let c = env.encrypt_file(spec, "empty", "c.spipe", &PASS);
            let p = Parts::parse(&c);
            assert_eq!(p.records.len(), 1, "{spec}: one record");
            assert_eq!(
                p.payload(0).len(),
                AEAD_TAG,
                "{spec}: the payload is the tag"
            );
            assert_restores(&env, "c.spipe", &PASS, b"");
            let mut q = p.clone();
            q.records.clear();
            q.fix_trailer();
            assert_refused(
                &env,
                &format!("{spec}: the only record removed"),
                &q.join(),
                3,
                &["the trailer comes before the last chunk"],
                At::Chunk(0),
            );
            let mut q = p.clone();
            let at = q.records[0].len() - 5;
            q.records[0][at] ^= 0x01;
            reseal(&mut q.records[0]);
            assert_refused(
                &env,
                &format!("{spec}: the empty record's tag altered"),
                &q.join(),
                3,
                CHUNK_AUTH,
                At::Chunk(0),
            );
        }
    });
}

/// Downgrade: an attacker who cannot read an encrypted container replaces it
/// with an unencrypted one of their choosing (any v1 container, or the
/// encrypted one re-framed as v1; neither needs a key). A user who restores
/// with a key expects authenticated data; the run must not succeed.
#[test]
fn unencrypted_container_substituted_for_an_encrypted_one_is_refused_when_a_key_is_given() {
    watchdog(WATCHDOG, || {
        let env = Env::new();
        env.write("evil.txt", b"attacker's data\n");
        env.run(&[
            "process",
            "evil.txt",
            "-o",
            "c.spipe",
            "-s",
            "zstd:3,sha256",
        ])
        .ok();
        let before = env.listing();
        let r = env.run(&[
            "restore",
            "c.spipe",
            "-o",
            "out/r",
            "--passphrase-file",
            "pass",
        ]);
        assert!(
            r.code == Some(3) && r.stderr.contains("not encrypted"),
            "`{}` exited with {:?}: an unencrypted container was accepted although a key was given; stderr:\n{}",
            r.cmdline,
            r.code,
            r.stderr
        );
        env.assert_out_empty("unencrypted container with a key");
        let v = env.run(&["verify", "c.spipe", "--passphrase-file", "pass"]);
        assert!(
            v.code == Some(3),
            "`{}` exited with {:?}; stdout:\n{}",
            v.cmdline,
            v.code,
            v.stdout_text()
        );
        assert_eq!(env.listing(), before, "nothing written");
    });
}
