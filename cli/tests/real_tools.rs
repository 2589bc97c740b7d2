//! What the format tests that run the real tools (`zst.rs` against
//! `zstd`, `gz.rs` against `gzip`, `pigz` and `bgzip`) share: whether the
//! tools are there, running a program under the watchdog, and the inputs
//! every round trip covers.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{mixed_data, watchdog};

/// Whether every one of `tools` is on the PATH. A missing one makes the
/// caller skip its checks with a note, unless the environment variable
/// `required_by` is set (CI sets it when it could install them): then it
/// fails.
pub fn have(tools: &[&str], required_by: &str) -> bool {
    let missing: Vec<_> = tools
        .iter()
        .filter(|t| {
            !Command::new(t)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os(required_by).is_none(),
            "{required_by} is set but {missing:?} is not on the PATH"
        );
        eprintln!("{missing:?} not installed: skipping the real-client checks");
    }
    missing.is_empty()
}

/// `program args` in `dir`, stdin closed, under a two-minute watchdog.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    let mut c = Command::new(program);
    c.args(args).current_dir(dir).stdin(Stdio::null());
    watchdog(120, move || c.output().expect("start"))
}

/// [`run`], which must succeed.
pub fn ok(dir: &Path, program: &str, args: &[&str]) -> Output {
    let out = run(dir, program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Sizes 0, 1, around the chunk `chunk` and 3 MiB, and `more`, of mixed
/// text and of zeros, and a random input over two chunks.
pub fn inputs(chunk: usize, more: &[usize]) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let lens = [0, 1, chunk - 1, chunk, chunk + 1, 3 << 20];
    for &len in lens.iter().chain(more) {
        v.push((format!("mixed-{len}"), mixed_data(len, len as u64 + 7)));
        v.push((format!("zero-{len}"), vec![0u8; len]));
    }
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let noise = (0..2 * chunk + 17)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    v.push(("random".into(), noise));
    v
}
