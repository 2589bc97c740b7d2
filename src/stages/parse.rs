//! The stage-list grammar of the CLI: `zstd:3,sha256`.

use std::fmt;
use std::str::FromStr;

use super::{Brotli, ChecksumKind, Gzip, StageSpec, Zstd};
use crate::cipher::CipherKind;
use crate::error::{Error, Result};

const KNOWN: &str = "zstd[:1-19], lz4, gzip[:1-9] (or deflate), brotli[:0-11], passthrough, \
                     aes-256-gcm, chacha20-poly1305, sha256, blake3";

/// A parsed stage list: the transforms in order, and an optional checksum.
///
/// The checksum is always computed over the original bytes, wherever it
/// appears in the spec text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// The transforms, applied in order by forward (at most one today).
    pub transforms: Vec<StageSpec>,
    /// The cipher sealing each chunk after the transforms, if any.
    pub cipher: Option<CipherKind>,
    /// The checksum of the original bytes, if any.
    pub checksum: Option<ChecksumKind>,
}

impl fmt::Display for Stages {
    /// The canonical spec, comma-joined, checksum last: `zstd:3,sha256`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cipher = self.cipher.map(|c| c.name().to_string());
        let checksum = self.checksum.map(|c| c.name().to_string());
        let items: Vec<String> = self
            .transforms
            .iter()
            .map(|s| s.to_string())
            .chain(cipher)
            .chain(checksum)
            .collect();
        f.write_str(&items.join(","))
    }
}

impl Stages {
    /// The same list with its compressor at `level` (the CLI's `-l`): the
    /// other stages, checksum and cipher included, stay as they are, so
    /// `-l 19` on the default list is `zstd:19,blake3`, not `zstd:19`.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] if the list has no stage with a level (none, `lz4`,
    /// `passthrough`), or if `level` is out of that stage's range.
    pub fn with_level(mut self, level: i64) -> Result<Stages> {
        let leveled = |s: &StageSpec| {
            matches!(
                s,
                StageSpec::Zstd(_) | StageSpec::Gzip(_) | StageSpec::Brotli(_)
            )
        };
        let Some(at) = self.transforms.iter().position(leveled) else {
            let what = match self.transforms.first() {
                Some(s) => format!("its only transform, {}, has none", s.name()),
                None => "it has no compressor".to_string(),
            };
            return Err(Error::usage(format!(
                "--level sets the compressor's level, but the stage list '{self}' has none: \
                 {what}; name zstd, gzip or brotli in -s"
            )));
        };
        let out_of_range = |what: &str, range: &dyn fmt::Debug| {
            Error::usage(format!("{what} {level} is out of range {range:?}"))
        };
        let spec = &mut self.transforms[at];
        *spec = match spec {
            StageSpec::Zstd(_) => StageSpec::Zstd(
                i32::try_from(level)
                    .ok()
                    .filter(|l| Zstd::LEVELS.contains(l))
                    .ok_or_else(|| out_of_range("zstd level", &Zstd::LEVELS))?,
            ),
            StageSpec::Gzip(_) => StageSpec::Gzip(
                u32::try_from(level)
                    .ok()
                    .filter(|l| Gzip::LEVELS.contains(l))
                    .ok_or_else(|| out_of_range("gzip level", &Gzip::LEVELS))?,
            ),
            StageSpec::Brotli(_) => StageSpec::Brotli(
                u32::try_from(level)
                    .ok()
                    .filter(|l| Brotli::QUALITIES.contains(l))
                    .ok_or_else(|| out_of_range("brotli quality", &Brotli::QUALITIES))?,
            ),
            StageSpec::Lz4 | StageSpec::Passthrough => return Ok(self),
        };
        Ok(self)
    }
}

/// Parses a comma-separated stage spec such as `zstd:3,sha256`.
///
/// Names are case-insensitive and whitespace around items is ignored.
/// Accepted: `zstd[:N]` (1..=19, default 3), `lz4`, `gzip[:N]` or
/// `deflate[:N]` (1..=9, default 6), `brotli[:N]` (0..=11, default 5),
/// `passthrough`, at most one cipher, `aes-256-gcm` or `chacha20-poly1305`,
/// after the transforms (it seals what they produce; it needs a secret, see
/// [`crate::PipelineBuilder::secret`]), and at most one checksum, `sha256`
/// or `blake3`, anywhere in the list (it always covers the original bytes).
/// A checksum alone is accepted: chunks are then stored untransformed.
///
/// # Errors
///
/// [`Error::usage`], naming the offending item, for an empty list or item,
/// an unknown name, a bad or out-of-range level, a parameter on a stage that
/// takes none, two compressors, two ciphers, two checksums, a compressor
/// after the cipher, a repeated stage, or `passthrough` with another
/// transform.
pub fn parse_stages(text: &str) -> Result<Stages> {
    if text.trim().is_empty() {
        return Err(Error::usage(format!(
            "empty stage list; known stages: {KNOWN}"
        )));
    }
    let mut stages = Stages {
        transforms: Vec::new(),
        cipher: None,
        checksum: None,
    };
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(Error::usage(format!("empty item in stage list '{text}'")));
        }
        match parse_item(item)? {
            Item::Checksum(kind) => match stages.checksum {
                None => stages.checksum = Some(kind),
                Some(prev) => {
                    let (a, b) = (prev.name(), kind.name());
                    return Err(Error::usage(if a == b {
                        format!("stage {b} appears twice in '{text}'")
                    } else {
                        format!("contradictory stages: {a} and {b} are both checksums; pick one")
                    }));
                }
            },
            Item::Cipher(kind) => match stages.cipher {
                None => stages.cipher = Some(kind),
                Some(prev) => {
                    let (a, b) = (prev.name(), kind.name());
                    return Err(Error::usage(if a == b {
                        format!("stage {b} appears twice in '{text}'")
                    } else {
                        format!("contradictory stages: {a} and {b} are both ciphers; pick one")
                    }));
                }
            },
            Item::Transform(spec) => {
                if let Some(cipher) = stages.cipher {
                    return Err(Error::usage(format!(
                        "{} after {cipher}: the cipher must come after the transforms \
                         (encrypted bytes do not compress); write '{},{cipher}'",
                        spec.name(),
                        spec
                    )));
                }
                if let Some(message) = stages
                    .transforms
                    .iter()
                    .find_map(|prev| conflict(prev, &spec, text))
                {
                    return Err(Error::usage(message));
                }
                stages.transforms.push(spec);
            }
        }
    }
    Ok(stages)
}

