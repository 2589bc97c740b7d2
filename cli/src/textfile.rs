//! Report files the CLI writes beside its work (`--prometheus-file`,
//! `bench --csv`, `bench --plot`): they may only ever be regular files.
//!
//! A rename or an `open(O_TRUNC)` at such a path acts on whatever is there:
//! run as root, `--prometheus-file /dev/full` used to replace the device
//! node with a regular file, and a symlink at the path was followed (or
//! replaced). So a path that exists and is not a regular file (by `lstat`:
//! a symlink counts as not regular, whatever it points to) is refused at
//! start, and checked again right before each write. What an earlier
//! command left at the textfile's path is read back ([`read_small`]) only
//! from a regular file, too.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use syncpipe::Error;

/// What is at a report path instead of a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRegular(pub &'static str);

impl fmt::Display for NotRegular {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is there, not a regular file; it is left as it is",
            self.0
        )
    }
}

impl std::error::Error for NotRegular {}

impl NotRegular {
    /// As an `io::Error` that [`NotRegular::of`] recognises.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// The `NotRegular` inside `e`, if that is what `e` is.
    pub fn of(e: &io::Error) -> Option<NotRegular> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<NotRegular>())
            .copied()
    }
}

/// What is at `path` if it exists and is not a regular file (not
/// following a symlink); `None` for a regular file, nothing at all, or a
/// path that cannot be looked at (the write itself then reports why).
pub fn not_regular(path: &Path) -> Option<NotRegular> {
    kind_of(fs::symlink_metadata(path).ok()?.file_type())
}

fn kind_of(t: fs::FileType) -> Option<NotRegular> {
    (!t.is_file()).then(|| NotRegular(syncpipe::output::kind_name(&t)))
}

/// Refuses, as a usage error naming `flag` and `path`, a target that exists
/// and is not a regular file. Called before any work.
///
/// # Errors
///
/// Usage (exit 2).
pub fn check_target(flag: &str, path: &Path) -> Result<(), Error> {
    match not_regular(path) {
        None => Ok(()),
        Some(NotRegular(what)) => Err(Error::usage(format!(
            "{what} is there, not a regular file; refusing to replace or write into it \
             (give the path of a regular file, or of one to create)"
        ))
        .with_stage(flag.to_string())
        .with_path(path)),
    }
}

/// Opens `path` for writing in place, created if missing, emptied only
/// once the open file is known to be a regular one: never through a
/// symlink (`O_NOFOLLOW`), never blocking on a FIFO without a reader
/// (`O_NONBLOCK`, cleared again for the writes).
///
/// # Errors
///
/// The open error, or [`NotRegular`] (as an `io::Error`) for anything
/// but a regular file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    // Looked at first: merely opening some devices has effects (a tape
    // rewinds, a terminal may become the controlling one).
    if let Some(what) = not_regular(path) {
        return Err(what.into_io());
    }
    let opened = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        // ELOOP (a symlink), ENXIO (a FIFO nobody reads), ...: it changed
        // since the look; say what is there rather than the errno.
        Err(e) => return Err(not_regular(path).map_or(e, NotRegular::into_io)),
    };
    // The descriptor is what gets written: checked on it, no race left.
    if let Some(what) = kind_of(file.metadata()?.file_type()) {
        return Err(what.into_io());
    }
    clear_nonblock(&file)?;
    file.set_len(0)?;
    Ok(file)
}

/// The most of an earlier report [`read_small`] reads: a textfile is a few
/// tens of kilobytes; anything larger is not one of ours.
const MAX_READ: u64 = 1 << 20;

/// The text of the regular file at `path` (what an earlier command wrote
/// there), or `None`: nothing there, not a regular file, not UTF-8, larger
/// than 1 MiB, unreadable. Never follows a symlink nor blocks on a FIFO.
pub fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_READ {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_READ).read_to_string(&mut text).ok()?;
    Some(text)
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; F_GETFL
    // and F_SETFL touch only its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn regular_files_and_new_paths_pass_others_do_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("f");
        fs::write(&file, "old").expect("write");
        assert_eq!(not_regular(&file), None);
        assert_eq!(not_regular(&dir.path().join("new")), None);
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert_eq!(not_regular(&link), Some(NotRegular("a symbolic link")));
        assert_eq!(not_regular(dir.path()), Some(NotRegular("a directory")));
        assert!(check_target("--csv", &link).is_err());
        assert!(check_target("--csv", &file).is_ok());
    }

    #[test]
    fn read_small_reads_a_regular_file_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("f");
        fs::write(&file, "a 1\n").expect("write");
        assert_eq!(read_small(&file).as_deref(), Some("a 1\n"));
        assert_eq!(read_small(&dir.path().join("new")), None);
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert_eq!(read_small(&link), None, "not through a symlink");
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read_small(&fifo),
            None,
            "a FIFO is not read (nor waited on)"
        );
        fs::write(&file, vec![b'x'; MAX_READ as usize + 1]).expect("write");
        assert_eq!(read_small(&file), None, "too large to be a report");
    }

    #[test]
    fn open_regular_truncates_a_file_and_refuses_a_symlink() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("f");
        fs::write(&file, "old contents").expect("write");
        let mut f = open_regular(&file).expect("open");
        f.write_all(b"new").expect("write");
        drop(f);
        assert_eq!(fs::read_to_string(&file).expect("read"), "new");
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let e = open_regular(&link).expect_err("a symlink is refused");
        assert_eq!(NotRegular::of(&e), Some(NotRegular("a symbolic link")));
        assert_eq!(fs::read_to_string(&file).expect("read"), "new");
    }
}
