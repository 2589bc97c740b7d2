//! Failures end a run promptly with the root cause, return every permit and
//! leave no output behind; the memory bound holds; cancellation works.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{mixed_data, watchdog};
use syncpipe::stage::{from_fn, ChunkInfo, Stage};
use syncpipe::stages::StageSpec;
use syncpipe::Overwrite;
use syncpipe::{CancelToken, Error, ErrorKind, Governor, Pipeline, SpawnStyle};

const CHUNK: usize = 4096;

/// A stage that copies, but fails or panics at one chunk.
struct FailAt {
    chunk: u64,
    panic: bool,
    inverse_only: bool,
}

impl Stage for FailAt {
    fn forward(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        if !self.inverse_only && c.index == self.chunk {
            if self.panic {
                panic!("boom at {}", c.index);
            }
            return Err(Error::stage("refused on purpose"));
        }
        out.extend_from_slice(input);
        Ok(())
    }
    fn inverse(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        if self.inverse_only && c.index == self.chunk {
            return Err(Error::integrity("refused on purpose"));
        }
        out.extend_from_slice(input);
        Ok(())
    }
    fn name(&self) -> String {
        "failat".into()
    }
}

fn failing(chunk: u64, panic: bool, inverse_only: bool, threads: usize) -> Pipeline {
    failing_on(chunk, panic, inverse_only, threads, SpawnStyle::Rayon)
}

fn failing_on(
    chunk: u64,
    panic: bool,
    inverse_only: bool,
    threads: usize,
    style: SpawnStyle,
) -> Pipeline {
    Pipeline::builder()
        .spawn_style(style)
        .stage(StageSpec::Lz4)
        .custom_stage(FailAt {
            chunk,
            panic,
            inverse_only,
        })
        .chunk_size(CHUNK)
        .threads(threads)
        .build()
        .expect("valid settings")
}

#[test]
fn stage_error_at_chunk_k_ends_the_run() {
    for (threads, style) in [1, 2, 4]
        .into_iter()
        .flat_map(|t| [(t, SpawnStyle::Rayon), (t, SpawnStyle::Threads)])
    {
        let e = watchdog(30, move || {
            let p = failing_on(17, false, false, threads, style);
            let data = mixed_data(200 * CHUNK, 1);
            let e = p.run(&data[..], io::sink()).expect_err("must fail");
            assert!(p.governor().all_returned(), "permits leaked");
            e
        });
        assert_eq!(e.kind(), ErrorKind::Stage);
        assert_eq!(e.chunk(), Some(17));
        assert!(
            e.to_string()
                .contains("chunk 17: failat: refused on purpose"),
            "{e}"
        );
    }
}

#[test]
fn stage_panic_at_chunk_k_ends_the_run() {
    for (threads, style) in [1, 2, 4]
        .into_iter()
        .flat_map(|t| [(t, SpawnStyle::Rayon), (t, SpawnStyle::Threads)])
    {
        let e = watchdog(30, move || {
            let p = failing_on(5, true, false, threads, style);
            let data = mixed_data(100 * CHUNK, 2);
            let e = p.run(&data[..], io::sink()).expect_err("must fail");
            assert!(p.governor().all_returned(), "permits leaked");
            e
        });
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert_eq!(e.chunk(), Some(5));
        assert!(e.to_string().contains("boom at 5"), "{e}");
    }
}

#[test]
fn failed_run_leaves_no_output_file() {
    watchdog(30, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.bin");
        std::fs::write(&input, mixed_data(50 * CHUNK, 3)).expect("write");
        let out = dir.path().join("in.bin.spipe");
        let e = failing(20, false, false, 2)
            .process_path(&input, &out, Overwrite::Refuse)
            .expect_err("must fail");
        assert_eq!(e.kind(), ErrorKind::Stage);
        assert!(
            e.to_string().starts_with(&input.display().to_string()),
            "{e}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("in.bin")]);
    });
}

#[test]
fn inverse_failure_names_the_chunk_and_leaves_no_file() {
    watchdog(30, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = failing(9, false, true, 2);
        let data = mixed_data(30 * CHUNK, 4);
        let container = dir.path().join("c.spipe");
        let mut bytes = Vec::new();
        p.run(&data[..], &mut bytes).expect("process");
        std::fs::write(&container, &bytes).expect("write");
        let out = dir.path().join("c");
        let e = p
            .restore_path(&container, &out, Overwrite::Refuse)
            .expect_err("must fail");
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert_eq!(e.chunk(), Some(9));
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
        assert!(p.governor().all_returned());
    });
}

