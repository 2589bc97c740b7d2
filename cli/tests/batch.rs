//! Many files. Trees through the real binary (every scheduler,
//! with and without --batch-small), per-file failures and exit 5, paths
//! that must not escape --output-dir, --skip-existing, shards as
//! concurrent processes, a killed shard completed by a rerun, signals,
//! encryption in a batch; and the library's batch API (the small-file
//! path writes the streaming path's bytes; permits all come back).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common;
use syncpipe::batch::Policy;
use syncpipe::batch::{BatchJob, BatchOptions, Outcome};
use syncpipe::stages::parse_stages;
use syncpipe::Overwrite;
use syncpipe::{CancelToken, Pipeline};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

/// Runs the binary under a watchdog: a batch that deadlocks fails the test
/// after 180 s instead of hanging the suite.
fn run(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    common::watchdog(180, move || {
        Command::new(BIN)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("run syncpipe")
    })
}

#[track_caller]
fn code(out: &Output, expected: i32) {
    assert_eq!(
        out.status.code(),
        Some(expected),
        "exit code; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every regular file under `root`, relative, with its bytes.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                out.push((rel, fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// Relative names of the files under `root` (tolerant of files that
/// vanish while it looks: temp files of a run in progress).
fn names(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.insert(rel.to_path_buf());
            }
        }
    }
    out
}

/// A tree of `small` small files (0 B to ~20 KiB, in nested folders) and
/// `large` files of a few chunks.
fn make_tree(root: &Path, small: usize, large: usize) {
    for i in 0..small {
        let dir = root.join(format!("d{}/e{}", i % 7, i % 3));
        fs::create_dir_all(&dir).expect("mkdir");
        let len = (i * 37) % 20_000;
        fs::write(
            dir.join(format!("f{i}.txt")),
            common::mixed_data(len, i as u64),
        )
        .expect("write");
    }
    for i in 0..large {
        fs::write(
            root.join(format!("big{i}.bin")),
            common::mixed_data((3 << 20) + i * 4099, 1000 + i as u64),
        )
        .expect("write");
    }
}

#[test]
fn tree_round_trips_with_every_scheduler_and_batching() {
    common::watchdog(600, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_tree(&d.join("tree"), 2000, 3);
        let before = snapshot(&d.join("tree"));
        for (sched, small) in [
            ("simple", false),
            ("fair", false),
            ("simple", true),
            ("fair", true),
        ] {
            let (c, r) = (format!("c-{sched}-{small}"), format!("r-{sched}-{small}"));
            let mut args = vec![
                "process",
                "-r",
                "tree",
                "--output-dir",
                &c,
                "--scheduler",
                sched,
                "--chunk-size",
                "256KiB",
                "-s",
                "lz4,sha256",
                "-T",
                "2",
            ];
            if small {
                args.push("--batch-small");
            }
            code(&run(d, &args), 0);
            assert_eq!(names(&d.join(&c)).len(), 2003, "one container per file");
            code(&run(d, &["verify", "-r", &c, "-q"]), 0);
            code(
                &run(
                    d,
                    &[
                        "restore",
                        "-r",
                        &c,
                        "--output-dir",
                        &r,
                        "--scheduler",
                        sched,
                    ],
                ),
                0,
            );
            assert!(
                snapshot(&d.join(&r)) == before,
                "{sched} batch-small={small}: trees differ"
            );
        }
        assert!(snapshot(&d.join("tree")) == before, "inputs untouched");
    });
}

#[test]
fn one_bad_file_exits_5_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir(d.join("in")).expect("mkdir");
    for i in 0..20 {
        fs::write(
            d.join(format!("in/ok{i}.txt")),
            format!("file {i}\n").repeat(50),
        )
        .expect("w");
    }
    // Root reads a mode-000 file anyway, so as root the bad file is a
    // symbolic link loop, which nobody can open.
    let bad = if unsafe { libc::geteuid() } == 0 {
        symlink("loop", d.join("in/loop")).expect("symlink");
        "in/loop"
    } else {
        fs::write(d.join("in/secret.txt"), b"x").expect("w");
        fs::set_permissions(d.join("in/secret.txt"), fs::Permissions::from_mode(0o000))
            .expect("chmod");
        "in/secret.txt"
    };
    let out = run(d, &["process", "-r", "in", "--output-dir", "out"]);
    code(&out, 5);
    assert!(
        stderr(&out).contains(bad),
        "failure named: {}",
        stderr(&out)
    );
    assert_eq!(names(&d.join("out")).len(), 20, "the good files are done");
    // A directory without -r, and a file that does not exist.
    let out = run(
        d,
        &[
            "process",
            "in",
            "in/ok1.txt",
            "gone.txt",
            "--output-dir",
            "o2",
        ],
    );
    code(&out, 5);
    let err = stderr(&out);
    assert!(err.contains("in: is a directory"), "{err}");
    assert!(err.contains("gone.txt"), "{err}");
    assert!(d.join("o2/ok1.txt.spipe").exists());
    // All failed: the failures' own code (here: 1, I/O).
    code(&run(d, &["process", "gone.txt", "gone2.txt"]), 1);
}

