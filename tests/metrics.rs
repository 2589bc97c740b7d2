//! Metrics of the library: counters equal the real byte counts,
//! histograms have one sample per chunk with ordered percentiles, observers
//! get ticks while a run is going on and a `RunDone` at its end, and a
//! pipeline without metrics records nothing.
//!
//! Concurrency tests run under the watchdog; nothing here asserts a time.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{mixed_data, watchdog};
use syncpipe::metrics::{Event, Family, Metrics, Snapshot};
use syncpipe::stage::{ChunkInfo, Stage};
use syncpipe::stages::parse_stages;
use syncpipe::{Error, Pipeline};

const CHUNK: usize = 64 << 10;

/// Copies chunks; chunk 0 waits until the observer has seen a tick (and
/// then fails, with `then_fail`).
struct Gate {
    first_tick: Mutex<Option<mpsc::Receiver<Snapshot>>>,
    seen: Arc<Mutex<Option<Snapshot>>>,
    then_fail: bool,
}

impl Stage for Gate {
    fn forward(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        if c.index == 0 {
            let rx = self.first_tick.lock().expect("gate").take();
            let rx = rx.ok_or_else(|| Error::stage("chunk 0 ran twice"))?;
            let snap = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| Error::stage("no tick within 30 s"))?;
            *self.seen.lock().expect("seen") = Some(snap);
            if self.then_fail {
                return Err(Error::stage("failing after the tick"));
            }
        }
        out.extend_from_slice(input);
        Ok(())
    }
    fn inverse(&self, _: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        out.extend_from_slice(input);
        Ok(())
    }
    fn name(&self) -> String {
        "gate".into()
    }
}

/// Fails on one chunk.
struct FailAt(u64);

