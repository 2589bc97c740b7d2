//! syncpipe: stream files through parallel CPU stages — compression,
//! authenticated encryption, checksums — with plain OS threads, bounded
//! crossbeam channels, a counting-semaphore governor and a rayon pool. No
//! async runtime.
//!
//! ```
//! use syncpipe::Pipeline;
//! use syncpipe::stages::parse_stages;
//!
//! let pipeline = Pipeline::builder()
//!     .stages(parse_stages("lz4,sha256")?)
//!     .chunk_size(64 << 10)
//!     .build()?;
//! let data = vec![7u8; 300_000];
//! let mut container = Vec::new();
//! let report = pipeline.run(&data[..], &mut container)?;
//! assert_eq!(report.chunks, 5);
//! let mut back = Vec::new();
//! pipeline.restore(&container[..], &mut back)?;
//! assert_eq!(back, data);
//! # Ok::<(), syncpipe::Error>(())
//! ```
//!
//! Many files go through [`Pipeline::process_batch`] (and `restore_batch`,
//! `verify_batch`): one shared governor, a scheduler thread, a small-file
//! path.
//!
//! The threads, channels, shutdown protocol and memory bound are described
//! in `docs/design.md`; the container in `docs/format.md`.
//!
//! Runs can be observed without the library printing anything: give the
//! builder a [`Metrics`] ([`PipelineBuilder::metrics`]) and read its
//! [`Snapshot`]s, pulled or pushed to an [`Observer`] (see [`metrics`]).

pub mod batch;
pub mod cancel;
mod chunk;
pub mod cipher;
mod committer;
pub mod config;
mod encoder;
mod engine;
pub mod error;
pub mod format;
pub mod governor;
pub mod inspect;
pub mod kdf;
pub mod metrics;
pub mod optimize;
pub mod output;
mod par_writer;
mod pipeline;
mod pool;
mod reader;
mod recorder;
pub mod report;
pub mod scheduler;
pub mod secret;
mod snapshot;
pub mod source;
pub mod stage;
pub mod stages;
pub mod storage;
// Public only in loom builds, where the model tests switch timeouts.
#[cfg(loom)]
#[doc(hidden)]
pub mod sync;
#[cfg(not(loom))]
mod sync;
pub mod tuner;
mod writer;

pub use batch::{BatchJob, BatchOptions, BatchReport, FileResult, Outcome};
#[allow(deprecated)]
pub use cancel::Cancel;
pub use cancel::CancelToken;
pub use cipher::CipherKind;
pub use config::{Config, PipelineBuilder, SpawnStyle};
pub use encoder::Encoder;
pub use error::{Error, ErrorKind, Result};
pub use governor::{Governor, Lease, Semaphore};
pub use inspect::{inspect, Inspection};
pub use kdf::KdfParams;
pub use metrics::{Metrics, Observer, Snapshot};
pub use optimize::Optimize;
pub use par_writer::ParWriter;
pub use pipeline::Pipeline;
pub use report::Report;
pub use secret::Secret;
pub use source::ReaderKind;
pub use stage::{ChunkInfo, Stage};
pub use tuner::ChunkMethod;
