//! Property test: any data, chunk size, stage chain and thread layout round
//! trips, and the container does not depend on the thread layout.

use crate::common;
use proptest::prelude::*;
use syncpipe::stages::parse_stages;
use syncpipe::Pipeline;

const CHAINS: &[&str] = &[
    "passthrough",
    "blake3",
    "zstd:1",
    "zstd:7,sha256",
    "lz4",
    "lz4,blake3",
    "gzip:1,sha256",
    "deflate:9",
    "brotli:1",
    "brotli:4,blake3",
];

fn build(chain: &str, chunk: usize, threads: usize, depth: usize) -> Pipeline {
    Pipeline::builder()
        .stages(parse_stages(chain).expect("valid chain"))
        .chunk_size(chunk)
        .threads(threads)
        .channel_depth(depth)
        .build()
        .expect("valid settings")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(
        len in 0usize..150_000,
        seed in any::<u64>(),
        random_tail in proptest::collection::vec(any::<u8>(), 0..300),
        chunk in 1usize..40_000,
        chain in 0usize..CHAINS.len(),
        threads in 1usize..5,
        depth in 1usize..5,
    ) {
        let mut data = common::mixed_data(len, seed);
        data.extend_from_slice(&random_tail);
        let chain = CHAINS[chain];
        let p = build(chain, chunk, threads, depth);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        let mut back = Vec::new();
        p.restore(&container[..], &mut back).expect("restore");
        prop_assert_eq!(&back, &data);

        let single = build(chain, chunk, 1, 1);
        let mut reference = Vec::new();
        single.run(&data[..], &mut reference).expect("process");
        prop_assert!(reference == container, "container depends on threads/depth");
        prop_assert!(p.governor().all_returned());
    }

    /// Restore never panics or hangs on arbitrary damage: it either fails
    /// cleanly or (if the damage missed everything checked) returns the data.
    #[test]
    fn damaged_containers_fail_cleanly(
        seed in any::<u64>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let data = common::mixed_data(20_000, seed);
        let p = build("lz4,blake3", 3_000, 2, 2);
        let mut container = Vec::new();
        p.run(&data[..], &mut container).expect("process");
        for (at, x) in flips {
            let i = at % container.len();
            container[i] ^= x;
        }
        if let Some(c) = cut {
            container.truncate(c % container.len());
        }
        let mut back = Vec::new();
        let r = p.restore(&container[..], &mut back);
        prop_assert!(r.is_err(), "damage must be detected");
        prop_assert!(p.governor().all_returned());
    }
}
