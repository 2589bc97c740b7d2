//! How big each chunk is: fixed, picked from the file size, or hill-climbed
//! from the CPU time the chunks actually take (`--chunk-method`).
//!
//! Why adapt at all: a chunk is the unit of parallel work, so its CPU time
//! is the grain of the pipeline. Too fine (well under a millisecond) and the
//! fixed costs per chunk — a channel hop, a permit, a rayon job, a record
//! head, a compressor reset — are a visible share of the work; too coarse
//! (many milliseconds) and the pipeline fills and drains slowly, the tail of
//! a file runs on one core, memory in flight grows, and a cancel waits for
//! the slowest chunk. How many bytes make a good grain depends on the stage:
//! lz4 goes through a MiB in under a millisecond, brotli:9 needs tens. The
//! hill climber keeps the *time* per chunk in a band instead of the size,
//! so the same setting suits every stage list.
//!
//! What a chunk costs is the CPU time of its job on a worker (stages,
//! cipher, checksum) plus the writer's time for its record: the copy into
//! the page cache is CPU work done for that chunk too, and on a fast stage
//! list it is a large part (passthrough, by the `-v` line of
//! `--chunk-method hillclimb` on 512 MiB here: 0.14–0.26 ms per ~1 MiB
//! chunk for the job alone, 0.39–0.47 ms with the write). Left out, the
//! climber would grow passthrough's
//! chunks to sizes where the writer, which it could not see, slows down
//! (`docs/performance.md`, "Chunk-size sweep").
//!
//! The climber is a band controller: after every window of
//! [`WINDOW`] chunks of the current size it looks at their mean cost;
//! above [`SLOW_NS`] the next chunks get one [`STEP`] smaller, below
//! [`FAST_NS`] one step larger, in between nothing changes. The band is 10×
//! wide and one step changes the size by at most 2× (128 → 256 KiB), so
//! a stage whose cost is proportional to the bytes can never be pushed out
//! of the band by a step: it converges and then stays put — no oscillation.
//!
//! One guard on top of the band: growing must not make a byte dearer. The
//! first window after a step up is compared, per byte, with the last
//! window before it; if it costs more than [`WORSE`] more per byte, the
//! step is taken back and that size becomes a ceiling for the rest of the
//! run. The band alone cannot see such a cliff: a passthrough chunk stays
//! under 0.5 ms up to several MiB, while this VM's page cache makes a
//! write of 4 MiB chunks 4× dearer per byte than of 1 MiB ones
//! (`docs/performance.md`, "Chunk-size sweep"). A cost proportional to the
//! bytes never trips it, so the no-oscillation argument still holds; a
//! noisy window can trip it wrongly, which only stops growth (never a
//! shrink the band asks for) one step above a size that was fine.
//! `benches/chunk_goal.sh` measures it against every fixed size, in
//! rounds of random order so that the machine's drift hits all rows alike
//! (`docs/performance.md`, "Chunk-size sweep").
//!
//! What it does not do: try other sizes side by side before climbing. The
//! one fixed size it loses to (zstd:3 at 128 KiB on mixed.bin, ~6%) wins
//! by keeping small tables warm in the cache across consecutive chunks;
//! sizes tried alternately never warm them, and sizes tried in long runs
//! are swamped by how much the data's cost varies. Measured and dropped:
//! see "Surveying the sizes first" in `docs/performance.md`.

use std::time::Duration;

use parking_lot::Mutex;

/// Smallest chunk the adaptive methods pick.
pub const MIN_CHUNK: usize = 128 << 10;
/// Largest chunk the adaptive methods pick; the header of a hill-climbed
/// container records it as the chunk size (every chunk is at most this).
pub const MAX_CHUNK: usize = 4 << 20;
/// One adjustment of the hill climber, and the granularity of every
/// adaptive size.
pub const STEP: usize = 128 << 10;
/// Mean chunk CPU time above which the climber shrinks the chunks.
pub const SLOW_NS: u64 = 5_000_000;
/// Mean chunk CPU time below which the climber grows the chunks.
pub const FAST_NS: u64 = 500_000;
/// Chunks averaged per decision: enough to smooth the chunk-to-chunk spread
/// of mixed data (text next to already-compressed bytes can differ 10× in
/// cost), few enough that a 1 GiB file sees dozens of decisions.
pub const WINDOW: u32 = 8;
/// How much dearer per byte the first window after a step up may be than
/// the window before it before the step is taken back: above the
/// window-to-window spread of one size on steady data (a few percent),
/// well below the cliff it is there for (4× per byte).
pub const WORSE: f64 = 0.25;
/// The most chunks `filesize` aims to give each CPU token, so that the
/// tokens share the file evenly and the tail of the file is short.
pub const CHUNKS_PER_TOKEN: u64 = 4;
/// The largest size `filesize` picks: large files get the default chunk
/// size, which `docs/performance.md` shows is near the best fixed size.
pub const FILESIZE_MAX: usize = 1 << 20;

