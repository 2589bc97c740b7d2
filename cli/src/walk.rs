//! Finding the files of a batch: named files, directories walked with
//! `-r`, and lists read from `--files-from`; and the relative path each
//! file's output is named after, which never leaves the output folder.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use syncpipe::{Error, Result};

/// One input file of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where to read it.
    pub path: PathBuf,
    /// Its path relative to what was named (the file name for a named
    /// file, the path below the directory for a walked one, the listed
    /// path for `--files-from`): outputs are named after it, and
    /// `--shard` hashes it. Never absolute, never with a `..`.
    pub rel: PathBuf,
    /// Its size when found (the scheduler's size class).
    pub size: u64,
}

/// What a walk found: the files, and the inputs that could not be used
/// (each error names its path).
#[derive(Debug, Default)]
pub struct Found {
    /// Files to process, in the order found (named order; each directory's
    /// entries sorted by name, so a walk is reproducible).
    pub entries: Vec<Entry>,
    /// Inputs that failed: missing, unreadable, a directory without `-r`,
    /// a link loop; a named input that is a dangling link or not a regular
    /// file.
    pub failures: Vec<Error>,
    /// What a walk passed over, as `zstd -r` does: special files (FIFO,
    /// socket, device) and dangling links found inside a directory, each
    /// with why (`-v` prints them). Named inputs are never skipped.
    pub skipped: Vec<(PathBuf, &'static str)>,
}

impl Found {
    /// Takes a non-directory: a regular file is an entry; anything else (a
    /// device, a socket, a FIFO) is that input's failure when it was named,
    /// and passed over when a walk found it.
    fn file(&mut self, path: PathBuf, rel: PathBuf, meta: &fs::Metadata, walked: bool) {
        if meta.is_file() {
            self.entries.push(Entry {
                path,
                rel,
                size: meta.len(),
            });
        } else if walked {
            self.skipped.push((path, special_kind(meta)));
        } else {
            self.failures
                .push(Error::usage("not a regular file").with_path(&path));
        }
    }
}

/// What a file that is neither a regular file nor a directory is, in words.
fn special_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

/// How an input was named.
#[derive(Debug, Clone)]
pub enum Source {
    /// On the command line: the output is named after the file name, or
    /// after the path below it for a directory walked with `-r`.
    Arg(PathBuf),
    /// In a `--files-from` list: the listed path itself names the output,
    /// so it must be relative and free of `..` (see [`safe_relative`]).
    Listed(PathBuf),
}

/// Options of a walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Walk directories (`-r`); without it a directory is a failed input.
    pub recursive: bool,
}

/// `path` as a relative path that stays inside whatever folder it is
/// joined to: `.` components are dropped; an absolute path, a `..`
/// component or an empty path is refused.
///
/// # Errors
///
/// [`syncpipe::ErrorKind::Usage`], naming the path.
pub fn safe_relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(Error::usage(
                "a listed path may not contain `..` (outputs must stay inside the output folder)",
            )
            .with_path(path)),
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::usage(
                    "a listed path must be relative (outputs must stay inside the output folder)",
                )
                .with_path(path))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(Error::usage("an empty path names no file").with_path(path));
    }
    Ok(out)
}

/// Finds the files named by `sources`. Files inside walked directories are
/// kept only if `keep` accepts their path (e.g. restore takes only
/// `*.spipe`); named files are always kept. Symbolic links to files are
/// followed; links to directories are not descended (a link cycle could
/// never end), as `fd` and `zstd -r` do.
pub fn discover(sources: &[Source], options: WalkOptions, keep: impl Fn(&Path) -> bool) -> Found {
    let mut found = Found::default();
    for source in sources {
        let (path, rel) = match source {
            Source::Arg(p) => match p.file_name() {
                Some(name) => (p.clone(), PathBuf::from(name)),
                // `.`, `..`, `/`: a directory named by a path with no
                // final name; its files are relative to it.
                None => (p.clone(), PathBuf::new()),
            },
            Source::Listed(p) => match safe_relative(p) {
                Ok(rel) => (p.clone(), rel),
                Err(e) => {
                    found.failures.push(e);
                    continue;
                }
            },
        };
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                found.failures.push(Error::io(e).with_path(&path));
                continue;
            }
        };
        if meta.is_dir() {
            if !options.recursive {
                found
                    .failures
                    .push(Error::usage("is a directory (use -r to walk it)").with_path(&path));
                continue;
            }
            // A named directory: its files are relative to it, or to the
            // listed path for `--files-from`.
            let base = match source {
                Source::Arg(_) => PathBuf::new(),
                Source::Listed(_) => rel,
            };
            walk_dir(&path, &base, &keep, &mut found);
        } else {
            found.file(path, rel, &meta, false);
        }
    }
    found
}