/// A writer that fails after `ok` bytes.
struct BrokenWriter {
    ok: usize,
}

impl Write for BrokenWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.ok);
        self.ok -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that fails after `ok` bytes.
struct BrokenReader {
    ok: usize,
}

impl Read for BrokenReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("bad sector"));
        }
        let n = buf.len().min(self.ok);
        buf[..n].fill(7);
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn write_error_is_the_root_cause() {
    let e = watchdog(30, || {
        let p = Pipeline::builder()
            .chunk_size(CHUNK)
            .threads(2)
            .build()
            .expect("valid");
        let data = mixed_data(300 * CHUNK, 5);
        let e = p
            .run(&data[..], BrokenWriter { ok: 50_000 })
            .expect_err("must fail");
        assert!(p.governor().all_returned());
        e
    });
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("disk on fire"), "{e}");
}

/// A failing writer drops its channel ends as it returns, a moment before
/// its error is recorded; a neighbour that meets the closed channel in that
/// moment must not make the run end "cancelled" (the binary would exit 130
/// for `restore -c | head`, not 141). The window is narrow, so many runs.
#[test]
fn write_error_beats_the_disconnection_it_causes_every_time() {
    watchdog(120, || {
        let p = Pipeline::builder()
            .chunk_size(64 * 1024)
            .threads(2)
            .stage(StageSpec::Passthrough)
            .build()
            .expect("valid");
        let data = mixed_data(48 * 64 * 1024, 11);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        for round in 0..200 {
            let e = p
                .restore(&container[..], BrokenWriter { ok: 10 })
                .expect_err("must fail");
            assert_eq!(e.kind(), ErrorKind::Io, "restore, round {round}: {e}");
            let e = p
                .run(&data[..], BrokenWriter { ok: 10 })
                .expect_err("must fail");
            assert_eq!(e.kind(), ErrorKind::Io, "process, round {round}: {e}");
        }
        assert!(p.governor().all_returned());
    });
}

#[test]
fn read_error_is_the_root_cause() {
    let e = watchdog(30, || {
        let p = Pipeline::builder()
            .chunk_size(CHUNK)
            .threads(2)
            .build()
            .expect("valid");
        let e = p
            .run(BrokenReader { ok: 100_000 }, io::sink())
            .expect_err("must fail");
        assert!(p.governor().all_returned());
        e
    });
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("bad sector"), "{e}");
}

/// A writer that sleeps on every write, so chunks pile up behind it.
struct SlowWriter;

impl Write for SlowWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        thread::sleep(Duration::from_micros(300));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn memory_is_bounded_by_depth_and_tokens() {
    for (depth, threads) in [(1, 1), (2, 2), (4, 4), (8, 2)] {
        let report = watchdog(60, move || {
            let p = Pipeline::builder()
                .stage(StageSpec::Passthrough)
                .chunk_size(CHUNK)
                .threads(threads)
                .channel_depth(depth)
                .build()
                .expect("valid");
            let data = mixed_data(400 * CHUNK, 6);
            p.run(&data[..], SlowWriter).expect("process")
        });
        // The bound documented in docs/design.md: reader (2 with look-ahead)
        // + jobs channel (depth) + dispatcher (1) + slots (depth + tokens)
        // + writer (1).
        let bound = ((2 * depth + threads + 4) * CHUNK) as u64;
        assert!(
            report.peak_chunk_bytes <= bound,
            "depth {depth}, threads {threads}: peak {} > bound {bound}",
            report.peak_chunk_bytes
        );
        // And the pipeline did fill up: the bound is not vacuous.
        assert!(report.peak_chunk_bytes >= (depth * CHUNK) as u64);
        // Steady state reuses buffers instead of allocating.
        assert!(report.reuse_rate() > 0.9, "reuse {}", report.reuse_rate());
    }
}

#[test]
fn restore_memory_is_bounded_too() {
    let (depth, threads) = (2, 2);
    let report = watchdog(60, move || {
        let p = Pipeline::builder()
            .stage(StageSpec::Lz4)
            .chunk_size(CHUNK)
            .threads(threads)
            .channel_depth(depth)
            .build()
            .expect("valid");
        let data = mixed_data(400 * CHUNK, 13);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        p.restore(&container[..], SlowWriter).expect("restore")
    });
    // Restore has no look-ahead chunk in the reader, so the process bound
    // covers it.
    let bound = ((2 * depth + threads + 4) * CHUNK) as u64;
    assert!(
        report.peak_chunk_bytes <= bound,
        "peak {} > {bound}",
        report.peak_chunk_bytes
    );
    assert!(report.peak_chunk_bytes >= (depth * CHUNK) as u64);
}

