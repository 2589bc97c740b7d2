//! An encrypted container restored with a fixed raw key (32 bytes of 0x42,
//! the key of the golden v2 fixtures): exercises the key check, the header
//! MAC and the AEAD open path with hostile bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use syncpipe::{Pipeline, Secret};

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        Pipeline::builder()
            .threads(1)
            .cpu_tokens(1)
            .channel_depth(1)
            .secret(Secret::key(&[0x42; 32]).expect("32 bytes"))
            .build()
            .expect("a valid fixed configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = pipeline().restore(data, std::io::sink());
});
