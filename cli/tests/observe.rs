//! Integration tests of the observability flags of the `syncpipe` binary:
//! `--json`, `--prometheus-file`, `--metrics-listen`, the
//! dashboard (`--progress`), `--metrics-interval`, `completions`, `man`.
//!
//! The real executable runs in its own temp directory. Nothing asserts a
//! time: where a test needs the run to be in progress, it holds the run's
//! stdin open until it has checked what it wanted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{self, mixed_data, watchdog};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const CHUNK: usize = 16 << 10;
const CHUNK_ARG: &str = "16KiB";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        fs::write(self.path(name), bytes).expect("write test file");
    }

    fn len(&self, name: &str) -> u64 {
        fs::metadata(self.path(name)).expect("metadata").len()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run syncpipe")
    }

    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

#[track_caller]
fn code(out: &Output, expected: i32) {
    assert_eq!(
        out.status.code(),
        Some(expected),
        "stderr:\n{}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every stdout line as JSON (each must parse).
fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["message_type"] == t).collect()
}

/// Checks the percentiles of every histogram of a summary: ordered, and
/// non-zero for the CPU-time ones and the job's wall time.
fn check_latencies(summary: &Value, chunks: u64) {
    let lat = summary["latency_ns"]
        .as_object()
        .expect("latency_ns object");
    for key in [
        "chunk_cpu",
        "chunk_time",
        "queue_wait.jobs",
        "queue_wait.results",
        "permit_wait.cpu",
    ] {
        assert!(lat.contains_key(key), "no {key} in {lat:?}");
    }
    for (key, h) in lat {
        let p = |k: &str| h[k].as_u64().unwrap_or_else(|| panic!("{key}.{k}"));
        assert!(
            p("p50") <= p("p95") && p("p95") <= p("p99") && p("p99") <= p("max"),
            "{key}: {h}"
        );
        if key == "chunk_cpu" || key == "chunk_time" || key.starts_with("stage_cpu.") {
            assert!(p("p50") > 0, "{key} p50 is 0: {h}");
            assert_eq!(p("count"), chunks, "{key}");
        }
    }
}

// ---------------------------------------------------------------------------
// --json
// ---------------------------------------------------------------------------

#[test]
fn json_summary_counts_the_real_bytes() {
    let env = Env::new();
    let original = mixed_data(9 * CHUNK + 77, 401);
    env.write("x.bin", &original);
    let out = env.run(&[
        "process",
        "x.bin",
        "--chunk-size",
        CHUNK_ARG,
        "--json",
        "--metrics-interval",
        "10ms",
    ]);
    code(&out, 0);
    let lines = json_lines(&out);
    let last = lines.last().expect("a line");
    assert_eq!(last["message_type"], "summary", "the summary is last");
    for line in &lines {
        assert_eq!(line["backend"], "sync");
        let t = line["message_type"].as_str().expect("message_type");
        assert!(["status", "file_done", "summary"].contains(&t), "{line}");
    }
    let done = of_type(&lines, "file_done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["input"], "x.bin");
    assert_eq!(done[0]["output"], "x.bin.spipe");
    assert_eq!(done[0]["bytes_in"], original.len() as u64);
    assert_eq!(done[0]["bytes_out"], env.len("x.bin.spipe"));

    let s = last;
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["command"], "process");
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["files_done"], 1);
    assert_eq!(s["files_failed"], 0);
    assert_eq!(s["bytes_in"], original.len() as u64);
    assert_eq!(s["bytes_out"], env.len("x.bin.spipe"));
    assert_eq!(s["original_bytes"], original.len() as u64);
    assert_eq!(s["chunks"], 10);
    assert!(s["elapsed_s"].as_f64().expect("elapsed") > 0.0);
    assert!(s["mb_per_s"].as_f64().expect("mb/s") > 0.0);
    let t = &s["tuning"];
    assert_eq!(t["chunk_size"], CHUNK as u64);
    assert_eq!(t["channel_depth"], 4);
    assert_eq!(t["io_tokens"], 12);
    assert!(t["cpu_tokens"].as_u64().expect("cpu_tokens") >= 1);
    assert_eq!(t["storage_type"], "unknown");
    assert_eq!(t["stages"], "zstd:3,blake3");
    check_latencies(s, 10);
    assert!(s["latency_ns"].get("stage_cpu.blake3").is_some());

    // Restore: bytes in = the container, bytes out = the original.
    let out = env.run(&["restore", "x.bin.spipe", "-o", "y.bin", "--json"]);
    code(&out, 0);
    assert_eq!(fs::read(env.path("y.bin")).expect("restored"), original);
    let lines = json_lines(&out);
    let s = lines.last().expect("summary");
    assert_eq!(s["message_type"], "summary");
    assert_eq!(s["command"], "restore");
    assert_eq!(s["bytes_in"], env.len("x.bin.spipe"));
    assert_eq!(s["bytes_out"], original.len() as u64);
    assert_eq!(
        s["tuning"]["chunk_size"], CHUNK as u64,
        "from the container"
    );
    check_latencies(s, 10);

    // Verify: JSON only on stdout (no "ok" line); its bytes out are the
    // original bytes it decoded and checked (written nowhere).
    let out = env.run(&["verify", "x.bin.spipe", "--json"]);
    code(&out, 0);
    let lines = json_lines(&out);
    assert_eq!(of_type(&lines, "file_done").len(), 1);
    assert_eq!(
        lines.last().expect("summary")["bytes_out"],
        original.len() as u64
    );
    assert_eq!(env.listing(), ["x.bin", "x.bin.spipe", "y.bin"]);
}