impl Stage for FailAt {
    fn forward(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        if c.index == self.0 {
            return Err(Error::stage("boom"));
        }
        out.extend_from_slice(input);
        Ok(())
    }
    fn inverse(&self, _: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> syncpipe::Result<()> {
        out.extend_from_slice(input);
        Ok(())
    }
}

fn assert_ordered(snap: &Snapshot) {
    for l in &snap.latencies {
        let (p50, p95, p99) = (l.quantile_ns(0.5), l.quantile_ns(0.95), l.quantile_ns(0.99));
        assert!(p50 <= p95 && p95 <= p99, "{}: {p50} {p95} {p99}", l.key());
        assert!(p99 <= l.histogram.max(), "{}", l.key());
    }
}

#[test]
fn counters_equal_the_real_byte_counts() {
    watchdog(60, || {
        let data = mixed_data(10 * CHUNK + 123, 41);
        let metrics = Arc::new(Metrics::new());
        let pipeline = Pipeline::builder()
            .stages(parse_stages("zstd:3,blake3").expect("stages"))
            .chunk_size(CHUNK)
            .threads(2)
            .metrics(Arc::clone(&metrics))
            .build()
            .expect("pipeline");
        let mut container = Vec::new();
        let report = pipeline.run(&data[..], &mut container).expect("process");
        let snap = metrics.snapshot();
        assert_eq!(snap.files, 1);
        assert_eq!(snap.chunks, 11);
        assert_eq!(snap.bytes_read, data.len() as u64);
        assert_eq!(snap.bytes_in, data.len() as u64);
        assert_eq!(snap.bytes_out, container.len() as u64);
        assert_eq!(snap.bytes_out, report.bytes_out);
        assert!(snap.bytes_written < container.len() as u64, "records only");
        assert_eq!(
            snap.buffers_reused + snap.buffers_allocated,
            report.buffers_reused + report.buffers_allocated
        );
        assert_eq!(snap.active_workers, 0);
        assert_eq!(snap.buffer_bytes, 0, "every chunk was written");
        assert_eq!(snap.cpu_permits.0, snap.cpu_permits.1);

        // One sample per chunk in each histogram (two for IO: read + write).
        for (family, label, per_chunk) in [
            (Family::ChunkCpu, "", 1),
            (Family::ChunkTime, "", 1),
            (Family::StageCpu, "zstd", 1),
            (Family::StageCpu, "blake3", 1),
            (Family::PermitWait, "cpu", 1),
            (Family::PermitWait, "io", 2),
            (Family::QueueWait, "jobs", 1),
            (Family::QueueWait, "results", 1),
        ] {
            let l = snap
                .latency(family, label)
                .unwrap_or_else(|| panic!("no {family:?} {label}: {:?}", snap.latencies));
            assert_eq!(l.count(), 11 * per_chunk, "{}", l.key());
        }
        // CPU time is never zero for a real chunk of work.
        for (family, label) in [
            (Family::ChunkCpu, ""),
            (Family::ChunkTime, ""),
            (Family::StageCpu, "zstd"),
            (Family::StageCpu, "blake3"),
        ] {
            let l = snap.latency(family, label).expect("histogram");
            assert!(l.quantile_ns(0.5) > 0 && l.sum_ns > 0, "{}", l.key());
        }
        assert_ordered(&snap);
        // The whole job takes at least as long as its zstd stage.
        let chunk = snap.latency(Family::ChunkCpu, "").expect("chunk cpu");
        let zstd = snap.latency(Family::StageCpu, "zstd").expect("zstd");
        assert!(chunk.sum_ns >= zstd.sum_ns);
        for q in &snap.queues {
            assert!(q.max <= q.capacity && q.avg <= q.max as f64, "{q:?}");
        }

        // Restore into the same metrics: counters add up.
        let mut back = Vec::new();
        pipeline
            .restore(&container[..], &mut back)
            .expect("restore");
        assert_eq!(back, data);
        let snap = metrics.snapshot();
        assert_eq!(snap.files, 2);
        assert_eq!(snap.chunks, 22);
        assert_eq!(snap.bytes_in, (data.len() + container.len()) as u64);
        assert_eq!(snap.bytes_out, (container.len() + data.len()) as u64);
        assert_eq!(
            snap.latency(Family::ChunkCpu, "")
                .expect("chunk cpu")
                .count(),
            22
        );
        assert_ordered(&snap);
    });
}

/// User + system CPU time of this process so far (all its threads).
fn process_cpu_ns() -> u64 {
    // SAFETY: `rusage` is plain data (integers), valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct passed, which lives for
    // the call; RUSAGE_SELF is always a valid `who`.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

#[test]
fn chunk_cpu_is_thread_cpu_time_bounded_by_the_process_cpu_time() {
    watchdog(120, || {
        // Many more pool threads than cores: jobs are preempted, so their
        // wall time exceeds their CPU time, which a wall clock would count.
        let threads = 4 * std::thread::available_parallelism().map_or(2, |n| n.get());
        let data = mixed_data(64 * CHUNK, 43);
        let metrics = Arc::new(Metrics::new());
        let pipeline = Pipeline::builder()
            .stages(parse_stages("zstd:6,blake3").expect("stages"))
            .chunk_size(CHUNK)
            .threads(threads)
            .cpu_tokens(threads)
            .metrics(Arc::clone(&metrics))
            .build()
            .expect("pipeline");
        let before = process_cpu_ns();
        let mut container = Vec::new();
        pipeline.run(&data[..], &mut container).expect("process");
        let spent = process_cpu_ns() - before;
        let snap = metrics.snapshot();
        let cpu = snap.latency(Family::ChunkCpu, "").expect("chunk cpu");
        let time = snap.latency(Family::ChunkTime, "").expect("chunk time");
        assert_eq!(cpu.count(), 64);
        assert!(cpu.sum_ns > 0);
        // Every job ran between the two readings, on threads of this
        // process: their CPU time is part of what the process spent (other
        // tests running beside only add to `spent`).
        assert!(
            cpu.sum_ns <= spent,
            "chunk_cpu {} ns > process CPU {spent} ns",
            cpu.sum_ns
        );
        // The stages are part of the job, measured on the same clock.
        let stages: u64 = snap
            .latencies
            .iter()
            .filter(|l| l.family == Family::StageCpu)
            .map(|l| l.sum_ns)
            .sum();
        assert!(stages <= cpu.sum_ns, "stages {stages} > job {}", cpu.sum_ns);
        // A job's CPU time is taken inside its wall-time window.
        assert!(time.sum_ns >= cpu.sum_ns, "{time:?} < {cpu:?}");
    });
}

/// The report's per-role CPU times are each serial thread's own clock: a
/// role that runs has some, a role that does not (no hasher when BLAKE3 is
/// merged from the workers' pieces) has none, and together they are part
/// of what the process spent.
#[test]
fn thread_cpu_is_each_serial_roles_own_cpu_time() {
    watchdog(120, || {
        let data = mixed_data(256 * CHUNK, 47);
        let run = |stages: &str| {
            let pipeline = Pipeline::builder()
                .stages(parse_stages(stages).expect("stages"))
                .chunk_size(CHUNK)
                .threads(2)
                .build()
                .expect("pipeline");
            let before = process_cpu_ns();
            let mut container = Vec::new();
            let processed = pipeline.run(&data[..], &mut container).expect("process");
            let mut back = Vec::new();
            let restored = pipeline
                .restore(&container[..], &mut back)
                .expect("restore");
            assert!(back == data);
            let spent = Duration::from_nanos(process_cpu_ns() - before);
            let both = processed.thread_cpu.total() + restored.thread_cpu.total();
            assert!(
                both <= spent,
                "{stages}: roles {both:?} > process CPU {spent:?}"
            );
            (processed.thread_cpu, restored.thread_cpu)
        };
        let zero = Duration::ZERO;
        let (p, r) = run("lz4,sha256");
        for (role, t) in [
            ("reader", p.reader),
            ("hasher", p.hasher),
            ("dispatcher", p.dispatcher),
            ("writer", p.writer),
        ] {
            assert!(t > zero, "process lz4,sha256: {role} {p:?}");
        }
        // Restore checks the digest on the writer: no hasher thread.
        assert!(
            r.reader > zero && r.dispatcher > zero && r.writer > zero,
            "{r:?}"
        );
        assert_eq!(r.hasher, zero, "{r:?}");
        let (p, _) = run("lz4,blake3");
        assert_eq!(
            p.hasher, zero,
            "BLAKE3 over whole subtrees needs no hasher: {p:?}"
        );
        assert!(p.reader > zero && p.writer > zero, "{p:?}");
    });
}

#[test]
fn observer_gets_ticks_during_a_run_and_run_done_at_the_end() {
    watchdog(60, || {
        let (first_tick_tx, first_tick_rx) = mpsc::sync_channel::<Snapshot>(1);
        let events = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = Arc::clone(&events);
        let metrics = Arc::new(Metrics::observed(
            Duration::from_millis(10),
            move |e: &Event<'_>| match e {
                Event::Tick(s) => {
                    let _ = first_tick_tx.try_send((*s).clone());
                    log.lock().expect("log").push("tick".into());
                }
                Event::RunDone { report, snapshot } => {
                    assert_eq!(snapshot.files, 1);
                    log.lock()
                        .expect("log")
                        .push(format!("done {}", report.chunks));
                }
                _ => {}
            },
        ));
        // Chunk 0 is held on the pool until the observer has seen a tick,
        // so a tick is guaranteed to happen while a worker is busy.
        let seen = Arc::new(Mutex::new(None::<Snapshot>));
        let stage = Gate {
            first_tick: Mutex::new(Some(first_tick_rx)),
            seen: Arc::clone(&seen),
            then_fail: false,
        };
        let pipeline = Pipeline::builder()
            .custom_stage(stage)
            .chunk_size(CHUNK)
            .threads(2)
            .metrics(Arc::clone(&metrics))
            .build()
            .expect("pipeline");
        let data = mixed_data(4 * CHUNK, 42);
        pipeline.run(&data[..], std::io::sink()).expect("process");
        let tick = seen.lock().expect("seen").take().expect("a tick was seen");
        assert_eq!(tick.files, 0, "the tick came before the end");
        assert!(tick.active_workers >= 1, "chunk 0 was running: {tick:?}");
        assert!(tick.cpu_permits.0 < tick.cpu_permits.1, "{tick:?}");
        let events = events.lock().expect("log");
        assert!(events.iter().any(|e| e == "tick"));
        assert_eq!(events.last().map(String::as_str), Some("done 4"));
        assert_eq!(events.iter().filter(|e| e.starts_with("done")).count(), 1);
    });
}

#[test]
fn without_metrics_nothing_is_recorded() {
    let pipeline = Pipeline::builder().build().expect("pipeline");
    assert!(pipeline.metrics().is_none());
    let metrics = Arc::new(Metrics::new());
    let other = Pipeline::builder()
        .metrics(Arc::clone(&metrics))
        .build()
        .expect("pipeline");
    // Runs of a pipeline without metrics do not touch anyone's metrics.
    pipeline.run(&b"abc"[..], std::io::sink()).expect("run");
    assert_eq!(metrics.snapshot().files, 0);
    other.run(&b"abc"[..], std::io::sink()).expect("run");
    assert_eq!(metrics.snapshot().files, 1);
}

#[test]
fn a_failed_run_is_not_counted_as_done_and_leaves_no_worker_busy() {
    watchdog(60, || {
        let metrics = Arc::new(Metrics::new());
        let failing = FailAt(2);
        let pipeline = Pipeline::builder()
            .custom_stage(failing)
            .chunk_size(CHUNK)
            .metrics(Arc::clone(&metrics))
            .build()
            .expect("pipeline");
        let data = mixed_data(6 * CHUNK, 43);
        assert!(pipeline.run(&data[..], std::io::sink()).is_err());
        let ok = Pipeline::builder()
            .metrics(Arc::clone(&metrics))
            .build()
            .expect("pipeline");
        ok.run(&b"x"[..], std::io::sink()).expect("run");
        let snap = metrics.snapshot();
        assert_eq!(snap.files, 1, "only the successful run");
        assert_eq!(snap.active_workers, 0);
        assert_eq!(snap.bytes_in, 1);
    });
}

#[test]
fn after_a_failed_run_the_snapshot_shows_every_permit_back() {
    // The final --json summary of a failed or cancelled run reads
    // `Metrics::snapshot`. Without a refresh at the failure it would still
    // be the last tick's, taken while chunk 0 held a CPU permit.
    watchdog(60, || {
        let (tick_tx, tick_rx) = mpsc::sync_channel::<Snapshot>(1);
        let metrics = Arc::new(Metrics::observed(
            Duration::from_millis(10),
            move |e: &Event<'_>| {
                if let Event::Tick(s) = e {
                    let _ = tick_tx.try_send((*s).clone());
                }
            },
        ));
        let seen = Arc::new(Mutex::new(None::<Snapshot>));
        let pipeline = Pipeline::builder()
            .custom_stage(Gate {
                first_tick: Mutex::new(Some(tick_rx)),
                seen: Arc::clone(&seen),
                then_fail: true,
            })
            .chunk_size(CHUNK)
            .threads(2)
            .metrics(Arc::clone(&metrics))
            .build()
            .expect("pipeline");
        let data = mixed_data(8 * CHUNK, 44);
        assert!(pipeline.run(&data[..], std::io::sink()).is_err());
        let tick = seen.lock().expect("seen").take().expect("a tick was seen");
        assert!(tick.cpu_permits.0 < tick.cpu_permits.1, "{tick:?}");
        let snap = metrics.snapshot();
        assert_eq!(snap.files, 0, "nothing finished");
        assert_eq!(snap.cpu_permits.0, snap.cpu_permits.1, "{snap:?}");
        assert_eq!(snap.io_permits.0, snap.io_permits.1, "{snap:?}");
        assert_eq!(snap.active_workers, 0);
        assert_eq!(snap.buffer_bytes, 0);
    });
}

