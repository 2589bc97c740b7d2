//! Files on disk: opening inputs, and outputs that appear only when complete.
//!
//! An output is written to a temp file in the destination's folder (same
//! filesystem, so the final rename is atomic), fsynced, given its permission
//! bits and renamed over the destination only when the run succeeded. Until
//! then the temp file is owned by a `NamedTempFile`, whose `Drop` removes it:
//! every error path, and a cancelled run, leaves nothing behind.

use std::fs::{self, File, Metadata, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Opens an input file and returns it with its metadata.
///
/// # Errors
///
/// [`crate::ErrorKind::Io`] if it cannot be opened (the message names the
/// path), [`crate::ErrorKind::Usage`] if it is a directory.
pub fn open_input(path: &Path) -> Result<(File, Metadata)> {
    let file = File::open(path).map_err(|e| Error::io(e).with_path(path))?;
    let meta = file.metadata().map_err(|e| Error::io(e).with_path(path))?;
    if meta.is_dir() {
        return Err(Error::usage("is a directory").with_path(path));
    }
    Ok((file, meta))
}

/// Unix permission bits of a file, without setuid, setgid and sticky: a
/// container must not be able to hand out a setuid file on restore.
pub(crate) fn mode_of(meta: &Metadata) -> u32 {
    meta.permissions().mode() & 0o777
}

/// True if both paths name the same file (same device and inode), following
/// symbolic links; false if either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    // `b` first: it is the output, which usually does not exist yet, and
    // then `a` need not be looked at (one system call less per file of a
    // batch).
    let Ok(y) = fs::metadata(b) else {
        return false;
    };
    fs::metadata(a).is_ok_and(|x| x.dev() == y.dev() && x.ino() == y.ino())
}

/// The mode a new file gets in `dest`'s folder: `0666` less the process
/// umask. Read by creating (and removing) a probe file, because the umask
/// can only be read by setting it, which would race with other threads.
fn default_mode(dest: &Path) -> Result<u32> {
    let probe = tempfile::Builder::new()
        .prefix(".syncpipe-mode.")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(parent_dir(dest))
        .map_err(|e| Error::io(e).with_path(dest))?;
    let meta = probe
        .as_file()
        .metadata()
        .map_err(|e| Error::io(e).with_path(dest))?;
    Ok(mode_of(&meta))
}

