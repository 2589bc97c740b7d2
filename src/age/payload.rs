//! The age payload (C2SP age specification, "Payload"): a 16-byte nonce,
//! then the plaintext in 64 KiB pieces, each sealed with
//! ChaCha20-Poly1305 under a key derived from the file key and the nonce.
//! A piece's nonce is its 11-byte big-endian index and a byte that is 1
//! for the last piece only (the STREAM construction), so pieces can be
//! sealed and opened in any order, on any thread, and a file cut at a
//! piece boundary fails: its new last piece was not sealed as last.

use super::FileKey;
use crate::cipher::{chunk_nonce, hkdf_sha256, ChunkCipher, CipherKind, TAG_LEN};
use crate::error::{Error, Result};

/// Plaintext bytes of every piece but the last.
pub const PIECE: usize = 64 << 10;
/// Bytes of a full piece in the file.
pub const SEALED_PIECE: usize = PIECE + TAG_LEN;
/// Bytes of the payload nonce.
pub const NONCE_LEN: usize = 16;

/// The key that seals and opens a file's pieces.
pub(crate) struct PayloadKey(ChunkCipher);

impl PayloadKey {
    pub fn new(file_key: &FileKey, nonce: &[u8; NONCE_LEN]) -> PayloadKey {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hkdf_sha256(nonce, file_key.as_ref(), b"payload", key.as_mut());
        PayloadKey(ChunkCipher::new(CipherKind::ChaCha20Poly1305, &key))
    }

    /// Seals `data`, pieces `first`, `first + 1`, … (every one full but
    /// perhaps the last), appending them to `out`; `last` when `data`
    /// ends the file. An empty `data` is the one empty piece of an empty
    /// file, sealed only when `last`.
    pub fn seal(&self, first: u64, last: bool, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.reserve(sealed_len(data.len() as u64) as usize);
        let count = data.len().div_ceil(PIECE).max(usize::from(last));
        for i in 0..count {
            let piece = &data[(i * PIECE).min(data.len())..((i + 1) * PIECE).min(data.len())];
            let start = out.len();
            out.extend_from_slice(piece);
            let nonce = chunk_nonce(first + i as u64, last && i + 1 == count);
            self.0.seal_at(nonce, &[], start, out)?;
        }
        Ok(())
    }

    /// Opens the sealed pieces `first`, `first + 1`, … in `data` (every one
    /// full but perhaps the last), appending the plaintext to `out`;
    /// `last` when `data` ends the file.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Integrity`] if a piece does not authenticate (it
    /// was altered, moved or cut), or if the last piece is empty in a file
    /// that has others (the specification forbids it).
    pub fn open(&self, first: u64, last: bool, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if last && data.is_empty() {
            return Err(Error::integrity(
                "the age payload ends before its last piece (truncated)",
            ));
        }
        let count = data.len().div_ceil(SEALED_PIECE);
        out.reserve(data.len());
        for i in 0..count {
            let bytes = &data[i * SEALED_PIECE..((i + 1) * SEALED_PIECE).min(data.len())];
            let index = first + i as u64;
            let is_last = last && i + 1 == count;
            if bytes.len() < TAG_LEN || (!is_last && bytes.len() < SEALED_PIECE) {
                return Err(Error::integrity(
                    "the age payload is cut inside a piece (truncated)",
                ));
            }
            if is_last && index > 0 && bytes.len() == TAG_LEN {
                return Err(Error::integrity(
                    "the age payload ends with an empty piece after full ones, which age forbids",
                ));
            }
            let start = out.len();
            out.extend_from_slice(bytes);
            self.0
                .open_at(chunk_nonce(index, is_last), &[], start, out)
                .map_err(|_| {
                    Error::integrity(format!(
                        "age piece {index} does not authenticate: the file was altered or truncated"
                    ))
                })?;
        }
        Ok(())
    }
}

/// Bytes the sealed pieces of `plain` plaintext bytes take (an empty
/// file still has its one empty piece).
pub fn sealed_len(plain: u64) -> u64 {
    let pieces = plain.div_ceil(PIECE as u64).max(1);
    plain + pieces * TAG_LEN as u64
}

/// Plaintext bytes held by `sealed` bytes of sealed pieces, if that is
/// a length sealed pieces can have.
pub fn plain_len(sealed: u64) -> Option<u64> {
    let pieces = sealed.div_ceil(SEALED_PIECE as u64);
    let plain = sealed.checked_sub(pieces.max(1) * TAG_LEN as u64)?;
    // A trailing piece of only a tag is the empty file's, nobody else's.
    let tail = sealed - (pieces.saturating_sub(1)) * SEALED_PIECE as u64;
    (pieces <= 1 || tail > TAG_LEN as u64).then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for plain in [
            0,
            1,
            PIECE as u64 - 1,
            PIECE as u64,
            PIECE as u64 + 1,
            5 * PIECE as u64,
        ] {
            assert_eq!(plain_len(sealed_len(plain)), Some(plain), "{plain}");
        }
        assert_eq!(plain_len(0), None);
        assert_eq!(plain_len(TAG_LEN as u64 - 1), None);
        assert_eq!(plain_len(SEALED_PIECE as u64 + TAG_LEN as u64), None);
    }

    /// Sealed in two calls or one, the bytes are the same; opened in any
    /// split they give the plaintext back; a cut at a piece boundary and
    /// a swap of two pieces are refused.
    #[test]
    fn seals_in_parts_and_refuses_cuts_and_swaps() {
        let key = PayloadKey::new(&FileKey::from([3u8; 16]), &[4u8; NONCE_LEN]);
        let data: Vec<u8> = (0..3 * PIECE + 100).map(|i| (i % 251) as u8).collect();
        let mut whole = Vec::new();
        key.seal(0, true, &data, &mut whole).expect("seal");
        let mut parts = Vec::new();
        key.seal(0, false, &data[..2 * PIECE], &mut parts)
            .expect("seal");
        key.seal(2, true, &data[2 * PIECE..], &mut parts)
            .expect("seal");
        assert_eq!(whole, parts);
        assert_eq!(whole.len() as u64, sealed_len(data.len() as u64));
        let mut back = Vec::new();
        key.open(0, false, &whole[..SEALED_PIECE], &mut back)
            .expect("open");
        key.open(1, true, &whole[SEALED_PIECE..], &mut back)
            .expect("open");
        assert_eq!(back, data);
        let cut = &whole[..3 * SEALED_PIECE];
        assert!(key.open(0, true, cut, &mut Vec::new()).is_err());
        let mut swapped = whole.clone();
        swapped[..SEALED_PIECE].copy_from_slice(&whole[SEALED_PIECE..2 * SEALED_PIECE]);
        swapped[SEALED_PIECE..2 * SEALED_PIECE].copy_from_slice(&whole[..SEALED_PIECE]);
        assert!(key.open(0, true, &swapped, &mut Vec::new()).is_err());
        let mut empty = Vec::new();
        key.seal(0, true, &[], &mut empty).expect("seal");
        assert_eq!(empty.len(), TAG_LEN);
        let mut none = Vec::new();
        key.open(0, true, &empty, &mut none).expect("open");
        assert!(none.is_empty());
    }
}