#[test]
fn listed_paths_never_escape_the_output_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir_all(d.join("work/sub")).expect("mkdir");
    fs::write(d.join("outside.txt"), b"outside").expect("w");
    fs::write(d.join("work/sub/a.txt"), b"aaa").expect("w");
    fs::write(d.join("work/b.txt"), b"bbb").expect("w");
    let abs = d.join("outside.txt");
    let list = format!("sub/a.txt\0../outside.txt\0{}\0./b.txt\0", abs.display());
    fs::write(d.join("list"), list).expect("w");
    let w = d.join("work");
    let out = run(
        &w,
        &[
            "process",
            "--files-from",
            "../list",
            "--null",
            "--output-dir",
            "../out",
        ],
    );
    code(&out, 5);
    let err = stderr(&out);
    assert!(
        err.contains("../outside.txt") && err.contains("`..`"),
        "{err}"
    );
    assert!(err.contains("must be relative"), "{err}");
    let got = names(&d.join("out"));
    let want: BTreeSet<PathBuf> = ["sub/a.txt.spipe", "b.txt.spipe"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(got, want);
    assert!(!d.join("outside.txt.spipe").exists());
    // Newline-separated from stdin.
    let mut child = Command::new(BIN)
        .args(["process", "--files-from", "-", "--output-dir", "../out2"])
        .current_dir(&w)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"sub/a.txt\nb.txt\n").expect("write list");
    }
    let out = child.wait_with_output().expect("wait");
    code(&out, 0);
    assert_eq!(names(&d.join("out2")), want);
}

