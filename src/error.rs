//! The one error type of the library.
//!
//! An [`Error`] is opaque: a [`ErrorKind`] that callers match on (the binary
//! maps it to an exit code), context (path, chunk index, stage) that makes the
//! message actionable, and the original `io::Error` kept as `source()`.
//! Display is lowercase with the context first: `input.bin: chunk 17: zstd: …`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, coarsely: enough to choose an exit code or a retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing failed (the `source()` is the `io::Error`).
    Io,
    /// A setting or argument is invalid: a bad stage spec, a zero chunk size,
    /// an output that already exists, input == output.
    Usage,
    /// The input is not a container, or it is corrupt, truncated, reordered
    /// or has data appended; or a checksum does not match.
    Integrity,
    /// The passphrase or key does not open this encrypted container (told
    /// from the header's key check, before any payload is read).
    WrongKey,
    /// A stage failed on data it produced itself (an encoder error), or a
    /// custom stage reported an error.
    Stage,
    /// A stage panicked; the panic was caught and turned into this error.
    Panic,
    /// The run was cancelled (a signal, or [`crate::CancelToken::cancel`]).
    Cancelled,
    /// The input asks for more than a limit allows (an Argon2id cost or
    /// chunks over [`crate::PipelineBuilder::max_memory`]), or memory the
    /// run needed could not be had.
    Resource,
}

/// The error of every fallible operation in syncpipe.
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
    chunk: Option<u64>,
    stage: Option<String>,
    source: Option<io::Error>,
    /// Made by [`Error::already_exists`].
    existing_output: bool,
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message (lowercase, no trailing period).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            path: None,
            chunk: None,
            stage: None,
            source: None,
            existing_output: false,
        }
    }

    /// Over a limit on memory or work, or out of memory.
    pub fn resource(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Resource, message)
    }

    /// An I/O error; the original is kept as `source()`.
    pub fn io(err: io::Error) -> Error {
        let mut e = Error::new(ErrorKind::Io, String::new());
        e.source = Some(err);
        e
    }

    /// An invalid setting or argument.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    /// Corrupt, truncated or foreign input.
    pub fn integrity(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Integrity, message)
    }

    /// The secret does not open the container.
    pub fn wrong_key(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::WrongKey, message)
    }

    /// A stage failure.
    pub fn stage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Stage, message)
    }

    /// The run was cancelled.
    pub fn cancelled() -> Error {
        Error::new(ErrorKind::Cancelled, "cancelled")
    }

    /// A usage error for an output at `path` that exists and that only
    /// `-f` (`force`) may replace. `what` is what is there, as
    /// [`crate::output::kind_name`] words it: a regular file is simply
    /// overwritten, anything else is named, since `-f` replaces it with a
    /// regular file.
    pub fn already_exists(path: impl AsRef<Path>, what: &str) -> Error {
        // `kind_name`'s word for a regular file (a test below keeps the two in step).
        let regular = what == "a regular file";
        let text = if regular {
            "already exists; use -f to overwrite".to_string()
        } else {
            format!("already exists ({what}); use -f to replace it with the output")
        };
        let mut e = Error::usage(text).with_path(path);
        e.existing_output = regular;
        e
    }

    /// Adds the path the error is about (kept if one is already set).
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Error {
        if self.path.is_none() {
            self.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// Adds the chunk index the error is about (kept if one is already set).
    pub fn with_chunk(mut self, index: u64) -> Error {
        if self.chunk.is_none() {
            self.chunk = Some(index);
        }
        self
    }

    /// Adds the stage name the error is about (kept if one is already set).
    pub fn with_stage(mut self, name: impl Into<String>) -> Error {
        if self.stage.is_none() {
            self.stage = Some(name.into());
        }
        self
    }

    /// The kind, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The path the error is about, if known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The chunk index the error is about, if known.
    pub fn chunk(&self) -> Option<u64> {
        self.chunk
    }

    /// The stage the error is about, if known.
    pub fn stage_name(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    /// True for an output that exists as a regular file, which only
    /// `force` may replace ([`Error::already_exists`]): a batch rerun over
    /// finished outputs counts these rather than naming each (a link, FIFO
    /// or device at an output name is named).
    pub fn is_existing_output(&self) -> bool {
        self.existing_output
    }

    /// True for a broken pipe on the output (a reader like `head` went away):
    /// the binary treats this as a quiet end, not a crash.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(&self.source, Some(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::io(err)
    }
}

/// For code that speaks `io::Result` (a `Read` or `Write` impl, `?` in a
/// function returning `io::Result`). The whole error is kept as the inner
/// error, so its message (path, chunk, stage) survives and
/// `get_ref()?.downcast_ref::<syncpipe::Error>()` gets it back; the kind
/// follows [`ErrorKind`]: an I/O error keeps its own kind, an integrity
/// failure is `InvalidData`, a usage error `InvalidInput`, a wrong key
/// `PermissionDenied`, a cancel `Interrupted`, a limit `OutOfMemory`.
///
/// ```
/// use std::io;
/// let e = syncpipe::Error::integrity("chunk 3: checksum mismatch");
/// let io_err = io::Error::from(e);
/// assert_eq!(io_err.kind(), io::ErrorKind::InvalidData);
/// let back = io_err.get_ref().and_then(|e| e.downcast_ref::<syncpipe::Error>());
/// assert_eq!(back.map(|e| e.kind()), Some(syncpipe::ErrorKind::Integrity));
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind {
            ErrorKind::Io => err
                .source
                .as_ref()
                .map_or(io::ErrorKind::Other, io::Error::kind),
            ErrorKind::Usage => io::ErrorKind::InvalidInput,
            ErrorKind::Integrity => io::ErrorKind::InvalidData,
            ErrorKind::WrongKey => io::ErrorKind::PermissionDenied,
            ErrorKind::Cancelled => io::ErrorKind::Interrupted,
            ErrorKind::Resource => io::ErrorKind::OutOfMemory,
            ErrorKind::Stage | ErrorKind::Panic => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        if let Some(c) = self.chunk {
            write!(f, "chunk {c}: ")?;
        }
        if let Some(s) = &self.stage {
            write!(f, "{s}: ")?;
        }
        match (&self.message.is_empty(), &self.source) {
            (true, Some(src)) => write!(f, "{src}"),
            (false, Some(src)) => write!(f, "{}: {src}", self.message),
            (_, None) => write!(f, "{}", self.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("display", &self.to_string())
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_context_first() {
        let e = Error::stage("bad frame")
            .with_stage("zstd")
            .with_chunk(17)
            .with_path("input.bin");
        assert_eq!(e.to_string(), "input.bin: chunk 17: zstd: bad frame");
    }

    #[test]
    fn io_source_is_kept() {
        let e = Error::io(io::Error::new(io::ErrorKind::BrokenPipe, "pipe"));
        assert!(e.is_broken_pipe());
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.kind(), ErrorKind::Io);
    }

    #[test]
    fn first_context_wins() {
        let e = Error::integrity("x").with_chunk(1).with_chunk(2);
        assert_eq!(e.chunk(), Some(1));
    }

    #[test]
    fn an_existing_regular_file_is_overwritten_anything_else_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        let t = std::fs::symlink_metadata(&file).expect("stat").file_type();
        let e = Error::already_exists(&file, crate::output::kind_name(&t));
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(
            e.to_string()
                .ends_with(": already exists; use -f to overwrite"),
            "{e}"
        );
        let e = Error::already_exists("l", "a symbolic link");
        assert_eq!(
            e.to_string(),
            "l: already exists (a symbolic link); use -f to replace it with the output"
        );
    }
}
