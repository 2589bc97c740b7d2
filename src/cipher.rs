//! Authenticated encryption of chunks: the ciphers, the per-file key
//! hierarchy and STREAM nonces (`docs/format.md#encryption`).
//!
//! ```text
//! passphrase --Argon2id(m,t,p, salt)--> master key (32 B)   (or a raw key file)
//! master --HKDF-SHA256(salt = file nonce, info = label)--> payload key
//!                                                      --> header MAC key
//!                                                      --> digest key
//!                                                      --> key check
//! ```
//!
//! Every file gets a fresh random 32-byte file nonce, hence its own keys:
//! records of one file cannot be opened under another file's keys, so a
//! splice from another container fails even with the same passphrase. Inside
//! a file the AEAD nonce is STREAM's (as in age): an 11-byte big-endian chunk
//! counter and a last-chunk byte, so a chunk only opens at its own position
//! and only the real final chunk opens as final. The AAD is the header's MAC
//! (binding every record to the exact header) followed by the record's own
//! head (index, flags, skip mask, lengths).
//!
//! The AEAD backend is `ring` (measured against RustCrypto's `aes-gcm` and
//! `chacha20poly1305` by `benches/aead.rs`; table in `docs/performance.md`).

use std::fmt;

use hkdf::Hkdf;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// Bytes an AEAD adds to every chunk (the tag).
pub const TAG_LEN: usize = 16;
/// Bytes of the per-file random nonce stored in the header.
pub const FILE_NONCE_LEN: usize = 32;
/// Bytes of the key check and of the header MAC.
pub const CHECK_LEN: usize = 32;

/// An AEAD cipher for the chunks. Ids are part of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherKind {
    /// AES-256 in Galois/Counter Mode (NIST SP 800-38D); hardware-accelerated
    /// wherever AES-NI / ARMv8 crypto exist.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439); fast in software everywhere.
    ChaCha20Poly1305,
}

impl CipherKind {
    /// The spec name: `aes-256-gcm` or `chacha20-poly1305`.
    pub fn name(&self) -> &'static str {
        match self {
            CipherKind::Aes256Gcm => "aes-256-gcm",
            CipherKind::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }

    /// The header id: 1 for AES-256-GCM, 2 for ChaCha20-Poly1305.
    pub fn id(&self) -> u8 {
        match self {
            CipherKind::Aes256Gcm => 1,
            CipherKind::ChaCha20Poly1305 => 2,
        }
    }

    /// The cipher with header id `id`.
    pub fn from_id(id: u8) -> Option<CipherKind> {
        match id {
            1 => Some(CipherKind::Aes256Gcm),
            2 => Some(CipherKind::ChaCha20Poly1305),
            _ => None,
        }
    }

    fn algorithm(&self) -> &'static aead::Algorithm {
        match self {
            CipherKind::Aes256Gcm => &aead::AES_256_GCM,
            CipherKind::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

impl fmt::Display for CipherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The AEAD nonce of chunk `index`: STREAM's layout, an 11-byte big-endian
/// counter (the high 3 bytes are zero: the counter is a `u64`, so it cannot
/// wrap inside 88 bits) and one byte that is 1 for the final chunk, 0
/// otherwise.
pub fn chunk_nonce(index: u64, last: bool) -> [u8; aead::NONCE_LEN] {
    let mut n = [0u8; aead::NONCE_LEN];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Errors
///
/// An I/O-kind error if the system has no randomness to give.
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| Error::new(ErrorKind::Io, "the system random number generator failed"))
}

/// HKDF-SHA256 (RFC 5869), extract and expand in one call: fills `out`
/// (at most 8160 bytes) with key material from `ikm`, `salt` and `info`.
///
/// # Panics
///
/// If `out` is longer than 8160 bytes (255 × 32), the RFC's limit.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .expect("HKDF output length within 255 * 32 bytes");
}

/// One AEAD key, ready to seal and open chunks in place. The key schedule
/// is computed once per file, not per chunk.
pub struct ChunkCipher {
    kind: CipherKind,
    key: LessSafeKey,
}

