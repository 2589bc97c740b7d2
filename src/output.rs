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
//! can tell it from everything else: the first output a process creates in
//! a folder removes the temp files there of this host whose process is gone
//! ([`remove_stale_temps`]), and batch walks skip them as inputs. A
//! program that must exit while a run is still writing (the binary, when a
//! signal did not stop a blocked run in time) can first remove its own
//! temp files with [`remove_live_temps`].

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use parking_lot::Mutex;
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

/// Checks that an input file was read whole and unchanged: `read` bytes
/// came out of it, as many as it had when it was opened (`before`), and its
/// size and modification time are still those of `before`. `file` is the
/// open input (or a duplicate of its descriptor): the inode that was read,
/// even if its path was replaced meanwhile (which leaves what was read a
/// consistent copy, so it is not reported).
///
/// A file that changes while it is read would give a container of neither
/// version, which restore could not tell from the real thing: it is an
/// error (exit 1), not a warning. Limits: a change of the same size within
/// one tick of the file system's clock (a few ms on Linux) after the
/// previous change is not seen; stdin is never checked.
///
/// # Errors
///
/// [`crate::ErrorKind::Io`] naming the change (without the path: the caller
/// adds it).
pub(crate) fn check_unchanged(file: &File, before: &Metadata, read: u64) -> Result<()> {
    let changed = |what: String| {
        Err(Error::new(
            crate::error::ErrorKind::Io,
            format!("input changed while it was read ({what})"),
        ))
    };
    if read != before.len() {
        return changed(format!("{} bytes at the start, {read} read", before.len()));
    }
    let after = file.metadata().map_err(Error::io)?;
    if after.len() != before.len() {
        return changed(format!(
            "{} bytes at the start, {} at the end",
            before.len(),
            after.len()
        ));
    }
    if (after.mtime(), after.mtime_nsec()) != (before.mtime(), before.mtime_nsec()) {
        return changed("it was modified: its modification time moved".to_string());
    }
    Ok(())
}

/// Whether an open input must be read as a stream, to its end, rather
/// than as a file of known size, and the bytes this look took from it.
/// A stream is anything but a regular file (a pipe named as `/dev/fd/N`
/// or `<(cmd)`, a FIFO, a character device), or a regular file that
/// reports size 0 yet has content, which is how the pseudo-files of
/// `/proc` and `/sys` look. Telling an empty file from those takes a
/// one-byte read, returned here to be read first.
///
/// # Errors
///
/// [`crate::ErrorKind::Io`] if that read fails.
pub fn probe_stream(file: &File, meta: &Metadata) -> Result<(bool, Vec<u8>)> {
    if !meta.is_file() {
        return Ok((true, Vec::new()));
    }
    if meta.len() > 0 {
        return Ok((false, Vec::new()));
    }
    let mut first = [0u8; 1];
    let n = loop {
        match io::Read::read(&mut &*file, &mut first) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(e)),
        }
    };
    Ok((n > 0, first[..n].to_vec()))
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

/// What every temp file name of syncpipe contains, between the name it
/// stands for and its owner (`.NAME.syncpipe-tmp.HOST.PID.RANDOM`).
pub const TEMP_MARKER: &str = ".syncpipe-tmp.";

/// Who wrote a temp file: the machine and the process id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempOwner {
    /// The host name, as written into temp names (see [`this_host`]).
    pub host: String,
    /// The process id on that host.
    pub pid: u32,
}

/// This machine's name as it appears in temp names: letters, digits and
/// `-` only (anything else becomes `-`), at most 32 bytes, `localhost` if
/// it cannot be read. The host is in the name because a pid means
/// something only on its own machine: on a folder shared by several
/// machines, a run must not judge another machine's temp files.
pub fn this_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at
        // most that many bytes.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let host: String = buf[..len]
            .iter()
            .take(32)
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b == b'-' {
                    b as char
                } else {
                    '-'
                }
            })
            .collect();
        if ok && !host.is_empty() {
            host
        } else {
            "localhost".to_string()
        }
    })
}

