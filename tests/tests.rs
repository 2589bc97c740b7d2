//! The library's integration tests, as one test binary (`integration`):
//! one module per file beside this one, sharing `common`. One binary links
//! the library once and runs every module in one `cargo test` process.
//!
//! `loom_governor.rs` is not a module here: it is built only with
//! `--cfg loom` and runs on its own (see `Cargo.toml` and `.ci/loom`).
//!
//! Run one module with a filter: `cargo test -p syncpipe --test integration
//! equivalence::`.

mod age;
mod common;

mod crypto;
mod embedding;
mod equivalence;
mod failure;
mod golden;
mod golden_v2;
mod governor_stress;
mod gz;
mod io_tokens;
mod metrics;
mod prop;
mod stale_temps;
mod standard_formats;
mod zst;
