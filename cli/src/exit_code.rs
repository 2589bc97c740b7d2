//! The one exit-code table of the tool (also printed by `--help`).

use syncpipe::{Error, ErrorKind};

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked.
    Success = 0,
    /// A runtime error: I/O, a failing stage, a panic, a resource limit.
    Runtime = 1,
    /// Bad usage: flags, stage specs, an existing output without `-f`.
    Usage = 2,
    /// Integrity failure: not a container, corrupt, truncated, checksum mismatch.
    Integrity = 3,
    /// Wrong key or passphrase (the encryption stages).
    WrongKey = 4,
    /// Some files of a batch failed (the many-files mode).
    BatchPartial = 5,
    /// Interrupted by SIGINT.
    Interrupted = 130,
    /// Terminated by SIGTERM.
    Terminated = 143,
}

/// The table as `--help` shows it.
pub const TABLE: &str = "\
Exit codes:
  0    success
  1    runtime error (I/O, a failing stage, out of memory, a container
       over --max-memory or --max-kdf-passes)
  2    usage error (bad flag or stage spec, output exists without -f)
  3    integrity failure (not a container, corrupt, truncated, tampered:
       checksum or authentication mismatch)
  4    wrong key or passphrase
  5    some files of a batch failed
  130  interrupted (SIGINT; a second one exits at once)
  143  terminated (SIGTERM)
A closed stdout pipe (e.g. `| head`) ends the run quietly with 0.";

impl ExitCode {
    /// The code for a library error; `terminated` tells SIGTERM from SIGINT.
    pub fn of(err: &Error, terminated: bool) -> ExitCode {
        match err.kind() {
            ErrorKind::Usage => ExitCode::Usage,
            ErrorKind::Integrity => ExitCode::Integrity,
            ErrorKind::WrongKey => ExitCode::WrongKey,
            ErrorKind::Cancelled if terminated => ExitCode::Terminated,
            ErrorKind::Cancelled => ExitCode::Interrupted,
            _ => ExitCode::Runtime,
        }
    }
}