enum Item {
    Transform(StageSpec),
    Cipher(CipherKind),
    Checksum(ChecksumKind),
}

/// One item of a spec list, already trimmed and non-empty.
fn parse_item(item: &str) -> Result<Item> {
    let (name, param) = match item.split_once(':') {
        Some((name, param)) => (name.trim(), Some(param.trim())),
        None => (item, None),
    };
    let name = name.to_ascii_lowercase();
    if param.is_some()
        && matches!(
            name.as_str(),
            "lz4" | "passthrough" | "sha256" | "blake3" | "aes-256-gcm" | "chacha20-poly1305"
        )
    {
        return Err(Error::usage(format!(
            "{name} takes no parameter (got '{item}')"
        )));
    }
    let (it, p) = (item, param);
    let spec = match name.as_str() {
        "zstd" => StageSpec::Zstd(level(it, p, Zstd::DEFAULT_LEVEL, &Zstd::LEVELS)?),
        "gzip" | "deflate" => StageSpec::Gzip(level(it, p, Gzip::DEFAULT_LEVEL, &Gzip::LEVELS)?),
        "brotli" => StageSpec::Brotli(level(it, p, Brotli::DEFAULT_QUALITY, &Brotli::QUALITIES)?),
        "lz4" => StageSpec::Lz4,
        "passthrough" => StageSpec::Passthrough,
        "sha256" => return Ok(Item::Checksum(ChecksumKind::Sha256)),
        "blake3" => return Ok(Item::Checksum(ChecksumKind::Blake3)),
        "aes-256-gcm" => return Ok(Item::Cipher(CipherKind::Aes256Gcm)),
        "chacha20-poly1305" => return Ok(Item::Cipher(CipherKind::ChaCha20Poly1305)),
        _ => {
            return Err(Error::usage(format!(
                "unknown stage '{item}'; known stages: {KNOWN}"
            )))
        }
    };
    // The range check, with the constructors' messages.
    spec.build()?;
    Ok(Item::Transform(spec))
}

/// The level in `param`, or `default` when the item has none.
fn level<T: FromStr>(
    item: &str,
    param: Option<&str>,
    default: T,
    range: &dyn fmt::Debug,
) -> Result<T> {
    match param {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            Error::usage(format!(
                "bad level '{text}' in '{item}': expected a whole number in {range:?}"
            ))
        }),
    }
}

