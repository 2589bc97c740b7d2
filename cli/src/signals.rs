//! The binary's signal handling (the library installs none).
//!
//! One SIGINT or SIGTERM sets the run's cancel flag: a run that is moving
//! stops at its next check, removes its temp file, reports and exits 130
//! or 143. Some waits never look at the flag: a `read` on an idle stdin
//! pipe, the `open` of a FIFO nobody writes (input, key or passphrase
//! file), a `write` into a full stdout pipe, an Argon2 derivation, the
//! start of a large thread pool. So a reaper thread also waits for the
//! first signal; if the process is still there [`GRACE`] later, it removes
//! this process's live temp files (`syncpipe::output::remove_live_temps`),
//! puts the terminal back if a passphrase prompt had turned echo off, and
//! ends the process with the same exit code. A second signal still exits
//! at once, from the handler itself (no cleanup: see `syncpipe::output`).
//!
//! A signal that was ignored when the process started (`nohup`, a
//! background job of a non-interactive shell, `trap '' INT`) stays
//! ignored: nothing is registered for it, as the shells and most Unix
//! tools do.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::Signals;
use syncpipe::CancelToken;

/// How long the cooperative cancel has before the reaper ends the process.
/// The cancel ends a moving run in well under this (0.1 s at brotli:9,
/// 0.35 s at zstd:19, `docs/design.md`), so with the final report; the
/// exit after it stays under a second.
pub const GRACE: Duration = Duration::from_millis(500);

/// True if `signal`'s disposition is `SIG_IGN` right now (at start: what
/// the parent left us).
fn ignored(signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: a query only (a null new action); `old` is a valid out-pointer.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        old
    };
    Ok(old.sa_sigaction == libc::SIG_IGN)
}

/// Registers SIGINT and SIGTERM (unless ignored at start) to set `cancel`'s
/// flag (SIGTERM also `terminated`), starts the reaper, and ignores SIGXFSZ.
/// Call before any other thread exists.
pub fn install(cancel: &CancelToken, terminated: &Arc<AtomicBool>, quiet: bool) -> io::Result<()> {
    let mut watched = Vec::new();
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        if ignored(signal)? {
            continue;
        }
        // Registered first, so it runs before the flag is set: it exits only
        // if an earlier signal already set it (the second Ctrl-C).
        flag::register_conditional_shutdown(signal, code, cancel.flag())?;
        if signal == SIGTERM {
            flag::register(SIGTERM, Arc::clone(terminated))?;
        }
        flag::register(signal, cancel.flag())?;
        watched.push(signal);
    }
    // A write past `ulimit -f` raises SIGXFSZ, whose default action kills
    // the process (leaving its temp file behind). Ignored, the write fails
    // with EFBIG instead and the run ends like any write error: a message,
    // exit 1, the temp file removed.
    // SAFETY: installs SIG_IGN (no handler code runs); called before any
    // other thread of ours exists.
    if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    if watched.is_empty() {
        return Ok(());
    }
    let mut signals = Signals::new(&watched)?;
    let terminated = Arc::clone(terminated);
    thread::Builder::new()
        .name("syncpipe-reaper".into())
        .spawn(move || {
            if signals.forever().next().is_none() {
                return;
            }
            // The normal end exits the process from the main thread, which
            // ends this sleep with it.
            thread::sleep(GRACE);
            reap(terminated.load(Ordering::Relaxed), quiet);
        })?;
    Ok(())
}

/// Ends a run that did not stop within the grace period.
fn reap(terminated: bool, quiet: bool) -> ! {
    syncpipe::output::remove_live_temps();
    // After a prompt the cursor is still on its line.
    let newline = if restore_terminal() { "\n" } else { "" };
    let code = if terminated { 143 } else { 130 };
    if !quiet {
        let what = if terminated {
            "terminated"
        } else {
            "interrupted"
        };
        note(&format!(
            "{newline}syncpipe: {what}: the run did not stop within {} ms (blocked); \
             its temp files are removed, it ends without its final report\n",
            GRACE.as_millis()
        ));
    }
    // `_exit`, not `exit`: other threads are still running (one may hold
    // the stdout lock or sit in a write), and nothing they own needs a
    // destructor once the temp files are gone.
    // SAFETY: ends the process; no Rust state is used afterwards.
    unsafe { libc::_exit(code) }
}

/// Writes `text` to stderr if that cannot block: a stderr pipe nobody
/// drains must not keep the process alive.
fn note(text: &str) {
    let mut fd = libc::pollfd {
        fd: 2,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the buffer is valid for its length.
    unsafe {
        if libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLOUT != 0 {
            libc::write(2, text.as_ptr().cast(), text.len());
        }
    }
}

/// The terminal settings to put back if the process is ended during a
/// passphrase prompt (which turns echo off): the terminal's descriptor
/// and its settings before the prompt.
static TERMINAL: Mutex<Option<(std::fs::File, libc::termios)>> = Mutex::new(None);

/// Remembers `/dev/tty`'s settings before a prompt changes them; `forget`
/// after it. Best effort: without a terminal there is nothing to restore.
pub fn save_terminal() {
    use std::os::fd::AsRawFd;
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return;
    };
    // SAFETY: a valid descriptor and out-pointer.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(tty.as_raw_fd(), &mut t) == 0).then_some(t)
    };
    if let Some(t) = saved {
        *TERMINAL.lock() = Some((tty, t));
    }
}

/// The prompt is over (it restored the terminal itself).
pub fn forget_terminal() {
    *TERMINAL.lock() = None;
}

/// Puts a prompt's terminal back; true if there was one.
fn restore_terminal() -> bool {
    use std::os::fd::AsRawFd;
    let Some(guard) = TERMINAL.try_lock_for(Duration::from_millis(100)) else {
        return false;
    };
    let Some((tty, t)) = guard.as_ref() else {
        return false;
    };
    // SAFETY: a valid descriptor and settings read from it.
    unsafe { libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, t) == 0 }
}

/// Set when a write to stdout met a closed pipe somewhere that carries on
/// (the `--json` lines): the run ends by SIGPIPE once it is over.
static STDOUT_BROKEN: AtomicBool = AtomicBool::new(false);

/// Records that stdout's reader went away.
pub fn note_broken_stdout() {
    STDOUT_BROKEN.store(true, Ordering::Relaxed);
}

/// Whether a write to stdout met a closed pipe.
pub fn stdout_broken() -> bool {
    STDOUT_BROKEN.load(Ordering::Relaxed)
}

/// Ends the process by SIGPIPE, as zstd and gzip end when the reader of
/// their stdout goes away (`restore -c | head`): the shell then sees 141
/// (128 + 13), which `set -o pipefail` scripts rely on. Rust starts every
/// program with SIGPIPE ignored, so the write failed with EPIPE instead and
/// the run was wound down like any failure (temp files removed, final
/// reports written); only then is the default action put back and the
/// signal raised.
pub fn end_by_sigpipe() -> ! {
    // SAFETY: puts back SIGPIPE's default action, unblocks it and raises
    // it; nothing of Rust's runs after the signal ends the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(libc::SIGPIPE);
        // Not reached unless the signal could not end the process: the
        // status a shell would show for it.
        libc::_exit(128 + libc::SIGPIPE)
    }
}
