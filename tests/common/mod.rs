//! Shared test support: deterministic data and a deadlock watchdog.
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Deterministic bytes mixing text-like runs (compressible) with random
/// stretches (incompressible), so both compressed and raw-stored chunks occur.
pub fn mixed_data(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let words: [&[u8]; 8] = [
        b"stream ",
        b"chunk ",
        b"governor ",
        b"permit ",
        b"rayon ",
        b"channel ",
        b"\n",
        b"0123 ",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let r = next();
        if r % 4 == 0 {
            // a random stretch
            for _ in 0..(r >> 8) % 512 {
                out.extend_from_slice(&next().to_le_bytes());
            }
        } else {
            for _ in 0..(r >> 8) % 256 {
                out.extend_from_slice(words[(next() % 8) as usize]);
            }
        }
    }
    out.truncate(len);
    out
}

/// Runs `f` on a helper thread and fails the test if it does not finish in
/// `secs` seconds: a deadlock becomes a failure instead of a hung suite.
pub fn watchdog<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            let _ = h.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: no result after {secs} s (deadlock?)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("watchdog: the body ended without a result"),
        },
    }
}

/// Makes a FIFO at `path`.
pub fn make_fifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in the path");
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// Makes a character device at `path` with `/dev/null`'s numbers (1, 3),
/// as `mknod -m 666 PATH c 1 3` does. Only root may, and not in every
/// container: false when it could not.
pub fn make_null_device(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return false;
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in the path");
    // SAFETY: a valid NUL-terminated path; mknod only creates a node.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    rc == 0
}

/// What kind of thing is at `path`, not following a symlink: `file`,
/// `symlink`, `fifo`, `char device`, `dir`, `other` or `absent`.
pub fn kind_at(path: &std::path::Path) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(_) => "absent",
        Ok(m) => {
            let t = m.file_type();
            if t.is_file() {
                "file"
            } else if t.is_symlink() {
                "symlink"
            } else if t.is_fifo() {
                "fifo"
            } else if t.is_char_device() {
                "char device"
            } else if t.is_dir() {
                "dir"
            } else {
                "other"
            }
        }
    }
}
