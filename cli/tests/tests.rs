//! The `syncpipe` binary's integration tests, as one test binary
//! (`integration`): one module per file beside this one, sharing the
//! library tests' `common` (deterministic data, a deadlock watchdog).
//!
//! Every module that starts `syncpipe` runs it as a child process, so
//! signals sent to it, its resource limits, umask and closed descriptors
//! are the child's alone; the in-process tests install no handler and set
//! no environment variable. That is why all of them share one process.
//!
//! Run one module with a filter: `cargo test -p syncpipe-cli --test
//! integration signal::`.

#[path = "../../tests/common/mod.rs"]
mod common;

mod age;
mod async_baseline;
mod batch;
mod bench_cli;
mod chunk_method;
mod cli;
mod crypto_cli;
mod dashboard;
mod exposition;
mod faults;
mod golden_data;
mod gz;
mod hostile;
mod hostile_use;
mod observe;
mod optimize;
mod real_tools;
mod reliability;
mod signal;
mod storage_cli;
mod zst;
