//! `syncpipe bench`: sweeps give one row per combination with the right
//! settings in the table, CSV and JSON; every row restores; the plot is an
//! SVG with one line per series; the data kinds compress in the expected
//! order; bad flags exit 2; a file input works; Ctrl-C exits 130 leaving
//! no temp file. Small inputs (a few MiB) keep each test short.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

fn bench(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("bench")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run syncpipe")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The CSV as one map per row (a small RFC 4180 reader: quoted fields
/// may hold commas).
fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let body = std::fs::read_to_string(path).expect("csv written");
    let split = |line: &str| -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    chars.next();
                    fields.last_mut().expect("a field").push('"');
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(String::new()),
                c => fields.last_mut().expect("a field").push(c),
            }
        }
        fields
    };
    let mut lines = body.lines();
    let header = split(lines.next().expect("header"));
    lines
        .map(|l| {
            let f = split(l);
            assert_eq!(f.len(), header.len(), "{l}");
            header.iter().cloned().zip(f).collect()
        })
        .collect()
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    text(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect()
}

fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn a_two_by_two_sweep_gives_four_restored_rows_in_table_csv_and_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("rows.csv");
    let args = [
        "--size",
        "2MiB",
        "--chunk-size",
        "64KiB,256KiB",
        "-s",
        "lz4,blake3;zstd:1,aes-256-gcm,sha256",
        "-T",
        "2",
        "--csv",
        csv.to_str().expect("utf-8 path"),
    ];
    let out = bench(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = read_csv(&csv);
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["chunk_size"].as_str(),
                r["stages"].as_str(),
                r["restored"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("65536", "lz4,blake3", "true"),
            ("65536", "zstd:1,aes-256-gcm,sha256", "true"),
            ("262144", "lz4,blake3", "true"),
            ("262144", "zstd:1,aes-256-gcm,sha256", "true"),
        ]
    );
    for r in &rows {
        assert_eq!(r["threads"], "2");
        assert_eq!(r["cpu_tokens"], "2");
        assert_eq!(r["original_bytes"], (2u64 << 20).to_string());
        assert!(r["mb_per_s"].parse::<f64>().expect("number") > 0.0);
        assert!(r["chunk_cpu_p99_ms"].parse::<f64>().expect("number") > 0.0);
    }
    // The table: a header and one line per row, every one restored.
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("chunk size") && lines[0].contains("MB/s"));
    assert!(lines[1..].iter().all(|l| l.trim_end().ends_with("ok")));
    assert!(lines[3].starts_with("256 KiB") && lines[3].contains("lz4,blake3"));
    assert!(leftovers(dir.path(), &["rows.csv"]).is_empty());

    // The same sweep as JSON lines: four rows, then the summary.
    let mut json_args = args[..8].to_vec();
    json_args.push("--json");
    let out = bench(dir.path(), &json_args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json_lines(&out.stdout);
    assert_eq!(v.len(), 5);
    for (i, row) in v[..4].iter().enumerate() {
        assert_eq!(row["message_type"], "bench_row");
        assert_eq!(row["backend"], "sync");
        assert_eq!(row["row"], i + 1);
        assert_eq!(row["rows"], 4);
        assert_eq!(row["restored"], true);
        assert_eq!(row["chunk_size"], if i < 2 { 65536 } else { 262144 });
        assert!(row["latency_ns"]["chunk_cpu"]["p50"].as_u64() > Some(0));
    }
    assert_eq!(v[1]["stages"], "zstd:1,aes-256-gcm,sha256");
    assert_eq!(v[4]["message_type"], "summary");
    assert_eq!(v[4]["command"], "bench");
    assert_eq!(v[4]["rows"], 4);
    assert_eq!(v[4]["rows_failed"], 0);
    assert_eq!(v[4]["exit_code"], 0);
    // With --json the table goes to stderr.
    assert!(text(&out.stderr).contains("restored"));
}

