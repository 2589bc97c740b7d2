//! What the standard-format targets (`zst`, `gz`) share: a file laid out
//! from bytes in memory and decoded unit by unit as the parallel restore
//! does, then restored as a stream through the library. Hostile bytes may
//! only produce errors, never a panic, a hang or an allocation past the
//! limit (libFuzzer's -rss_limit_mb).

use std::io;
use std::sync::OnceLock;

use syncpipe::zst::Layout;
use syncpipe::{Format, Pipeline};

/// Units decoded in parallel are at most this large here (the library's
/// own limit is the memory limit's restore window).
pub const LIMIT: u64 = 4 << 20;

/// A positional reader over the input.
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> io::Result<()> + 'a;

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

/// Lays `data` out with `lay_out(read_at, len, LIMIT)`, decodes each unit
/// with `decode(bytes, expected, out)`, and restores `data` as a stream if
/// it starts as one of `formats`.
pub fn check(
    data: &[u8],
    formats: &[Format],
    lay_out: impl FnOnce(&mut ReadAt<'_>, u64, u64) -> syncpipe::Result<Layout>,
    decode: impl Fn(&[u8], usize, &mut Vec<u8>) -> syncpipe::Result<()>,
) {
    let len = data.len() as u64;
    let mut read_at = |offset: u64, buf: &mut [u8]| {
        let start = offset as usize;
        let src = data
            .get(start..start + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    };
    if let Ok(Layout::Frames(spans)) = lay_out(&mut read_at, len, LIMIT) {
        // The layout describes the file: the spans add up to it.
        assert_eq!(spans.iter().map(|s| s.len).sum::<u64>(), len);
        let mut at = 0usize;
        let mut out = Vec::new();
        for s in spans {
            let bytes = &data[at..at + s.len as usize];
            if decode(bytes, s.content as usize, &mut out).is_ok() {
                // What decodes is what the layout promised.
                assert_eq!(out.len() as u64, s.content);
            }
            at += s.len as usize;
        }
    }
    if Format::detect(data).is_some_and(|f| formats.contains(&f)) {
        let _ = pipeline().restore(data, io::sink());
    }
}
