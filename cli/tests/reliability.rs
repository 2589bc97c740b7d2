//! Rows of the fault matrix (`docs/reliability.md`) that no other test file
//! covered: all-zero and incompressible inputs through every codec, chunks
//! completing out of order, an output hard-linked to the input, and an
//! observer that panics during a run.

use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::{mixed_data, watchdog};
use parking_lot::Mutex;
use syncpipe::metrics::{Event, Metrics};
use syncpipe::stage::{ChunkInfo, Stage};
use syncpipe::stages::parse_stages;
use syncpipe::Overwrite;
use syncpipe::{ErrorKind, Pipeline};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const CHUNK: usize = 16 << 10;

/// `len` bytes no codec can shrink.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 32) as u8
        })
        .collect()
}

fn round_trip(p: &Pipeline, data: &[u8]) -> Vec<u8> {
    let mut container = Vec::new();
    p.run(data, &mut container).expect("run");
    let mut back = Vec::new();
    p.restore(&container[..], &mut back).expect("restore");
    assert!(back == data, "round trip changed the data");
    container
}

/// All zeros compress to almost nothing; noise is stored raw (skip mask),
/// so the container grows only by the framing; both restore exactly.
#[test]
fn all_zero_and_incompressible_inputs_round_trip_with_every_codec() {
    let len = 10 * CHUNK + 123;
    let zeros = vec![0u8; len];
    let random = noise(len, 7);
    for spec in ["zstd:3", "lz4", "gzip:6", "brotli:5", "zstd:19,sha256"] {
        let p = Pipeline::builder()
            .stages(parse_stages(spec).expect("spec"))
            .chunk_size(CHUNK)
            .build()
            .expect("pipeline");
        let z = round_trip(&p, &zeros);
        assert!(z.len() < len / 50, "{spec}: zeros gave {} bytes", z.len());
        let r = round_trip(&p, &random);
        // 11 records of at most ~60 bytes of framing each, header, trailer.
        assert!(
            r.len() >= len && r.len() < len + 1024,
            "{spec}: noise gave {} bytes for {len}",
            r.len()
        );
        let info = syncpipe::inspect(&r[..]).expect("inspect");
        assert_eq!(
            info.stored_raw, info.chunks,
            "{spec}: every noise chunk raw"
        );
    }
}

/// A copy stage that makes early chunks the slowest, so that with several
/// workers chunks finish in roughly reverse order; it records the order in
/// which forward calls finished.
#[derive(Clone, Default)]
struct LateEarly {
    finished: Arc<Mutex<Vec<u64>>>,
}

impl LateEarly {
    fn nap(index: u64) {
        thread::sleep(Duration::from_millis(8u64.saturating_sub(index % 8) * 2));
    }
}

impl Stage for LateEarly {
    fn forward(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        LateEarly::nap(c.index);
        out.extend_from_slice(input);
        self.finished.lock().push(c.index);
        Ok(())
    }
    fn inverse(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        LateEarly::nap(c.index);
        out.extend_from_slice(input);
        Ok(())
    }
    fn name(&self) -> String {
        "late-early".into()
    }
}

/// Chunks completing out of order (early ones delayed) still come out in
/// input order: the container equals the one-thread container byte for
/// byte, and restore (also out of order) gives the input back.
#[test]
fn out_of_order_completion_keeps_input_order() {
    watchdog(120, || {
        let data = mixed_data(40 * 1024 + 77, 3);
        let build = |threads: usize, stage: LateEarly| {
            Pipeline::builder()
                .custom_stage(stage)
                .chunk_size(1024)
                .threads(threads)
                .cpu_tokens(threads)
                .channel_depth(8)
                .build()
                .expect("pipeline")
        };
        let one = round_trip(&build(1, LateEarly::default()), &data);
        let stage = LateEarly::default();
        let four = round_trip(&build(4, stage.clone()), &data);
        let order = stage.finished.lock().clone();
        assert!(
            order.windows(2).any(|w| w[0] > w[1]),
            "the chunks finished in order, so nothing was tested: {order:?}"
        );
        assert!(one == four, "4 workers changed the container bytes");
    });
}