/// Why `next` cannot follow `prev` in one list, if it cannot.
fn conflict(prev: &StageSpec, next: &StageSpec, text: &str) -> Option<String> {
    let (a, b) = (prev.name(), next.name());
    Some(if a == b {
        format!("stage {b} appears twice in '{text}'")
    } else if a == "passthrough" || b == "passthrough" {
        let other = if a == "passthrough" { b } else { a };
        format!("passthrough cannot be combined with {other}: only a checksum may go with it")
    } else {
        // Every other built-in stage compresses, and compressing twice only
        // costs time.
        format!("contradictory stages: {a} and {b} both compress; pick one")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn accepted_specs_and_their_canonical_text() {
        let table = [
            ("zstd", "zstd:3"),
            ("ZSTD:19", "zstd:19"),
            (" zstd : 7 ", "zstd:7"),
            ("sha256,zstd:1", "zstd:1,sha256"),
            (" lz4 , Sha256 ", "lz4,sha256"),
            ("gzip", "gzip:6"),
            ("deflate:1", "gzip:1"),
            ("Gzip:9,blake3", "gzip:9,blake3"),
            ("brotli", "brotli:5"),
            ("brotli:0", "brotli:0"),
            ("blake3,BROTLI:11", "brotli:11,blake3"),
            ("passthrough", "passthrough"),
            ("blake3,passthrough", "passthrough,blake3"),
            ("sha256", "sha256"),
            ("zstd:3,aes-256-gcm,sha256", "zstd:3,aes-256-gcm,sha256"),
            (
                "blake3,lz4,ChaCha20-Poly1305",
                "lz4,chacha20-poly1305,blake3",
            ),
            ("aes-256-gcm", "aes-256-gcm"),
            ("passthrough,aes-256-gcm", "passthrough,aes-256-gcm"),
        ];
        for (text, canonical) in table {
            let parsed = parse_stages(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.to_string(), canonical, "{text}");
            assert_eq!(parse_stages(canonical).unwrap(), parsed, "{text}");
        }
        let parsed = parse_stages("zstd:5,blake3").unwrap();
        assert_eq!(parsed.transforms, [StageSpec::Zstd(5)]);
        assert_eq!(parsed.checksum, Some(ChecksumKind::Blake3));
    }

    #[test]
    fn a_level_changes_the_compressor_and_keeps_the_rest() {
        let table = [
            ("zstd:3,blake3", 19, "zstd:19,blake3"),
            ("gzip,sha256", 1, "gzip:1,sha256"),
            (
                "brotli:5,aes-256-gcm,blake3",
                0,
                "brotli:0,aes-256-gcm,blake3",
            ),
        ];
        for (text, level, want) in table {
            let got = parse_stages(text).unwrap().with_level(level).unwrap();
            assert_eq!(got.to_string(), want, "{text} -l {level}");
        }
        let refused = [
            ("lz4,blake3", 3, "its only transform, lz4, has none"),
            ("passthrough", 3, "passthrough, has none"),
            ("sha256", 3, "it has no compressor"),
            ("zstd", 20, "zstd level 20 is out of range 1..=19"),
            ("zstd", 0, "zstd level 0 is out of range"),
            ("gzip", 10, "gzip level 10 is out of range 1..=9"),
            ("gzip", -1, "gzip level -1 is out of range"),
            ("brotli", 12, "brotli quality 12 is out of range 0..=11"),
            ("zstd", i64::MAX, "out of range"),
        ];
        for (text, level, want) in refused {
            let e = parse_stages(text).unwrap().with_level(level).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage, "{text} -l {level}");
            assert!(e.to_string().contains(want), "{text} -l {level}: {e}");
        }
    }

    #[test]
    fn refused_specs_name_the_problem() {
        let table = [
            ("", "empty stage list"),
            ("  ", "empty stage list"),
            ("zstd,", "empty item in stage list 'zstd,'"),
            (",zstd", "empty item"),
            ("zstd,,sha256", "empty item"),
            ("foo", "unknown stage 'foo'; known stages: zstd"),
            ("zstd,xz:3", "unknown stage 'xz:3'"),
            (
                "zstd:abc",
                "bad level 'abc' in 'zstd:abc': expected a whole number in 1..=19",
            ),
            ("zstd:", "bad level '' in 'zstd:'"),
            ("zstd:0", "zstd level 0 is out of range 1..=19"),
            ("zstd:20", "zstd level 20 is out of range 1..=19"),
            ("zstd:-3", "zstd level -3 is out of range"),
            ("gzip:0", "gzip level 0 is out of range 1..=9"),
            ("deflate:10", "gzip level 10 is out of range 1..=9"),
            ("gzip:-1", "bad level '-1' in 'gzip:-1'"),
            ("brotli:12", "brotli quality 12 is out of range 0..=11"),
            ("lz4:3", "lz4 takes no parameter (got 'lz4:3')"),
            ("sha256:1", "sha256 takes no parameter"),
            ("passthrough:1", "passthrough takes no parameter"),
            (
                "zstd,lz4",
                "contradictory stages: zstd and lz4 both compress; pick one",
            ),
            (
                "gzip:3,sha256,brotli",
                "contradictory stages: gzip and brotli both compress",
            ),
            (
                "sha256,blake3",
                "contradictory stages: sha256 and blake3 are both checksums",
            ),
            ("zstd,zstd:5", "stage zstd appears twice in 'zstd,zstd:5'"),
            ("gzip,deflate", "stage gzip appears twice"),
            ("sha256,zstd,sha256", "stage sha256 appears twice"),
            ("passthrough,passthrough", "stage passthrough appears twice"),
            (
                "passthrough,zstd",
                "passthrough cannot be combined with zstd",
            ),
            ("lz4,passthrough", "passthrough cannot be combined with lz4"),
            (
                "aes-256-gcm,zstd",
                "zstd after aes-256-gcm: the cipher must come after the transforms",
            ),
            (
                "aes-256-gcm,chacha20-poly1305",
                "contradictory stages: aes-256-gcm and chacha20-poly1305 are both ciphers",
            ),
            ("aes-256-gcm,aes-256-gcm", "stage aes-256-gcm appears twice"),
            ("aes-256-gcm:1", "aes-256-gcm takes no parameter"),
        ];
        for (text, message) in table {
            let err = parse_stages(text).expect_err(text);
            assert_eq!(err.kind(), ErrorKind::Usage, "{text}");
            assert!(err.to_string().contains(message), "{text}: {err}");
        }
    }
}