/// Creates a temp file for `name` in `dir`, named
/// `.NAME.syncpipe-tmp.HOST.PID.RANDOM`: host and pid say whose it is (a
/// later run on the same host removes it only once that process is gone),
/// the random part keeps concurrent outputs of one process apart. Created
/// with `mode`. Every temp file syncpipe makes is named this way (the
/// binary's Prometheus textfile too), so the stale-temp cleanup and the
/// batch walks know them all.
///
/// # Errors
///
/// Creating the file failed.
pub fn temp_file(dir: &Path, name: &str, mode: u32) -> io::Result<NamedTempFile> {
    // The name is only there for people: cut it so that the owner part
    // (about 65 bytes) still fits in a 255-byte file name.
    let mut cut = name.len().min(150);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let name = &name[..cut];
    let tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{name}{TEMP_MARKER}{}.{}.",
            this_host(),
            std::process::id()
        ))
        .rand_bytes(8)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    register_live(tmp.path());
    Ok(tmp)
}

/// The named temp files this process created, for [`remove_live_temps`].
/// An entry is dropped lazily, once its name is gone from the folder (a
/// commit renamed it, a `Drop` removed it): then the set holds about as
/// many names as there are outputs in flight, also in a long batch, and
/// no commit or drop path has to remember to unregister.
fn live_temps() -> &'static Mutex<Vec<PathBuf>> {
    static LIVE: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
}

fn register_live(path: &Path) {
    let mut live = live_temps().lock();
    live.retain(|p| fs::symlink_metadata(p).is_ok());
    live.push(path.to_path_buf());
}

/// Removes the named temp files this process has created and not yet
/// committed or dropped, and returns how many it removed.
///
/// For an embedder about to end the process abnormally (`exit` from
/// another thread while a run is still going, e.g. when a shutdown signal
/// did not stop a blocked run in time): destructors will not run, so the
/// temp files would stay until a later run's stale-temp sweep
/// ([`remove_stale_temps`]). Destinations are never touched: a name is
/// either still the temp file's (removed) or was renamed into place by a
/// complete commit (then it is gone, and nothing is removed). Unnamed
/// outputs (`O_TMPFILE`, see [`OutputFile::create_unnamed`]) need nothing:
/// they vanish with the process. The runs themselves are not stopped: a
/// writer still going may fail on its removed file, which is why this is
/// for the moment just before the exit.
///
/// Waits at most 200 ms for the registry (it is only ever held briefly);
/// returns 0 without removing anything if it cannot get it.
pub fn remove_live_temps() -> usize {
    let Some(mut live) = live_temps().try_lock_for(std::time::Duration::from_millis(200)) else {
        return 0;
    };
    live.drain(..)
        .filter(|p| fs::remove_file(p).is_ok())
        .count()
}

/// The owner of a syncpipe temp file, from its name; `None` if the name is
/// not one (`.NAME.syncpipe-tmp.HOST.PID.RANDOM`).
pub fn temp_owner(name: &OsStr) -> Option<TempOwner> {
    let name = name.to_str()?;
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(TEMP_MARKER)?;
    let mut parts = rest[at + TEMP_MARKER.len()..].split('.');
    let (host, pid, random) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = at > 0
        && parts.next().is_none()
        && !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid {
        return None;
    }
    Some(TempOwner {
        host: host.to_string(),
        pid: pid.parse().ok()?,
    })
}