/// An output that is a hard link to the input is the input: refused as a
/// usage error with or without --force, and the input is untouched.
#[test]
fn output_hard_linked_to_input_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = mixed_data(3 * CHUNK, 9);
    fs::write(dir.path().join("x.bin"), &original).expect("write");
    fs::hard_link(dir.path().join("x.bin"), dir.path().join("link.bin")).expect("link");
    for force in [false, true] {
        let mut cmd = Command::new(BIN);
        cmd.args(["process", "x.bin", "-o", "link.bin"])
            .current_dir(dir.path());
        if force {
            cmd.arg("--force");
        }
        let out = cmd.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "force {force}: {stderr}");
        assert!(stderr.contains("same file"), "{stderr}");
        assert!(fs::read(dir.path().join("x.bin")).expect("read") == original);
    }
    // And the other way: restoring a container over a hard link to itself.
    let p = Command::new(BIN)
        .args(["process", "x.bin", "-o", "x.spipe"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(p.status.code(), Some(0));
    fs::hard_link(dir.path().join("x.spipe"), dir.path().join("y.spipe")).expect("link");
    let out = Command::new(BIN)
        .args(["restore", "x.spipe", "-o", "y.spipe", "--force"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("same file"));
}

/// A metrics observer that panics on a tick fails that run (a `Panic`
/// error, not an unwinding caller), and every permit comes back.
#[test]
fn observer_panic_during_a_run_fails_the_run_and_returns_every_permit() {
    watchdog(60, || {
        let panicked = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&panicked);
        let metrics = Arc::new(Metrics::observed(
            Duration::from_millis(5),
            move |e: &Event<'_>| {
                if matches!(e, Event::Tick(_)) {
                    flag.store(true, Ordering::SeqCst);
                    panic!("observer failed on purpose");
                }
            },
        ));
        let p = Pipeline::builder()
            .custom_stage(LateEarly::default())
            .chunk_size(1024)
            .threads(2)
            .metrics(metrics)
            .build()
            .expect("pipeline");
        // About 100 chunks of up to 16 ms each: many ticks fall in the run.
        let data = mixed_data(100 * 1024, 4);
        let e = p
            .run(&data[..], std::io::sink())
            .expect_err("the observer panicked");
        assert!(panicked.load(Ordering::SeqCst));
        assert_eq!(e.kind(), ErrorKind::Panic, "{e}");
        assert!(p.governor().all_returned(), "permits leaked");
    });
}

/// An observer that panics on the end-of-run event fails that run (no
/// output file) instead of unwinding into the caller; in a batch, where
/// small files report from the committer thread, it fails those files and
/// the batch still ends (a committer thread that died would leave the
/// scheduler waiting for its results).
#[test]
fn observer_panic_at_the_end_of_a_run_fails_the_run_not_the_caller() {
    watchdog(60, || {
        let metrics = || {
            Arc::new(Metrics::observed(
                Duration::from_secs(3600),
                |e: &Event<'_>| {
                    if matches!(e, Event::RunDone { .. }) {
                        panic!("observer failed on purpose");
                    }
                },
            ))
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in.bin");
        fs::write(&input, mixed_data(300_000, 9)).expect("write");
        let p = Pipeline::builder()
            .threads(2)
            .metrics(metrics())
            .build()
            .expect("pipeline");
        let out = dir.path().join("in.bin.spipe");
        let e = p
            .process_path(&input, &out, Overwrite::Refuse)
            .expect_err("the observer panicked");
        assert_eq!(e.kind(), ErrorKind::Panic, "{e}");
        assert!(!out.exists(), "a failed run leaves no output");
        assert!(p.governor().all_returned(), "permits leaked");

        // A batch of small files: every file fails, the batch returns.
        let jobs: Vec<syncpipe::BatchJob> = (0..20)
            .map(|i| {
                let input = dir.path().join(format!("s{i}"));
                fs::write(&input, mixed_data(2_000 + i, i as u64)).expect("write");
                syncpipe::BatchJob {
                    output: Some(dir.path().join("o").join(format!("s{i}.spipe"))),
                    size: 2_000 + i as u64,
                    input,
                }
            })
            .collect();
        let p = Pipeline::builder()
            .threads(2)
            .metrics(metrics())
            .build()
            .expect("pipeline");
        let report = p.process_batch(jobs, &syncpipe::BatchOptions::default());
        assert_eq!(report.files.len(), 20);
        assert_eq!(report.failed(), 20);
        assert!(p.governor().all_returned(), "permits leaked");
    });
}

