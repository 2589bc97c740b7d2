//! A `.gz` file (syncpipe's `gz` members, BGZF blocks, any other gzip),
//! laid out from the members' size fields and decoded member run by
//! member run as the parallel restore does, and restored as a stream
//! through the library: hostile bytes may only produce errors, never a
//! panic, a hang or an allocation past the limit (libFuzzer's
//! -rss_limit_mb).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use syncpipe::gz::{layout_at, member, Layout};
use syncpipe::{Format, Pipeline};

/// Member runs decoded in parallel are at most this large here (the
/// library's own limit is the memory limit's restore window).
const LIMIT: u64 = 4 << 20;

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        Pipeline::builder()
            .threads(1)
            .cpu_tokens(1)
            .channel_depth(1)
            .build()
            .expect("a valid fixed configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let mut read_at = |offset: u64, buf: &mut [u8]| {
        let start = offset as usize;
        let src = data
            .get(start..start + buf.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    };
    if let Ok(Layout::Frames(spans)) = layout_at(&mut read_at, len, LIMIT) {
        // The layout describes the file: the spans add up to it.
        assert_eq!(spans.iter().map(|s| s.len).sum::<u64>(), len);
        let mut at = 0usize;
        let mut out = Vec::new();
        for s in spans {
            let bytes = &data[at..at + s.len as usize];
            if member::decode(bytes, s.content as usize, &mut out).is_ok() {
                // What decodes is what the size fields promised.
                assert_eq!(out.len() as u64, s.content);
            }
            at += s.len as usize;
        }
    }
    if matches!(Format::detect(data), Some(Format::Gz | Format::Bgzf)) {
        let _ = pipeline().restore(data, std::io::sink());
    }
});
