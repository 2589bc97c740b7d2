//! Header parsing: any bytes give a header or an error, never a panic, and
//! a header that parses re-encodes to the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncpipe::format::Header;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    if let Ok((header, raw)) = Header::read_with_bytes(&mut input) {
        // The format has one encoding per header: what was accepted must
        // be exactly what the writer would produce.
        assert_eq!(header.encode(), raw);
        assert_eq!(&data[..raw.len()], &raw[..]);
    }
});
