//! A `.gz` file (syncpipe's `gz` members, BGZF blocks, any other gzip),
//! laid out from the members' size fields and decoded member run by
//! member run as the parallel restore does, and restored as a stream
//! through the library (see `standard.rs`).
#![no_main]

mod standard;

use libfuzzer_sys::fuzz_target;
use syncpipe::gz::{layout_at, member};
use syncpipe::Format;

fuzz_target!(|data: &[u8]| {
    standard::check(
        data,
        &[Format::Gz, Format::Bgzf],
        |mut read_at, len, limit| layout_at(&mut read_at, len, limit),
        member::decode,
    );
});
