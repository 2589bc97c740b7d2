//! `--optimize`: named presets over the tuning knobs, for people who know
//! what they want (speed, quick results, a small footprint) rather than
//! which knob gives it. A preset only fills the knobs that were not set:
//! an explicit `--chunk-size`, `-T`, `--cpu-tokens`, `--io-tokens`,
//! `--channel-depth`, `--scheduler` or `--files-in-flight` always wins.

use crate::batch::Policy;

/// What to optimise for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Optimize {
    /// Bytes per second: 64 KiB chunks (fastest in the chunk-size sweep of
    /// `docs/performance.md`: zstd picks smaller, cache-resident tables for
    /// small inputs; at some cost in ratio), a deep queue, files in the
    /// order found.
    Throughput,
    /// Time to the first finished output and small-file completion: 64 KiB
    /// chunks (a chunk is done soonest), a shallow queue, the fair
    /// scheduler.
    Latency,
    /// Least CPU, memory and disk pressure on a shared machine: one
    /// thread, one CPU token, small chunks, a shallow queue, few IOs and
    /// few files in flight.
    Resources,
}

/// The knob values of a preset; 0 means "the usual default" (cores for
/// threads, the threads for CPU tokens, the storage type's depth for IO
/// tokens, the batch's default files in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Threads in the CPU pool.
    pub threads: usize,
    /// CPU tokens.
    pub cpu_tokens: usize,
    /// IO tokens.
    pub io_tokens: usize,
    /// Bytes per chunk.
    pub chunk_size: usize,
    /// Depth of the bounded channels.
    pub channel_depth: usize,
    /// Batch scheduling policy.
    pub scheduler: Policy,
    /// Files of a batch worked on at once.
    pub files_in_flight: usize,
}

impl Optimize {
    /// The knob values. Why these: `docs/design.md`, "Optimisation modes";
    /// the chunk-size trade-off is measured in `docs/performance.md`.
    pub fn preset(self) -> Preset {
        match self {
            Optimize::Throughput => Preset {
                threads: 0,
                cpu_tokens: 0,
                io_tokens: 0,
                chunk_size: 64 << 10,
                channel_depth: 8,
                scheduler: Policy::Simple,
                files_in_flight: 0,
            },
            Optimize::Latency => Preset {
                threads: 0,
                cpu_tokens: 0,
                io_tokens: 0,
                chunk_size: 64 << 10,
                channel_depth: 2,
                scheduler: Policy::Fair,
                files_in_flight: 0,
            },
            Optimize::Resources => Preset {
                threads: 1,
                cpu_tokens: 1,
                io_tokens: 2,
                chunk_size: 256 << 10,
                channel_depth: 1,
                scheduler: Policy::Fair,
                files_in_flight: 2,
            },
        }
    }
}

named_enum!(
    Optimize,
    "optimisation",
    [
        Optimize::Throughput => "throughput",
        Optimize::Latency => "latency",
        Optimize::Resources => "resources",
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_presets_differ() {
        let all = [Optimize::Throughput, Optimize::Latency, Optimize::Resources];
        for o in all {
            assert_eq!(o.name().parse::<Optimize>().expect("valid"), o);
        }
        assert!("fast".parse::<Optimize>().is_err());
        let t = Optimize::Throughput.preset();
        let l = Optimize::Latency.preset();
        let r = Optimize::Resources.preset();
        assert!(t.channel_depth > l.channel_depth && t.scheduler != l.scheduler);
        assert!(r.chunk_size > t.chunk_size && r.channel_depth == 1);
        assert_eq!((r.threads, r.cpu_tokens), (1, 1));
        assert_eq!(t.scheduler, Policy::Simple);
    }
}
