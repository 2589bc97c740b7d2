//! syncpipe: stream files through parallel CPU stages — compression,
//! authenticated encryption, checksums — with plain OS threads, bounded
//! crossbeam channels, a counting-semaphore governor and a rayon pool. No
//! async runtime.
//!
//! ```
//! use syncpipe::{parse_stages, Pipeline};
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
//! - Streams: [`Pipeline::run`], [`Pipeline::restore`], and the `std::io`
//!   adapters [`ParWriter`] and [`ParReader`]; files through a temp file
//!   renamed only on success: [`Pipeline::process_path`] and friends.
//! - Many files: [`Pipeline::process_batch`] (see [`batch`]).
//! - Looking at a container without restoring it: [`container`].
//! - Observing runs without the library printing anything: [`metrics`].
//! - An engine of your own (an async runtime): [`Encoder`].
//! - Files other tools read: [`Format`] (`.zst`, `.gz`, BGZF, age, with
//!   [`AgeRecipient`] and [`AgeIdentity`]), set with
//!   [`PipelineBuilder::format`]; restore tells every format by its magic.
//!
//! The threads, channels, shutdown protocol and memory bound are described
//! in `docs/design.md`; the container in `docs/format.md`.

#[macro_use]
mod names;

pub mod age;
pub mod batch;
mod cancel;
mod chunk;
mod chunk_plan;
// The AEADs and the key schedule: private; `internals` for the tests that
// check nonces and keys against the specification.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod cipher;
#[cfg(not(feature = "internals"))]
mod cipher;
mod config;
pub mod container;
mod cpu_pool;
mod encoder;
mod error;
mod file_format;
// The wire format: private; the project's own tests and fuzz targets reach
// it through the undocumented `internals` feature.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod format;
#[cfg(not(feature = "internals"))]
mod format;
pub mod governor;
mod kdf;
mod keyring;
mod ledger;
pub mod limits;
pub mod metrics;
mod optimize;
pub mod output;
mod overwrite;
mod par_reader;
mod par_writer;
mod pipeline;
mod pool;
mod recorder;
mod relay;
mod report;
mod secret;
mod small_file;
mod snapshot;
mod source;
pub mod stage;
pub mod stages;
pub mod storage;
mod stream;
// Public only in loom builds, where the model tests switch timeouts.
#[cfg(loom)]
#[doc(hidden)]
pub mod sync;
#[cfg(not(loom))]
mod sync;
// The chunk-size climber: private, its constants reachable through
// `internals` for the tests that check the sizes it picks.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod tuner;
#[cfg(not(feature = "internals"))]
mod tuner;
// The `.zst` and `.gz` formats' parsers: private; `internals` opens them
// to the fuzz targets.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod gz;
#[cfg(not(feature = "internals"))]
mod gz;
mod layout;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod zst;
#[cfg(not(feature = "internals"))]
mod zst;

pub use age::{AgeIdentity, AgeRecipient};
pub use batch::{BatchJob, BatchOptions, BatchReport, FileResult, Outcome};
pub use cancel::CancelToken;
pub use cipher::CipherKind;
pub use config::{Config, PipelineBuilder, SpawnStyle};
pub use container::{inspect, ContainerInfo, Inspection};
pub use encoder::Encoder;
pub use error::{Error, ErrorKind, Result};
pub use file_format::{bgzf_has_eof_block, Format};
pub use governor::{Governor, Lease, Semaphore};
pub use kdf::KdfParams;
pub use metrics::{Metrics, Observer, Snapshot};
pub use optimize::Optimize;
pub use overwrite::Overwrite;
pub use par_reader::ParReader;
pub use par_writer::ParWriter;
pub use pipeline::Pipeline;
pub use report::{Report, ThreadCpu};
pub use secret::Secret;
pub use source::{ReaderKind, Source};
pub use stage::{ChunkInfo, Stage};
pub use stages::{parse_stages, ChecksumKind, StageSpec, Stages};
pub use tuner::{ChunkMethod, SizeChange};
