//! The IO tokens really bound concurrent reads and writes across every file
//! of a run: instrumented readers and writers, shared by several pipelines
//! on one governor, record the most I/O calls in progress at once.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::{mixed_data, watchdog};
use syncpipe::{Governor, Pipeline};

/// Calls in progress now and the most seen, over all instrumented handles.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    /// Counts one call in progress for `f`'s duration. The sleep makes the
    /// call long enough that, without a bound, many would overlap.
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(2));
        let out = f();
        self.now.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

struct Reader<'a> {
    data: &'a [u8],
    gauge: Arc<Gauge>,
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let gauge = Arc::clone(&self.gauge);
        gauge.during(|| self.data.read(buf))
    }
}

struct Writer {
    out: Vec<u8>,
    gauge: Arc<Gauge>,
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let gauge = Arc::clone(&self.gauge);
        gauge.during(|| self.out.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn max_concurrent_io(io_tokens: usize) -> usize {
    const FILES: usize = 6;
    let governor = Arc::new(Governor::new(4, io_tokens));
    let gauge = Arc::new(Gauge::default());
    let data = Arc::new(mixed_data(1 << 20, 4));
    let handles: Vec<_> = (0..FILES)
        .map(|_| {
            let (governor, gauge, data) = (governor.clone(), gauge.clone(), data.clone());
            thread::spawn(move || {
                let p = Pipeline::builder()
                    .governor(governor)
                    .stages(syncpipe::stages::parse_stages("passthrough").expect("valid"))
                    .chunk_size(16 << 10)
                    .threads(2)
                    .build()
                    .expect("valid settings");
                let reader = Reader {
                    data: &data,
                    gauge: gauge.clone(),
                };
                let writer = Writer {
                    out: Vec::new(),
                    gauge,
                };
                p.run(reader, writer).expect("process");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a run panicked");
    }
    assert!(governor.all_returned(), "permits leaked");
    gauge.max.load(Ordering::SeqCst)
}

#[test]
fn io_tokens_cap_concurrent_reads_and_writes_across_files() {
    watchdog(120, || {
        for tokens in [1, 3] {
            let max = max_concurrent_io(tokens);
            assert!(
                max <= tokens,
                "{max} I/O calls at once with {tokens} tokens"
            );
            // Six files, each with a reader and a writer thread, always
            // have work waiting: the bound is reached, not just respected.
            assert_eq!(max, tokens, "the bound is the limit, not an accident");
        }
        // Plenty of tokens: the same runs overlap more than 3 calls, so
        // the cap above is the governor's doing.
        assert!(max_concurrent_io(64) > 3);
    });
}
