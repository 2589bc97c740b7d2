//! What a run reports back: sizes, time, buffer reuse, memory, waits.

use std::time::Duration;

use crate::format::DIGEST_LEN;
use crate::stages::ChecksumKind;
use crate::tuner::{ChunkMethod, SizeChange};

/// The outcome of one successful run. The library never prints; the binary
/// turns this into its summary line.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Bytes read from the input.
    pub bytes_in: u64,
    /// Bytes written to the output.
    pub bytes_out: u64,
    /// Bytes of original data: read when processing, written when restoring.
    pub original_bytes: u64,
    /// Chunks processed.
    pub chunks: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The checksum of the run, if any, and the digest of the whole original.
    pub checksum: Option<ChecksumKind>,
    /// Digest of the whole original (computed on process, checked on restore).
    pub digest: Option<[u8; DIGEST_LEN]>,
    /// Bytes per chunk of the run (for restore: as the container says);
    /// with hill climbing, the largest size used.
    pub chunk_size: usize,
    /// How the chunk sizes were chosen (process only).
    pub chunk_method: ChunkMethod,
    /// Every chunk size a process run used, from its start (one entry
    /// unless hill climbing changed it); empty for restore.
    pub chunk_sizes: Vec<SizeChange>,
    /// Unix permission bits of the original, as recorded in the container
    /// (restore and verify), or of the input file (process).
    pub mode: Option<u32>,
    /// Buffers taken from the pool that were reused.
    pub buffers_reused: u64,
    /// Buffers taken from the pool that had to be allocated.
    pub buffers_allocated: u64,
    /// Most bytes of chunk data alive at once during the run.
    pub peak_chunk_bytes: u64,
    /// CPU-permit acquires that had to wait, and their total wait, over the
    /// governor's lifetime (shared governors add up every run).
    pub cpu_waits: (u64, Duration),
    /// CPU time of each serial thread of the run, as the OS accounts it
    /// (`CLOCK_THREAD_CPUTIME_ID`, read as each thread ends). The parallel
    /// part (the CPU workers) is what is left of the process's CPU time.
    /// All zero for a small file, which runs on the caller's thread.
    pub thread_cpu: ThreadCpu,
}

/// CPU time of the serial thread roles of one streamed run: the numbers
/// the scaling model of `docs/performance.md` ("Scaling") is built from,
/// since each of these runs on one thread and caps the run at
/// 1 / (its CPU time per byte) whatever the core count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadCpu {
    /// The reader: reading the input (and the container's records, on restore).
    pub reader: Duration,
    /// The hasher: a whole-file digest that cannot be merged from the
    /// workers' pieces (SHA-256; BLAKE3 over unaligned chunks).
    pub hasher: Duration,
    /// The dispatcher: CPU permits and handing out the jobs.
    pub dispatcher: Duration,
    /// The writer: ordering, writing, and the restore side's digest.
    pub writer: Duration,
}

impl ThreadCpu {
    /// The four roles' sum.
    pub fn total(&self) -> Duration {
        self.reader + self.hasher + self.dispatcher + self.writer
    }
}

impl Report {
    /// Throughput in MB/s (10^6 bytes per second) of original data, the
    /// convention of zstd and the peer tables in both directions.
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.original_bytes as f64 / 1e6 / secs
        } else {
            0.0
        }
    }

    /// Share of reused buffers among all buffers taken, 0.0–1.0.
    pub fn reuse_rate(&self) -> f64 {
        reuse_rate(self.buffers_reused, self.buffers_allocated)
    }

    /// The whole-file digest as lowercase hex, if there is one.
    pub fn digest_hex(&self) -> Option<String> {
        self.digest.map(|d| hex(&d))
    }
}

/// Bytes as lowercase hex, as `sha256sum` and `b3sum` print digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Share of `reused` among all buffers taken (`reused + allocated`),
/// 0.0–1.0; 0.0 when none was taken.
pub(crate) fn reuse_rate(reused: u64, allocated: u64) -> f64 {
    let total = reused + allocated;
    if total == 0 {
        0.0
    } else {
        reused as f64 / total as f64
    }
}
