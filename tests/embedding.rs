//! What an embedder reaches for: `ParReader` (restore as `impl Read`),
//! `ParWriter` over borrowed writers, the shared CPU pool, `io::Error`
//! conversion. Every test runs under a watchdog: the adapters pump two
//! channels from the caller's thread, and a mistake there is a deadlock.

use std::io::{self, Read, Write};

use crate::common::{mixed_data, watchdog};
use syncpipe::{parse_stages, ErrorKind, Pipeline};

fn pipeline(stages: &str, chunk: usize) -> Pipeline {
    Pipeline::builder()
        .stages(parse_stages(stages).expect("valid stages"))
        .chunk_size(chunk)
        .threads(2)
        .channel_depth(2)
        .build()
        .expect("valid")
}

#[test]
fn par_reader_restores_as_a_stream_in_any_read_sizes() {
    watchdog(60, || {
        let p = pipeline("zstd:3,sha256", 4096);
        // Large enough that the output channel fills many times over.
        let data = mixed_data(3_000_000, 21);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        for read_size in [1usize, 777, 65536, 1 << 20] {
            let mut r = p.par_reader(&container[..]);
            let mut back = Vec::new();
            let mut buf = vec![0; read_size];
            loop {
                let n = r.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                back.extend_from_slice(&buf[..n]);
            }
            assert_eq!(back.len(), data.len(), "read size {read_size}");
            assert!(back == data, "read size {read_size}: bytes differ");
            let report = r.report().expect("a report at the end");
            assert_eq!(report.original_bytes, data.len() as u64);
            // Reading past the end stays at the end.
            assert_eq!(r.read(&mut buf).expect("read at end"), 0);
        }
        assert!(p.governor().all_returned());
    });
}

#[test]
fn par_reader_reports_a_damaged_container_as_invalid_data() {
    watchdog(60, || {
        let p = pipeline("lz4,blake3", 4096);
        let data = mixed_data(200_000, 5);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        let mut bad = container.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        let err = p
            .par_reader(&bad[..])
            .read_to_end(&mut Vec::new())
            .expect_err("a flipped bit must fail");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<syncpipe::Error>());
        assert_eq!(inner.map(|e| e.kind()), Some(ErrorKind::Integrity));
        // Cut short: the bytes before the cut may come out, the end fails.
        let cut = &container[..container.len() - 10];
        let err = p
            .par_reader(cut)
            .read_to_end(&mut Vec::new())
            .expect_err("a truncated container must fail");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(p.governor().all_returned());
    });
}

#[test]
fn a_par_reader_dropped_half_way_stops_its_run() {
    watchdog(60, || {
        let p = pipeline("zstd:1", 4096);
        let data = mixed_data(2_000_000, 3);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        {
            let mut r = p.par_reader(&container[..]);
            let mut first = vec![0; 10_000];
            r.read_exact(&mut first).expect("first bytes");
            assert_eq!(first, data[..10_000]);
        }
        // The drop joined the run: every permit is back.
        assert!(p.governor().all_returned());
    });
}

#[test]
fn par_writer_writes_into_a_borrowed_vec_the_bytes_run_writes() {
    watchdog(60, || {
        let p = pipeline("zstd:3,sha256", 4096);
        let data = mixed_data(1_500_000, 9);
        let mut container = Vec::new();
        {
            let mut w = p.par_writer(&mut container);
            for piece in data.chunks(100_003) {
                w.write_all(piece).expect("write");
            }
            let report = w.finish_with_report().expect("finish").1;
            assert_eq!(report.bytes_in, data.len() as u64);
        }
        let mut one_shot = Vec::new();
        p.run(&data[..], &mut one_shot).expect("process");
        assert!(container == one_shot, "ParWriter gives the same container");
        assert!(p.governor().all_returned());
    });
}

/// A writer that fails after `room` bytes.
#[derive(Debug)]
struct Full {
    room: usize,
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room < buf.len() {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no room"));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn par_writer_over_a_failing_writer_reports_it_and_stops() {
    watchdog(60, || {
        let p = pipeline("passthrough", 4096);
        let data = mixed_data(2_000_000, 4);
        let mut sink = Full { room: 100_000 };
        let mut w = p.par_writer(&mut sink);
        // Writes may fail once the output is refused; finish names it.
        let _ = w.write_all(&data);
        let err = w.finish().expect_err("the writer is full");
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert!(err.to_string().contains("no room"), "{err}");
        assert!(p.governor().all_returned());
    });
}

#[test]
fn an_explicit_pool_is_used_as_given() {
    watchdog(60, || {
        let pool = std::sync::Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .thread_name(|i| format!("embedder-{i}"))
                .build()
                .expect("pool"),
        );
        let p = Pipeline::builder()
            .thread_pool(pool)
            .stages(parse_stages("zstd:1").expect("valid"))
            .chunk_size(4096)
            .build()
            .expect("valid");
        assert_eq!(p.config().threads, 3);
        let data = mixed_data(300_000, 2);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        let mut back = Vec::new();
        p.par_reader(&container[..])
            .read_to_end(&mut back)
            .expect("restore");
        assert!(back == data);
    });
}
