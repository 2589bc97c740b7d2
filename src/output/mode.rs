//! The permission bits an output gets: the umask's ceiling on a new file
//! and on a restored file's recorded mode.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

use super::folder::parent_dir;
use super::temp::temp_file;
use crate::error::{Error, Result};

/// The mode a new file gets in `dest`'s folder: `0666` less the umask.
pub(super) fn default_mode(dest: &Path) -> Result<u32> {
    Ok(0o666 & !umask(dest)?)
}

/// The mode a restored file gets from the mode its container recorded:
/// never more than that mode less the process umask (and never setuid,
/// setgid or sticky), as `tar` extracts without `-p`. The recorded mode
/// is only as trustworthy as the container (a version-1 header is not
/// authenticated), so the umask is the user's ceiling on it.
///
/// # Errors
///
/// [`crate::ErrorKind::Io`] if the umask cannot be read.
pub fn restored_mode(recorded: u32, dest: &Path) -> Result<u32> {
    Ok(recorded & 0o777 & !umask(dest)?)
}

/// The process umask. Linux shows it in `/proc/self/status` (read once: a
/// command-line run never changes it); elsewhere it is read by creating
/// (and removing) a probe file in `dest`'s folder, because `umask(2)` can
/// only read it by setting it, which would race with other threads.
fn umask(dest: &Path) -> Result<u32> {
    static FROM_PROC: OnceLock<Option<u32>> = OnceLock::new();
    let proc = FROM_PROC.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    });
    if let Some(mask) = *proc {
        return Ok(mask & 0o777);
    }
    let probe = temp_file(parent_dir(dest), "syncpipe-mode", 0o777)
        .map_err(|e| Error::io(e).with_path(dest))?;
    let meta = probe
        .as_file()
        .metadata()
        .map_err(|e| Error::io(e).with_path(dest))?;
    Ok(!meta.permissions().mode() & 0o777)
}