#[test]
fn skip_existing_makes_a_rerun_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_tree(&d.join("t"), 30, 0);
    code(&run(d, &["process", "-r", "t", "--output-dir", "o"]), 0);
    let first = snapshot(&d.join("o"));
    // Without it, every output exists: all fail with the usage code.
    code(&run(d, &["process", "-r", "t", "--output-dir", "o"]), 2);
    fs::remove_file(d.join("o/d0/e0/f0.txt.spipe")).expect("rm");
    let out = run(
        d,
        &[
            "process",
            "-r",
            "t",
            "--output-dir",
            "o",
            "--skip-existing",
            "-v",
        ],
    );
    code(&out, 0);
    assert!(stderr(&out).contains("29 skipped"), "{}", stderr(&out));
    let second = snapshot(&d.join("o"));
    assert_eq!(
        first.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        second.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    // Restore likewise; and outputs beside the inputs by default.
    code(
        &run(
            d,
            &["restore", "-r", "o", "--output-dir", "r", "--skip-existing"],
        ),
        0,
    );
    assert!(snapshot(&d.join("r")) == snapshot(&d.join("t")));
    code(&run(d, &["process", "-r", "t"]), 0);
    assert!(d.join("t/d0/e0/f0.txt.spipe").exists());
    // A second -r run beside the inputs does not take the containers as inputs.
    let out = run(d, &["process", "-r", "t", "--skip-existing", "-v"]);
    code(&out, 0);
    assert!(
        stderr(&out).contains("0 files processed, 30 skipped"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn shards_partition_the_set_and_a_killed_shard_reruns() {
    common::watchdog(300, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_tree(&d.join("t"), 300, 0);
        let n = 4;
        // Concurrent processes, one per shard, each into its own folder.
        let children: Vec<_> = (0..n)
            .map(|i| {
                Command::new(BIN)
                    .args([
                        "process",
                        "-r",
                        "t",
                        "--output-dir",
                        &format!("s{i}"),
                        "--shard",
                        &format!("{i}/{n}"),
                        "-T",
                        "1",
                    ])
                    .current_dir(d)
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for c in children {
            code(&c.wait_with_output().expect("wait"), 0);
        }
        let mut all = BTreeSet::new();
        let mut total = 0;
        for i in 0..n {
            let s = names(&d.join(format!("s{i}")));
            assert!(!s.is_empty(), "shard {i} got files");
            total += s.len();
            all.extend(s);
        }
        assert_eq!(total, 300, "no file twice");
        assert_eq!(all.len(), 300, "none missing");
        // Shards into one shared folder, shard 0 killed mid-run, then rerun
        // with --skip-existing: the set is complete and restores exactly.
        let start = |i: usize| {
            Command::new(BIN)
                .args([
                    "process",
                    "-r",
                    "t",
                    "--output-dir",
                    "all",
                    "--shard",
                    &format!("{i}/{n}"),
                    "-s",
                    "brotli:9",
                    "-T",
                    "1",
                ])
                .current_dir(d)
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn")
        };
        let mut victim = start(0);
        let t0 = Instant::now();
        while names(&d.join("all")).is_empty() && t0.elapsed() < Duration::from_secs(60) {
            thread::sleep(Duration::from_millis(5));
        }
        victim.kill().expect("kill -9");
        let _ = victim.wait();
        for i in 1..n {
            assert!(start(i).wait().expect("wait").success());
        }
        let out = run(
            d,
            &[
                "process",
                "-r",
                "t",
                "--output-dir",
                "all",
                "--shard",
                &format!("0/{n}"),
                "--skip-existing",
            ],
        );
        code(&out, 0);
        let containers: BTreeSet<PathBuf> = names(&d.join("all"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "spipe"))
            .collect();
        assert_eq!(containers.len(), 300);
        code(
            &run(d, &["restore", "-r", "all", "--output-dir", "back"]),
            0,
        );
        assert!(snapshot(&d.join("back")) == snapshot(&d.join("t")));
    });
}

#[test]
fn encrypted_batch_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_tree(&d.join("t"), 40, 1);
    fs::write(d.join("P"), b"correct horse battery staple\n").expect("w");
    let enc = [
        "-s",
        "zstd:3,aes-256-gcm,sha256",
        "--passphrase-file",
        "P",
        "--argon2",
        "m=64,t=1,p=1",
    ];
    let mut args = vec!["process", "-r", "t", "--output-dir", "c", "--batch-small"];
    args.extend(enc);
    code(&run(d, &args), 0);
    code(
        &run(d, &["verify", "-r", "c", "--passphrase-file", "P", "-q"]),
        0,
    );
    code(
        &run(
            d,
            &[
                "restore",
                "-r",
                "c",
                "--output-dir",
                "r",
                "--passphrase-file",
                "P",
            ],
        ),
        0,
    );
    assert!(snapshot(&d.join("r")) == snapshot(&d.join("t")));
    fs::write(d.join("W"), b"wrong\n").expect("w");
    code(
        &run(d, &["verify", "-r", "c", "--passphrase-file", "W", "-q"]),
        4,
    );
}

#[test]
fn sigint_stops_the_batch_and_leaves_no_partial_output() {
    common::watchdog(120, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs::create_dir(d.join("t")).expect("mkdir");
        for i in 0..6 {
            fs::write(
                d.join(format!("t/f{i}.bin")),
                common::mixed_data(4 << 20, i),
            )
            .expect("w");
        }
        let mut child = Command::new(BIN)
            .args([
                "process",
                "-r",
                "t",
                "--output-dir",
                "o",
                "-s",
                "brotli:9",
                "--chunk-size",
                "128KiB",
                "-T",
                "2",
                "-q",
            ])
            .current_dir(d)
            .spawn()
            .expect("spawn");
        thread::sleep(Duration::from_millis(700));
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let st = child.wait().expect("wait");
        assert_eq!(st.code(), Some(130));
        // Whatever exists is complete: no temp files, every container verifies.
        for name in names(&d.join("o")) {
            assert!(
                name.extension().is_some_and(|e| e == "spipe"),
                "left behind: {name:?}"
            );
        }
        if d.join("o").exists() {
            code(&run(d, &["verify", "-r", "o", "-q"]), 0);
        }
    });
}

// ---------------------------------------------------------------------------
// The library
// ---------------------------------------------------------------------------

fn jobs_for(dir: &Path, inputs: &[PathBuf], out: &str) -> Vec<BatchJob> {
    inputs
        .iter()
        .map(|p| BatchJob {
            input: p.clone(),
            output: Some(dir.join(out).join(format!(
                "{}.spipe",
                p.file_name().expect("name").to_string_lossy()
            ))),
            size: fs::metadata(p).expect("meta").len(),
        })
        .collect()
}

#[test]
fn small_file_path_writes_the_streaming_bytes() {
    common::watchdog(120, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let chunk = 64 << 10;
        let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 5];
        let inputs: Vec<PathBuf> = sizes
            .iter()
            .map(|&n| {
                let p = d.join(format!("in{n}"));
                fs::write(&p, common::mixed_data(n, n as u64)).expect("write");
                p
            })
            .collect();
        for spec in ["zstd:3,sha256", "lz4,blake3", "passthrough", "gzip:6"] {
            let pipeline = Pipeline::builder()
                .stages(parse_stages(spec).expect("stages"))
                .chunk_size(chunk)
                .threads(2)
                .build()
                .expect("build");
            for batch_small in [false, true] {
                let out = format!("b-{spec}-{batch_small}");
                let opts = BatchOptions {
                    batch_small,
                    ..BatchOptions::default()
                };
                let report = pipeline.process_batch(jobs_for(d, &inputs, &out), &opts);
                assert_eq!(report.done(), sizes.len(), "{spec}: {:?}", report.files);
                for p in &inputs {
                    let name = format!("{}.spipe", p.file_name().expect("n").to_string_lossy());
                    let streamed = d.join(format!("s-{spec}-{batch_small}-{name}"));
                    pipeline
                        .process_path(p, &streamed, Overwrite::Refuse)
                        .expect("stream");
                    let inline = fs::read(d.join(&out).join(&name)).expect("read");
                    assert!(
                        inline == fs::read(&streamed).expect("read"),
                        "{spec} {name}: bytes differ"
                    );
                }
                assert!(pipeline.governor().all_returned());
            }
        }
    });
}

