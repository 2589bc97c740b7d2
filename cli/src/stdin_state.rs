//! Whether descriptor 0 was open when the process started.
//!
//! Rust's runtime reopens a closed descriptor 0, 1 or 2 on `/dev/null`
//! before `main` (so that a later `open` cannot land on it), which makes
//! `syncpipe process - -o x <&-` read an empty input and write a valid
//! empty container: a silent wrong backup. A function in `.init_array`
//! runs before that runtime start-up (the dynamic loader calls it before
//! the C `main` that starts Rust's), so it still sees the closed
//! descriptor and records it here.

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};

use syncpipe::{Error, ErrorKind};

static CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RECORD_AT_START: extern "C" fn() = record;

#[cfg(target_os = "linux")]
extern "C" fn record() {
    // SAFETY: F_GETFD only reads the descriptor's flags; -1 (EBADF) means
    // it is not open. Nothing of Rust's runtime is used this early.
    let closed = unsafe { libc::fcntl(0, libc::F_GETFD) } == -1;
    CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

/// Checks that stdin can be read as a data stream: refused when it was
/// closed at start (exit 1: the caller's environment is broken, and the
/// `/dev/null` in its place would pass for an empty input) and when it is
/// a terminal (exit 1 too, as zstd's "stdin is a console": nobody means to
/// type a file or a container, and a forgotten redirection would otherwise
/// wait for input). `--force` does not override the terminal check (it is
/// about overwriting outputs); `cat | syncpipe …` does, for the rare wish
/// to type the input.
pub fn check() -> Result<(), Error> {
    check_open()?;
    if io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::Io,
            "refusing to read data from a terminal (stdin); \
             redirect stdin from a file or a pipe",
        ));
    }
    Ok(())
}

/// Refuses a stdin that was closed at start (see [`check`]); for reads
/// that may come from a terminal (`--files-from -`).
pub fn check_open() -> Result<(), Error> {
    if CLOSED_AT_START.load(Ordering::Relaxed) {
        return Err(Error::new(
            ErrorKind::Io,
            "stdin is closed (descriptor 0 was not open at start); \
             give a file, or </dev/null for an empty input",
        ));
    }
    Ok(())
}
