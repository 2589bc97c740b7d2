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
//! path; [`walk`] finds the files, [`shard`] splits a batch across machines.
//!
//! The threads, channels, shutdown protocol and memory bound are described
//! in `docs/design.md`; the container in `docs/format.md`.
//!
//! Runs can be observed without the library printing anything: give the
//! builder a [`Metrics`] ([`PipelineBuilder::metrics`]) and read its
//! [`Snapshot`]s, pulled or pushed to an [`Observer`] (see [`metrics`]).
//!
//! [`bench::run`] measures the pipeline over a sweep of settings (what
//! `syncpipe bench` prints), on a file or on [`synthetic`] data, and
//! [`plot`] draws the result as an SVG line chart.

pub mod batch;
pub mod bench;
pub mod cancel;
mod chunk;
mod chunk_plan;
pub mod cipher;
pub mod config;
mod cpu_pool;
mod encoder;
pub mod error;
pub mod format;
pub mod governor;
pub mod inspect;
pub mod kdf;
mod keyring;
mod ledger;
pub mod metrics;
pub mod optimize;
pub mod output;
mod overwrite;
mod par_reader;
mod par_writer;
mod pipeline;
pub mod plot;
mod pool;
mod recorder;
mod relay;
pub mod report;
pub mod secret;
pub mod shard;
mod snapshot;
pub mod source;
pub mod stage;
pub mod stages;
pub mod storage;
mod stream;
pub mod synthetic;
// Public only in loom builds, where the model tests switch timeouts.
#[cfg(loom)]
#[doc(hidden)]
pub mod sync;
#[cfg(not(loom))]
mod sync;
pub mod tuner;
pub mod walk;

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
pub use overwrite::Overwrite;
pub use par_reader::ParReader;
pub use par_writer::ParWriter;
pub use pipeline::Pipeline;
pub use report::Report;
pub use secret::Secret;
pub use source::ReaderKind;
pub use stage::{ChunkInfo, Stage};
pub use stages::{parse_stages, ChecksumKind, StageSpec, Stages};
pub use tuner::ChunkMethod;