#[test]
fn cancelled_batch_returns_every_permit_and_leaves_no_temp_file() {
    common::watchdog(120, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let inputs: Vec<PathBuf> = (0..40)
            .map(|i| {
                let p = d.join(format!("f{i}"));
                let n = if i % 5 == 0 { 2 << 20 } else { 30_000 };
                fs::write(&p, common::mixed_data(n, i)).expect("write");
                p
            })
            .collect();
        let cancel = CancelToken::new();
        let pipeline = Pipeline::builder()
            .stages(parse_stages("brotli:9,sha256").expect("stages"))
            .chunk_size(128 << 10)
            .threads(2)
            .cancel(cancel.clone())
            .build()
            .expect("build");
        let canceller = {
            let (cancel, out) = (cancel.clone(), d.join("o"));
            thread::spawn(move || {
                // CancelToken once the first output appears (or after a while).
                let t0 = Instant::now();
                while names_or_empty(&out).is_empty() && t0.elapsed() < Duration::from_secs(30) {
                    thread::sleep(Duration::from_millis(2));
                }
                cancel.cancel();
            })
        };
        let opts = BatchOptions {
            scheduler: Policy::Simple,
            ..BatchOptions::default()
        };
        let report = pipeline.process_batch(jobs_for(d, &inputs, "o"), &opts);
        canceller.join().expect("canceller");
        assert!(
            pipeline.governor().all_returned(),
            "{:?}",
            pipeline.governor()
        );
        assert_eq!(report.files.len(), 40, "every file reported");
        for f in &report.files {
            let out = f.output.as_ref().expect("output");
            match &f.outcome {
                Outcome::Done(_) => assert!(out.exists()),
                Outcome::Failed(e) => {
                    assert_eq!(e.kind(), syncpipe::ErrorKind::Cancelled, "{e}");
                    assert!(!out.exists());
                }
                Outcome::Skipped => panic!("nothing to skip"),
            }
        }
        assert!(report.failed() > 0, "the cancel stopped something");
        for name in names_or_empty(&d.join("o")) {
            assert!(
                name.extension().is_some_and(|e| e == "spipe"),
                "left behind: {name:?}"
            );
        }
    });
}

fn names_or_empty(root: &Path) -> BTreeSet<PathBuf> {
    if root.exists() {
        names(root)
    } else {
        BTreeSet::new()
    }
}

