//! Files with no name (`O_TMPFILE`, Linux) and how one gets its name at
//! commit: a link, or with `force` over an existing file a link to a fresh
//! temp name renamed over it.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use super::existing::REGULAR;
use super::folder::parent_dir;
use super::temp::temp_file;
use crate::error::{Error, Result};

/// Opens a file with no name in `dir` (`O_TMPFILE`), mode 0600, or `None`
/// where that is not possible: not Linux, a filesystem without
/// `O_TMPFILE`, or no `/proc/self/fd` to name it through at commit (linking
/// the descriptor itself, `AT_EMPTY_PATH`, needs a capability).
#[cfg(target_os = "linux")]
pub(super) fn open_unnamed(dir: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::OnceLock;
    static PROC_FD: OnceLock<bool> = OnceLock::new();
    if !*PROC_FD.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
        return None;
    }
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .ok()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn open_unnamed(_dir: &Path) -> Option<File> {
    None
}

/// Gives the unnamed file `file` the name `to` (`linkat` through
/// `/proc/self/fd`); fails with `AlreadyExists` if `to` exists.
#[cfg(target_os = "linux")]
pub(super) fn link_unnamed(file: &File, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    // Digits only, so never a NUL; mapped all the same, as `to` is.
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    let to = CString::new(to.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn link_unnamed(_file: &File, _to: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Names an unnamed output: a link when `dest` is free; with `force` over
/// an existing one, a link to a fresh temp name renamed over it (a link
/// cannot replace, and the rename keeps the replacement atomic).
pub(super) fn link_or_replace(file: &File, dest: &Path, force: bool) -> Result<()> {
    match link_unnamed(file, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && force => {
            let dir = parent_dir(dest);
            let name = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A fresh temp name of the usual form (so a crash between the
            // link and the rename leaves a file the stale-temp sweep knows),
            // freed for the link.
            let placeholder =
                temp_file(dir, &name, 0o600).map_err(|e| Error::io(e).with_path(dest))?;
            let temp = placeholder.path().to_path_buf();
            drop(placeholder);
            link_unnamed(file, &temp).map_err(|e| Error::io(e).with_path(dest))?;
            fs::rename(&temp, dest).map_err(|e| {
                let _ = fs::remove_file(&temp);
                Error::io(e).with_path(dest)
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(Error::already_exists(dest, REGULAR))
        }
        Err(e) => Err(Error::io(e).with_path(dest)),
    }
}
