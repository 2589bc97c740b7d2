//! How one run's chunks are sized: fixed, by the file's size, or by the
//! hill climber (`tuner.rs`); and the default fixed size, from the stages.
//!
//! Each chunk is compressed as one independent frame, so a compressor loses
//! its history at every chunk boundary: at 1 MiB, zstd:3 on the Linux
//! sources is 7% larger than `zstd -3 -T2`'s stream. So when no chunk size
//! is set, a stage list that compresses with zstd or brotli gets chunks of
//! the compressor's own frame size ([`Zstd::frame_size`], 8 MiB for
//! brotli), still the unit of parallel work and of the container record.
//! A file gets at least [`MIN_CHUNKS`] chunks (never under 1 MiB), so that
//! a small file still keeps the workers busy.

use crate::config::{StageEntry, DEFAULT_CHUNK_SIZE};
use crate::pipeline::Pipeline;
use crate::stages::{StageSpec, Zstd};
use crate::tuner::{self, ChunkMethod, SizeChange, Tuner};

/// How one run's chunks are sized: the first size, the most any chunk may
/// hold (the header's chunk size) and, when hill climbing, the climber.
pub(crate) struct ChunkPlan {
    pub start: usize,
    pub largest: usize,
    pub tuner: Option<Tuner>,
}

impl ChunkPlan {
    pub fn fixed(size: usize) -> ChunkPlan {
        ChunkPlan {
            start: size,
            largest: size,
            tuner: None,
        }
    }

    /// Every size the run used, from its start.
    pub fn history(&self) -> Vec<SizeChange> {
        match &self.tuner {
            Some(t) => t.history(),
            None => vec![SizeChange {
                from_chunk: 0,
                size: self.start,
                mean_cost: std::time::Duration::ZERO,
            }],
        }
    }
}

/// The chunks a file of known length is cut into at least, with the
/// default chunk size (unless that would make them smaller than 1 MiB).
pub const MIN_CHUNKS: u64 = 4;

/// Brotli's frame when no chunk size is set: two of its 4 MiB windows.
const BROTLI_FRAME: usize = 8 << 20;

/// The chunk size of a run given none: the largest frame any of `stages`
/// asks for, [`DEFAULT_CHUNK_SIZE`] for a list that does not compress with
/// zstd or brotli.
pub(crate) fn default_chunk_size(stages: &[StageEntry]) -> usize {
    stages
        .iter()
        .map(|stage| match stage {
            StageEntry::Builtin(StageSpec::Zstd(level)) => Zstd::frame_size(*level),
            StageEntry::Builtin(StageSpec::Brotli(_)) => BROTLI_FRAME,
            _ => DEFAULT_CHUNK_SIZE,
        })
        .fold(DEFAULT_CHUNK_SIZE, usize::max)
}

/// The default chunk size `frame` cut down for a file of `len` bytes: at
/// least [`MIN_CHUNKS`] chunks, in whole MiB, never under 1 MiB. Depends on
/// the length only, so the same input still gives the same bytes on any
/// machine.
fn for_file(frame: usize, len: Option<u64>) -> usize {
    const MIB: u64 = 1 << 20;
    match len {
        None => frame,
        Some(len) => {
            let share = len.div_ceil(MIN_CHUNKS).div_ceil(MIB) * MIB;
            share.clamp(
                DEFAULT_CHUNK_SIZE as u64,
                frame.max(DEFAULT_CHUNK_SIZE) as u64,
            ) as usize
        }
    }
}

impl Pipeline {
    /// How the chunks of an input of `original_len` bytes are sized.
    pub(crate) fn chunk_plan(&self, original_len: Option<u64>) -> ChunkPlan {
        let cfg = &self.inner.config;
        let by_file = || tuner::size_for_file(original_len, cfg.cpu_tokens);
        match cfg.chunk_method {
            ChunkMethod::Fixed if cfg.chunk_size_given => ChunkPlan::fixed(cfg.chunk_size),
            ChunkMethod::Fixed => ChunkPlan::fixed(for_file(cfg.chunk_size, original_len)),
            ChunkMethod::FileSize => ChunkPlan::fixed(by_file()),
            ChunkMethod::HillClimb => {
                let tuner = Tuner::new(if cfg.chunk_size_given {
                    cfg.chunk_size
                } else {
                    by_file()
                });
                ChunkPlan {
                    start: tuner.history()[0].size,
                    largest: tuner::MAX_CHUNK,
                    tuner: Some(tuner),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::parse_stages as parse;

    const MIB: usize = 1 << 20;

    fn fixed_start(stages: &str, len: Option<u64>) -> usize {
        let pipeline = Pipeline::builder()
            .stages(parse(stages).unwrap())
            .build()
            .unwrap();
        pipeline.chunk_plan(len).start
    }

    #[test]
    fn the_default_chunk_follows_the_compressor() {
        let big = Some(1 << 30);
        assert_eq!(fixed_start("zstd:3", big), 8 * MIB);
        assert_eq!(fixed_start("zstd:19", big), 32 * MIB);
        assert_eq!(fixed_start("zstd:1", big), 2 * MIB);
        assert_eq!(fixed_start("brotli:5", big), 8 * MIB);
        assert_eq!(fixed_start("lz4", big), MIB);
        assert_eq!(fixed_start("passthrough", big), MIB);
        assert_eq!(fixed_start("gzip:6", big), MIB);
        // Unknown length (stdin): the whole frame.
        assert_eq!(fixed_start("zstd:19,sha256", None), 32 * MIB);
    }

    #[test]
    fn a_file_gets_at_least_four_chunks_of_at_least_1_mib() {
        assert_eq!(for_file(8 * MIB, Some(32 << 20)), 8 * MIB);
        assert_eq!(for_file(8 * MIB, Some(20 << 20)), 5 * MIB);
        assert_eq!(for_file(8 * MIB, Some((6 << 20) + 1)), 2 * MIB);
        assert_eq!(for_file(8 * MIB, Some(3 << 20)), MIB);
        assert_eq!(for_file(8 * MIB, Some(0)), MIB);
        assert_eq!(for_file(MIB, Some(1 << 30)), MIB);
        assert_eq!(for_file(32 * MIB, Some(128 << 20)), 32 * MIB);
    }

    #[test]
    fn a_chunk_size_set_is_kept() {
        let pipeline = Pipeline::builder()
            .stages(parse("zstd:3").unwrap())
            .chunk_size(MIB)
            .build()
            .unwrap();
        assert_eq!(pipeline.chunk_plan(Some(1 << 30)).start, MIB);
    }
}