#[test]
fn a_panicking_stage_fails_its_file_only() {
    common::watchdog(120, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // Small (inline path) and large (streamed) files; the stage panics
        // on data starting with "boom".
        let mut inputs = Vec::new();
        for (i, n) in [100usize, 5000, 300_000, 1 << 20].iter().enumerate() {
            for bad in [false, true] {
                let p = d.join(format!("f{i}-{bad}"));
                let mut data = common::mixed_data(*n, i as u64);
                if bad {
                    data[..4].copy_from_slice(b"boom");
                }
                fs::write(&p, data).expect("write");
                inputs.push(p);
            }
        }
        let stage = syncpipe::stage::from_fn(
            "boom",
            |input: &[u8], out: &mut Vec<u8>| {
                assert!(!input.starts_with(b"boom"), "boom");
                out.extend_from_slice(input);
                Ok(())
            },
            |input: &[u8], out: &mut Vec<u8>| {
                out.extend_from_slice(input);
                Ok(())
            },
        );
        let pipeline = Pipeline::builder()
            .custom_stage(stage)
            .chunk_size(64 << 10)
            .threads(2)
            .build()
            .expect("build");
        for batch_small in [false, true] {
            let out = format!("o-{batch_small}");
            let opts = BatchOptions {
                batch_small,
                ..BatchOptions::default()
            };
            let report = pipeline.process_batch(jobs_for(d, &inputs, &out), &opts);
            assert_eq!(report.files.len(), 8);
            for f in &report.files {
                let bad = f.input.to_string_lossy().ends_with("true");
                match &f.outcome {
                    Outcome::Failed(e) if bad => {
                        assert_eq!(e.kind(), syncpipe::ErrorKind::Panic, "{e}")
                    }
                    Outcome::Done(_) if !bad => {}
                    other => panic!("{:?}: {other:?}", f.input),
                }
            }
            assert!(pipeline.governor().all_returned());
        }
    });
}

#[test]
fn verify_r_names_the_damaged_container() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_tree(&d.join("t"), 12, 1);
    code(&run(d, &["process", "-r", "t", "--output-dir", "c"]), 0);
    let victim = d.join("c/d1/e1/f1.txt.spipe");
    let mut bytes = fs::read(&victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&victim, &bytes).expect("write");
    let out = run(d, &["verify", "-r", "c"]);
    code(&out, 5);
    assert!(
        stderr(&out).contains("c/d1/e1/f1.txt.spipe"),
        "{}",
        stderr(&out)
    );
    let ok = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(": ok ("))
        .count();
    assert_eq!(ok, 12, "the others verified");
    // Only damaged containers: all failed with the integrity code.
    code(
        &run(
            d,
            &[
                "verify",
                "c/d1/e1/f1.txt.spipe",
                "c/d1/e1/f1.txt.spipe",
                "-q",
            ],
        ),
        3,
    );
}

/// `--json` over a batch: one `file_done` per file and a summary whose
/// counters are the real totals (small files take the inline path, which
/// reports to the metrics itself); `verify -r --json` keeps stdout JSON-only.
#[test]
fn json_reports_every_file_of_a_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    make_tree(&root.join("src"), 40, 1);
    let total: u64 = snapshot(&root.join("src"))
        .iter()
        .map(|(_, b)| b.len() as u64)
        .sum();
    let files = snapshot(&root.join("src")).len();
    let lines = |out: &Output| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
            .collect()
    };
    let out = run(
        root,
        &["process", "-r", "src", "--output-dir", "out", "--json"],
    );
    code(&out, 0);
    let v = lines(&out);
    let done = v
        .iter()
        .filter(|l| l["message_type"] == "file_done")
        .count();
    assert_eq!(done, files);
    let summary = v
        .iter()
        .find(|l| l["message_type"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["files_done"], files as u64);
    assert_eq!(summary["bytes_in"], total);
    assert_eq!(summary["original_bytes"], total);
    let out = run(root, &["verify", "-r", "out", "--json"]);
    code(&out, 0);
    let v = lines(&out);
    assert_eq!(
        v.iter()
            .filter(|l| l["message_type"] == "file_done")
            .count(),
        files
    );
}

/// Every stdout line of a `--json` run, parsed.
fn json_of(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect()
}

