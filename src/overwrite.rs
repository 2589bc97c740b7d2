//! What a file-to-file call does when its output already exists.

/// Whether [`Pipeline::process_path`](crate::Pipeline::process_path) and
/// the other calls that write a named file may replace one that exists
/// (`-f` on the command line).
///
/// ```no_run
/// use std::path::Path;
/// use syncpipe::{Overwrite, Pipeline};
///
/// let p = Pipeline::builder().build()?;
/// p.process_path(Path::new("data.bin"), Path::new("data.bin.spipe"), Overwrite::Refuse)?;
/// # Ok::<(), syncpipe::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// An existing output is an error ([`crate::ErrorKind::Usage`]); it is
    /// left as it is.
    #[default]
    Refuse,
    /// An existing output is replaced, atomically, once the new one is
    /// complete (a symbolic link there is replaced, never written through).
    Replace,
}

impl Overwrite {
    pub(crate) fn allowed(self) -> bool {
        self == Overwrite::Replace
    }
}
