//! The whole-file BLAKE3 assembled from subtrees hashed in parallel.
//!
//! BLAKE3 is a tree: a piece of the input whose offset is a multiple of its
//! (power-of-two, at least 1 KiB) length is a subtree, whose chaining value
//! can be computed alone and merged with its neighbours later. With chunks
//! of a fixed size that is a multiple of 1 KiB, every chunk is one or more
//! such pieces, so the CPU workers hash them alongside the chunk's encoding
//! and the writer merges the values in order: the serial part is one
//! 64-byte compression per piece instead of the whole file's hashing. The
//! digest is bit-identical to [`blake3::hash`] of the whole input.

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

/// BLAKE3's chunk length: no subtree is smaller (but the last).
const LEAF: usize = 1024;

/// The pieces one run's chunks are cut into; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pieces {
    /// The chunk size: every chunk but the last is this long.
    chunk: usize,
    /// The largest power of two dividing `chunk`: the subtree length.
    piece: usize,
}

impl Pieces {
    /// The pieces of a run whose chunks are all `chunk_size` bytes (but the
    /// last), or `None` when such chunks do not start on subtree boundaries
    /// (not a multiple of 1 KiB): that run hashes serially.
    pub fn for_chunks(chunk_size: usize) -> Option<Pieces> {
        (chunk_size >= LEAF && chunk_size.is_multiple_of(LEAF)).then(|| Pieces {
            chunk: chunk_size,
            piece: 1 << chunk_size.trailing_zeros(),
        })
    }

    /// The values of chunk `index`'s pieces, in order. The only chunk of a
    /// stream is the whole tree: its value is the root, the digest itself.
    pub fn hash(&self, index: u64, last: bool, data: &[u8]) -> Vec<ChainingValue> {
        if index == 0 && last {
            return vec![*blake3::hash(data).as_bytes()];
        }
        let start = index * self.chunk as u64;
        (0u64..)
            .zip(data.chunks(self.piece))
            .map(|(i, piece)| {
                let mut h = blake3::Hasher::new();
                h.set_input_offset(start + i * self.piece as u64);
                h.update(piece);
                h.finalize_non_root()
            })
            .collect()
    }
}

/// Merges piece values, fed in input order, into the root.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// The values of the complete subtrees so far, left to right (BLAKE3's
    /// own chaining-value stack).
    stack: Vec<ChainingValue>,
    pieces: u64,
}

impl Tree {
    /// Adds the next piece's value.
    pub fn push(&mut self, cv: ChainingValue) {
        // Merged lazily, before the next push, as BLAKE3's hasher does: the
        // last subtree standing must be finalised as the root instead.
        while self.stack.len() > self.pieces.count_ones() as usize {
            self.merge_top();
        }
        self.stack.push(cv);
        self.pieces += 1;
    }

    fn merge_top(&mut self) {
        let right = self.stack.pop().expect("two values to merge");
        let left = self.stack.pop().expect("two values to merge");
        self.stack
            .push(merge_subtrees_non_root(&left, &right, Mode::Hash));
    }

    /// The digest: the right edge merged right to left, the last merge as
    /// the root. One value alone is already the root ([`Pieces::hash`]).
    pub fn finalize(mut self) -> [u8; 32] {
        let Some(mut right) = self.stack.pop() else {
            return *blake3::hash(b"").as_bytes();
        };
        while let Some(left) = self.stack.pop() {
            if self.stack.is_empty() {
                return *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes();
            }
            right = merge_subtrees_non_root(&left, &right, Mode::Hash);
        }
        right
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::test_util::noise;

    /// Hashes `data` as a run of `chunk`-byte chunks would.
    fn assembled(data: &[u8], chunk: usize) -> [u8; 32] {
        let pieces = Pieces::for_chunks(chunk).expect("an aligned chunk size");
        let mut tree = Tree::default();
        let n = data.len().div_ceil(chunk).max(1);
        for i in 0..n {
            let part = &data[(i * chunk).min(data.len())..((i + 1) * chunk).min(data.len())];
            for cv in pieces.hash(i as u64, i + 1 == n, part) {
                tree.push(cv);
            }
        }
        tree.finalize()
    }

    #[test]
    fn equals_the_one_shot_hash() {
        let data = noise(700_000, 5);
        // Powers of two, multiples of an odd number of pieces, one leaf.
        for chunk in [1024, 4096, 3 << 10, 64 << 10, 192 << 10, 1 << 20] {
            for len in [
                0,
                1,
                1024,
                1025,
                chunk,
                chunk + 1,
                2 * chunk,
                7 * chunk + 3,
                700_000,
            ] {
                let len = len.min(data.len());
                let want = *blake3::hash(&data[..len]).as_bytes();
                assert_eq!(
                    assembled(&data[..len], chunk),
                    want,
                    "chunk {chunk}, len {len}"
                );
            }
        }
    }

    #[test]
    fn only_aligned_chunk_sizes_have_pieces() {
        assert_eq!(Pieces::for_chunks(1000), None);
        assert_eq!(Pieces::for_chunks(1536 + 1), None);
        assert_eq!(Pieces::for_chunks(512), None);
        let p = Pieces::for_chunks(192 << 10).unwrap();
        assert_eq!((p.chunk, p.piece), (192 << 10, 64 << 10));
    }
}
