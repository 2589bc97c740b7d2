//! Looking at a container without restoring it: what its header says
//! ([`peek`], no key needed, nothing decoded) and its whole framing
//! ([`inspect`], what `syncpipe info` shows: every record walked by its
//! length prefix with the same rules as restore, CRCs, order, last chunk,
//! trailer, nothing decoded). The wire format itself is in
//! `docs/format.md`; these types are a plain view of it.

use std::io::{Cursor, Read};

use crate::cipher::CipherKind;
use crate::error::Result;
use crate::format::{self, Header, Item, Kdf, Walker, CUSTOM_STAGE_ID, DIGEST_LEN};
use crate::kdf::KdfParams;
use crate::stages::{ChecksumKind, StageSpec};

/// What a container's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The container format version (1 plain, 2 encrypted).
    pub version: u16,
    /// The transform stages in forward order, as a stage list names them
    /// (`zstd:3`); a custom stage as `NAME (custom)`.
    pub stages: Vec<String>,
    /// The checksum per chunk and over the whole original, if any.
    pub checksum: Option<ChecksumKind>,
    /// Bytes per chunk; with `variable_chunks`, the most a chunk holds.
    pub chunk_size: usize,
    /// Chunks vary in length (the hill-climbing chunk method).
    pub variable_chunks: bool,
    /// The original's length, when it was known up front (not for a pipe).
    pub original_len: Option<u64>,
    /// The original's permission bits; 0 when unknown.
    pub mode: u32,
    /// How the container is encrypted, if it is.
    pub encryption: Option<Encryption>,
}

/// The encryption of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encryption {
    /// The AEAD protecting every chunk.
    pub cipher: CipherKind,
    /// What opens it.
    pub key: KeySource,
}

/// What the master key of an encrypted container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// A raw 32-byte key (a key file).
    RawKey,
    /// A passphrase through Argon2id with these costs.
    Passphrase(KdfParams),
}

impl ContainerInfo {
    /// True when a passphrase or key is needed to restore it.
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    fn of(h: &Header) -> ContainerInfo {
        ContainerInfo {
            version: if h.crypto.is_some() {
                format::VERSION_ENCRYPTED
            } else {
                format::VERSION
            },
            stages: h
                .stages
                .iter()
                .map(|d| match StageSpec::from_id(d.id, d.param) {
                    Ok(spec) if d.id != CUSTOM_STAGE_ID => spec.to_string(),
                    _ => format!("{} (custom)", d.name),
                })
                .collect(),
            checksum: h.checksum,
            chunk_size: h.chunk_size,
            variable_chunks: h.variable_chunks,
            original_len: h.original_len,
            mode: h.mode,
            encryption: h.crypto.as_ref().map(|c| Encryption {
                cipher: c.cipher,
                key: match c.kdf {
                    Kdf::RawKey => KeySource::RawKey,
                    Kdf::Argon2id { params, .. } => KeySource::Passphrase(params),
                },
            }),
        }
    }
}

/// Reads a container's header and hands back a reader that starts at the
/// beginning again (the header's bytes, then the rest of `input`), so the
/// caller can decide how to restore it (with a key or not) and then do so
/// from the same stream.
///
/// ```
/// use syncpipe::Pipeline;
///
/// let p = Pipeline::builder().build()?;
/// let mut container = Vec::new();
/// p.run(&b"hello"[..], &mut container)?;
/// let (info, again) = syncpipe::container::peek(&container[..])?;
/// assert!(!info.is_encrypted());
/// assert_eq!(info.stages, ["zstd:3"]);
/// let mut back = Vec::new();
/// p.restore(again, &mut back)?;
/// assert_eq!(back, b"hello");
/// # Ok::<(), syncpipe::Error>(())
/// ```
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] if `input` does not start with a valid
/// header, [`crate::ErrorKind::Io`] for read failures.
pub fn peek<R: Read>(mut input: R) -> Result<(ContainerInfo, Rewound<R>)> {
    let (header, raw) = Header::read_with_bytes(&mut input)?;
    Ok((ContainerInfo::of(&header), Cursor::new(raw).chain(input)))
}

/// A reader peeked at: the header's bytes again, then the rest.
pub type Rewound<R> = std::io::Chain<Cursor<Vec<u8>>, R>;

/// A container's header and record statistics.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// What the header says.
    pub header: ContainerInfo,
    /// Chunk records.
    pub chunks: u64,
    /// The original's length, from the trailer.
    pub original_len: u64,
    /// The whole-file digest from the trailer (keyed for an encrypted
    /// container), when it has a checksum.
    pub digest: Option<[u8; DIGEST_LEN]>,
    /// Total payload bytes over all records.
    pub payload_bytes: u64,
    /// Records for which at least one stage was skipped because its output
    /// would not have been smaller (stored raw).
    pub stored_raw: u64,
}

impl Inspection {
    /// The trailer's digest in lowercase hex, if any.
    pub fn digest_hex(&self) -> Option<String> {
        self.digest.map(|d| crate::report::hex(&d))
    }
}

/// Reads a whole container's framing: header, every record's head and CRC,
/// the trailer, and that nothing follows it. Single-threaded: it reads the
/// payload bytes but never runs a stage.
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] for anything wrong with the framing,
/// [`crate::ErrorKind::Io`] for read failures.
pub fn inspect(mut input: impl Read) -> Result<Inspection> {
    let header = Header::read_from(&mut input)?;
    for desc in header.stages.iter().filter(|d| d.id != CUSTOM_STAGE_ID) {
        StageSpec::from_id(desc.id, desc.param)?;
    }
    let mut walker = Walker::new(&header);
    let mut payload = Vec::new();
    let (mut chunks, mut payload_bytes, mut stored_raw) = (0u64, 0u64, 0u64);
    loop {
        match walker.next(&mut input, &mut payload)? {
            Item::Chunk { head, .. } => {
                chunks += 1;
                payload_bytes += u64::from(head.payload_len);
                if head.skip_mask != 0 {
                    stored_raw += 1;
                }
            }
            Item::Trailer(trailer) => {
                return Ok(Inspection {
                    header: ContainerInfo::of(&header),
                    chunks,
                    original_len: trailer.original_len,
                    digest: trailer.digest,
                    payload_bytes,
                    stored_raw,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, Pipeline};

    fn container() -> Vec<u8> {
        let p = Pipeline::builder()
            .chunk_size(100)
            .threads(1)
            .build()
            .expect("valid");
        let mut out = Vec::new();
        p.run(&[5u8; 250][..], &mut out).expect("process");
        out
    }

    #[test]
    fn counts_chunks_and_length() {
        let i = inspect(&container()[..]).expect("valid");
        assert_eq!(i.chunks, 3);
        assert_eq!(i.original_len, 250);
    }

    #[test]
    fn shares_restores_framing_rules() {
        // Forge the trailer's chunk count (and its CRC): inspect must refuse
        // it exactly as restore does.
        let mut c = container();
        let dlen = 32;
        let t = c.len() - (1 + 16 + dlen + 4);
        c[t + 1] = 9;
        let crc = crc32fast::hash(&c[t..c.len() - 4]);
        let n = c.len();
        c[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let e = inspect(&c[..]).expect_err("forged trailer");
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(e.to_string().contains("trailer says 9 chunks"), "{e}");
    }
}
