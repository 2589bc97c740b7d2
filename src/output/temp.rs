//! Temp file names, `.NAME.syncpipe-tmp.HOST.PID.RANDOM`: who owns a temp
//! file can be read from its name, so a stale one is told from a live run's
//! and from everything else. Also the registry of this process's live temp
//! files, for an exit that skips destructors.

use std::ffi::OsStr;
use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use parking_lot::Mutex;
use tempfile::NamedTempFile;

/// What every temp file name of syncpipe contains, between the name it
/// stands for and its owner (`.NAME.syncpipe-tmp.HOST.PID.RANDOM`).
pub const TEMP_MARKER: &str = ".syncpipe-tmp.";

/// Who wrote a temp file: the machine and the process id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempOwner {
    /// The host name, as written into temp names (the name this machine gives itself).
    pub host: String,
    /// The process id on that host.
    pub pid: u32,
}

/// This machine's name as it appears in temp names: letters, digits and
/// `-` only (anything else becomes `-`), at most 32 bytes, `localhost` if
/// it cannot be read. The host is in the name because a pid means
/// something only on its own machine: on a folder shared by several
/// machines, a run must not judge another machine's temp files.
pub fn this_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at
        // most that many bytes.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let host: String = buf[..len]
            .iter()
            .take(32)
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b == b'-' {
                    b as char
                } else {
                    '-'
                }
            })
            .collect();
        if ok && !host.is_empty() {
            host
        } else {
            "localhost".to_string()
        }
    })
}

/// Creates a temp file for `name` in `dir`, named
/// `.NAME.syncpipe-tmp.HOST.PID.RANDOM`: host and pid say whose it is (a
/// sweep on the same host removes it only once that process is gone),
/// the random part keeps concurrent outputs of one process apart. Created
/// with `mode`. Every temp file syncpipe makes is named this way (the
/// binary's Prometheus textfile too), so the stale-temp cleanup and the
/// batch walks know them all.
///
/// # Errors
///
/// Creating the file failed.
pub fn temp_file(dir: &Path, name: &str, mode: u32) -> io::Result<NamedTempFile> {
    // The name is only there for people: cut it so that the owner part
    // (about 65 bytes) still fits in a 255-byte file name.
    let mut cut = name.len().min(150);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let name = &name[..cut];
    let tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{name}{TEMP_MARKER}{}.{}.",
            this_host(),
            std::process::id()
        ))
        .rand_bytes(8)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    register_live(tmp.path());
    Ok(tmp)
}

/// The named temp files this process created, for [`remove_live_temps`].
/// An entry is dropped lazily, once its name is gone from the folder (a
/// commit renamed it, a `Drop` removed it): then the set holds about as
/// many names as there are outputs in flight, also in a long batch, and
/// no commit or drop path has to remember to unregister.
fn live_temps() -> &'static Mutex<Vec<PathBuf>> {
    static LIVE: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
}

fn register_live(path: &Path) {
    let mut live = live_temps().lock();
    live.retain(|p| fs::symlink_metadata(p).is_ok());
    live.push(path.to_path_buf());
}

/// Removes the named temp files this process has created and not yet
/// committed or dropped, and returns how many it removed.
///
/// For an embedder about to end the process abnormally (`exit` from
/// another thread while a run is still going, e.g. when a shutdown signal
/// did not stop a blocked run in time): destructors will not run, so the
/// temp files would stay until a stale-temp sweep
/// ([`remove_stale_temps`](super::remove_stale_temps)). Destinations are
/// never touched: a name is either still the temp file's (removed) or was
/// renamed into place by a complete commit (then it is gone, and nothing
/// is removed). Unnamed outputs (`O_TMPFILE`, see
/// [`OutputFile::create_unnamed`](super::OutputFile::create_unnamed))
/// need nothing: they vanish with the process. The runs themselves are not
/// stopped: a writer still going may fail on its removed file, which is
/// why this is for the moment just before the exit.
///
/// Waits at most 200 ms for the registry (it is only ever held briefly);
/// returns 0 without removing anything if it cannot get it.
pub fn remove_live_temps() -> usize {
    let Some(mut live) = live_temps().try_lock_for(std::time::Duration::from_millis(200)) else {
        return 0;
    };
    live.drain(..)
        .filter(|p| fs::remove_file(p).is_ok())
        .count()
}

/// The owner of a syncpipe temp file, from its name; `None` if the name is
/// not one (`.NAME.syncpipe-tmp.HOST.PID.RANDOM`).
pub fn temp_owner(name: &OsStr) -> Option<TempOwner> {
    let name = name.to_str()?;
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(TEMP_MARKER)?;
    let mut parts = rest[at + TEMP_MARKER.len()..].split('.');
    let (host, pid, random) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = at > 0
        && parts.next().is_none()
        && !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid {
        return None;
    }
    Some(TempOwner {
        host: host.to_string(),
        pid: pid.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        let owner = |n: &str| temp_owner(OsStr::new(n)).map(|o| (o.host, o.pid));
        let o = |h: &str, pid| Some((h.to_string(), pid));
        assert_eq!(
            owner(".a.spipe.syncpipe-tmp.box-1.123.AbC9x"),
            o("box-1", 123)
        );
        assert_eq!(owner(".x.syncpipe-tmp.syncpipe-tmp.h.7.z"), o("h", 7));
        for not in [
            "a.spipe",
            ".a.spipe.XXXXXX.tmp",
            "a.syncpipe-tmp.h.1.x",
            "..syncpipe-tmp.h.1.x",
            ".a.syncpipe-tmp..1.x",
            ".a.syncpipe-tmp.h..x",
            ".a.syncpipe-tmp.h.12",
            ".a.syncpipe-tmp.h.12.",
            ".a.syncpipe-tmp.h.1x.y",
            ".a.syncpipe-tmp.h.1.y.z",
            ".a.syncpipe-tmp.h_x.1.y",
        ] {
            assert_eq!(owner(not), None, "{not}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let f = temp_file(dir.path(), "out.spipe", 0o600).expect("temp");
        let name = f.path().file_name().expect("name").to_owned();
        // A destination name of the longest length still gets a temp file.
        let long = "é".repeat(127);
        assert_eq!(long.len(), 254);
        let t = temp_file(dir.path(), &long, 0o600).expect("temp for a long name");
        let tname = t.path().file_name().expect("name").to_owned();
        assert!(temp_owner(&tname).is_some(), "{tname:?}");
        assert_eq!(
            temp_owner(&name),
            Some(TempOwner {
                host: this_host().to_string(),
                pid: std::process::id()
            }),
            "{name:?}"
        );
    }
}