impl ChunkCipher {
    /// A cipher of `kind` under the 32-byte `key`.
    pub fn new(kind: CipherKind, key: &[u8; 32]) -> ChunkCipher {
        ChunkCipher {
            kind,
            key: LessSafeKey::new(
                UnboundKey::new(kind.algorithm(), key).expect("both ciphers take 32-byte keys"),
            ),
        }
    }

    /// Encrypts `buf` in place and appends the 16-byte tag.
    ///
    /// # Errors
    ///
    /// A stage error if `buf` exceeds the cipher's per-message limit.
    pub fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        self.seal_at(nonce, aad, 0, buf)
    }

    /// Encrypts `buf[from..]` in place and appends its 16-byte tag: a piece
    /// sealed where it lies in a larger buffer, without a copy.
    ///
    /// # Errors
    ///
    /// As [`ChunkCipher::seal`].
    pub fn seal_at(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        from: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf[from..],
            )
            .map_err(|_| Error::stage("encryption failed (chunk too large for the cipher)"))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Checks the tag at the end of `buf` and decrypts in place, removing
    /// the tag. On failure `buf` holds no plaintext that could be used.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Integrity`] if the tag does not authenticate the
    /// ciphertext, nonce and AAD.
    pub fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        self.open_at(nonce, aad, 0, buf)
    }

    /// [`ChunkCipher::open`] of `buf[from..]`, the bytes before it kept: on
    /// failure `buf` is cut back to `from`.
    ///
    /// # Errors
    ///
    /// As [`ChunkCipher::open`].
    pub fn open_at(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        from: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let opened = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf[from..],
            )
            .map(|plain| plain.len());
        match opened {
            Ok(n) => {
                buf.truncate(from + n);
                Ok(())
            }
            Err(_) => {
                // ring leaves the buffer's contents unspecified on failure:
                // cut them off so nothing unauthenticated can be used by
                // mistake.
                buf.truncate(from);
                Err(Error::integrity(
                    "authentication failed: the chunk was altered, moved or taken from another file",
                ))
            }
        }
    }

    /// The cipher.
    pub fn kind(&self) -> CipherKind {
        self.kind
    }
}

/// The keys of one file, derived from the master key and the file nonce.
pub(crate) struct FileKeys {
    aead: ChunkCipher,
    mac: hmac::Key,
    digest: Zeroizing<[u8; 32]>,
    check: [u8; CHECK_LEN],
    /// The header's MAC once signed or verified; the first part of every
    /// chunk's AAD.
    header_mac: [u8; CHECK_LEN],
}

impl FileKeys {
    pub fn derive(
        cipher: CipherKind,
        master: &[u8; 32],
        file_nonce: &[u8; FILE_NONCE_LEN],
    ) -> FileKeys {
        let expand = |label: &str| {
            let mut okm = Zeroizing::new([0u8; 32]);
            hkdf_sha256(file_nonce, master, label.as_bytes(), &mut okm[..]);
            okm
        };
        let payload = expand("syncpipe v2 payload key");
        let mac = expand("syncpipe v2 header mac key");
        let check = *expand("syncpipe v2 key check");
        FileKeys {
            aead: ChunkCipher::new(cipher, &payload),
            mac: hmac::Key::new(hmac::HMAC_SHA256, &mac[..]),
            digest: expand("syncpipe v2 digest key"),
            check,
            header_mac: [0; CHECK_LEN],
        }
    }

    pub fn cipher(&self) -> CipherKind {
        self.aead.kind()
    }

    /// The value stored in the header to tell a wrong key from a damaged
    /// file before any payload work.
    pub fn key_check(&self) -> [u8; CHECK_LEN] {
        self.check
    }

    /// Whether `stored` is this key's check value (constant time).
    pub fn check_matches(&self, stored: &[u8; CHECK_LEN]) -> bool {
        ct_eq(&self.check, stored)
    }

    /// MACs the header bytes that precede the MAC field and remembers the
    /// result as the chunks' AAD prefix.
    pub fn sign_header(&mut self, header_before_mac: &[u8]) -> [u8; CHECK_LEN] {
        let tag = hmac::sign(&self.mac, header_before_mac);
        self.header_mac.copy_from_slice(tag.as_ref());
        self.header_mac
    }

