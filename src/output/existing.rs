//! What is already at an output's path, and what that allows: nothing, a
//! directory (refused), a device or FIFO written in place, or something
//! only `force` replaces. Who named the output decides which.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

/// Who chose an output's name, which decides what may be written in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Naming {
    /// Typed by the user (`-o PATH`): a device or FIFO there is meant.
    User,
    /// Derived from an input's name (a batch): whatever is there was not
    /// asked for, and may have been planted.
    Derived,
}

/// What is already at an output's path, looked at without following a
/// final symbolic link.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Existing {
    /// Nothing (or nothing we may see: creating the temp file reports it).
    Nothing,
    /// A directory: always refused.
    Directory,
    /// A device or FIFO written in place, never replaced (run as root, a
    /// rename would swap the node for a regular file). A block device
    /// holds data worth a `-f`; `/dev/null` or a pipe does not.
    InPlace { needs_force: bool },
    /// Something only `force` replaces, by a regular file: a file, a link,
    /// or (for derived names) a FIFO, device or socket. The word names it
    /// in the error.
    Replaced(&'static str),
}

impl Existing {
    pub(super) fn at(dest: &Path, naming: Naming) -> Result<Existing> {
        use std::os::unix::fs::FileTypeExt;
        let Ok(meta) = fs::symlink_metadata(dest) else {
            return Ok(Existing::Nothing);
        };
        let t = meta.file_type();
        if t.is_dir() {
            return Ok(Existing::Directory);
        }
        if t.is_file() {
            return Ok(Existing::Replaced(REGULAR));
        }
        if naming == Naming::Derived {
            return Ok(Existing::Replaced(kind_name(&t)));
        }
        if t.is_symlink() {
            if !is_descriptor_link(dest) {
                return Ok(Existing::Replaced(kind_name(&t)));
            }
            // `/dev/stdout` and the like: whatever the descriptor is (a
            // pipe, a terminal, a file the shell opened) is written in place.
            return match fs::metadata(dest) {
                Ok(m) if m.is_dir() => Ok(Existing::Directory),
                Ok(_) => Ok(Existing::InPlace { needs_force: false }),
                Err(e) => Err(Error::io(e).with_path(dest)),
            };
        }
        if t.is_socket() {
            return Ok(Existing::Replaced(kind_name(&t)));
        }
        Ok(Existing::InPlace {
            needs_force: t.is_block_device(),
        })
    }
}

/// The system's links to this process's own descriptors, which name an
/// output the shell already opened; a link anywhere else is a file of its
/// own, never written through.
fn is_descriptor_link(path: &Path) -> bool {
    let fd_in = |dir: &str| {
        path.strip_prefix(dir).is_ok_and(|rest| {
            let rest = rest.as_os_str().as_encoded_bytes();
            !rest.is_empty() && rest.iter().all(u8::is_ascii_digit)
        })
    };
    path == Path::new("/dev/stdout")
        || path == Path::new("/dev/stderr")
        || fd_in("/dev/fd")
        || fd_in("/proc/self/fd")
        || fd_in("/proc/thread-self/fd")
}

/// What [`kind_name`] calls a regular file.
pub(super) const REGULAR: &str = "a regular file";

/// What a file type is, in words with their article (`a FIFO`), for
/// messages about what was found at a path.
pub fn kind_name(t: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        REGULAR
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Opens an existing device or FIFO for writing, in place. A name the
/// user typed that is not a descriptor link is opened with `O_NOFOLLOW`,
/// so a link swapped in after the look is refused, not written through.
pub(super) fn open_in_place(dest: &Path, naming: Naming) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if naming == Naming::Derived || !is_descriptor_link(dest) {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(dest)
}