#[test]
fn json_status_lines_appear_while_a_run_waits() {
    watchdog(60, || {
        let env = Env::new();
        let mut child = env
            .command(&[
                "process",
                "-",
                "-o",
                "s.spipe",
                "--json",
                "--metrics-interval",
                "10ms",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&mixed_data(3 * CHUNK, 402)).expect("feed");
        // The run is now waiting for more input; status lines keep coming.
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a status line");
        let v: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(v["message_type"], "status", "{line}");
        assert_eq!(v["command"], "process");
        assert!(v["gauges"]["cpu_permits"].as_u64().expect("permits") >= 1);
        assert!(v["total_bytes"].is_null(), "stdin has no known size");
        drop(stdin);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).expect("rest");
        assert!(child.wait().expect("wait").success());
        let last: Value =
            serde_json::from_str(rest.lines().last().expect("summary")).expect("JSON");
        assert_eq!(last["message_type"], "summary");
        assert_eq!(last["bytes_in"], (3 * CHUNK) as u64);
    });
}

#[test]
fn json_and_data_on_stdout_are_refused() {
    let env = Env::new();
    env.write("x.bin", b"hello");
    for args in [
        &["process", "x.bin", "-c", "--json"][..],
        &["process", "x.bin", "-o", "-", "--json"][..],
        &["--json", "process", "-"][..],
    ] {
        let out = env.run(args);
        code(&out, 2);
        assert!(
            stderr(&out).contains("--json"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            out.stdout.is_empty()
                || json_lines(&out)
                    .iter()
                    .all(|v| v["message_type"] != "status")
        );
    }
    env.run(&["process", "x.bin"]);
    let out = env.run(&["restore", "x.bin.spipe", "-c", "--json"]);
    code(&out, 2);
    // Flags that report on a run are refused where there is none; info's
    // --json is its own (one object).
    let out = env.run(&["man", "--json"]);
    code(&out, 2);
    assert!(out.stdout.is_empty());
    let out = env.run(&["info", "x.bin.spipe", "--json"]);
    code(&out, 0);
    assert_eq!(json_lines(&out)[0]["message_type"], "info");
    assert_eq!(env.listing(), ["x.bin", "x.bin.spipe"]);
}

#[test]
fn json_reports_errors_with_their_exit_code() {
    let env = Env::new();
    env.write("bad.spipe", b"this is not a container at all");
    let out = env.run(&["restore", "bad.spipe", "-o", "y.bin", "--json"]);
    code(&out, 3);
    let lines = json_lines(&out);
    let errors = of_type(&lines, "error");
    assert_eq!(errors.len(), 1, "{lines:?}");
    assert_eq!(errors[0]["exit_code"], 3);
    assert_eq!(errors[0]["error"]["kind"], "integrity");
    let s = lines.last().expect("summary");
    assert_eq!(s["message_type"], "summary");
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["files_done"], 0);
    assert_eq!(s["files_failed"], 1);
    // The human message is still on stderr.
    assert!(stderr(&out).contains("syncpipe: "));
}

// ---------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------

