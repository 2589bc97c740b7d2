//! Removing the temp files that killed runs left behind: only this host's,
//! only once their process is gone, and only when a program asks. Creating
//! an output never removes another file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::temp::{temp_owner, this_host};

/// True unless process `pid` surely does not exist. `kill(pid, 0)` sends
/// nothing; only `ESRCH` proves the process gone (`EPERM`: it exists, as
/// another user). A reused pid keeps a stale file alive, which is the safe
/// mistake; removing a live run's temp file would be the unsafe one.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; no signal is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the syncpipe temp files in `dir` written on this host by a
/// process that is gone (left by a killed run), and returns their paths.
/// Files of live processes (another run writing into the same folder), of
/// this process and of other hosts (a folder shared over NFS: their pids
/// mean nothing here) are left alone. Best effort: a file that cannot be
/// removed is skipped.
///
/// The call a program makes before it writes into a folder; the library
/// never makes it on its own (creating an output removes nothing else), so
/// an embedder decides whether, and where, to clean up. The binary makes it
/// on a single run's output folder, and a batch with
/// [`BatchOptions::sweep_stale_temps`](crate::BatchOptions::sweep_stale_temps)
/// on each folder it writes into, once.
///
/// Caveat: containers that share a host name and a folder but not a pid
/// namespace see each other's live runs as gone. Give them distinct host
/// names (the default in Docker and Kubernetes) or distinct folders.
///
/// # Errors
///
/// The error of listing `dir`.
pub fn remove_stale_temps(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let me = std::process::id();
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(owner) = temp_owner(&name) else {
            continue;
        };
        if owner.host != this_host() || owner.pid == me || process_exists(owner.pid) {
            continue;
        }
        let path = entry.path();
        if fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::TEMP_MARKER;

    #[test]
    fn stale_temps_of_gone_processes_are_removed_others_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A process that has surely exited (and been reaped).
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let gone = child.id();
        child.wait().expect("wait");
        let live = std::os::unix::process::parent_id();
        let me = std::process::id();
        let host = this_host();
        let names = [
            format!(".a.spipe{TEMP_MARKER}{host}.{gone}.Xy12ab"),
            format!(".b.spipe{TEMP_MARKER}{host}.{live}.Xy12ab"),
            format!(".c.spipe{TEMP_MARKER}{host}.{me}.Xy12ab"),
            // Another machine's run: its pid means nothing here.
            format!(".d.spipe{TEMP_MARKER}other-host.{gone}.Xy12ab"),
            "plain.spipe".to_string(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), b"partial").expect("write");
        }
        let removed = remove_stale_temps(dir.path()).expect("sweep");
        assert_eq!(removed, vec![dir.path().join(&names[0])]);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, names[1..].to_vec());
    }
}
