//! Files on disk: opening inputs, and outputs that appear only when complete.
//!
//! An output is written to a temp file in the destination's folder (same
//! filesystem, so the final rename is atomic), fsynced, given its permission
//! bits and renamed over the destination only when the run succeeded. Until
//! then the temp file is owned by a `NamedTempFile`, whose `Drop` removes it:
//! every error path, and a cancelled run, leaves nothing behind.
//!
//! A process that is killed (SIGKILL, a power cut, a second Ctrl-C) gets no
//! chance to remove its temp file, but it never leaves a partial file under
//! the destination name: the rename is the commit. Its temp file is named
//! `.NAME.syncpipe-tmp.HOST.PID.RANDOM` (see [`temp_owner`]), so a later run
//! can tell it from everything else, and batch walks skip it as an input.
//! Creating an output never removes other files: removing the temp files
//! of this host whose process is gone is an explicit call,
//! [`remove_stale_temps`], which the binary makes before writing into a
//! folder and an embedder may make. A program that must exit while a run is
//! still writing (the binary, when a signal did not stop a blocked run in
//! time) can first remove its own temp files with [`remove_live_temps`].
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
pub use input::{open_input, probe_stream, same_file};
pub use mode::restored_mode;
pub use sweep::remove_stale_temps;
pub use temp::{remove_live_temps, temp_file, temp_owner, this_host, TempOwner, TEMP_MARKER};