/// How chunk sizes are chosen (`--chunk-method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkMethod {
    /// Every chunk has the configured chunk size. The default: the same
    /// input always gives the same container bytes.
    #[default]
    Fixed,
    /// One size per file, from its length: about four chunks per CPU
    /// token, within 128 KiB..=1 MiB.
    FileSize,
    /// Starts where `filesize` (or an explicit chunk size) would, then
    /// adjusts the size of upcoming chunks from their measured CPU time.
    HillClimb,
}

named_enum!(
    ChunkMethod,
    "chunk method",
    [
        ChunkMethod::Fixed => "fixed",
        ChunkMethod::FileSize => "filesize",
        ChunkMethod::HillClimb => "hillclimb",
    ]
);

/// Rounds to the nearest whole [`STEP`] within [`MIN_CHUNK`]..=`max`.
fn clamp_to_steps(bytes: u64, max: usize) -> usize {
    let steps = (bytes + STEP as u64 / 2) / STEP as u64;
    (steps.saturating_mul(STEP as u64)).clamp(MIN_CHUNK as u64, max as u64) as usize
}

/// The `filesize` pick for an input of `len` bytes (unknown: stdin, a
/// pipe) shared by `cpu_tokens` workers.
pub fn size_for_file(len: Option<u64>, cpu_tokens: usize) -> usize {
    match len {
        None => FILESIZE_MAX,
        Some(len) => clamp_to_steps(
            len / (CHUNKS_PER_TOKEN * cpu_tokens.max(1) as u64),
            FILESIZE_MAX,
        ),
    }
}

/// The pure hill-climbing rule, apart from any clock or thread: fed the
/// CPU time of chunks of the current size, it says what the next size is.
#[derive(Debug, Clone)]
pub struct Climber {
    size: usize,
    sum_ns: u64,
    count: u32,
    last_mean_ns: u64,
    /// After a step up: the size it came from and that size's cost per
    /// byte, until the first window of the new size is judged.
    grown_from: Option<(usize, f64)>,
    /// The largest size the climber may still use (lowered by the guard).
    ceiling: usize,
}

impl Climber {
    /// A climber starting at `start`, rounded into the clamp.
    pub fn new(start: usize) -> Climber {
        Climber {
            size: clamp_to_steps(start as u64, MAX_CHUNK),
            sum_ns: 0,
            count: 0,
            last_mean_ns: 0,
            grown_from: None,
            ceiling: MAX_CHUNK,
        }
    }

    /// The largest size still allowed: [`MAX_CHUNK`] unless a step up made
    /// bytes dearer (see [`WORSE`]).
    #[cfg(test)]
    fn ceiling(&self) -> usize {
        self.ceiling
    }

    /// Mean cost per chunk (job plus write) of the last complete window.
    pub fn last_mean_ns(&self) -> u64 {
        self.last_mean_ns
    }

    /// The size the next chunks get.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Adds the writer's time for a chunk of `len` bytes to the window (a
    /// chunk of another size is ignored, as in [`Climber::observe`]). The
    /// window still counts chunks by their CPU jobs; a write lands in the
    /// window that is open when it happens, which in steady state holds as
    /// many writes as jobs.
    pub fn add_write(&mut self, len: usize, write_ns: u64) {
        if len == self.size {
            self.sum_ns = self.sum_ns.saturating_add(write_ns);
        }
    }