#[test]
fn cancel_stops_a_run_promptly() {
    watchdog(30, || {
        let cancel = CancelToken::new();
        let slow = from_fn(
            "slow",
            |i: &[u8], o: &mut Vec<u8>| {
                thread::sleep(Duration::from_millis(5));
                o.extend_from_slice(i);
                Ok(())
            },
            |i: &[u8], o: &mut Vec<u8>| {
                o.extend_from_slice(i);
                Ok(())
            },
        );
        let p = Pipeline::builder()
            .custom_stage(slow)
            .chunk_size(CHUNK)
            .threads(2)
            .cancel(cancel.clone())
            .build()
            .expect("valid");
        let c2 = cancel.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            c2.cancel();
            Instant::now()
        });
        let data = mixed_data(10_000 * CHUNK, 7);
        let e = p.run(&data[..], io::sink()).expect_err("cancelled");
        let ended = Instant::now();
        let cancelled_at = t.join().expect("canceller");
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert!(ended.duration_since(cancelled_at) < Duration::from_secs(2));
        assert!(p.governor().all_returned());
    });
}

#[test]
fn shared_governor_serves_concurrent_pipelines() {
    watchdog(60, || {
        let gov = Arc::new(Governor::new(1, 2));
        let running = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (gov, running, max) = (gov.clone(), running.clone(), max.clone());
                thread::spawn(move || {
                    let probe = from_fn(
                        "probe",
                        move |inp: &[u8], o: &mut Vec<u8>| {
                            let n = running.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(n, Ordering::SeqCst);
                            thread::sleep(Duration::from_micros(200));
                            running.fetch_sub(1, Ordering::SeqCst);
                            o.extend_from_slice(inp);
                            Ok(())
                        },
                        |inp: &[u8], o: &mut Vec<u8>| {
                            o.extend_from_slice(inp);
                            Ok(())
                        },
                    );
                    let p = Pipeline::builder()
                        .custom_stage(probe)
                        .chunk_size(CHUNK)
                        .threads(4)
                        .governor(gov)
                        .build()
                        .expect("valid");
                    let data = mixed_data(50 * CHUNK, i);
                    let mut out = Vec::new();
                    p.run(&data[..], &mut out).expect("process");
                    let mut back = Vec::new();
                    p.restore(&out[..], &mut back).expect("restore");
                    assert_eq!(back, data);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("pipeline thread");
        }
        // One CPU token shared by three pipelines of four threads each.
        assert_eq!(max.load(Ordering::SeqCst), 1);
        assert!(gov.all_returned());
    });
}

#[test]
fn restore_without_the_custom_stage_is_a_usage_error() {
    let p = failing(u64::MAX, false, false, 1);
    let mut container = Vec::new();
    p.run(&b"abc"[..], &mut container).expect("process");
    let plain = Pipeline::builder().build().expect("valid");
    let e = plain
        .restore(&container[..], io::sink())
        .expect_err("must fail");
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("failat"), "{e}");
}

#[test]
fn par_writer_round_trips_odd_writes() {
    watchdog(30, || {
        let p = Pipeline::builder()
            .chunk_size(1000)
            .threads(2)
            .build()
            .expect("valid");
        let data = mixed_data(123_457, 8);
        let mut w = p.par_writer(Vec::new());
        for piece in data.chunks(333) {
            w.write_all(piece).expect("write");
        }
        w.flush().expect("flush");
        let container = w.finish().expect("finish");
        let mut one_shot = Vec::new();
        p.run(&data[..], &mut one_shot).expect("process");
        assert_eq!(container, one_shot, "ParWriter gives the same container");
        let mut back = Vec::new();
        p.restore(&container[..], &mut back).expect("restore");
        assert_eq!(back, data);
    });
}

/// A `Write` whose bytes stay visible after it is dropped.
#[derive(Clone, Default)]
struct Shared(Arc<parking_lot::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn dropped_par_writer_leaves_a_truncated_container() {
    watchdog(30, || {
        let p = Pipeline::builder()
            .chunk_size(1000)
            .threads(2)
            .build()
            .expect("valid");
        let sink = Shared::default();
        {
            let mut w = p.par_writer(sink.clone());
            w.write_all(&mixed_data(10_000, 9)).expect("write");
            // dropped without finish
        }
        let bytes = sink.0.lock().clone();
        let e = p.restore(&bytes[..], io::sink()).expect_err("incomplete");
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(p.governor().all_returned());
    });
}
