//! How one run's chunks are sized: fixed, by the file's size, or by the
//! hill climber (`tuner.rs`).

use crate::pipeline::Pipeline;
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

impl Pipeline {
    /// How the chunks of an input of `original_len` bytes are sized.
    pub(crate) fn chunk_plan(&self, original_len: Option<u64>) -> ChunkPlan {
        let cfg = &self.inner.config;
        let by_file = || tuner::size_for_file(original_len, cfg.cpu_tokens);
        match cfg.chunk_method {
            ChunkMethod::Fixed => ChunkPlan::fixed(cfg.chunk_size),
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
