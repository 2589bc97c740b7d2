//! Every golden container in `tests/data/` restores to the plaintext whose
//! SHA-256 `tests/data/MANIFEST` records, through the library and through
//! the binary. A change that stops this build reading files earlier builds
//! wrote fails here.
//!
//! The manifest lists one container a line: `SHA256  FILE  SECRET`, where
//! SECRET is `-` (unencrypted), `passphrase` (the test passphrase below),
//! `key` (the raw test key, given to the binary as a key file) or
//! `identity` (the age identity in `tests/data/age-golden-identity.txt`).
//! Every `.spipe`, `.zst`, `.gz` and `.age` file in the folder must be
//! listed, and every listed file exist.
//!
//! The committed bytes are the reference. The `c-*` combination files were
//! written by [`regenerate`] (ignored; it also rewrites their manifest
//! lines from the originals it encrypts, never from what today's reader
//! makes of the files):
//!
//! ```text
//! SYNCPIPE_REGEN_GOLDEN=1 cargo test -p syncpipe-cli --test integration -- --ignored golden_data::regenerate
//! ```
//!
//! Only for adding a case: encryption draws a random salt and nonce, so
//! regenerating rewrites every encrypted file; review the diff.

use std::collections::BTreeSet;
use std::error::Error as StdError;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::mixed_data;
use sha2::{Digest, Sha256};
use syncpipe::stages::parse_stages;
use syncpipe::{AgeIdentity, KdfParams, Pipeline, PipelineBuilder, Secret};

type TestResult = Result<(), Box<dyn StdError>>;

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const PASSPHRASE: &[u8] = b"syncpipe golden passphrase";
const KEY: [u8; 32] = [0x42; 32];

/// Small chunks, so that every mixed case has several records and a short
/// last one.
const CHUNK: usize = 4096;

fn data_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/data")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretKind {
    None,
    Passphrase,
    Key,
    Identity,
}

impl SecretKind {
    fn parse(word: &str) -> Option<SecretKind> {
        match word {
            "-" => Some(SecretKind::None),
            "passphrase" => Some(SecretKind::Passphrase),
            "key" => Some(SecretKind::Key),
            "identity" => Some(SecretKind::Identity),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            SecretKind::None => "-",
            SecretKind::Passphrase => "passphrase",
            SecretKind::Key => "key",
            SecretKind::Identity => "identity",
        }
    }

    fn secret(self) -> Option<Secret> {
        match self {
            SecretKind::None | SecretKind::Identity => None,
            SecretKind::Passphrase => Some(Secret::passphrase(PASSPHRASE).expect("valid")),
            SecretKind::Key => Some(Secret::key(&KEY).expect("valid")),
        }
    }
}

struct Entry {
    sha256: String,
    file: String,
    secret: SecretKind,
}

fn manifest() -> Result<Vec<Entry>, Box<dyn StdError>> {
    let text = fs::read_to_string(data_dir().join("MANIFEST"))?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [sha256, file, secret] = words[..] else {
            return Err(format!("MANIFEST line {}: want SHA256 FILE SECRET", n + 1).into());
        };
        let secret = SecretKind::parse(secret)
            .ok_or_else(|| format!("MANIFEST line {}: unknown secret {secret}", n + 1))?;
        entries.push(Entry {
            sha256: sha256.to_string(),
            file: file.to_string(),
            secret,
        });
    }
    Ok(entries)
}

/// The age identity the `identity` files are encrypted to (a test key,
/// committed on purpose).
fn identity_file() -> PathBuf {
    data_dir().join("age-golden-identity.txt")
}

fn with_identity(
    b: PipelineBuilder,
    kind: SecretKind,
) -> Result<PipelineBuilder, Box<dyn StdError>> {
    if kind != SecretKind::Identity {
        return Ok(b);
    }
    let mut ids = AgeIdentity::from_file(&identity_file())?;
    let id = ids.pop().ok_or("no identity in the file")?;
    Ok(b.age_identity(id))
}

#[test]
fn manifest_lists_exactly_the_containers_in_tests_data() -> TestResult {
    let listed: BTreeSet<String> = manifest()?.into_iter().map(|e| e.file).collect();
    let on_disk: BTreeSet<String> = fs::read_dir(data_dir())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    let on_disk: BTreeSet<String> = on_disk
        .into_iter()
        .filter(|n| {
            [".spipe", ".zst", ".gz", ".age"]
                .iter()
                .any(|ext| n.ends_with(ext))
        })
        .collect();
    assert_eq!(
        listed, on_disk,
        "MANIFEST and tests/data/*.{{spipe,zst,gz,age}} differ"
    );
    // One per stage combination the golden set covers: guard against a case
    // silently dropped from the folder and the manifest together.
    assert!(
        listed.len() >= 25,
        "only {} golden containers",
        listed.len()
    );
    Ok(())
}

#[test]
fn every_golden_container_restores_to_its_manifest_hash() -> TestResult {
    for e in manifest()? {
        let bytes = fs::read(data_dir().join(&e.file))?;
        let mut builder = with_identity(Pipeline::builder(), e.secret)?;
        if let Some(s) = e.secret.secret() {
            builder = builder.secret(s);
        }
        let mut out = Vec::new();
        builder
            .build()?
            .restore(&bytes[..], &mut out)
            .map_err(|err| format!("{}: {err}", e.file))?;
        assert_eq!(sha256_hex(&out), e.sha256, "{}", e.file);
    }
    Ok(())
}