/// An output whose writes wait for a go-ahead, announcing that they do.
struct GatedWriter {
    entered: std::sync::mpsc::SyncSender<()>,
    go: std::sync::mpsc::Receiver<()>,
    released: bool,
    out: Vec<u8>,
}

impl std::io::Write for GatedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.released {
            let _ = self.entered.try_send(());
            self.go
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| std::io::Error::other("no go-ahead within 30 s"))?;
            self.released = true;
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_run_counts_as_active_until_its_final_flush_is_done() {
    // Two runs on one pipeline (one governor). Run A's output is tiny, so
    // its only write reaches the output in the final flush, which holds an
    // IO permit; run B starts and ends meanwhile. When a run stopped
    // counting itself active before that flush, B was "the last run" and
    // its permit check (a debug assertion) found A's permit out and
    // panicked. Found by examples/whole_file.rs in CI.
    watchdog(60, || {
        let pipeline = Arc::new(Pipeline::builder().build().expect("pipeline"));
        let (entered_tx, entered_rx) = std::sync::mpsc::sync_channel(1);
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let a = {
            let p = Arc::clone(&pipeline);
            thread::spawn(move || {
                let out = GatedWriter {
                    entered: entered_tx,
                    go: go_rx,
                    released: false,
                    out: Vec::new(),
                };
                p.run(&b"tiny input of run A"[..], out).map(|r| r.chunks)
            })
        };
        entered_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("run A reached its final flush");
        let mut container = Vec::new();
        let b = pipeline.run(&b"run B"[..], &mut container).expect("run B");
        assert_eq!(b.chunks, 1);
        go_tx.send(()).expect("release A");
        let a = a.join().expect("run A did not panic").expect("run A");
        assert_eq!(a, 1);
        assert!(pipeline.governor().all_returned());
    });
}

/// `--rm`'s checks, through the library: a container is verified against
/// the run that wrote it (another file's container, or a damaged one, is
/// refused), and an input is removed only while it is still the file that
/// was read.
#[test]
fn verify_written_and_remove_input_refuse_what_does_not_match() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let p = Pipeline::builder()
        .stages(parse_stages("zstd:3,blake3").expect("spec"))
        .chunk_size(CHUNK)
        .build()
        .expect("pipeline");
    fs::write(d.join("a"), mixed_data(5 * CHUNK, 11)).expect("a");
    fs::write(d.join("b"), mixed_data(5 * CHUNK, 12)).expect("b");
    let before = fs::metadata(d.join("a")).expect("meta");
    let ra = p
        .process_path(&d.join("a"), &d.join("a.spipe"), Overwrite::Refuse)
        .expect("a");
    let rb = p
        .process_path(&d.join("b"), &d.join("b.spipe"), Overwrite::Refuse)
        .expect("b");
    p.verify_written(&d.join("a.spipe"), &ra)
        .expect("a verifies");
    // Sound, but not what this run wrote.
    let e = p
        .verify_written(&d.join("b.spipe"), &ra)
        .expect_err("b is not a");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    // Damaged after the commit.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(d.join("b.spipe"))
        .expect("open");
    f.write_all_at(b"\xff\xff", 200).expect("damage");
    let e = p
        .verify_written(&d.join("b.spipe"), &rb)
        .expect_err("damaged");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    // Written to since it was read: kept.
    let g = fs::OpenOptions::new()
        .append(true)
        .open(d.join("a"))
        .expect("open");
    g.write_all_at(b"more", 5 * CHUNK as u64).expect("append");
    let e = syncpipe::output::remove_input(&d.join("a"), &before).expect_err("changed");
    assert!(e.to_string().contains("changed after it was read"), "{e}");
    assert!(d.join("a").exists());
    // Another file in its place: kept.
    fs::write(d.join("a2"), mixed_data(5 * CHUNK, 11)).expect("a2");
    fs::rename(d.join("a2"), d.join("a")).expect("swap");
    assert!(syncpipe::output::remove_input(&d.join("a"), &before).is_err());
    // Unchanged: removed.
    let now = fs::metadata(d.join("a")).expect("meta");
    syncpipe::output::remove_input(&d.join("a"), &now).expect("removed");
    assert!(!d.join("a").exists());
}