/// True unless process `pid` surely does not exist. `kill(pid, 0)` sends
/// nothing; only `ESRCH` proves the process gone (`EPERM`: it exists, as
/// another user). A reused pid keeps a stale file alive, which is the safe
/// mistake; removing a live run's temp file would be the unsafe one.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; no signal is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the syncpipe temp files in `dir` written on this host by a
/// process that is gone (left by a killed run), and returns their paths.
/// Files of live processes (another run writing into the same folder), of
/// this process and of other hosts (a folder shared over NFS: their pids
/// mean nothing here) are left alone. Best effort: a file that cannot be
/// removed is skipped.
///
/// Caveat: containers that share a host name and a folder but not a pid
/// namespace see each other's live runs as gone. Give them distinct host
/// names (the default in Docker and Kubernetes) or distinct folders.
///
/// # Errors
///
/// The error of listing `dir`.
pub fn remove_stale_temps(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let me = std::process::id();
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(owner) = temp_owner(&name) else {
            continue;
        };
        if owner.host != this_host() || owner.pid == me || process_exists(owner.pid) {
            continue;
        }
        let path = entry.path();
        if fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Sweeps `dir` for stale temp files the first time this process creates
/// an output there: once per folder, so a batch of many files into one
/// folder lists it once, not once per file.
fn sweep_once(dir: &Path) {
    static SWEPT: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let first = SWEPT
        .get_or_init(Mutex::default)
        .lock()
        .insert(dir.to_path_buf());
    if first {
        let _ = remove_stale_temps(dir);
    }
}

/// The mode a new file gets in `dest`'s folder: `0666` less the umask.
fn default_mode(dest: &Path) -> Result<u32> {
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

fn parent_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes `root/below` a folder reached from `root` through real folders
/// only: each missing level is created, and a level that is a symbolic
/// link (or not a folder) is refused, so that nothing planted inside an
/// output folder sends an output outside it. `root` itself was named by
/// the user and may be a link; it is created if missing.
///
/// A link swapped in between this look and the output's creation is not
/// seen: the folder's owner must keep others from writing into it.
///
/// # Errors
///
/// [`crate::ErrorKind::Usage`] for a link or a non-folder on the way,
/// [`crate::ErrorKind::Io`] if a level cannot be created.
pub fn folder_below(root: &Path, below: &Path) -> Result<()> {
    if !root.is_dir() {
        fs::create_dir_all(root).map_err(|e| Error::io(e).with_path(root))?;
    }
    let mut at = root.to_path_buf();
    for part in below.components() {
        let std::path::Component::Normal(part) = part else {
            return Err(
                Error::usage("an output path must stay inside the output folder")
                    .with_path(root.join(below)),
            );
        };
        at.push(part);
        let meta = match fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&at) {
                    Ok(()) => continue,
                    // Made by another file of the batch meanwhile: look at it.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        fs::symlink_metadata(&at).map_err(|e| Error::io(e).with_path(&at))?
                    }
                    Err(e) => return Err(Error::io(e).with_path(&at)),
                }
            }
            Err(e) => return Err(Error::io(e).with_path(&at)),
        };
        if meta.file_type().is_symlink() {
            return Err(Error::usage(
                "is a symbolic link inside the output folder; refusing to write through it",
            )
            .with_path(&at));
        }
        if !meta.is_dir() {
            return Err(Error::usage("is not a folder").with_path(&at));
        }
    }
    Ok(())
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
    target: Target,
    dest: PathBuf,
    force: bool,
}

/// Where the bytes of an output go.
#[derive(Debug)]
enum Target {
    /// A temp file beside the destination, renamed over it on commit.
    Temp(NamedTempFile),
    /// An existing special file (`/dev/null`, `/dev/full`, a FIFO), written
    /// in place: it is not replaced, so no temp file and no rename (which,
    /// run as root, would swap the device node for a regular file).
    Special(File),
    /// A file with no name yet (`O_TMPFILE`), linked to the destination on
    /// commit (see [`OutputFile::create_unnamed`]).
    Unnamed(File),
}

impl Target {
    fn file(&self) -> &File {
        match self {
            Target::Temp(t) => t.as_file(),
            Target::Special(f) | Target::Unnamed(f) => f,
        }
    }
}