/// A small checker of the Prometheus text exposition format (0.0.4): HELP
/// and TYPE once per family, before its samples; metric and label names
/// valid; label values quoted with the format's escapes; values numbers;
/// histograms with `le` buckets, cumulative, ending in `+Inf` = `_count`,
/// and `_sum`. Returns name{labels} → value. (`exposition.rs` feeds the
/// same text to the real parsers.)
pub(crate) fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    fn valid_name(n: &str) -> bool {
        let mut c = n.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = BTreeMap::new();
    assert!(text.ends_with('\n'), "text ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("name");
            assert!(
                valid_name(name) && helped.insert(name.to_string()),
                "HELP {name}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().expect("name"), parts.next().expect("type"));
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let name = series.split('{').next().expect("name");
        assert!(valid_name(name), "{line}");
        assert!(name.starts_with("syncpipe_"), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("labels of {line}"));
                // name="value" pairs, values with only \\ \" \n escapes.
                let mut rest = inner;
                while !rest.is_empty() {
                    let (lname, after) = rest.split_once("=\"").expect("label=");
                    assert!(valid_name(lname), "{line}");
                    let mut end = None;
                    let mut escaped = false;
                    for (i, ch) in after.char_indices() {
                        if escaped {
                            assert!(matches!(ch, '\\' | '"' | 'n'), "escape in {line}");
                            escaped = false;
                        } else if ch == '\\' {
                            escaped = true;
                        } else if ch == '"' {
                            end = Some(i);
                            break;
                        }
                    }
                    let end = end.expect("closing quote");
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
            }
        }
        let family = types
            .keys()
            .find(|f| {
                name == f.as_str()
                    || (types[*f] == "histogram"
                        && [
                            format!("{f}_bucket"),
                            format!("{f}_sum"),
                            format!("{f}_count"),
                        ]
                        .iter()
                        .any(|n| n == name))
            })
            .unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
        if types[family] == "histogram" {
            assert_ne!(name, family, "a histogram's sample has a suffix: {line}");
            assert_eq!(
                name.ends_with("_bucket"),
                series.contains("le=\""),
                "{line}"
            );
        }
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "duplicate {series}"
        );
    }
    // Each histogram series: buckets cumulative, the last `+Inf`, equal to
    // its `_count`.
    for (series, v) in &samples {
        let Some((base, rest)) = series.split_once("_bucket{") else {
            continue;
        };
        if !rest.ends_with("le=\"+Inf\"}") {
            continue;
        }
        let own = &rest[..rest.len() - "le=\"+Inf\"}".len()];
        let mut of_series: Vec<(f64, f64)> = samples
            .iter()
            .filter(|(s, _)| {
                s.strip_prefix(&format!("{base}_bucket{{{own}le=\""))
                    .is_some()
            })
            .map(|(s, v)| {
                let le = s
                    .rsplit_once("le=\"")
                    .expect("le")
                    .1
                    .trim_end_matches("\"}");
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le is a number")
                };
                (bound, *v)
            })
            .collect();
        of_series.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            of_series.windows(2).all(|w| w[0].1 <= w[1].1),
            "{series}: not cumulative"
        );
        let own = own.trim_end_matches(',');
        let count = if own.is_empty() {
            format!("{base}_count")
        } else {
            format!("{base}_count{{{own}}}")
        };
        assert_eq!(samples.get(&count), Some(v), "{series} against {count}");
    }
    samples
}

#[test]
fn prometheus_file_passes_the_format_check() {
    let env = Env::new();
    let original = mixed_data(6 * CHUNK + 5, 403);
    env.write("x.bin", &original);
    let out = env.run(&[
        "process",
        "x.bin",
        "--chunk-size",
        CHUNK_ARG,
        "--prometheus-file",
        "m.prom",
        "--metrics-interval",
        "10ms",
    ]);
    code(&out, 0);
    let text = fs::read_to_string(env.path("m.prom")).expect("textfile");
    let m = parse_prometheus(&text);
    assert_eq!(m["syncpipe_files_total"], 1.0);
    assert_eq!(m["syncpipe_chunks_total"], 7.0);
    assert_eq!(m["syncpipe_input_bytes_total"], original.len() as f64);
    assert_eq!(
        m["syncpipe_output_bytes_total"],
        env.len("x.bin.spipe") as f64
    );
    assert_eq!(m["syncpipe_tuning_chunk_size_bytes"], CHUNK as f64);
    assert_eq!(m["syncpipe_chunk_cpu_seconds_count"], 7.0);
    assert_eq!(m["syncpipe_chunk_cpu_seconds_bucket{le=\"+Inf\"}"], 7.0);
    assert!(m["syncpipe_chunk_cpu_seconds_sum"] > 0.0);
    assert!(m.contains_key("syncpipe_stage_cpu_seconds_bucket{stage=\"zstd\",le=\"0.001\"}"));
    assert!(m.contains_key("syncpipe_permit_wait_seconds_sum{permit=\"io\"}"));
    assert!(m.contains_key("syncpipe_queue_max_depth_chunks{queue=\"jobs\"}"));
    assert_eq!(m["syncpipe_last_exit_code"], 0.0);
    assert!(m["syncpipe_last_success_timestamp_seconds"] > 1e9);
    assert!(
        !m.keys().any(|k| k.contains("shard=")),
        "no --shard, no label"
    );
    assert!(text.contains("syncpipe_build_info{version=\"") && text.contains("backend=\"sync\""));
    // Written atomically: no temp file is left beside it.
    assert_eq!(env.listing(), ["m.prom", "x.bin", "x.bin.spipe"]);
}

