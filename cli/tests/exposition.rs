//! The Prometheus text of the real binary, fed to real parsers: `promtool
//! check metrics` (Prometheus's own parser and linter) where it is
//! installed, and the Python `prometheus_client` parser where that is.
//! With neither, the test says so and passes, unless the environment sets
//! `SYNCPIPE_REQUIRE_PROM_CHECK=1` (CI does when it could install one):
//! then it fails.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::common::{mixed_data, watchdog};
use crate::observe::parse_prometheus;

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const CHUNK: usize = 16 << 10;
/// A label value with every character the format escapes.
const NOTE: &str = "a \"quoted\" \\ back\nslash";

/// Parses the text with the Python parser, checks every histogram has its
/// `+Inf` bucket, `_sum` and `_count`, and prints the number of families
/// and samples, then the `note` label of `syncpipe_build_info` as read.
const PYTHON: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(sys.stdin.read()))
note = None
for f in fams:
    names = {s.name for s in f.samples}
    if f.type == "histogram":
        assert names == {f.name + "_bucket", f.name + "_sum", f.name + "_count"} or not names, names
        assert not names or any(s.labels.get("le") == "+Inf" for s in f.samples), f.name
    if f.name == "syncpipe_build_info":
        note = f.samples[0].labels["note"]
print(len(fams), sum(len(f.samples) for f in fams))
print(json.dumps(note))
"#;

/// What checked the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checker {
    Promtool,
    PythonClient,
}

/// The checkers installed here.
fn checkers() -> Vec<Checker> {
    let mut found = Vec::new();
    match Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => found.push(Checker::Promtool),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot run promtool: {e}"),
    }
    let python = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if python.is_ok_and(|s| s.success()) {
        found.push(Checker::PythonClient);
    }
    found
}

/// Runs `program args` with `text` on stdin; its exit status and output.
fn feed(program: &str, args: &[&str], text: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let text = text.to_string();
    // Written from a thread: a checker that answers before reading it all
    // must not block the test on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("checker output");
    let _ = writer.join();
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

/// Checks `text` (named `what` in messages) with `checker`.
fn check(checker: Checker, what: &str, text: &str) {
    match checker {
        Checker::Promtool => {
            // Exit 1: unparsable; 3: lint problems (names, units, HELP).
            let (ok, said) = feed("promtool", &["check", "metrics"], text);
            assert!(
                ok && said.trim().is_empty(),
                "promtool on {what}: {said}\n{text}"
            );
        }
        Checker::PythonClient => {
            let (ok, said) = feed("python3", &["-c", PYTHON], text);
            assert!(ok, "prometheus_client on {what}: {said}\n{text}");
            let mut lines = said.lines();
            let counts = lines.next().expect("counts");
            let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
            let samples = text.lines().filter(|l| !l.starts_with('#')).count();
            assert_eq!(
                counts,
                format!("{families} {samples}"),
                "prometheus_client read every family and sample of {what}"
            );
            let note: String =
                serde_json::from_str(lines.next().expect("note")).expect("the note as JSON");
            assert_eq!(note, NOTE, "the escaped label value reads back");
        }
    }
}

#[test]
fn real_parsers_accept_the_textfile_and_the_endpoint() {
    let found = checkers();
    if found.is_empty() {
        let required = std::env::var("SYNCPIPE_REQUIRE_PROM_CHECK").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SYNCPIPE_REQUIRE_PROM_CHECK=1, but neither promtool nor the Python \
             prometheus_client is installed"
        );
        eprintln!(
            "note: neither promtool nor the Python prometheus_client is installed: \
             the Prometheus text was not checked by a real parser"
        );
        return;
    }
    let (textfile, scraped) = watchdog(60, capture);
    for checker in found {
        check(checker, "the textfile", &textfile);
        check(checker, "the endpoint", &scraped);
    }
}

/// A batch with a failed file, a label and a shard, written to a textfile
/// and scraped from the endpoint during its linger: the two texts.
fn capture() -> (String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    fs::create_dir(d.join("in")).expect("mkdir");
    // Two streamed files (histograms with samples) and a small one.
    fs::write(d.join("in/a.bin"), mixed_data(17 * CHUNK, 601)).expect("write");
    fs::write(d.join("in/b.bin"), mixed_data(20 * CHUNK + 3, 602)).expect("write");
    fs::write(d.join("in/c.txt"), b"small\n".repeat(100)).expect("write");
    // A link loop: nobody can open it (a walk passes over a dangling link).
    std::os::unix::fs::symlink("loop", d.join("in/loop")).expect("symlink");
    let note = format!("note={NOTE}");
    let mut child = Command::new(BIN)
        .args([
            "process",
            "-r",
            "in",
            "--output-dir",
            "out",
            "--chunk-size",
            "16KiB",
            "--shard",
            "0/1",
            "--metrics-label",
            "job=nightly",
            "--metrics-label",
            &note,
            "--prometheus-file",
            "m.prom",
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
            "10m",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut addr = None;
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).expect("stderr") > 0, "no linger");
        if let Some(a) = line
            .trim()
            .strip_prefix("syncpipe: serving metrics at http://")
            .and_then(|l| l.strip_suffix("/metrics"))
        {
            addr = Some(a.to_string());
        }
        if line.starts_with("syncpipe: serving the final metrics") {
            break;
        }
    }
    let addr = addr.expect("the address line");
    let mut s = TcpStream::connect(&addr).expect("connect");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    let scraped = resp
        .split_once("\r\n\r\n")
        .expect("head and body")
        .1
        .to_string();
    // The linger ends with a signal; the code stays the run's.
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(5), "one file failed");
    let textfile = fs::read_to_string(d.join("m.prom")).expect("textfile");
    // What the real parsers are given is what it should be.
    let labels = r#"{job="nightly",note="a \"quoted\" \\ back\nslash",shard="0/1"}"#;
    for text in [&textfile, &scraped] {
        let m = parse_prometheus(text);
        assert_eq!(m[&format!("syncpipe_files_total{labels}")], 3.0);
        assert_eq!(m[&format!("syncpipe_files_failed_total{labels}")], 1.0);
        assert_eq!(m[&format!("syncpipe_last_exit_code{labels}")], 5.0);
        assert!(text.contains("syncpipe_chunk_cpu_seconds_bucket{"));
    }
    assert_eq!(
        parse_prometheus(&textfile)[&format!("syncpipe_last_success_timestamp_seconds{labels}")],
        0.0,
        "no success known"
    );
    (textfile, scraped)
}