#[test]
fn every_golden_container_restores_through_the_binary() -> TestResult {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("pass"), PASSPHRASE)?;
    fs::write(dir.path().join("key"), KEY)?;
    for e in manifest()? {
        let out = dir.path().join("restored");
        let mut cmd = Command::new(BIN);
        cmd.arg("restore")
            .arg(data_dir().join(&e.file))
            .arg("-o")
            .arg(&out)
            .arg("--force")
            .current_dir(dir.path());
        match e.secret {
            SecretKind::None => {}
            SecretKind::Passphrase => {
                cmd.args(["--passphrase-file", "pass"]);
            }
            SecretKind::Key => {
                cmd.args(["--key-file", "key"]);
            }
            SecretKind::Identity => {
                cmd.arg("-i").arg(identity_file());
            }
        }
        let run = cmd.output()?;
        assert_eq!(
            run.status.code(),
            Some(0),
            "{}: {}",
            e.file,
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(sha256_hex(&fs::read(&out)?), e.sha256, "{}", e.file);
        fs::remove_file(&out)?;
    }
    Ok(())
}

/// A combination case: file, stage spec, secret, original.
struct Combo {
    file: &'static str,
    spec: &'static str,
    secret: SecretKind,
    len: usize,
}

/// Mixed input of three chunks, the last one short.
const MIXED: usize = 3 * CHUNK - 288;
/// Exactly two chunks: the chunk boundary falls on the end of the input.
const BOUNDARY: usize = 2 * CHUNK;

const COMBOS: &[Combo] = &[
    // Passthrough and each codec alone (gzip alone is mixed-gzip6.spipe).
    Combo {
        file: "c-passthrough.spipe",
        spec: "passthrough",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-zstd3.spipe",
        spec: "zstd:3",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-lz4.spipe",
        spec: "lz4",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-brotli5.spipe",
        spec: "brotli:5",
        secret: SecretKind::None,
        len: MIXED,
    },
    // Each codec with each checksum (the others are in the mixed-* files).
    Combo {
        file: "c-passthrough-blake3.spipe",
        spec: "passthrough,blake3",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-zstd3-sha256.spipe",
        spec: "zstd:3,sha256",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-lz4-sha256.spipe",
        spec: "lz4,sha256",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-gzip6-sha256.spipe",
        spec: "gzip:6,sha256",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-gzip6-blake3.spipe",
        spec: "gzip:6,blake3",
        secret: SecretKind::None,
        len: MIXED,
    },
    Combo {
        file: "c-brotli5-blake3.spipe",
        spec: "brotli:5,blake3",
        secret: SecretKind::None,
        len: MIXED,
    },
    // Each cipher with a passphrase and with a key file.
    Combo {
        file: "c-v2-aes256gcm-key.spipe",
        spec: "gzip:6,aes-256-gcm,blake3",
        secret: SecretKind::Key,
        len: MIXED,
    },
    Combo {
        file: "c-v2-aes256gcm-passphrase.spipe",
        spec: "aes-256-gcm",
        secret: SecretKind::Passphrase,
        len: MIXED,
    },
    Combo {
        file: "c-v2-chacha20poly1305-key.spipe",
        spec: "chacha20-poly1305,sha256",
        secret: SecretKind::Key,
        len: MIXED,
    },
    Combo {
        file: "c-v2-chacha20poly1305-passphrase.spipe",
        spec: "brotli:5,chacha20-poly1305,sha256",
        secret: SecretKind::Passphrase,
        len: MIXED,
    },
    // Empty input and an exact chunk boundary.
    Combo {
        file: "c-empty-zstd3-blake3.spipe",
        spec: "zstd:3,blake3",
        secret: SecretKind::None,
        len: 0,
    },
    Combo {
        file: "c-empty-chacha20poly1305-key.spipe",
        spec: "chacha20-poly1305",
        secret: SecretKind::Key,
        len: 0,
    },
    Combo {
        file: "c-boundary-lz4-sha256.spipe",
        spec: "lz4,sha256",
        secret: SecretKind::None,
        len: BOUNDARY,
    },
    Combo {
        file: "c-boundary-aes256gcm-passphrase.spipe",
        spec: "zstd:3,aes-256-gcm",
        secret: SecretKind::Passphrase,
        len: BOUNDARY,
    },
];

#[test]
#[ignore = "rewrites tests/data/c-*; needs SYNCPIPE_REGEN_GOLDEN=1"]
fn regenerate() -> TestResult {
    if std::env::var("SYNCPIPE_REGEN_GOLDEN").as_deref() != Ok("1") {
        eprintln!("SYNCPIPE_REGEN_GOLDEN is not 1: golden files left as they are");
        return Ok(());
    }
    let mut lines: Vec<String> = fs::read_to_string(data_dir().join("MANIFEST"))
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            !COMBOS
                .iter()
                .any(|c| l.split_whitespace().nth(1) == Some(c.file))
        })
        .map(str::to_string)
        .collect();
    for c in COMBOS {
        let original = mixed_data(c.len, 2026);
        let mut builder = Pipeline::builder()
            .stages(parse_stages(c.spec)?)
            .chunk_size(CHUNK)
            // Cheap on purpose: the files test the format, not the KDF.
            .kdf(KdfParams {
                m_kib: 64,
                t: 1,
                p: 1,
            });
        if let Some(s) = c.secret.secret() {
            builder = builder.secret(s);
        }
        let mut container = Vec::new();
        builder.build()?.run(&original[..], &mut container)?;
        fs::write(data_dir().join(c.file), &container)?;
        lines.push(format!(
            "{}  {}  {}",
            sha256_hex(&original),
            c.file,
            c.secret.word()
        ));
        eprintln!("wrote {} ({} bytes)", c.file, container.len());
    }
    fs::write(data_dir().join("MANIFEST"), lines.join("\n") + "\n")?;
    Ok(())
}