/// A pipeline that reports to its own fresh metrics.
fn observed_pipeline() -> (Pipeline, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let pipeline = Pipeline::builder()
        .stages(parse_stages("zstd:3,blake3").expect("stages"))
        .chunk_size(CHUNK)
        .threads(2)
        .metrics(Arc::clone(&metrics))
        .build()
        .expect("pipeline");
    (pipeline, metrics)
}

/// The counters and histogram sample counts a file's chunks leave, and
/// whether its CPU histograms hold time.
fn chunk_figures(snap: &Snapshot) -> (u64, u64, u64, Vec<(String, u64)>) {
    for (family, label) in [
        (Family::ChunkCpu, ""),
        (Family::ChunkTime, ""),
        (Family::StageCpu, "zstd"),
        (Family::StageCpu, "blake3"),
    ] {
        let l = snap
            .latency(family, label)
            .unwrap_or_else(|| panic!("no {family:?} {label}: {:?}", snap.latencies));
        assert!(l.count() > 0 && l.sum_ns > 0, "{} is empty", l.key());
    }
    assert_ordered(snap);
    let counts = snap
        .latencies
        .iter()
        .map(|l| (l.key(), l.count()))
        .collect();
    (snap.chunks, snap.bytes_read, snap.bytes_written, counts)
}

