//! Checksums of the original bytes: SHA-256 and BLAKE3.
//!
//! These are not stages: the engine hashes the original bytes of each chunk
//! (or of the whole stream), before any transform, and checks them after
//! the restore.

use sha2::{Digest, Sha256};

/// Which checksum to compute. Both digests are [`ChecksumKind::DIGEST_LEN`]
/// (32) bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    /// SHA-256 (FIPS 180-4): slower, widely recognised.
    Sha256,
    /// BLAKE3: several times faster than SHA-256.
    Blake3,
}

impl ChecksumKind {
    /// The length of every digest, in bytes.
    pub const DIGEST_LEN: usize = 32;

    /// The spec name: `"sha256"` or `"blake3"`.
    pub fn name(&self) -> &'static str {
        match self {
            ChecksumKind::Sha256 => "sha256",
            ChecksumKind::Blake3 => "blake3",
        }
    }

    /// The id stored in the container header: 1 for SHA-256, 2 for BLAKE3.
    /// These values are part of the format and never change.
    pub fn id(&self) -> u8 {
        match self {
            ChecksumKind::Sha256 => 1,
            ChecksumKind::Blake3 => 2,
        }
    }

    /// The kind with header id `id`, or `None` for an unknown id.
    pub fn from_id(id: u8) -> Option<ChecksumKind> {
        match id {
            1 => Some(ChecksumKind::Sha256),
            2 => Some(ChecksumKind::Blake3),
            _ => None,
        }
    }

    /// The digest of `data`, in one call.
    pub fn digest(&self, data: &[u8]) -> [u8; 32] {
        match self {
            ChecksumKind::Sha256 => Sha256::digest(data).into(),
            ChecksumKind::Blake3 => blake3::hash(data).into(),
        }
    }

    /// A hasher for data that arrives in pieces.
    pub fn hasher(&self) -> Hasher {
        Hasher(match self {
            ChecksumKind::Sha256 => State::Sha256(Sha256::new()),
            ChecksumKind::Blake3 => State::Blake3(Box::default()),
        })
    }
}

/// An incremental checksum; see [`ChecksumKind::hasher`].
#[derive(Clone)]
pub struct Hasher(State);

#[derive(Clone)]
enum State {
    Sha256(Sha256),
    // Boxed: BLAKE3's state is about 2 KiB, SHA-256's about 100 bytes.
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    /// The kind of checksum being computed.
    pub fn kind(&self) -> ChecksumKind {
        match self.0 {
            State::Sha256(_) => ChecksumKind::Sha256,
            State::Blake3(_) => ChecksumKind::Blake3,
        }
    }

    /// Adds `data` to the hash.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::Sha256(h) => h.update(data),
            // Single-threaded on purpose: the engine already hashes chunks
            // in parallel.
            State::Blake3(h) => {
                h.update(data);
            }
        }
    }

    /// The digest of everything added.
    pub fn finalize(self) -> [u8; 32] {
        match self.0 {
            State::Sha256(h) => h.finalize().into(),
            State::Blake3(h) => h.finalize().into(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Hasher").field(&self.kind()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::test_util::noise;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_answers() {
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let b3 = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
        assert_eq!(hex(&ChecksumKind::Sha256.digest(b"abc")), sha);
        assert_eq!(hex(&ChecksumKind::Blake3.digest(b"abc")), b3);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data = noise(300_000, 11);
        for kind in [ChecksumKind::Sha256, ChecksumKind::Blake3] {
            let mut h = kind.hasher();
            assert_eq!(h.kind(), kind);
            for piece in data.chunks(7919) {
                h.update(piece);
            }
            h.update(&[]);
            assert_eq!(h.finalize(), kind.digest(&data), "{}", kind.name());
            assert_eq!(kind.hasher().finalize(), kind.digest(b""));
        }
    }

    #[test]
    fn ids_round_trip() {
        for kind in [ChecksumKind::Sha256, ChecksumKind::Blake3] {
            assert_eq!(ChecksumKind::from_id(kind.id()), Some(kind));
        }
        assert_eq!(ChecksumKind::Sha256.id(), 1);
        assert_eq!(ChecksumKind::Blake3.id(), 2);
        for id in [0, 3, 255] {
            assert_eq!(ChecksumKind::from_id(id), None);
        }
    }
}