    /// Takes one finished chunk of `len` bytes that took `cpu_ns`. Returns
    /// the new size when this completes a window that changes it.
    ///
    /// Chunks of another size are ignored: they were read before the last
    /// change (up to depth + tokens chunks are in flight) and would blur
    /// the window of the new size. So is a short final chunk.
    pub fn observe(&mut self, len: usize, cpu_ns: u64) -> Option<usize> {
        if len != self.size {
            return None;
        }
        self.sum_ns = self.sum_ns.saturating_add(cpu_ns);
        self.count += 1;
        if self.count < WINDOW {
            return None;
        }
        let mean = self.sum_ns / u64::from(self.count);
        self.last_mean_ns = mean;
        self.sum_ns = 0;
        self.count = 0;
        let per_byte = mean as f64 / self.size as f64;
        if let Some((from, before)) = self.grown_from.take() {
            if per_byte > before * (1.0 + WORSE) {
                // The step up made every byte dearer: back, and no higher.
                self.ceiling = from;
                self.size = from;
                return Some(from);
            }
        }
        let next = if mean > SLOW_NS {
            self.size.saturating_sub(STEP).max(MIN_CHUNK)
        } else if mean < FAST_NS && self.size + STEP <= self.ceiling {
            self.grown_from = Some((self.size, per_byte));
            self.size + STEP
        } else {
            self.size
        };
        if next == self.size {
            return None;
        }
        self.size = next;
        Some(next)
    }
}

/// A size change, for `-v` and `--json`: from chunk `from_chunk` on, the
/// chunks were `size` bytes (the run's first entry is its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeChange {
    /// Index of the first chunk read at this size.
    pub from_chunk: u64,
    /// The chunk size from then on.
    pub size: usize,
    /// Mean cost per chunk (job plus write) of the window that led to the change
    /// (zero for the start).
    pub mean_cost: Duration,
}

/// The climber shared by one run's reader (which asks for sizes) and its
/// CPU workers and writer (which report times).
///
/// A mutex rather than atomics: a decision reads and resets a sum and a
/// count together, which two separate atomics could not do consistently,
/// and the lock is taken once per chunk (≥ 128 KiB of work, ≥ tens of
/// microseconds), so it is never contended enough to matter.
#[derive(Debug)]
pub struct Tuner {
    state: Mutex<TunerState>,
}

#[derive(Debug)]
struct TunerState {
    climber: Climber,
    /// The size just decided, not yet seen by the reader.
    pending: Option<(usize, Duration)>,
    /// Chunks the reader has handed out so far.
    read: u64,
    history: Vec<SizeChange>,
}

impl Tuner {
    /// A tuner whose first chunks are `start` bytes (rounded into the clamp).
    pub fn new(start: usize) -> Tuner {
        let climber = Climber::new(start);
        let first = SizeChange {
            from_chunk: 0,
            size: climber.size(),
            mean_cost: Duration::ZERO,
        };
        Tuner {
            state: Mutex::new(TunerState {
                climber,
                pending: None,
                read: 0,
                history: vec![first],
            }),
        }
    }

    /// The size of the next chunk to read (called by the reader, in order).
    pub fn next_size(&self) -> usize {
        let mut s = self.state.lock();
        if let Some((size, mean_cost)) = s.pending.take() {
            let from_chunk = s.read;
            s.history.push(SizeChange {
                from_chunk,
                size,
                mean_cost,
            });
        }
        s.read += 1;
        s.climber.size()
    }

    /// Reports that a chunk of `len` bytes took `cpu` on a worker.
    pub fn record(&self, len: usize, cpu: Duration) {
        let mut s = self.state.lock();
        let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        if let Some(size) = s.climber.observe(len, ns) {
            let mean = Duration::from_nanos(s.climber.last_mean_ns());
            s.pending = Some((size, mean));
        }
    }

    /// Reports that the writer took `took` to write a chunk of `len` bytes.
    pub fn record_write(&self, len: usize, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.state.lock().climber.add_write(len, ns);
    }

