//! [`OutputFile`]: an output being written, in one of three kinds (a named
//! temp file, an unnamed `O_TMPFILE` file, a special file written in
//! place), that becomes its destination only on commit.

use std::fs::{File, FileTimes, Metadata, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::durability::{sync_dir, Writeback};
use super::existing::{open_in_place, Existing, Naming, REGULAR};
use super::folder::parent_dir;
use super::input::same_file;
use super::mode::default_mode;
use super::temp::temp_file;
use super::unnamed::{link_or_replace, open_unnamed};
use crate::error::{Error, Result};

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
        Writeback::new(self.target.file())
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
    /// [`sync_filesystem`](super::sync_filesystem) (instead of an fsync each) and calls
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
    /// [`OutputFile::prepare`] finished and a [`sync_filesystem`](super::sync_filesystem) made
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

    /// Gives the written file the access and modification times of the
    /// file `from` describes (the input, as zstd and gzip give a
    /// compressed file its original's times and the restored file its
    /// container's), once every byte is written: a later write would move
    /// them again. Called before the commit, the commit's fsync makes them
    /// durable and the rename keeps them. Best effort, as those tools
    /// treat times: where the file system refuses the access time, the
    /// modification time alone is set; where it refuses both, the file
    /// keeps the time it was written. A device or FIFO written in place
    /// keeps its own times.
    pub fn set_times(&self, from: &Metadata) {
        if matches!(self.target, Target::Special(_)) {
            return;
        }
        let Ok(modified) = from.modified() else {
            return;
        };
        let mtime = FileTimes::new().set_modified(modified);
        let both = match from.accessed() {
            Ok(a) => mtime.set_accessed(a),
            Err(_) => mtime,
        };
        let file = self.target.file();
        if file.set_times(both).is_err() {
            let _ = file.set_times(mtime);
        }
    }

    /// The destination's path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The file descriptor's file, for [`sync_filesystem`](super::sync_filesystem).
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
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
}