/// Walks `dir` depth first with an explicit stack (no recursion limit),
/// each directory's entries in name order.
fn walk_dir(dir: &Path, base: &Path, keep: &impl Fn(&Path) -> bool, found: &mut Found) {
    let mut stack = vec![(dir.to_path_buf(), base.to_path_buf())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let mut names = match read_names(&dir) {
            Ok(n) => n,
            Err(e) => {
                found.failures.push(Error::io(e).with_path(&dir));
                continue;
            }
        };
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let rel = rel_dir.join(&name);
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Vanished since the listing: nothing to do, nothing lost.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    found.failures.push(Error::io(e).with_path(&path));
                    continue;
                }
            };
            let meta = if meta.file_type().is_symlink() {
                match fs::metadata(&path) {
                    Ok(m) if m.is_dir() => continue,
                    Ok(m) => m,
                    // Dangling: nothing to read, nothing lost, as for a
                    // file that vanished (`zstd -r` passes over it too).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        found.skipped.push((path, "a dangling symbolic link"));
                        continue;
                    }
                    // A loop (ELOOP) or a target that cannot be looked at:
                    // named as a failure.
                    Err(e) => {
                        found.failures.push(Error::io(e).with_path(&path));
                        continue;
                    }
                }
            } else {
                meta
            };
            if meta.is_dir() {
                subdirs.push((path, rel));
            } else if !keep(&path) || syncpipe::output::temp_owner(&name).is_some() {
                // A syncpipe temp file (a run writing into this folder, or
                // one that was killed) is never an input.
                continue;
            } else {
                found.file(path, rel, &meta, true);
            }
        }
        // Reversed onto the stack so that they are walked in name order.
        stack.extend(subdirs.into_iter().rev());
    }
}

fn read_names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// Splits a `--files-from` list into paths: one per line (`\n`; a
/// trailing `\r` is kept, as it is part of the name on Unix), or one per
/// NUL with `null`. Empty entries are skipped.
pub fn parse_list(bytes: &[u8], null: bool) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let sep = if null { b'\0' } else { b'\n' };
    bytes
        .split(|&b| b == sep)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(std::ffi::OsStr::from_bytes(s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(
            safe_relative(Path::new("./a/./b")).ok(),
            Some(PathBuf::from("a/b"))
        );
        assert!(safe_relative(Path::new("/etc/passwd")).is_err());
        assert!(safe_relative(Path::new("a/../../x")).is_err());
        assert!(safe_relative(Path::new("..")).is_err());
        assert!(safe_relative(Path::new(".")).is_err());
    }

    #[test]
    fn lists_split() {
        assert_eq!(
            parse_list(b"a\n\nb c\n", false),
            vec![PathBuf::from("a"), PathBuf::from("b c")]
        );
        assert_eq!(
            parse_list(b"a\nb\0c\0", true),
            vec![PathBuf::from("a\nb"), PathBuf::from("c")]
        );
    }

    #[test]
    fn walk_names_relative_to_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("tree");
        fs::create_dir_all(root.join("b/c")).expect("mkdir");
        fs::write(root.join("a.txt"), b"a").expect("write");
        fs::write(root.join("b/c/d.txt"), b"dd").expect("write");
        fs::write(root.join("b/skip.spipe"), b"x").expect("write");
        std::os::unix::fs::symlink(&root, root.join("b/loop")).expect("symlink");
        let found = discover(
            &[Source::Arg(root.clone())],
            WalkOptions { recursive: true },
            |p| p.extension().is_none_or(|e| e != "spipe"),
        );
        let rels: Vec<_> = found.entries.iter().map(|e| e.rel.clone()).collect();
        assert_eq!(
            rels,
            vec![PathBuf::from("a.txt"), PathBuf::from("b/c/d.txt")]
        );
        assert!(found.failures.is_empty());
        assert!(found.skipped.is_empty());
        let flat = discover(&[Source::Arg(root)], WalkOptions::default(), |_| true);
        assert_eq!(flat.failures.len(), 1);
    }

    #[test]
    fn a_walk_passes_over_special_files_and_dangling_links_but_not_named_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("tree");
        fs::create_dir(&root).expect("mkdir");
        fs::write(root.join("a.txt"), b"a").expect("write");
        std::os::unix::fs::symlink("nowhere", root.join("dangling")).expect("symlink");
        let fifo = root.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let sock = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("bind");
        let found = discover(
            &[Source::Arg(root.clone())],
            WalkOptions { recursive: true },
            |_| true,
        );
        let rels: Vec<_> = found.entries.iter().map(|e| e.rel.clone()).collect();
        assert_eq!(rels, vec![PathBuf::from("a.txt")]);
        assert!(found.failures.is_empty(), "{:?}", found.failures);
        let skipped: Vec<(String, &str)> = found
            .skipped
            .iter()
            .map(|(p, why)| (p.file_name().unwrap().to_string_lossy().into_owned(), *why))
            .collect();
        assert_eq!(
            skipped,
            [
                ("dangling".to_string(), "a dangling symbolic link"),
                ("fifo".to_string(), "a FIFO"),
                ("sock".to_string(), "a socket"),
            ]
        );
        // Named, each is still that input's failure.
        let named: Vec<Source> = ["dangling", "fifo", "sock"]
            .iter()
            .map(|n| Source::Arg(root.join(n)))
            .collect();
        let found = discover(&named, WalkOptions { recursive: true }, |_| true);
        assert!(found.entries.is_empty() && found.skipped.is_empty());
        assert_eq!(found.failures.len(), 3, "{:?}", found.failures);
        drop(sock);
    }
}