/// Opens a file with no name in `dir` (`O_TMPFILE`), mode 0600, or `None`
/// where that is not possible: not Linux, a filesystem without
/// `O_TMPFILE`, or no `/proc/self/fd` to name it through at commit (linking
/// the descriptor itself, `AT_EMPTY_PATH`, needs a capability).
#[cfg(target_os = "linux")]
fn open_unnamed(dir: &Path) -> Option<File> {
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
fn open_unnamed(_dir: &Path) -> Option<File> {
    None
}

/// Gives the unnamed file `file` the name `to` (`linkat` through
/// `/proc/self/fd`); fails with `AlreadyExists` if `to` exists.
#[cfg(target_os = "linux")]
fn link_unnamed(file: &File, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .expect("a path made of digits has no NUL");
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
fn link_unnamed(_file: &File, _to: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Who chose an output's name, which decides what may be written in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// Typed by the user (`-o PATH`): a device or FIFO there is meant.
    User,
    /// Derived from an input's name (a batch): whatever is there was not
    /// asked for, and may have been planted.
    Derived,
}

/// What is already at an output's path, looked at without following a
/// final symbolic link.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
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
    fn at(dest: &Path, naming: Naming) -> Result<Existing> {
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
const REGULAR: &str = "a regular file";

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
fn open_in_place(dest: &Path, naming: Naming) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if naming == Naming::Derived || !is_descriptor_link(dest) {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(dest)
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
    /// What is already at `dest` decides how it is written:
    /// a character device or a FIFO (`/dev/null`, a named
    /// pipe) is written in place and needs no `force`; a block device is
    /// written in place only with `force`; a symbolic link is an existing
    /// output (replaced by a regular file with `force`, never written
    /// through), except the system's descriptor links (`/dev/stdout`,
    /// `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`), which are followed.
    ///
    /// # Errors
    ///
    /// As [`OutputFile::create`].
    pub fn create_for(dest: &Path, force: bool) -> Result<OutputFile> {
        Self::create_named(dest, force, Naming::User)
    }

    /// As [`OutputFile::create`] for an output whose name was derived (a
    /// batch's output inside its folder), not typed by the user: anything
    /// already at `dest` but a directory, links, FIFOs and devices
    /// included, is an existing output that only `force` replaces, by a
    /// regular file. Nothing is written through what another user may
    /// have planted in a shared folder.
    ///
    /// # Errors
    ///
    /// As [`OutputFile::create`].
    pub(crate) fn create_derived(input: &Path, dest: &Path, force: bool) -> Result<OutputFile> {
        if same_file(input, dest) {
            return Err(Error::usage("input and output are the same file").with_path(dest));
        }
        Self::create_named(dest, force, Naming::Derived)
    }

    fn create_named(dest: &Path, force: bool, naming: Naming) -> Result<OutputFile> {
        match Existing::at(dest, naming)? {
            Existing::Nothing => {}
            Existing::Directory => {
                return Err(Error::usage("output is a directory").with_path(dest))
            }
            Existing::InPlace { needs_force } => {
                if needs_force && !force {
                    return Err(
                        Error::usage("is a block device; use -f to write over it").with_path(dest)
                    );
                }
                let f = open_in_place(dest, naming).map_err(|e| Error::io(e).with_path(dest))?;
                return Ok(OutputFile {
                    target: Target::Special(f),
                    dest: dest.to_path_buf(),
                    force,
                });
            }
            Existing::Replaced(what) => {
                if !force {
                    return Err(Error::already_exists(dest, what));
                }
            }
        }
        let dir = parent_dir(dest);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sweep_once(dir);
        let tmp = temp_file(dir, &name, 0o600).map_err(|e| Error::io(e).with_path(dest))?;
        Ok(OutputFile {
            target: Target::Temp(tmp),
            dest: dest.to_path_buf(),
            force,
        })
    }

    /// As [`OutputFile::create`], but the file being written has no name
    /// at all until the commit links it to the destination (`O_TMPFILE`
    /// and `linkat`, Linux): one directory update per output instead of
    /// two (create the temp name, rename it), and nothing for a crash to
    /// leave behind, since an unnamed file vanishes with its process. The
    /// batch's small files use it, where directory updates are most of
    /// the cost (`docs/performance.md`, "Many files"). Where it is not
    /// available it falls back to [`OutputFile::create`]'s named temp file.
    ///
    /// # Errors
    ///
    /// As [`OutputFile::create`].
    pub fn create_unnamed(input: &Path, dest: &Path, force: bool) -> Result<OutputFile> {
        if same_file(input, dest) {
            return Err(Error::usage("input and output are the same file").with_path(dest));
        }
        match Existing::at(dest, Naming::Derived)? {
            Existing::Nothing => {}
            // A link, a FIFO or a device is replaced through a named temp
            // file and a rename (a link cannot replace it); a directory
            // takes that way too, for its error.
            Existing::Replaced(REGULAR) if force => {}
            Existing::Replaced(what) if !force => return Err(Error::already_exists(dest, what)),
            _ => return Self::create_named(dest, force, Naming::Derived),
        }
        let dir = parent_dir(dest);
        sweep_once(dir);
        match open_unnamed(dir) {
            Some(f) => Ok(OutputFile {
                target: Target::Unnamed(f),
                dest: dest.to_path_buf(),
                force,
            }),
            None => Self::create_named(dest, force, Naming::Derived),
        }
    }

    /// A writer into the temp file that starts the disk writeback of every
    /// few megabytes as it goes (see [`Writeback`]).
    pub fn file(&self) -> Writeback<'_> {
        Writeback {
            file: self.target.file(),
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
        self.sync()?;
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
        self.sync()?;
        self.rename()
    }

    /// The destination's path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The file descriptor's file, for [`sync_filesystem`].
    pub fn as_file(&self) -> &File {
        self.target.file()
    }

    /// Makes the temp file's data durable (a special file has nothing to
    /// make durable, and a pipe would refuse the fsync).
    fn sync(&self) -> Result<()> {
        match &self.target {
            Target::Temp(_) | Target::Unnamed(_) => self
                .target
                .file()
                .sync_all()
                .map_err(|e| Error::io(e).with_path(&self.dest)),
            Target::Special(_) => Ok(()),
        }
    }

    fn set_mode(&self, mode: Option<u32>) -> Result<()> {
        let file = match &self.target {
            Target::Temp(tmp) => tmp.as_file(),
            Target::Unnamed(f) => f,
            // A device keeps its own mode.
            Target::Special(_) => return Ok(()),
        };
        // The temp file was created private (0600) so that nobody reads a
        // half-written copy of a private input; now it gets its real mode.
        let mode = match mode {
            // Masked again here: the mode may come from a hostile header.
            Some(m) => m & 0o777,
            None => default_mode(&self.dest)?,
        };
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| Error::io(e).with_path(&self.dest))
    }

    fn rename(self) -> Result<Option<PathBuf>> {
        let dest = self.dest;
        let tmp = match self.target {
            Target::Temp(tmp) => tmp,
            Target::Special(_) => return Ok(None),
            Target::Unnamed(f) => {
                link_or_replace(&f, &dest, self.force)?;
                return Ok(Some(parent_dir(&dest).to_path_buf()));
            }
        };
        let persisted = if self.force {
            tmp.persist(&dest)
        } else {
            tmp.persist_noclobber(&dest)
        };
        if let Err(e) = persisted {
            // `e.file` drops here, removing the temp file.
            return Err(if e.error.kind() == io::ErrorKind::AlreadyExists {
                Error::already_exists(&dest, REGULAR)
            } else {
                Error::io(e.error).with_path(&dest)
            });
        }
        // The folder is fsynced even when `dest` is a bare name (the
        // current folder): the rename is only durable once its folder is.
        Ok(Some(parent_dir(&dest).to_path_buf()))
    }
}

/// Names an unnamed output: a link when `dest` is free; with `force` over
/// an existing one, a link to a fresh temp name renamed over it (a link
/// cannot replace, and the rename keeps the replacement atomic).
fn link_or_replace(file: &File, dest: &Path, force: bool) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_unnamed_output_has_no_name_until_its_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in");
        fs::write(&input, b"x").expect("input");
        let dest = dir.path().join("out");
        let out = OutputFile::create_unnamed(&input, &dest, false).expect("create");
        if cfg!(target_os = "linux") {
            assert!(matches!(out.target, Target::Unnamed(_)), "{:?}", out.target);
        }
        out.file().write_all(b"hello").expect("write");
        // Written, not committed: nothing but the input has a name.
        if matches!(out.target, Target::Unnamed(_)) {
            assert_eq!(names(dir.path()), ["in"]);
        }
        out.prepare(Some(0o640)).expect("mode");
        out.commit_prepared().expect("commit");
        assert_eq!(fs::read(&dest).expect("dest"), b"hello");
        let mode = fs::metadata(&dest).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(names(dir.path()), ["in", "out"]);

        // Dropped without a commit: nothing is left, not even a temp file.
        let other = dir.path().join("other");
        let out = OutputFile::create_unnamed(&input, &other, false).expect("create");
        out.file().write_all(b"lost").expect("write");
        drop(out);
        assert_eq!(names(dir.path()), ["in", "out"]);
    }

    #[test]
    fn an_unnamed_output_replaces_only_with_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in");
        fs::write(&input, b"x").expect("input");
        let dest = dir.path().join("out");
        fs::write(&dest, b"old").expect("old");
        let err = OutputFile::create_unnamed(&input, &dest, false).expect_err("exists");
        assert_eq!(err.kind(), crate::ErrorKind::Usage);
        // With force: the link cannot replace, so a temp name and a rename
        // do, and no temp name is left.
        let out = OutputFile::create_unnamed(&input, &dest, true).expect("create");
        out.file().write_all(b"new").expect("write");
        out.commit(Some(0o644)).expect("commit");
        assert_eq!(fs::read(&dest).expect("dest"), b"new");
        assert_eq!(names(dir.path()), ["in", "out"]);
        // Without force, a destination that appears while the output is
        // written is not overwritten, and the output vanishes.
        let late = dir.path().join("late");
        let out = OutputFile::create_unnamed(&input, &late, false).expect("create");
        out.file().write_all(b"mine").expect("write");
        fs::write(&late, b"theirs").expect("theirs");
        let err = out.commit(None).expect_err("appeared");
        assert_eq!(err.kind(), crate::ErrorKind::Usage);
        assert_eq!(fs::read(&late).expect("late"), b"theirs");
        assert_eq!(names(dir.path()), ["in", "late", "out"]);
    }

    #[test]
    fn temp_names_are_recognised() {
        let owner = |n: &str| temp_owner(OsStr::new(n)).map(|o| (o.host, o.pid));
        let o = |h: &str, pid| Some((h.to_string(), pid));
        assert_eq!(
            owner(".a.spipe.syncpipe-tmp.box-1.123.AbC9x"),
            o("box-1", 123)
        );
        assert_eq!(owner(".x.syncpipe-tmp.syncpipe-tmp.h.7.z"), o("h", 7));
        for not in [
            "a.spipe",
            ".a.spipe.XXXXXX.tmp",
            "a.syncpipe-tmp.h.1.x",
            "..syncpipe-tmp.h.1.x",
            ".a.syncpipe-tmp..1.x",
            ".a.syncpipe-tmp.h..x",
            ".a.syncpipe-tmp.h.12",
            ".a.syncpipe-tmp.h.12.",
            ".a.syncpipe-tmp.h.1x.y",
            ".a.syncpipe-tmp.h.1.y.z",
            ".a.syncpipe-tmp.h_x.1.y",
        ] {
            assert_eq!(owner(not), None, "{not}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let f = temp_file(dir.path(), "out.spipe", 0o600).expect("temp");
        let name = f.path().file_name().expect("name").to_owned();
        // A destination name of the longest length still gets a temp file.
        let long = "é".repeat(127);
        assert_eq!(long.len(), 254);
        let t = temp_file(dir.path(), &long, 0o600).expect("temp for a long name");
        let tname = t.path().file_name().expect("name").to_owned();
        assert!(temp_owner(&tname).is_some(), "{tname:?}");
        assert_eq!(
            temp_owner(&name),
            Some(TempOwner {
                host: this_host().to_string(),
                pid: std::process::id()
            }),
            "{name:?}"
        );
    }

    #[test]
    fn stale_temps_of_gone_processes_are_removed_others_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A process that has surely exited (and been reaped).
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let gone = child.id();
        child.wait().expect("wait");
        let live = std::os::unix::process::parent_id();
        let me = std::process::id();
        let host = this_host();
        let names = [
            format!(".a.spipe{TEMP_MARKER}{host}.{gone}.Xy12ab"),
            format!(".b.spipe{TEMP_MARKER}{host}.{live}.Xy12ab"),
            format!(".c.spipe{TEMP_MARKER}{host}.{me}.Xy12ab"),
            // Another machine's run: its pid means nothing here.
            format!(".d.spipe{TEMP_MARKER}other-host.{gone}.Xy12ab"),
            "plain.spipe".to_string(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), b"partial").expect("write");
        }
        let removed = remove_stale_temps(dir.path()).expect("sweep");
        assert_eq!(removed, vec![dir.path().join(&names[0])]);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, names[1..].to_vec());
    }
}
