//! Files on disk: opening inputs, and outputs that appear only when complete.
//!
//! What holds for every output ([`OutputFile`]):
//! - it is written to a temp file in the destination's folder (same
//!   filesystem, so the rename is atomic), to an unnamed file there
//!   (`O_TMPFILE`), or, for an existing device or FIFO, in place;
//! - it is fsynced and given its mode before the rename (or link), and the
//!   folder is fsynced after it;
//! - it takes the destination's name only when the run succeeded, so a
//!   killed process never leaves a partial destination;
//! - until then `Drop` removes it: an error or a cancel leaves nothing;
//! - creating it removes no other file. Temp files of killed runs
//!   (`.NAME.syncpipe-tmp.HOST.PID.RANDOM`, see [`temp_owner`]; walks skip
//!   them) go only by an explicit [`remove_stale_temps`], which the binary
//!   makes before writing into a folder and an embedder may make;
//!   [`remove_live_temps`] is for an exit that skips destructors.
//!
//! See `docs/design.md`, "Crash safety".

mod durability;
mod existing;
mod file;
mod folder;
mod input;
mod mode;
mod sweep;
mod temp;
mod unnamed;

pub use durability::{sync_dir, sync_filesystem, Writeback};
pub use existing::kind_name;
pub use file::OutputFile;
pub use folder::folder_below;
pub(crate) use input::{check_unchanged, mode_of};
pub use input::{open_input, probe_stream, remove_input, same_file};
pub use mode::restored_mode;
pub use sweep::remove_stale_temps;
pub use temp::{remove_live_temps, temp_file, temp_owner, TempOwner};
/// How a temp file's name is spelled: for this project's tests, which plant
/// a dead run's temp file (`internals`, no stability promise).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use temp::{this_host, TEMP_MARKER};