    /// Verifies the header MAC (constant time).
    pub fn verify_header(&mut self, header_before_mac: &[u8], mac: &[u8; CHECK_LEN]) -> Result<()> {
        hmac::verify(&self.mac, header_before_mac, mac).map_err(|_| {
            Error::integrity(
                "header authentication failed: the key is right but the header was altered",
            )
        })?;
        self.header_mac = *mac;
        Ok(())
    }

    /// Encrypts `buf` in place and appends the tag. `head` is the record's
    /// head as it will be written (its payload length already counts the
    /// tag).
    pub fn seal(&self, index: u64, last: bool, head: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        self.aead
            .seal(chunk_nonce(index, last), &self.aad(head), buf)
    }

    /// Authenticates and decrypts `buf` in place (the tag is removed). Not a
    /// byte of plaintext is released if the tag does not match.
    pub fn open(&self, index: u64, last: bool, head: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        self.aead
            .open(chunk_nonce(index, last), &self.aad(head), buf)
    }

    /// The whole-file digest as stored in an encrypted container's trailer:
    /// keyed, so that nobody without the key can confirm a guess of the
    /// whole file (records carry no digest at all; their tags authenticate
    /// them).
    pub fn mask_file_digest(&self, digest: &[u8; 32]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.digest);
        h.update(&[1]).update(digest);
        h.finalize().into()
    }

    fn aad(&self, head: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(CHECK_LEN + head.len());
        aad.extend_from_slice(&self.header_mac);
        aad.extend_from_slice(head);
        aad
    }
}

impl fmt::Debug for FileKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKeys")
            .field("cipher", &self.cipher())
            .finish_non_exhaustive()
    }
}

/// Constant-time equality of two equal-length byte arrays: the time taken
/// does not depend on where they differ.
fn ct_eq(a: &[u8; CHECK_LEN], b: &[u8; CHECK_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cipher: CipherKind, master: u8, nonce: u8) -> FileKeys {
        let mut k = FileKeys::derive(cipher, &[master; 32], &[nonce; FILE_NONCE_LEN]);
        k.sign_header(b"header");
        k
    }

    #[test]
    fn nonce_layout_is_stream() {
        assert_eq!(chunk_nonce(0, false), [0; 12]);
        let n = chunk_nonce(0x0102, true);
        assert_eq!(n, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
        assert_ne!(chunk_nonce(7, true), chunk_nonce(7, false));
    }

    #[test]
    fn seal_open_and_every_binding() {
        for cipher in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
            let k = keys(cipher, 1, 2);
            let mut buf = b"secret chunk".to_vec();
            k.seal(5, false, b"head", &mut buf).expect("seal");
            assert_eq!(buf.len(), 12 + TAG_LEN);
            let sealed = buf.clone();
            k.open(5, false, b"head", &mut buf).expect("open");
            assert_eq!(buf, b"secret chunk");
            // Wrong position, wrong last flag, other head, other file, other
            // header: each must fail.
            let fails = |k: &FileKeys, i: u64, last: bool, head: &[u8]| {
                let mut b = sealed.clone();
                k.open(i, last, head, &mut b).is_err()
            };
            assert!(fails(&k, 6, false, b"head"));
            assert!(fails(&k, 5, true, b"head"));
            assert!(fails(&k, 5, false, b"hea!"));
            assert!(fails(&keys(cipher, 1, 3), 5, false, b"head"));
            let mut other_header = FileKeys::derive(cipher, &[1; 32], &[2; FILE_NONCE_LEN]);
            other_header.sign_header(b"header!");
            assert!(fails(&other_header, 5, false, b"head"));
        }
    }

    #[test]
    fn key_check_and_masks_depend_on_the_key() {
        let a = keys(CipherKind::Aes256Gcm, 1, 2);
        let b = keys(CipherKind::Aes256Gcm, 9, 2);
        assert!(a.check_matches(&a.key_check()));
        assert!(!a.check_matches(&b.key_check()));
        let d = [7u8; 32];
        assert_ne!(a.mask_file_digest(&d), b.mask_file_digest(&d));
        assert_ne!(a.mask_file_digest(&d), d);
        assert!(!format!("{a:?}").contains("digest"));
    }
}