#[test]
fn the_plot_is_an_svg_with_one_line_per_series() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = dir.path().join("sweep.svg");
    let polylines = |args: &[&str]| -> (String, usize) {
        let mut a = args.to_vec();
        a.extend(["--plot", svg.to_str().expect("utf-8 path"), "-q"]);
        let out = bench(dir.path(), &a);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let body = std::fs::read_to_string(&svg).expect("svg written");
        assert!(body.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(body.trim_end().ends_with("</svg>"));
        assert_eq!(body.matches("<svg").count(), 1);
        let n = body.matches("<polyline").count();
        (body, n)
    };
    // x = chunk size (3 points per line), one line per CPU-token value.
    let (body, n) = polylines(&[
        "--size",
        "1MiB",
        "--chunk-size",
        "64KiB,128KiB,256KiB",
        "--cpu-tokens",
        "1,2",
        "-T",
        "2",
    ]);
    assert_eq!(n, 2, "{body}");
    for label in [
        ">64 KiB<",
        ">256 KiB<",
        ">chunk size<",
        "CPU tokens 1",
        "CPU tokens 2",
    ] {
        assert!(body.contains(label), "{label}");
    }
    for line in body.lines().filter(|l| l.starts_with("<polyline")) {
        let points = line.split("points=\"").nth(1).expect("points");
        assert_eq!(points.split_whitespace().count(), 3, "{line}");
    }
    // One swept axis: one line.
    let (_, n) = polylines(&["--size", "1MiB", "--channel-depth", "1,4"]);
    assert_eq!(n, 1);
}

#[test]
fn data_kinds_compress_in_the_expected_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ratio = HashMap::new();
    for kind in ["zeros", "text", "binary", "random"] {
        let csv = dir.path().join(format!("{kind}.csv"));
        let out = bench(
            dir.path(),
            &[
                "--data",
                kind,
                "--size",
                "4MiB",
                "-q",
                "--csv",
                csv.to_str().expect("utf-8 path"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let rows = read_csv(&csv);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["restored"], "true");
        let r: f64 = rows[0]["ratio"].parse().expect("ratio");
        ratio.insert(kind, r);
    }
    assert!(ratio["zeros"] > ratio["text"], "{ratio:?}");
    assert!(ratio["text"] > ratio["binary"], "{ratio:?}");
    assert!(ratio["binary"] > 1.5, "{ratio:?}");
    // Random data is stored raw: the container only adds its framing.
    assert!((ratio["random"] - 1.0).abs() < 0.01, "{ratio:?}");
}

#[test]
fn a_file_input_is_measured_as_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("input.txt");
    let data: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("line {} of the input\n", i % 1000).into_bytes())
        .collect();
    std::fs::write(&input, &data).expect("write input");
    let out = bench(
        dir.path(),
        &[
            "--json",
            "-v",
            "-s",
            "gzip:6",
            input.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json_lines(&out.stdout);
    assert_eq!(v[0]["original_bytes"], data.len());
    // The table (on stderr with --json) shows no setting column for a
    // one-row run; -v names every setting of the row.
    let err = text(&out.stderr);
    assert!(err.contains("syncpipe: row 1: chunk_size 1 MiB"), "{err}");
    assert!(err.contains("stages gzip:6"), "{err}");
    assert_eq!(v[0]["restored"], true);
    assert_eq!(v[0]["stages"], "gzip:6");
    assert_eq!(v[0]["input"], input.to_str().expect("utf-8 path"));
    // The input stays; nothing else is left.
    assert_eq!(std::fs::read(&input).expect("input kept"), data);
    assert!(leftovers(dir.path(), &["input.txt"]).is_empty());
}

#[test]
fn bad_flags_exit_2_naming_what_is_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").expect("write");
    let f = file.to_str().expect("utf-8 path");
    let d = dir.path().to_str().expect("utf-8 path");
    let cases: &[(&[&str], &str)] = &[
        (&["--data", "words"], "text, binary, random, zeros"),
        (&["--size", "0"], "outside"),
        (&["--chunk-size", "64KiB,huge"], "size"),
        (&["--cpu-tokens", "1,x"], "invalid"),
        (&["-s", "zstd:99"], "zstd"),
        (&["-s", "lz4;rot13"], "known stages"),
        (&["--runs", "0"], "runs"),
        (&[f, "--data", "text"], "cannot be used with"),
        (&[d], "regular file"),
        (&["--prometheus-file", "x.prom"], "not on bench"),
        (&["--progress", "always"], "not of bench"),
        (&["--metrics-interval", "1s"], "bench reports per row"),
        // 4 × 4 × 4 × 5 = 320 rows.
        (
            &[
                "--chunk-size",
                "64KiB,128KiB,256KiB,512KiB",
                "--cpu-tokens",
                "1,2,3,4",
                "--channel-depth",
                "1,2,4,8",
                "--io-tokens",
                "1,2,4,8,12",
            ],
            "320 rows, more than the maximum of 256",
        ),
    ];
    for (args, says) in cases {
        let mut a = vec!["--size", "64KiB"];
        if args.contains(&"--size") || args.contains(&f) || args.contains(&d) {
            a.clear();
        }
        a.extend_from_slice(args);
        let out = bench(dir.path(), &a);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(leftovers(dir.path(), &["f"]).is_empty());
}

#[test]
fn with_json_an_error_still_ends_with_the_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bench(dir.path(), &["--json", "--size", "64KiB", "-s", "zstd:99"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_lines(&out.stdout);
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[0]["message_type"], "error");
    assert_eq!(v[0]["error"]["kind"], "usage");
    assert_eq!(v[1]["message_type"], "summary");
    assert_eq!(v[1]["command"], "bench");
    assert_eq!(v[1]["exit_code"], 2);
    assert_eq!(v[1]["rows"], 0);
}

#[test]
fn sigint_exits_130_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Slow on purpose (brotli at a high level, several runs per row) so
    // the signal arrives in the middle of a row.
    let mut child = Command::new(BIN)
        .args(["bench", "--dir"])
        .arg(dir.path())
        .args([
            "--size", "32MiB", "-s", "brotli:9", "--runs", "5", "-T", "1", "-q",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start syncpipe");
    // The container placeholder appears once the input is written and
    // hashed: the sweep has begun.
    let start = Instant::now();
    while !leftovers(dir.path(), &[])
        .iter()
        .any(|n| n.starts_with(".bench-container"))
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("syncpipe ended early: {status}");
        }
        // A watchdog, not a timing claim.
        assert!(start.elapsed() < Duration::from_secs(60), "never started");
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(100));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let sent = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        if sent.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("syncpipe did not stop within 60 s of SIGINT");
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(130));
    assert!(
        leftovers(dir.path(), &[]).is_empty(),
        "{:?}",
        leftovers(dir.path(), &[])
    );
}