    /// Every size the run used, from its start.
    pub fn history(&self) -> Vec<SizeChange> {
        self.state.lock().history.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic stage whose cost is `ns_per_kib` per KiB of chunk.
    fn climb(start: usize, ns_per_kib: u64, chunks: usize) -> (Climber, Vec<usize>) {
        let mut c = Climber::new(start);
        let mut sizes = Vec::new();
        for _ in 0..chunks {
            let len = c.size();
            c.observe(len, len as u64 / 1024 * ns_per_kib);
            sizes.push(c.size());
        }
        (c, sizes)
    }

    fn mean_ns(size: usize, ns_per_kib: u64) -> u64 {
        size as u64 / 1024 * ns_per_kib
    }

    #[test]
    fn converges_into_the_band_from_both_sides() {
        // 20 µs/KiB (brotli-like): 1 MiB = 20 ms, far too slow.
        let (c, _) = climb(1 << 20, 20_000, 2_000);
        assert!(mean_ns(c.size(), 20_000) <= SLOW_NS, "{}", c.size());
        // 0.2 µs/KiB (lz4-like): 1 MiB = 0.2 ms, too fast.
        let (c, _) = climb(1 << 20, 200, 2_000);
        assert!(mean_ns(c.size(), 200) >= FAST_NS || c.size() == MAX_CHUNK);
        // 4 µs/KiB (zstd-like): 1 MiB = 4 ms, already in the band.
        let (c, sizes) = climb(1 << 20, 4_000, 500);
        assert_eq!(c.size(), 1 << 20);
        assert!(
            sizes.iter().all(|&s| s == 1 << 20),
            "no move inside the band"
        );
    }

    #[test]
    fn respects_the_clamp_and_the_step() {
        // So slow that even the smallest chunk is out of the band.
        let (c, sizes) = climb(4 << 20, 1_000_000, 2_000);
        assert_eq!(c.size(), MIN_CHUNK);
        // So fast that even the largest is.
        let (c2, sizes2) = climb(MIN_CHUNK, 1, 2_000);
        assert_eq!(c2.size(), MAX_CHUNK);
        for seq in [&sizes, &sizes2] {
            for w in seq.windows(2) {
                let d = w[0].abs_diff(w[1]);
                assert!(d == 0 || d == STEP, "moves by one step: {w:?}");
            }
            assert!(seq.iter().all(|&s| (MIN_CHUNK..=MAX_CHUNK).contains(&s)));
            assert!(seq.iter().all(|s| s.is_multiple_of(STEP)));
        }
    }

    #[test]
    fn does_not_oscillate_on_constant_cost() {
        for ns_per_kib in [1, 150, 400, 1_000, 4_000, 9_000, 40_000, 200_000] {
            let (_, sizes) = climb(1 << 20, ns_per_kib, 3_000);
            // Once it has turned, it must never turn back: direction
            // changes of a monotone approach are zero.
            let moves: Vec<i64> = sizes
                .windows(2)
                .map(|w| w[1] as i64 - w[0] as i64)
                .filter(|&d| d != 0)
                .collect();
            assert!(
                moves.windows(2).all(|m| m[0].signum() == m[1].signum()),
                "{ns_per_kib} ns/KiB: {moves:?}"
            );
            // And it settles: the last 1,000 chunks keep one size.
            let tail = &sizes[sizes.len() - 1_000..];
            assert!(tail.iter().all(|&s| s == tail[0]), "{ns_per_kib} ns/KiB");
        }
    }

    #[test]
    fn the_writers_time_counts_toward_the_chunk() {
        // 0.3 ms of stage work alone is under the band: the climber grows.
        let mut alone = Climber::new(1 << 20);
        for _ in 0..WINDOW {
            alone.observe(1 << 20, 300_000);
        }
        assert_eq!(alone.size(), (1 << 20) + STEP);
        // With 0.4 ms of writing per chunk the chunk costs 0.7 ms: in the
        // band, so it stays (a passthrough chunk into the page cache).
        let mut written = Climber::new(1 << 20);
        for _ in 0..WINDOW {
            written.add_write(1 << 20, 400_000);
            written.observe(1 << 20, 300_000);
        }
        assert_eq!(written.size(), 1 << 20);
        assert_eq!(written.last_mean_ns(), 700_000);
        // A write of another size is not this window's.
        let mut other = Climber::new(1 << 20);
        for _ in 0..WINDOW {
            other.add_write(512 << 10, 400_000);
            other.observe(1 << 20, 300_000);
        }
        assert_eq!(other.size(), (1 << 20) + STEP);
    }

    #[test]
    fn a_step_up_that_makes_bytes_dearer_is_taken_back_for_good() {
        // 0.2 µs per KiB up to 2 MiB, 0.8 µs per KiB above (the page-cache
        // cliff of large writes, in miniature): always under the band's
        // 0.5 ms per chunk below the cliff, so the band alone would grow.
        let cost = |size: usize| {
            let per_kib = if size > 2 << 20 { 800 } else { 200 };
            size as u64 / 1024 * per_kib
        };
        let mut c = Climber::new(1 << 20);
        let mut sizes = Vec::new();
        for _ in 0..3_000 {
            let len = c.size();
            c.observe(len, cost(len));
            sizes.push(c.size());
        }
        assert!(
            sizes.iter().max() == Some(&((2 << 20) + STEP)),
            "one step past the cliff, no more"
        );
        assert_eq!(c.ceiling(), 2 << 20);
        assert_eq!(c.size(), 2 << 20, "back below the cliff");
        let tail = &sizes[sizes.len() - 2_000..];
        assert!(tail.iter().all(|&s| s == 2 << 20), "and it stays there");
        // A cost proportional to the bytes never trips the guard: the
        // band's answer is unchanged (it grows to the clamp here).
        let (c, _) = climb(MIN_CHUNK, 1, 2_000);
        assert_eq!((c.size(), c.ceiling()), (MAX_CHUNK, MAX_CHUNK));
    }

    #[test]
    fn the_guard_never_blocks_a_shrink() {
        // Dearer per byte after a step up *and* above the band: the step
        // is taken back (the guard), then the band shrinks as usual.
        let mut c = Climber::new(1 << 20);
        for _ in 0..WINDOW {
            c.observe(1 << 20, 400_000);
        }
        assert_eq!(c.size(), (1 << 20) + STEP);
        for _ in 0..WINDOW {
            c.observe((1 << 20) + STEP, 9_000_000);
        }
        assert_eq!(c.size(), 1 << 20, "taken back");
        for _ in 0..WINDOW {
            c.observe(1 << 20, 9_000_000);
        }
        assert_eq!(c.size(), (1 << 20) - STEP, "the band still shrinks");
    }

    #[test]
    fn chunks_of_another_size_do_not_count() {
        let mut c = Climber::new(1 << 20);
        for _ in 0..100 {
            // Slow, but from before the change: ignored.
            assert_eq!(c.observe(512 << 10, 50_000_000), None);
        }
        assert_eq!(c.size(), 1 << 20);
        for _ in 0..WINDOW - 1 {
            assert_eq!(c.observe(1 << 20, 50_000_000), None);
        }
        assert_eq!(c.observe(1 << 20, 50_000_000), Some((1 << 20) - STEP));
    }

    #[test]
    fn filesize_picks_from_the_length() {
        assert_eq!(size_for_file(None, 2), FILESIZE_MAX);
        assert_eq!(size_for_file(Some(0), 2), MIN_CHUNK);
        assert_eq!(size_for_file(Some(1 << 30), 2), FILESIZE_MAX);
        // 8 MiB over 2 tokens: 4 chunks each of 1 MiB.
        assert_eq!(size_for_file(Some(8 << 20), 2), 1 << 20);
        // 8 MiB over 8 tokens: 256 KiB.
        assert_eq!(size_for_file(Some(8 << 20), 8), 256 << 10);
        for len in [1u64, 100_000, 3 << 20, 77_777_777] {
            let s = size_for_file(Some(len), 3);
            assert!(s.is_multiple_of(STEP) && (MIN_CHUNK..=FILESIZE_MAX).contains(&s));
        }
        assert!("zigzag".parse::<ChunkMethod>().is_err());
        assert_eq!(
            "HillClimb".parse::<ChunkMethod>().expect("valid"),
            ChunkMethod::HillClimb
        );
    }

    #[test]
    fn tuner_records_when_the_reader_sees_a_change() {
        let t = Tuner::new(1 << 20);
        assert_eq!(t.next_size(), 1 << 20);
        for _ in 0..WINDOW {
            t.record(1 << 20, Duration::from_millis(40));
        }
        // Only chunk 0 had been read, so the change applies from chunk 1.
        assert_eq!(t.next_size(), (1 << 20) - STEP);
        let h = t.history();
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].from_chunk, h[0].size), (0, 1 << 20));
        assert_eq!((h[1].from_chunk, h[1].size), (1, (1 << 20) - STEP));
    }
}