fn parent_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Bytes written between two writeback kicks.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// The output file as the writer thread sees it: plain `write`s, plus a
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` on every 8 MiB just written.
///
/// Why: the commit's `fsync` must wait until every byte is on disk. Left
/// alone, the kernel starts writing dirty pages late, so the run computes
/// first and then waits for the disk (time = CPU + disk). Starting the
/// writeback as data is produced overlaps the two (time ≈ max(CPU, disk)),
/// the "bytes per sync" pattern of RocksDB. The call only queues I/O; it
/// does not wait for it. `docs/performance.md` measures the difference.
#[derive(Debug)]
pub struct Writeback<'a> {
    file: &'a File,
    written: u64,
    flushed: u64,
}

impl io::Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = io::Write::write(&mut self.file, buf)?;
        self.written += n as u64;
        if self.written - self.flushed >= WRITEBACK_EVERY {
            start_writeback(self.file, self.flushed, self.written - self.flushed);
            self.flushed = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(&mut self.file)
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is valid for the borrow of `file`; the call
    // reads no memory of ours. A failure (e.g. a filesystem without
    // writeback) only loses the optimisation, so the result is ignored.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// An output being written: a temp file that becomes `dest` on `commit`.
#[derive(Debug)]
pub struct OutputFile {
    tmp: NamedTempFile,
    dest: PathBuf,
    force: bool,
}

impl OutputFile {
    /// Checks `dest` and creates the temp file beside it. Nothing is opened
    /// for writing before the checks pass.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Usage`] if `dest` is the input itself, is a
    /// directory, or exists and `force` is false; [`crate::ErrorKind::Io`]
    /// if the temp file cannot be created.
    pub fn create(input: &Path, dest: &Path, force: bool) -> Result<OutputFile> {
        if same_file(input, dest) {
            return Err(Error::usage("input and output are the same file").with_path(dest));
        }
        Self::create_for(dest, force)
    }

    /// As [`OutputFile::create`], for an input that is not a file (stdin).
    ///
    /// # Errors
    ///
    /// As [`OutputFile::create`].
    pub fn create_for(dest: &Path, force: bool) -> Result<OutputFile> {
        if let Ok(meta) = fs::metadata(dest) {
            if meta.is_dir() {
                return Err(Error::usage("output is a directory").with_path(dest));
            }
            if !force {
                return Err(Error::usage("already exists; use -f to overwrite").with_path(dest));
            }
        }
        let dir = parent_dir(dest);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .permissions(Permissions::from_mode(0o600))
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io(e).with_path(dest))?;
        Ok(OutputFile {
            tmp,
            dest: dest.to_path_buf(),
            force,
        })
    }

    /// A writer into the temp file that starts the disk writeback of every
    /// few megabytes as it goes (see [`Writeback`]).
    pub fn file(&self) -> Writeback<'_> {
        Writeback {
            file: self.tmp.as_file(),
            written: 0,
            flushed: 0,
        }
    }

    /// Sets the mode, fsyncs, and renames the temp file to the destination;
    /// then fsyncs the folder so the rename itself survives a crash. With
    /// `mode` unknown (`None`, e.g. the input was stdin) the file gets what
    /// any new file would: `0666` less the umask.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Io`] if any step fails (the temp file is removed),
    /// [`crate::ErrorKind::Usage`] if, without `force`, the destination
    /// appeared while the run was going on.
    pub fn commit(self, mode: Option<u32>) -> Result<()> {
        let dir = self.commit_file(mode)?;
        if let Some(dir) = dir {
            sync_dir(&dir);
        }
        Ok(())
    }

    fn commit_file(self, mode: Option<u32>) -> Result<Option<PathBuf>> {
        self.set_mode(mode)?;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(e).with_path(&self.dest))?;
        self.rename()
    }

    /// Group commit, step 1 of 2: gives the fully written temp file its real
    /// mode. Then the caller makes every file of the group durable with one
    /// [`sync_filesystem`] (instead of an fsync each) and calls
    /// [`OutputFile::rename_synced`] on each. The mode is set before the
    /// sync so that it is durable too.
    ///
    /// # Errors
    ///
    /// As [`OutputFile::commit`].
    pub fn prepare(&self, mode: Option<u32>) -> Result<()> {
        self.set_mode(mode)
    }

    /// Group commit, step 2 of 2: renames a temp file that
    /// [`OutputFile::prepare`] finished and a [`sync_filesystem`] made
    /// durable *after* it was written; no fsync of its own. Returns the
    /// folder to fsync once for the group (see [`sync_dir`]).
    ///
    /// # Errors
    ///
    /// As [`OutputFile::commit`].
    pub fn rename_synced(self) -> Result<Option<PathBuf>> {
        self.rename()
    }

    /// Fsyncs and renames a file [`OutputFile::prepare`] finished, for a
    /// group that could not be synced as one (or a group of one). Returns
    /// the folder to fsync (see [`sync_dir`]).
    ///
    /// # Errors
    ///
    /// As [`OutputFile::commit`].
    pub fn commit_prepared(self) -> Result<Option<PathBuf>> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(e).with_path(&self.dest))?;
        self.rename()
    }

    /// The file descriptor's file, for [`sync_filesystem`].
    pub fn as_file(&self) -> &File {
        self.tmp.as_file()
    }

    fn set_mode(&self, mode: Option<u32>) -> Result<()> {
        // The temp file was created private (0600) so that nobody reads a
        // half-written copy of a private input; now it gets its real mode.
        let mode = match mode {
            // Masked again here: the mode may come from a hostile header.
            Some(m) => m & 0o777,
            None => default_mode(&self.dest)?,
        };
        self.tmp
            .as_file()
            .set_permissions(Permissions::from_mode(mode))
            .map_err(|e| Error::io(e).with_path(&self.dest))
    }

    fn rename(self) -> Result<Option<PathBuf>> {
        let dest = self.dest;
        let persisted = if self.force {
            self.tmp.persist(&dest)
        } else {
            self.tmp.persist_noclobber(&dest)
        };
        if let Err(e) = persisted {
            // `e.file` drops here, removing the temp file.
            return Err(if e.error.kind() == io::ErrorKind::AlreadyExists {
                Error::usage("already exists; use -f to overwrite").with_path(&dest)
            } else {
                Error::io(e.error).with_path(&dest)
            });
        }
        Ok(dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf))
    }
}

/// Makes everything written to the filesystem that holds `file` durable:
/// `syncfs(2)`, one flush for a whole group of files where an fsync each
/// would flush the device once per file (the group commit of the batch's
/// small files). Elsewhere than Linux it fails with `Unsupported`, and the
/// caller fsyncs each file instead.
///
/// # Errors
///
/// The system call's error.
pub fn sync_filesystem(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on a descriptor we own and keep open.
        if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "syncfs is Linux only",
        ))
    }
}

/// Fsyncs a folder so that the renames into it survive a crash. Best
/// effort: some filesystems refuse to fsync a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
