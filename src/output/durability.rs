//! Getting written bytes onto the disk: writeback started as the output is
//! written, fsync of a whole filesystem for a group of files, and fsync of
//! a folder so that renames into it survive a crash.

use std::fs::File;
use std::io;
use std::path::Path;

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

impl<'a> Writeback<'a> {
    pub(super) fn new(file: &'a File) -> Writeback<'a> {
        Writeback {
            file,
            written: 0,
            flushed: 0,
        }
    }
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