#[test]
fn csv_and_plot_refuse_a_fifo_a_symlink_or_a_device_at_their_path() {
    common::watchdog(60, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("target.txt"), b"kept").expect("write");
        common::make_fifo(&d.join("fifo"));
        std::os::unix::fs::symlink("target.txt", d.join("link")).expect("symlink");
        std::os::unix::fs::symlink("nowhere", d.join("dangling")).expect("symlink");
        let mut names = vec!["fifo", "link", "dangling"];
        if common::make_null_device(&d.join("dev")) {
            names.push("dev");
        }
        let state = |p: &Path| {
            (
                common::kind_at(p),
                std::fs::read_link(p).ok(),
                std::fs::read(d.join("target.txt")).ok(),
            )
        };
        for flag in ["--csv", "--plot"] {
            for name in &names {
                let p = d.join(name);
                let before = state(&p);
                let out = bench(
                    d,
                    &[
                        "--size",
                        "64KiB",
                        flag,
                        p.to_str().expect("utf-8 path"),
                        "-q",
                    ],
                );
                let err = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{flag} {name}: {err}");
                assert!(
                    err.contains(flag) && err.contains("not a regular file"),
                    "{flag} {name}: {err}"
                );
                assert_eq!(state(&p), before, "{flag} {name} is left as it was");
            }
        }
        assert_eq!(common::kind_at(&d.join("nowhere")), "absent");
        // Regular files are still replaced, and nothing else is left.
        std::fs::write(d.join("c.csv"), b"old").expect("write");
        std::fs::write(d.join("p.svg"), b"old").expect("write");
        let (csv, svg) = (d.join("c.csv"), d.join("p.svg"));
        let out = bench(
            d,
            &[
                "--size",
                "64KiB",
                "--csv",
                csv.to_str().expect("utf-8 path"),
                "--plot",
                svg.to_str().expect("utf-8 path"),
                "-q",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(read_csv(&csv).len(), 1);
        let body = std::fs::read_to_string(&svg).expect("svg");
        assert!(body.starts_with("<svg"), "{body}");
        let mut keep = vec!["target.txt", "link", "dangling", "c.csv", "p.svg"];
        keep.extend(&names);
        assert!(leftovers(d, &keep).is_empty(), "{:?}", leftovers(d, &keep));
    });
}