#[test]
fn the_small_file_path_records_what_a_streamed_run_records() {
    watchdog(60, || {
        let dir = tempfile::tempdir().expect("tempdir");
        // Below the small-file limit: two chunks, one chunk, one empty chunk.
        let sizes = [2 * CHUNK - 77, 10_000, 0];
        let inputs: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let path = dir.path().join(format!("in{i}"));
                std::fs::write(&path, mixed_data(len, i as u64)).expect("write input");
                path
            })
            .collect();
        let streamed = |paths: &[std::path::PathBuf]| {
            let (pipeline, metrics) = observed_pipeline();
            for path in paths {
                let file = std::fs::File::open(path).expect("open");
                pipeline.run(file, std::io::sink()).expect("streamed run");
            }
            metrics.snapshot()
        };

        // A batch of small files against the same files streamed.
        let (pipeline, metrics) = observed_pipeline();
        let jobs = inputs
            .iter()
            .map(|p| syncpipe::batch::BatchJob {
                input: p.clone(),
                output: Some(p.with_extension("batch")),
                size: std::fs::metadata(p).expect("stat").len(),
            })
            .collect();
        let report = pipeline.process_batch(jobs, &Default::default());
        assert_eq!(report.done(), 3, "{report:?}");
        let batch = metrics.snapshot();
        assert_eq!(batch.files, 3);
        assert_eq!(batch.chunks, 4);
        assert_eq!(chunk_figures(&batch), chunk_figures(&streamed(&inputs)));

        // One small file through process_path against the same file streamed.
        let (pipeline, metrics) = observed_pipeline();
        pipeline
            .process_path(
                &inputs[0],
                &inputs[0].with_extension("one"),
                syncpipe::Overwrite::Refuse,
            )
            .expect("process_path");
        let one = metrics.snapshot();
        assert_eq!(one.files, 1);
        assert_eq!(one.chunks, 2);
        assert_eq!(one.active_workers, 0);
        assert_eq!(one.buffer_bytes, 0);
        assert_eq!(chunk_figures(&one), chunk_figures(&streamed(&inputs[..1])));
    });
}
