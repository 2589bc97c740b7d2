//! Opening inputs and looking at them: whether one is a stream, whether it
//! changed while it was read, its permission bits, and whether it is the
//! output itself.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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

/// Removes an input whose output is committed (and, for a container,
/// verified: [`crate::Pipeline::verify_written`]), as `zstd --rm` and
/// `gzip` do; `before` is the input's metadata from before it was read
/// (links followed). Refused, with the input left in place, if the file at
/// `input` is no longer that one: another file (device and inode), or the
/// same one with another size or modification time (written to since: the
/// output does not hold those bytes). The name is what is removed: for a
/// symbolic link, the link, not what it points to.
///
/// # Errors
///
/// [`crate::ErrorKind::Io`] naming the path if it changed or cannot be
/// removed.
pub fn remove_input(input: &Path, before: &Metadata) -> Result<()> {
    let now = fs::metadata(input).map_err(|e| Error::io(e).with_path(input))?;
    let stamp = |m: &Metadata| (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec());
    if stamp(&now) != stamp(before) {
        return Err(Error::new(
            crate::error::ErrorKind::Io,
            "not removed: it changed after it was read (the output does not hold it)",
        )
        .with_path(input));
    }
    fs::remove_file(input).map_err(|e| Error::io(e).with_path(input))
}