/// The `error` lines' (input, kind) pairs, sorted, after checking that each
/// has the shape of the command's own error line and the batch's exit code;
/// and the summary, checked to be the last line.
fn errors_and_summary(out: &Output, exit: i32) -> (Vec<(String, String)>, serde_json::Value) {
    let lines = json_of(out);
    let summary = lines.last().expect("a summary").clone();
    assert_eq!(summary["message_type"], "summary", "{lines:?}");
    assert_eq!(summary["exit_code"], exit);
    let mut errors: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["message_type"] == "error")
        .map(|l| {
            assert_eq!(l["backend"], "sync");
            assert!(l["command"].is_string(), "{l}");
            assert!(l["error"]["message"].is_string(), "{l}");
            assert!(l.get("chunk").is_some(), "{l}");
            assert_eq!(l["exit_code"], exit, "{l}");
            (
                l["input"].as_str().expect("the file is named").to_string(),
                l["error"]["kind"].as_str().expect("a kind").to_string(),
            )
        })
        .collect();
    errors.sort();
    // The gauges of the final summary: every permit back.
    let g = &summary["gauges"];
    assert!(g["cpu_permits"].as_u64().expect("cpu permits") > 0, "{g}");
    assert_eq!(g["cpu_permits_available"], g["cpu_permits"], "{g}");
    assert_eq!(g["io_permits_available"], g["io_permits"], "{g}");
    assert_eq!(g["buffer_bytes"], 0, "{g}");
    (errors, summary)
}

#[test]
fn json_names_each_failed_file_of_a_batch_and_counts_failed_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir(d.join("in")).expect("mkdir");
    for i in 0..3 {
        fs::write(d.join(format!("in/ok{i}.txt")), format!("{i}\n").repeat(99)).expect("w");
    }
    // A link loop: nobody can open it (a dangling link is passed over).
    symlink("loop", d.join("in/loop")).expect("symlink");
    fs::write(d.join("outside.txt"), b"outside").expect("w");
    let prom = |d: &Path| -> String { fs::read_to_string(d.join("m.prom")).expect("textfile") };

    // A link loop found by the walk.
    let out = run(
        d,
        &[
            "process",
            "-r",
            "in",
            "--output-dir",
            "o",
            "--json",
            "--prometheus-file",
            "m.prom",
        ],
    );
    code(&out, 5);
    let (errors, s) = errors_and_summary(&out, 5);
    assert_eq!(errors, [("in/loop".to_string(), "io".to_string())]);
    assert_eq!(s["files_done"], 3);
    assert_eq!(s["files_failed"], 1);
    assert_eq!(s["files_skipped"], 0);
    assert!(
        prom(d).contains("\nsyncpipe_files_failed_total 1\n"),
        "{}",
        prom(d)
    );

    // Again with --skip-existing: the three done files are skipped.
    let out = run(
        d,
        &[
            "process",
            "-r",
            "in",
            "--output-dir",
            "o",
            "--skip-existing",
            "--json",
            "--prometheus-file",
            "m.prom",
        ],
    );
    code(&out, 5);
    let (errors, s) = errors_and_summary(&out, 5);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(s["files_done"], 0);
    assert_eq!(s["files_failed"], 1);
    assert_eq!(s["files_skipped"], 3);
    assert!(
        prom(d).contains("\nsyncpipe_files_skipped_total 3\n"),
        "{}",
        prom(d)
    );

    // A --files-from list naming a missing file and a path that would
    // escape the output folder.
    fs::write(d.join("list"), "in/ok0.txt\nmissing.txt\n../outside.txt\n").expect("w");
    let out = run(
        d,
        &[
            "process",
            "--files-from",
            "list",
            "--output-dir",
            "o2",
            "--json",
        ],
    );
    code(&out, 5);
    let (errors, s) = errors_and_summary(&out, 5);
    assert_eq!(
        errors,
        [
            ("../outside.txt".to_string(), "usage".to_string()),
            ("missing.txt".to_string(), "io".to_string()),
        ]
    );
    assert_eq!(s["files_failed"], 2);

    // A damaged container in verify -r.
    let victim = d.join("o/ok1.txt.spipe");
    let mut bytes = fs::read(&victim).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(&victim, &bytes).expect("write");
    let out = run(d, &["verify", "-r", "o", "--json"]);
    code(&out, 5);
    let (errors, s) = errors_and_summary(&out, 5);
    assert_eq!(
        errors,
        [("o/ok1.txt.spipe".to_string(), "integrity".to_string())]
    );
    assert_eq!(s["files_done"], 2);
    assert_eq!(s["files_failed"], 1);
}

