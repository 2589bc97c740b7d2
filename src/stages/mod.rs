//! The built-in stages: compressors, a passthrough, checksums and the spec
//! grammar that names them.
//!
//! Every compressor works on one chunk at a time and keeps no state between
//! chunks, so the engine can compress and restore chunks in parallel. Each
//! inverse refuses to produce more than [`ChunkInfo::limit`] bytes and turns
//! undecodable input into an [`ErrorKind::Integrity`] error, never a panic.
//!
//! Checksums ([`ChecksumKind`]) are not stages: the engine computes them over
//! the original bytes, whatever transform comes after.
//!
//! [`ChunkInfo::limit`]: crate::stage::ChunkInfo::limit
//! [`ErrorKind::Integrity`]: crate::error::ErrorKind::Integrity

pub mod brotli;
pub mod checksum;
pub mod gzip;
pub mod lz4;
mod parse;
pub mod passthrough;
pub mod spec;
pub(crate) mod tree;
pub mod zstd;

// `self::` because the extern crates of the same names are also in scope.
pub use self::brotli::Brotli;
pub use self::checksum::{ChecksumKind, Hasher};
pub use self::gzip::Gzip;
pub use self::lz4::Lz4;
pub use self::passthrough::Passthrough;
pub use self::spec::{parse_stages, StageSpec, Stages};
pub use self::zstd::Zstd;

/// Shared checks that every codec must pass.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::error::ErrorKind;
    use crate::stage::{ChunkInfo, Stage};

    /// `len` incompressible bytes from a xorshift generator.
    pub(crate) fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    /// `len` bytes of repetitive, highly compressible text.
    pub(crate) fn text(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        let mut line = 0;
        while out.len() < len {
            out.extend_from_slice(format!("line {line}: the quick brown fox\n").as_bytes());
            line += 1;
        }
        out.truncate(len);
        out
    }

    pub(crate) fn info(limit: usize) -> ChunkInfo {
        ChunkInfo {
            index: 0,
            last: true,
            limit,
        }
    }

    /// Round trips, tight limits, and `garbage` (which must not decode).
    pub(crate) fn check_codec(stage: &dyn Stage, garbage: &[u8]) {
        let inputs = [Vec::new(), vec![0x42], noise(100_000, 7), text(100_000)];
        // Reused across calls with leftover capacity, as the engine does, so
        // that a stage bounding its output by capacity would be caught.
        let mut packed = Vec::new();
        let mut restored = Vec::with_capacity(1 << 20);
        for input in &inputs {
            packed.clear();
            restored.clear();
            stage
                .forward(&info(input.len()), input, &mut packed)
                .unwrap();
            stage
                .inverse(&info(input.len()), &packed, &mut restored)
                .unwrap();
            assert_eq!(
                &restored,
                input,
                "{} round trip of {} bytes",
                stage.name(),
                input.len()
            );
            if !input.is_empty() {
                restored.clear();
                let err = stage.inverse(&info(input.len() - 1), &packed, &mut restored);
                assert_eq!(err.unwrap_err().kind(), ErrorKind::Integrity);
            }
        }
        let compressible = &inputs[3];
        packed.clear();
        stage.forward(&info(0), compressible, &mut packed).unwrap();
        assert!(
            packed.len() < compressible.len() / 4,
            "{} does not compress",
            stage.name()
        );
        for bad in [garbage, &[][..], &packed[..packed.len() / 2]] {
            restored.clear();
            let err = stage.inverse(&info(1 << 20), bad, &mut restored);
            assert_eq!(
                err.unwrap_err().kind(),
                ErrorKind::Integrity,
                "{}",
                stage.name()
            );
        }
        // Random bytes and flipped compressed bytes: some may decode (LZ4
        // has no framing), but never past the limit, and never a panic.
        for seed in 1..200u64 {
            let mut bad = noise(seed as usize * 3, seed);
            if seed % 2 == 0 {
                bad.clone_from(&packed);
                bad[seed as usize % packed.len()] ^= 1 << (seed % 8);
            }
            restored.clear();
            match stage.inverse(&info(4096), &bad, &mut restored) {
                Ok(()) => assert!(restored.len() <= 4096),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "{}: {e}", stage.name()),
            }
        }
    }
}
