//! The folders outputs go into: the folder of a destination, and a batch's
//! folders below its output folder, reached through real folders only.

use std::fs;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

/// The folder a destination's temp file goes into: its parent, or the
/// current folder for a bare name.
pub(super) fn parent_dir(dest: &Path) -> &Path {
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
