//! The end of a container: chunk count, original length and the digest of
//! the whole original, under their own CRC.

use std::io::Read;

use super::cursor::Cursor;
use super::reader::read_exact_or;
use super::{Header, DIGEST_LEN, TAG_TRAILER};
use crate::error::{Error, Result};

/// The end of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Number of chunk records.
    pub chunk_count: u64,
    /// Total bytes of original data.
    pub original_len: u64,
    /// Digest of the whole original, when the container has a checksum.
    pub digest: Option<[u8; DIGEST_LEN]>,
}

impl Trailer {
    /// The trailer's bytes, CRC included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 16 + DIGEST_LEN + 4);
        out.push(TAG_TRAILER);
        out.extend_from_slice(&self.chunk_count.to_le_bytes());
        out.extend_from_slice(&self.original_len.to_le_bytes());
        if let Some(d) = &self.digest {
            out.extend_from_slice(d);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

/// Reads the rest of the trailer, its tag already read, and checks its CRC.
pub(super) fn read_trailer(r: &mut impl Read, header: &Header) -> Result<Trailer> {
    let dlen = header.digest_len();
    let mut buf = [0u8; 1 + 16 + DIGEST_LEN];
    buf[0] = TAG_TRAILER;
    let bytes = &mut buf[..1 + 16 + dlen];
    read_exact_or(r, &mut bytes[1..], "truncated trailer")?;
    let mut crc = [0u8; 4];
    read_exact_or(r, &mut crc, "truncated trailer")?;
    if crc32fast::hash(bytes) != u32::from_le_bytes(crc) {
        return Err(Error::integrity("trailer checksum mismatch"));
    }
    let mut c = Cursor { buf: bytes, pos: 1 };
    let chunk_count = c.u64()?;
    let original_len = c.u64()?;
    let digest = c.digest(dlen)?;
    Ok(Trailer {
        chunk_count,
        original_len,
        digest,
    })
}