#[test]
fn json_status_lines_of_a_batch_know_its_total() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir(d.join("in")).expect("mkdir");
    let sizes = [4 << 20, 1 << 20, 1000];
    for (i, len) in sizes.iter().enumerate() {
        fs::write(
            d.join(format!("in/f{i}")),
            common::mixed_data(*len, 7 + i as u64),
        )
        .expect("w");
    }
    let total: u64 = sizes.iter().map(|&s| s as u64).sum();
    // brotli:9 on one CPU token keeps the run far longer than the 10 ms
    // interval, so status lines come.
    let out = run(
        d,
        &[
            "process",
            "-r",
            "in",
            "--output-dir",
            "o",
            "--json",
            "-s",
            "brotli:9",
            "--cpu-tokens",
            "1",
            "--metrics-interval",
            "10ms",
        ],
    );
    code(&out, 0);
    let lines = json_of(&out);
    let status: Vec<_> = lines
        .iter()
        .filter(|l| l["message_type"] == "status")
        .collect();
    assert!(!status.is_empty(), "no status line: {lines:?}");
    for s in &status {
        assert_eq!(s["total_bytes"], total, "{s}");
        let p = s["percent_done"].as_f64().expect("percent_done is known");
        assert!((0.0..=100.0).contains(&p), "{s}");
    }
    assert!(
        status.iter().any(|s| s["eta_s"].as_f64().is_some()),
        "an ETA once bytes were read: {status:?}"
    );
}

// ---------------------------------------------------------------------------
// Habits of zstd -r: quiet off a terminal, one line for a rerun, special
// files passed over, --rm, times
// ---------------------------------------------------------------------------

#[test]
fn a_batch_is_quiet_off_a_terminal_and_sums_up_with_v() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_tree(&d.join("t"), 12, 1);
    let out = run(d, &["process", "-r", "t", "--output-dir", "o"]);
    code(&out, 0);
    assert_eq!(stderr(&out), "", "quiet, as a single file is");
    let out = run(d, &["restore", "-r", "o", "--output-dir", "r", "-v"]);
    code(&out, 0);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("syncpipe: 13 files restored, 0 skipped, 0 failed: "))
        .unwrap_or_else(|| panic!("summary: {err}"));
    // Bytes (containers => originals) and time.
    assert!(
        line.contains(" => ") && line.contains("MiB in ") && line.contains("s ("),
        "{line}"
    );
    assert!(snapshot(&d.join("r")) == snapshot(&d.join("t")));
}

