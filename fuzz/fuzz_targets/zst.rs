//! A `.zst` file, laid out (seek table or frame walk) and decoded frame by
//! frame as the parallel restore does, and restored as a stream through
//! the library (see `standard.rs`).
#![no_main]

mod standard;

use libfuzzer_sys::fuzz_target;
use syncpipe::zst::{frame, layout_at};
use syncpipe::Format;

fuzz_target!(|data: &[u8]| {
    standard::check(
        data,
        &[Format::Zst],
        |mut read_at, len, limit| layout_at(&mut read_at, len, limit),
        frame::decompress,
    );
});