#[test]
fn prometheus_file_is_rewritten_while_the_run_goes_on() {
    watchdog(60, || {
        let env = Env::new();
        let mut child = env
            .command(&[
                "process",
                "-",
                "-o",
                "s.spipe",
                "--chunk-size",
                CHUNK_ARG,
                "--prometheus-file",
                "m.prom",
                "--metrics-interval",
                "10ms",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        // Three full chunks: the reader sends two and holds the third until
        // it knows whether more comes, so two are written while stdin stays
        // open. Wait (under the watchdog) until a tick has written them:
        // counters and histograms both, although the writer is idle by then
        // (it publishes its histograms when it waits).
        stdin.write_all(&mixed_data(3 * CHUNK, 407)).expect("feed");
        let mid = loop {
            if let Ok(text) = fs::read_to_string(env.path("m.prom")) {
                let m = parse_prometheus(&text);
                if m.get("syncpipe_chunks_total") == Some(&2.0)
                    && m.get("syncpipe_chunk_cpu_seconds_count") == Some(&2.0)
                {
                    break m;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(
            mid["syncpipe_files_total"], 0.0,
            "the run is still going on"
        );
        assert_eq!(
            mid["syncpipe_queue_wait_seconds_count{queue=\"results\"}"],
            2.0
        );
        drop(stdin);
        assert!(child.wait().expect("wait").success());
        let end = parse_prometheus(&fs::read_to_string(env.path("m.prom")).expect("textfile"));
        assert_eq!(end["syncpipe_files_total"], 1.0);
        assert_eq!(end["syncpipe_chunks_total"], 3.0);
        assert_eq!(env.listing(), ["m.prom", "s.spipe"]);
    });
}

#[test]
fn unwritable_prometheus_file_fails_before_any_work() {
    let env = Env::new();
    env.write("x.bin", b"data");
    let out = env.run(&[
        "process",
        "x.bin",
        "--prometheus-file",
        "no/such/dir/m.prom",
    ]);
    code(&out, 1);
    assert!(
        stderr(&out).contains("--prometheus-file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.listing(), ["x.bin"], "no output was written");
}

#[test]
fn a_failed_run_keeps_the_last_success_time_in_the_textfile() {
    let env = Env::new();
    env.write("x.bin", &mixed_data(3 * CHUNK, 410));
    let prom =
        |env: &Env| parse_prometheus(&fs::read_to_string(env.path("m.prom")).expect("textfile"));
    let flags = [
        "--prometheus-file",
        "m.prom",
        "--metrics-label",
        "job=nightly",
    ];
    let run = |args: &[&str]| env.run(&[args, &flags[..]].concat());
    code(&run(&["process", "x.bin", "-o", "a.spipe"]), 0);
    let first = prom(&env);
    let success = first["syncpipe_last_success_timestamp_seconds{job=\"nightly\"}"];
    assert!(success > 1e9, "a unix time: {success}");
    assert_eq!(first["syncpipe_last_exit_code{job=\"nightly\"}"], 0.0);
    // A failure (a missing input): its own code, the success before it kept.
    code(&run(&["process", "missing.bin", "-o", "b.spipe"]), 1);
    let failed = prom(&env);
    assert_eq!(failed["syncpipe_last_exit_code{job=\"nightly\"}"], 1.0);
    assert_eq!(
        failed["syncpipe_last_success_timestamp_seconds{job=\"nightly\"}"],
        success
    );
    assert_eq!(failed["syncpipe_files_failed_total{job=\"nightly\"}"], 1.0);
    // A usage error after the start (the output exists): the same.
    code(&run(&["process", "x.bin", "-o", "a.spipe"]), 2);
    let refused = prom(&env);
    assert_eq!(refused["syncpipe_last_exit_code{job=\"nightly\"}"], 2.0);
    assert_eq!(
        refused["syncpipe_last_success_timestamp_seconds{job=\"nightly\"}"],
        success
    );
    // The next success moves it on.
    code(&run(&["process", "x.bin", "-o", "a.spipe", "-f"]), 0);
    let again = prom(&env);
    assert_eq!(again["syncpipe_last_exit_code{job=\"nightly\"}"], 0.0);
    assert!(again["syncpipe_last_success_timestamp_seconds{job=\"nightly\"}"] >= success);
}

#[test]
fn metrics_labels_and_linger_are_refused_where_they_cannot_apply() {
    let env = Env::new();
    env.write("x.bin", b"data");
    for (args, says) in [
        (
            &["process", "x.bin", "--metrics-label", "job=x"][..],
            "--prometheus-file or --metrics-listen",
        ),
        (
            &["process", "x.bin", "--metrics-linger", "1s"][..],
            "give --metrics-listen",
        ),
        (
            &[
                "process",
                "x.bin",
                "--prometheus-file",
                "m.prom",
                "--metrics-label",
                "job=a",
                "--metrics-label",
                "job=b",
            ][..],
            "given twice",
        ),
        (
            &[
                "process",
                "x.bin",
                "--prometheus-file",
                "m.prom",
                "--metrics-label",
                "shard=1",
            ][..],
            "sets itself",
        ),
        (
            &[
                "process",
                "x.bin",
                "--prometheus-file",
                "m.prom",
                "--metrics-label",
                "1x=a",
            ][..],
            "not a Prometheus label name",
        ),
        (
            &[
                "process",
                "x.bin",
                "--prometheus-file",
                "m.prom",
                "--metrics-label",
                "job",
            ][..],
            "KEY=VALUE",
        ),
        (
            &[
                "process",
                "x.bin",
                "--metrics-listen",
                "127.0.0.1:0",
                "--metrics-linger",
                "2h",
            ][..],
            "longer than 1h",
        ),
        (
            &["bench", "x.bin", "--metrics-label", "job=x"][..],
            "not on bench",
        ),
    ] {
        let out = env.run(args);
        code(&out, 2);
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(env.listing(), ["x.bin"], "nothing ran, no textfile");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to /metrics");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    out
}

#[test]
fn metrics_listen_serves_the_run_and_stops_with_it() {
    watchdog(60, || {
        let env = Env::new();
        let mut child = env
            .command(&[
                "process",
                "-",
                "-o",
                "s.spipe",
                "--chunk-size",
                CHUNK_ARG,
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("the address line");
        let addr = line
            .trim()
            .strip_prefix("syncpipe: serving metrics at http://")
            .and_then(|l| l.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        // The run is going on (stdin is still open): scrape it.
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&mixed_data(4 * CHUNK, 404)).expect("feed");
        let resp = http_get(&addr, "/metrics");
        let (head, body) = resp.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        let m = parse_prometheus(body);
        assert_eq!(m["syncpipe_files_total"], 0.0, "the run is not finished");
        assert!(http_get(&addr, "/other").starts_with("HTTP/1.1 404"));
        drop(stdin);
        let status = child.wait().expect("wait");
        let mut rest = String::new();
        err.read_to_string(&mut rest).expect("stderr");
        assert!(status.success(), "{rest}");
        // Shut down with the run: the port is free again.
        TcpListener::bind(&addr).expect("the port was released");
    });
}

/// The address a `--metrics-listen 127.0.0.1:0` child prints first.
fn listen_address(err: &mut impl BufRead) -> String {
    let mut line = String::new();
    err.read_line(&mut line).expect("the address line");
    line.trim()
        .strip_prefix("syncpipe: serving metrics at http://")
        .and_then(|l| l.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string()
}

/// Reads stderr lines up to the one that says the linger began; returns
/// the lines before it.
fn until_linger(err: &mut impl BufRead) -> String {
    let mut before = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).expect("stderr");
        assert!(n > 0, "stderr ended before the linger began:\n{before}");
        if line.starts_with("syncpipe: serving the final metrics at http://") {
            return before;
        }
        before.push_str(&line);
    }
}

fn send(child: &std::process::Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {signal}");
}

/// Waits for the child's exit; kills it and fails after 15 s (a watchdog:
/// a linger that a signal should end would otherwise last its minutes).
fn exit_of(child: &mut std::process::Child) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if started.elapsed() > std::time::Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the command did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn metrics_linger_serves_the_final_state_and_a_signal_ends_it_with_the_runs_code() {
    watchdog(60, || {
        let env = Env::new();
        fs::create_dir(env.path("in")).expect("mkdir");
        // Streamed files, 17 and 18 chunks (the small-file path, under
        // 256 KiB, counts no chunks).
        for i in 0..2 {
            env.write(
                &format!("in/f{i}.bin"),
                &mixed_data(17 * CHUNK + i, 411 + i as u64),
            );
        }
        // A link loop: nobody can open it (a walk passes over a dangling link).
        std::os::unix::fs::symlink("loop", env.path("in/loop")).expect("symlink");
        for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
            let _ = fs::remove_dir_all(env.path("out"));
            let mut child = env
                .command(&[
                    "process",
                    "-r",
                    "in",
                    "--output-dir",
                    "out",
                    "--chunk-size",
                    CHUNK_ARG,
                    "--shard",
                    "0/1",
                    "--metrics-label",
                    "job=nightly",
                    "--metrics-listen",
                    "127.0.0.1:0",
                    "--metrics-linger",
                    "10m",
                ])
                .spawn()
                .expect("spawn");
            let mut err = BufReader::new(child.stderr.take().expect("stderr"));
            let addr = listen_address(&mut err);
            let before = until_linger(&mut err);
            assert!(before.contains("in/loop"), "{before}");
            // The work is over: the scrape sees its end, exit code included.
            let resp = http_get(&addr, "/metrics");
            let (head, body) = resp.split_once("\r\n\r\n").expect("head and body");
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
            let m = parse_prometheus(body);
            let l = "{job=\"nightly\",shard=\"0/1\"}";
            assert_eq!(m[&format!("syncpipe_files_total{l}")], 2.0, "{body}");
            assert_eq!(m[&format!("syncpipe_files_failed_total{l}")], 1.0);
            assert_eq!(m[&format!("syncpipe_chunks_total{l}")], 35.0);
            assert_eq!(m[&format!("syncpipe_last_exit_code{l}")], 5.0);
            assert!(!body.contains("syncpipe_last_success_timestamp_seconds{"));
            // A signal ends the linger with the run's code, not 130/143.
            send(&child, signal);
            let status = exit_of(&mut child);
            let mut rest = String::new();
            err.read_to_string(&mut rest).expect("stderr");
            assert_eq!(status.code(), Some(5), "{name}: {rest}");
            TcpListener::bind(&addr).expect("the port was released");
        }
    });
}

#[test]
fn metrics_linger_ends_by_itself() {
    watchdog(60, || {
        let env = Env::new();
        env.write("x.bin", &mixed_data(2 * CHUNK, 412));
        let mut child = env
            .command(&[
                "process",
                "x.bin",
                "--chunk-size",
                CHUNK_ARG,
                "--metrics-listen",
                "127.0.0.1:0",
                "--metrics-linger",
                "300ms",
            ])
            .spawn()
            .expect("spawn");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let addr = listen_address(&mut err);
        until_linger(&mut err);
        let status = exit_of(&mut child);
        assert_eq!(status.code(), Some(0));
        TcpListener::bind(&addr).expect("the port was released");
        assert!(env.path("x.bin.spipe").exists());
    });
}

#[test]
fn metrics_listen_port_in_use_fails_at_start_with_exit_1() {
    let env = Env::new();
    env.write("x.bin", b"data");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = env.run(&["process", "x.bin", "--metrics-listen", &addr]);
    code(&out, 1);
    let msg = stderr(&out);
    assert!(
        msg.contains("--metrics-listen") && msg.contains(&addr),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("in use"), "{msg}");
    assert_eq!(env.listing(), ["x.bin"], "nothing was processed");
    // A bad address is a usage error.
    code(
        &env.run(&["process", "x.bin", "--metrics-listen", "localhost"]),
        2,
    );
}

// ---------------------------------------------------------------------------
// The dashboard
// ---------------------------------------------------------------------------

/// Runs `syncpipe ARGS` under `script`, which gives it a pseudo-terminal as
/// stdin, stdout and stderr; returns what the terminal showed.
fn in_pty(dir: &Path, args: &str) -> (Option<i32>, String) {
    let out = Command::new("script")
        .args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::null())
        // A terminal that takes cursor movement (a dumb one gets plain lines).
        .env("TERM", "xterm")
        .output()
        .expect("script(1) from util-linux runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn dashboard_waits_for_the_first_interval_on_a_terminal() {
    let env = Env::new();
    env.write("x.bin", &mixed_data(5 * CHUNK, 405));
    // Over long before its first interval: no frame, only the summary
    // (frames of longer runs: cli/tests/dashboard.rs).
    let (code, screen) = in_pty(
        env.dir.path(),
        &format!("process x.bin --chunk-size {CHUNK_ARG} --metrics-interval 60s"),
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("x.bin: processed"), "{screen}");
    assert!(
        !screen.contains("throughput") && !screen.contains('\x1b'),
        "{screen:?}"
    );

    // -q and --progress never silence it even on a terminal.
    for flags in ["-q", "--progress never"] {
        let (code, screen) = in_pty(
            env.dir.path(),
            &format!("process x.bin -o q.spipe -f {flags}"),
        );
        assert_eq!(code, Some(0));
        assert!(!screen.contains("throughput"), "{flags}: {screen}");
    }
}

#[test]
fn dashboard_is_silent_off_a_terminal() {
    let env = Env::new();
    env.write("x.bin", &mixed_data(5 * CHUNK, 406));
    // stderr is a pipe here: no frame, and no summary without -v (as zstd).
    let out = env.run(&[
        "process",
        "x.bin",
        "--chunk-size",
        CHUNK_ARG,
        "--metrics-interval",
        "10ms",
    ]);
    code(&out, 0);
    assert_eq!(stderr(&out), "");
    // -v: only the final summary, with the percentiles, and no frame.
    let out = env.run(&["process", "x.bin", "-o", "v.spipe", "-v"]);
    code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("processed") && err.contains("cpu time p50/p95/p99 ms: chunk "),
        "{err}"
    );
    assert!(
        !err.contains("throughput") && !err.contains('\x1b'),
        "{err}"
    );
    // --progress always also into a pipe, but as plain lines every 5 s
    // (cli/tests/dashboard.rs): none for a short run, no escape ever, and
    // the summary only with -v, as without it; -q still wins.
    let out = env.run(&["process", "x.bin", "-o", "a.spipe", "--progress", "always"]);
    code(&out, 0);
    assert_eq!(stderr(&out), "");
    let out = env.run(&[
        "process",
        "x.bin",
        "-o",
        "a.spipe",
        "-f",
        "--progress",
        "always",
        "-v",
    ]);
    code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("x.bin: processed") && !err.contains('\x1b') && !err.contains("throughput"),
        "{err}"
    );
    let out = env.run(&[
        "process",
        "x.bin",
        "-o",
        "b.spipe",
        "--progress",
        "always",
        "-q",
    ]);
    code(&out, 0);
    assert_eq!(stderr(&out), "");
}

#[test]
fn metrics_interval_is_validated() {
    let env = Env::new();
    env.write("x.bin", b"data");
    for bad in ["0", "5ms", "2m", "abc", "61s"] {
        let out = env.run(&["process", "x.bin", "--metrics-interval", bad]);
        code(&out, 2);
        assert!(
            stderr(&out).contains("--metrics-interval"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    let out = env.run(&[
        "process",
        "x.bin",
        "--metrics-interval",
        "1s",
        "--progress",
        "sometimes",
    ]);
    code(&out, 2);
    assert_eq!(env.listing(), ["x.bin"]);
}

// ---------------------------------------------------------------------------
// completions and man
// ---------------------------------------------------------------------------

#[test]
fn completions_and_man_page_are_generated() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "_syncpipe()"),
        ("zsh", "#compdef syncpipe"),
        ("fish", "complete -c syncpipe"),
    ] {
        let out = env.run(&["completions", shell]);
        code(&out, 0);
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(text.contains(marker), "{shell}: no {marker:?}");
        for flag in ["--metrics-interval", "--json", "--chunk-size"] {
            assert!(
                text.contains(flag.trim_start_matches('-')),
                "{shell}: no {flag}"
            );
        }
    }
    // bash accepts its script.
    let out = env.run(&["completions", "bash"]);
    fs::write(env.path("c.bash"), &out.stdout).expect("write");
    let check = Command::new("bash")
        .args(["-n", "c.bash"])
        .current_dir(env.dir.path())
        .status()
        .expect("bash");
    assert!(check.success());
    code(&env.run(&["completions", "tcsh"]), 2);

    let out = env.run(&["man"]);
    code(&out, 0);
    let page = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        page.starts_with(".ie") || page.contains(".TH syncpipe 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains(".TH syncpipe 1"));
    for word in ["process", "restore", "completions", "metrics\\-listen"] {
        assert!(page.contains(word), "man page lacks {word}");
    }
}

// ---------------------------------------------------------------------------
// Report paths that are not regular files
// ---------------------------------------------------------------------------

/// What a path holds, to compare before and after a run: its kind, a
/// symlink's target, and the bytes of a regular file (or of a symlink's
/// existing target).
fn state_of(path: &Path) -> (&'static str, Option<PathBuf>, Option<Vec<u8>>) {
    let link = fs::read_link(path).ok();
    let bytes = match common::kind_at(path) {
        "file" | "symlink" => fs::read(path).ok(),
        _ => None,
    };
    (common::kind_at(path), link, bytes)
}

#[test]
fn prometheus_file_refuses_a_fifo_a_symlink_or_a_device_at_its_path() {
    watchdog(120, || {
        let env = Env::new();
        env.write("x.bin", &mixed_data(3 * CHUNK, 501));
        env.write("target.txt", b"not metrics");
        common::make_fifo(&env.path("fifo"));
        std::os::unix::fs::symlink("target.txt", env.path("link")).expect("symlink");
        std::os::unix::fs::symlink("nowhere", env.path("dangling")).expect("symlink");
        let mut paths = vec!["fifo", "link", "dangling"];
        // Run as root, a rename over a device node replaced it by a
        // regular file (it did so to the real /dev/full).
        if common::make_null_device(&env.path("dev")) {
            paths.push("dev");
        }
        for p in paths {
            let before = state_of(&env.path(p));
            let out = env.run(&["process", "x.bin", "-o", "y.spipe", "--prometheus-file", p]);
            code(&out, 2);
            let msg = stderr(&out);
            assert!(
                msg.contains("--prometheus-file") && msg.contains("not a regular file"),
                "{p}: {msg}"
            );
            assert_eq!(state_of(&env.path(p)), before, "{p} is left as it was");
            assert!(
                !env.path("y.spipe").exists(),
                "{p}: refused before any work"
            );
        }
        assert_eq!(common::kind_at(&env.path("nowhere")), "absent");
        assert_eq!(
            fs::read(env.path("target.txt")).expect("read"),
            b"not metrics"
        );
        // A regular file is still replaced, as ever.
        env.write("m.prom", b"old\n");
        code(
            &env.run(&[
                "process",
                "x.bin",
                "-o",
                "y.spipe",
                "--prometheus-file",
                "m.prom",
            ]),
            0,
        );
        let m = parse_prometheus(&fs::read_to_string(env.path("m.prom")).expect("textfile"));
        assert_eq!(m["syncpipe_files_total"], 1.0);
    });
}

#[test]
fn prometheus_file_replaced_by_a_fifo_mid_run_is_left_alone_and_reported() {
    watchdog(60, || {
        let env = Env::new();
        let mut child = env
            .command(&[
                "process",
                "-",
                "-o",
                "s.spipe",
                "--chunk-size",
                CHUNK_ARG,
                "--prometheus-file",
                "m.prom",
                "--metrics-interval",
                "10ms",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&mixed_data(3 * CHUNK, 502)).expect("feed");
        // The textfile is written at start; the run then waits for stdin.
        while !env.path("m.prom").exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        fs::remove_file(env.path("m.prom")).expect("rm");
        common::make_fifo(&env.path("m.prom"));
        stdin.write_all(&mixed_data(CHUNK, 503)).expect("feed");
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        code(&out, 1);
        let msg = stderr(&out);
        assert!(
            msg.contains("--prometheus-file") && msg.contains("a FIFO"),
            "{msg}"
        );
        assert_eq!(common::kind_at(&env.path("m.prom")), "fifo");
        // The refused temp files were removed.
        assert_eq!(env.listing(), ["m.prom", "s.spipe"]);
    });
}

// ---------------------------------------------------------------------------
// A slow --metrics-listen client
// ---------------------------------------------------------------------------

#[test]
fn a_slow_metrics_client_delays_neither_another_scrape_nor_the_exit() {
    watchdog(60, || {
        let env = Env::new();
        let mut child = env
            .command(&[
                "process",
                "-",
                "-o",
                "s.spipe",
                "--chunk-size",
                CHUNK_ARG,
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("the address line");
        let addr = line
            .trim()
            .strip_prefix("syncpipe: serving metrics at http://")
            .and_then(|l| l.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&mixed_data(3 * CHUNK, 504)).expect("feed");
        // A client that sends its request a byte at a time, every 500 ms
        // (each byte well within any per-read timeout): the whole request
        // would take over a minute, until the server closes on it.
        let slow = TcpStream::connect(&addr).expect("connect");
        let trickle = std::thread::spawn(move || {
            let mut slow = slow;
            let request = format!(
                "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
                "a".repeat(100)
            );
            for b in request.bytes() {
                if slow.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        });
        // Give the server the time to take the slow connection first.
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Another scrape is answered meanwhile: the 10 s read timeout is a
        // watchdog (served after the slow client, it would wait a minute).
        let mut fast = TcpStream::connect(&addr).expect("connect");
        fast.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        write!(fast, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
        let mut resp = String::new();
        fast.read_to_string(&mut resp)
            .expect("an answer while the slow client is connected");
        assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
        assert!(
            parse_prometheus(resp.split_once("\r\n\r\n").expect("body").1)
                .contains_key("syncpipe_files_total")
        );
        // The end of the input: the run ends, and so must the command,
        // whatever the slow client does. 15 s is a watchdog, not a timing.
        drop(stdin);
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if started.elapsed() > std::time::Duration::from_secs(15) {
                let _ = child.kill();
                panic!("the command did not exit while a slow client was connected");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut rest = String::new();
        err.read_to_string(&mut rest).expect("stderr");
        assert!(status.success(), "{rest}");
        TcpListener::bind(&addr).expect("the port was released");
        trickle.join().expect("the trickling client");
    });
}

// ---------------------------------------------------------------------------
// The governor at rest in the final reports of failed runs
// ---------------------------------------------------------------------------

/// The summary's gauges and the Prometheus file show every permit back, no
/// worker busy and no buffer held; `cpu` permits in all.
#[track_caller]
fn at_rest(summary: &Value, prom: &Path, cpu: u64) {
    let g = &summary["gauges"];
    assert_eq!(g["cpu_permits"], cpu, "{g}");
    assert_eq!(g["cpu_permits_available"], cpu, "{g}");
    assert!(g["io_permits"].as_u64().expect("io permits") > 0, "{g}");
    assert_eq!(g["io_permits_available"], g["io_permits"], "{g}");
    assert_eq!(g["active_workers"], 0, "{g}");
    assert_eq!(g["buffer_bytes"], 0, "{g}");
    let m = parse_prometheus(&fs::read_to_string(prom).expect("textfile"));
    assert_eq!(m["syncpipe_cpu_permits"], cpu as f64);
    assert_eq!(m["syncpipe_cpu_available_permits"], cpu as f64);
    assert_eq!(m["syncpipe_io_available_permits"], m["syncpipe_io_permits"]);
    assert_eq!(m["syncpipe_active_workers"], 0.0);
    assert_eq!(m["syncpipe_buffer_bytes"], 0.0);
    // The run's own code; no run into this textfile ever succeeded.
    let exit_code = summary["exit_code"].as_f64().expect("exit code");
    assert_eq!(m["syncpipe_last_exit_code"], exit_code);
    assert_eq!(m["syncpipe_last_success_timestamp_seconds"], 0.0);
}

#[test]
fn failed_single_file_runs_report_the_governor_at_rest() {
    watchdog(120, || {
        let env = Env::new();
        env.write("x.bin", &mixed_data(64 * CHUNK, 505));
        let out = env.run(&[
            "process",
            "x.bin",
            "-o",
            "c.spipe",
            "--chunk-size",
            CHUNK_ARG,
        ]);
        code(&out, 0);
        // A payload byte near the end: the restore runs, then fails.
        let mut bytes = fs::read(env.path("c.spipe")).expect("read");
        let at = bytes.len() * 7 / 8;
        bytes[at] ^= 0x55;
        env.write("bad.spipe", &bytes);
        let flags = [
            "--json",
            "--prometheus-file",
            "m.prom",
            "--metrics-interval",
            "10ms",
            "--cpu-tokens",
            "2",
            "-T",
            "2",
        ];
        let summary = |out: &Output| -> Value {
            let lines = json_lines(out);
            let s = lines.last().expect("a summary").clone();
            assert_eq!(s["message_type"], "summary");
            s
        };
        // restore FILE -o OUT
        let mut args = vec!["restore", "bad.spipe", "-o", "out.bin"];
        args.extend(flags);
        let out = env.run(&args);
        code(&out, 3);
        at_rest(&summary(&out), &env.path("m.prom"), 2);
        // restore - -o OUT (the container on stdin)
        let mut args = vec!["restore", "-", "-o", "out.bin"];
        args.extend(flags);
        let out = env
            .command(&args)
            .stdin(fs::File::open(env.path("bad.spipe")).expect("open"))
            .output()
            .expect("run");
        code(&out, 3);
        at_rest(&summary(&out), &env.path("m.prom"), 2);
        // verify FILE
        let mut args = vec!["verify", "bad.spipe"];
        args.extend(flags);
        let out = env.run(&args);
        code(&out, 3);
        at_rest(&summary(&out), &env.path("m.prom"), 2);
        // process FILE -o OUT refused before the run (the output exists).
        let mut args = vec!["process", "x.bin", "-o", "c.spipe"];
        args.extend(flags);
        let out = env.run(&args);
        code(&out, 2);
        at_rest(&summary(&out), &env.path("m.prom"), 2);
        assert!(!env.path("out.bin").exists());
    });
}