#[test]
fn a_rerun_without_force_gives_one_line_for_the_existing_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_tree(&d.join("t"), 30, 0);
    code(&run(d, &["process", "-r", "t", "--output-dir", "o"]), 0);
    // Every output exists: one line, the usage code (an output that
    // exists without -f), nothing written.
    let before = snapshot(&d.join("o"));
    let out = run(d, &["process", "-r", "t", "--output-dir", "o"]);
    code(&out, 2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("30 outputs already exist"), "{err}");
    assert!(
        err.contains("--skip-existing") && err.contains("-f"),
        "{err}"
    );
    assert!(snapshot(&d.join("o")) == before);
    // Some new, some existing: the new ones are done, exit 5, still one
    // line for the rest; -v names each.
    fs::write(d.join("t/new.txt"), b"new file\n").expect("w");
    let out = run(d, &["process", "-r", "t", "--output-dir", "o"]);
    code(&out, 5);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("30 outputs already exist"), "{err}");
    assert!(d.join("o/new.txt.spipe").exists());
    let out = run(d, &["process", "-r", "t", "--output-dir", "o", "-v"]);
    code(&out, 2);
    let err = stderr(&out);
    assert_eq!(err.matches("already exists; use -f").count(), 31, "{err}");
    assert!(err.contains("31 outputs already exist"), "{err}");
    // One is said as one.
    let out = run(
        d,
        &[
            "process",
            "t/new.txt",
            "t/d0/e0/f0.txt",
            "--output-dir",
            "o1",
        ],
    );
    code(&out, 0);
    fs::remove_file(d.join("o1/f0.txt.spipe")).expect("rm");
    let out = run(
        d,
        &[
            "process",
            "t/new.txt",
            "t/d0/e0/f0.txt",
            "--output-dir",
            "o1",
        ],
    );
    code(&out, 5);
    assert!(
        stderr(&out).contains("1 output already exists"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_walk_passes_over_fifos_sockets_and_dangling_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_tree(&d.join("t"), 5, 0);
    let status = Command::new("mkfifo")
        .arg(d.join("t/fifo"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let _sock = std::os::unix::net::UnixListener::bind(d.join("t/sock")).expect("bind");
    symlink("nowhere", d.join("t/dangling")).expect("symlink");
    let out = run(d, &["process", "-r", "t", "--output-dir", "o"]);
    code(&out, 0);
    assert_eq!(stderr(&out), "");
    assert_eq!(names(&d.join("o")).len(), 5);
    // -v says what was passed over, and why.
    let out = run(d, &["process", "-r", "t", "--output-dir", "o2", "-v"]);
    code(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("t/fifo: skipped (a FIFO)"), "{err}");
    assert!(err.contains("t/sock: skipped (a socket)"), "{err}");
    assert!(
        err.contains("t/dangling: skipped (a dangling symbolic link)"),
        "{err}"
    );
    // Named, each is still a failed input.
    let out = run(
        d,
        &[
            "process",
            "t/fifo",
            "t/dangling",
            "t/d0/e0/f0.txt",
            "--output-dir",
            "o3",
        ],
    );
    code(&out, 5);
    let err = stderr(&out);
    assert!(err.contains("t/fifo: not a regular file"), "{err}");
    assert!(err.contains("t/dangling: "), "{err}");
}

#[test]
fn rm_in_a_batch_removes_each_input_once_its_output_is_committed() {
    common::watchdog(300, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // Small files (the inline path, with and without --batch-small)
        // and a large one (streamed).
        make_tree(&d.join("t"), 40, 1);
        let original = snapshot(&d.join("t"));
        for extra in [&[][..], &["--batch-small"][..]] {
            let mut args = vec!["process", "-r", "t", "--output-dir", "o", "--rm"];
            args.extend_from_slice(extra);
            code(&run(d, &args), 0);
            assert!(names(&d.join("t")).is_empty(), "{extra:?}: inputs removed");
            code(&run(d, &["verify", "-r", "o", "-q"]), 0);
            code(
                &run(d, &["restore", "-r", "o", "--output-dir", "t", "--rm"]),
                0,
            );
            assert!(
                names(&d.join("o")).is_empty(),
                "{extra:?}: containers removed"
            );
            assert!(snapshot(&d.join("t")) == original, "{extra:?}");
        }
        // A file whose output cannot be written keeps its input; the rest
        // go (exit 5). Restore of a damaged container keeps it.
        fs::create_dir_all(d.join("o/d0/e0")).expect("mkdir");
        fs::write(d.join("o/d0/e0/f0.txt.spipe"), b"in the way").expect("w");
        let out = run(d, &["process", "-r", "t", "--output-dir", "o", "--rm"]);
        code(&out, 5);
        assert_eq!(
            names(&d.join("t")),
            BTreeSet::from([PathBuf::from("d0/e0/f0.txt")])
        );
        let out = run(d, &["restore", "-r", "o", "--output-dir", "r", "--rm"]);
        code(&out, 5);
        assert_eq!(
            names(&d.join("o")),
            BTreeSet::from([PathBuf::from("d0/e0/f0.txt.spipe")]),
            "{}",
            stderr(&out)
        );
        // Never with -c or stdin.
        let out = run(d, &["process", "-r", "t", "-c", "--rm"]);
        code(&out, 2);
    });
}

#[test]
fn a_batch_keeps_the_times_of_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_tree(&d.join("t"), 6, 1);
    let at = |secs: i64| std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64);
    let files: Vec<PathBuf> = snapshot(&d.join("t")).into_iter().map(|(p, _)| p).collect();
    // Explicit past times, each file its own; the access time older than
    // the modification time, so any read of a file would move it.
    let want = |i: usize| (1_000_000_000 + i as i64 * 86_400, 1_100_000_000 + i as i64);
    let stamp = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(p).expect("metadata");
        (m.atime(), m.mtime())
    };
    for extra in [&[][..], &["--batch-small"][..]] {
        let _ = fs::remove_dir_all(d.join("o"));
        let _ = fs::remove_dir_all(d.join("r"));
        for (i, f) in files.iter().enumerate() {
            let (a, m) = want(i);
            fs::File::options()
                .write(true)
                .open(d.join("t").join(f))
                .expect("open")
                .set_times(fs::FileTimes::new().set_accessed(at(a)).set_modified(at(m)))
                .expect("set_times");
        }
        let mut args = vec!["process", "-r", "t", "--output-dir", "o"];
        args.extend_from_slice(extra);
        code(&run(d, &args), 0);
        // Each looked at before the next run reads it (relatime).
        for (i, f) in files.iter().enumerate() {
            let mut c = f.clone().into_os_string();
            c.push(".spipe");
            assert_eq!(stamp(&d.join("o").join(&c)), want(i), "{extra:?} {c:?}");
        }
        code(&run(d, &["restore", "-r", "o", "--output-dir", "r"]), 0);
        for (i, f) in files.iter().enumerate() {
            assert_eq!(stamp(&d.join("r").join(f)), want(i), "{extra:?} {f:?}");
        }
    }
}
