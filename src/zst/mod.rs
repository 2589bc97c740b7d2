//! The `.zst` format: what `zstd` reads, written and read in parallel.
//!
//! Writing: each chunk is one zstd frame with its content size and zstd's
//! content checksum, and a seek table (the zstd seekable format) follows
//! the last frame, so the output is one valid `.zst` that every zstd
//! decoder reads (concatenated frames are one stream, RFC 8878 section 3.1,
//! and the table is a skippable frame) and seekable readers can index.
//!
//! Reading: a regular file is laid out first, without decoding: from its
//! seek table if it has one ([`seek_table`]), else by walking the frame
//! and block headers ([`frame::walk`]). If every frame declares its size
//! and each fits the memory limit, the frames are decoded in parallel as
//! the chunks of a container are; otherwise (a single large frame, as
//! `zstd` writes for a file; a frame without a declared size; a pipe) the
//! input is decoded in one sequential stream, whose memory zstd bounds by
//! its window. See `docs/format.md`, "Standard formats".

pub mod frame;
pub mod seek_table;

use crate::error::Result;
use crate::layout::fits;
use seek_table::{SeekTable, FOOTER_LEN};

/// Whether the first four bytes of an input are those of a `.zst`: a zstd
/// frame or a skippable frame.
pub fn is_zst(first: &[u8]) -> bool {
    first.len() >= 4 && {
        let magic = u32::from_le_bytes([first[0], first[1], first[2], first[3]]);
        magic == frame::FRAME_MAGIC || frame::is_skippable(magic)
    }
}

pub use crate::layout::{Layout, Span};

/// Largest seek table read (its whole skippable frame).
const MAX_TABLE_LEN: u64 = 64 << 20;

/// Lays out a `.zst` file of `file_len` bytes. Frames larger than
/// `limit` (or of unknown size) make the layout sequential; the seek table,
/// when present, must describe the file exactly. `read_at(offset, buf)`
/// fills `buf` from `offset` (a file, or bytes in memory for the fuzz
/// target).
pub fn layout_at(
    read_at: &mut impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    file_len: u64,
    limit: u64,
) -> Result<Layout> {
    if file_len >= (8 + FOOTER_LEN) as u64 {
        let mut footer = [0u8; FOOTER_LEN];
        read_at(file_len - FOOTER_LEN as u64, &mut footer).map_err(crate::Error::io)?;
        if let Some((frames, entry_len)) = SeekTable::footer(&footer, file_len)? {
            let table_len = SeekTable::frame_len(frames, entry_len);
            // A table is read whole: past this (8 million frames, a 16 TiB
            // file of 2 MiB chunks) it is skipped as a stream decode skips
            // it, rather than allocated on a footer's word.
            if table_len > MAX_TABLE_LEN {
                return Ok(Layout::Sequential);
            }
            let mut raw = vec![0u8; table_len as usize];
            read_at(file_len - table_len, &mut raw).map_err(crate::Error::io)?;
            let table = SeekTable::parse(&raw, frames, entry_len, file_len)?;
            let spans: Vec<Span> = table
                .entries
                .iter()
                .map(|e| Span {
                    len: u64::from(e.compressed),
                    content: u64::from(e.decompressed),
                    // The table cannot say; a frame that decodes to
                    // nothing counts as data either way.
                    skippable: false,
                })
                .collect();
            if spans.iter().any(|s| !fits(s.len, s.content, limit)) {
                return Ok(Layout::Sequential);
            }
            let mut spans = spans;
            // The table's own frame is skipped like any skippable frame.
            spans.push(Span {
                len: table_len,
                content: 0,
                skippable: true,
            });
            return Ok(Layout::Frames(spans));
        }
    }
    let mut spans = Vec::new();
    let mut offset = 0u64;
    while offset < file_len {
        let e = frame::walk(read_at, offset, file_len)?;
        let span = e.content_size.map(|content| Span {
            len: e.len,
            content,
            skippable: e.skippable,
        });
        match span {
            Some(s) if fits(s.len, s.content, limit) => spans.push(s),
            // No need to walk further: one such frame decides. (A
            // skippable frame over 1 KiB is one: pzstd's are 12 bytes.)
            _ => return Ok(Layout::Sequential),
        }
        offset += e.len;
    }
    Ok(Layout::Frames(spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::compress(data, 3, &mut out).expect("frame");
        out
    }

    fn laid_out(file: &[u8]) -> Layout {
        let mut read_at = |off: u64, buf: &mut [u8]| {
            let off = off as usize;
            buf.copy_from_slice(&file[off..off + buf.len()]);
            Ok(())
        };
        layout_at(&mut read_at, file.len() as u64, 1 << 20).expect("layout")
    }

    fn skippable(len: u32) -> Vec<u8> {
        let mut f = vec![0x50, 0x2a, 0x4d, 0x18];
        f.extend_from_slice(&len.to_le_bytes());
        f.resize(8 + len as usize, 0);
        f
    }

    #[test]
    fn only_bounded_frames_become_jobs() {
        let a = frame_of(&[1u8; 5000]);
        // Frames of known size and a small skippable frame: jobs.
        let file = [a.clone(), skippable(4), a.clone()].concat();
        let Layout::Frames(spans) = laid_out(&file) else {
            panic!("frames expected")
        };
        assert_eq!(spans.len(), 3);
        assert!(spans[1].skippable && !spans[0].skippable);
        // A large skippable frame (user data, up to 4 GiB in the format)
        // is skipped by a stream decode instead of read whole.
        let file = [a.clone(), skippable(100_000), a.clone()].concat();
        assert_eq!(laid_out(&file), Layout::Sequential);
        // A frame whose size is over the limit.
        let big = frame_of(&vec![0u8; 2 << 20]);
        assert_eq!(laid_out(&big), Layout::Sequential);
    }
}
