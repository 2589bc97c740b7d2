//! The `.gz` formats: what `gzip -d`, `pigz -d` and `bgzip -d` read,
//! written and read in parallel.
//!
//! Writing: each chunk becomes gzip members, and concatenated members are
//! one valid `.gz` (RFC 1952, section 2.2). `gz` writes one member per
//! chunk that records its own length in an `SP` extra subfield; `bgzf`
//! writes BGZF blocks (SAM/BAM specification, section 4.1: members of at
//! most 64 KiB whose `BC` subfield gives the size, and an empty block at
//! the end), which htslib, `bgzip` and samtools read with random access.
//!
//! Reading: a regular file is laid out first, without inflating: if every
//! member records its size (ours, BGZF's) and fits the memory limit, runs
//! of members are decoded in parallel; otherwise (a file of `gzip` or
//! `pigz`, whose members say nothing of their length; a pipe) the input is
//! decoded in one sequential stream, whose memory deflate bounds by its
//! 32 KiB window. See `docs/format.md`, "Standard formats".

pub mod member;
pub mod members;

use crate::error::{Error, Result};
use crate::layout::fits;
pub use crate::layout::{Layout, Span};
use member::{recorded_len, FIXED_LEN, MAGIC, TRAILER_LEN};

/// Members decoded as one job are grouped up to this much content (a BGZF
/// block holds 64 KiB: one job each would spend more on hand-offs).
const GROUP: u64 = 1 << 20;

/// Whether an input starts with a gzip member.
pub fn is_gz(first: &[u8]) -> bool {
    first.starts_with(&MAGIC)
}

/// Whether an input starts with a BGZF block (its first 16 bytes: the
/// `BC` subfield first in the extra field, as the specification has it).
pub fn is_bgzf(first: &[u8]) -> bool {
    is_gz(first) && first.len() >= 16 && first[3] & 0x04 != 0 && first[12..16] == *b"BC\x02\x00"
}

/// Lays out a `.gz` file of `file_len` bytes; members decoding to more
/// than `limit` bytes (or not recording their size) make the layout
/// sequential. `read_at(offset, buf)` fills `buf` from `offset` (a file,
/// or bytes in memory for the fuzz target).
pub fn layout_at(
    read_at: &mut impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    file_len: u64,
    limit: u64,
) -> Result<Layout> {
    let group = GROUP.min(limit);
    let mut spans: Vec<Span> = Vec::new();
    let mut offset = 0u64;
    while offset < file_len {
        // Anything else here (trailing bytes, a header too short to hold
        // a size) is the sequential decoder's to judge and report.
        let Some(len) = recorded_at(read_at, offset, file_len)? else {
            return Ok(Layout::Sequential);
        };
        if offset + len > file_len {
            return Err(Error::integrity(format!(
                "a gzip member at byte {offset} runs past the end of the file \
                 (its size field says {len} bytes)"
            )));
        }
        let mut isize = [0u8; 4];
        read_at(offset + len - 4, &mut isize).map_err(Error::io)?;
        let content = u64::from(u32::from_le_bytes(isize));
        if !fits(len, content, limit) {
            return Ok(Layout::Sequential);
        }
        match spans.last_mut() {
            Some(last) if last.content + content <= group => {
                last.len += len;
                last.content += content;
            }
            // An empty member is data too: it is what an empty file
            // becomes, and each of its bytes is checked.
            _ => spans.push(Span {
                len,
                content,
                skippable: false,
            }),
        }
        offset += len;
    }
    Ok(Layout::Frames(spans))
}

/// The length the member at `offset` records for itself, if it starts
/// with a gzip header whose extra field has a size subfield.
fn recorded_at(
    read_at: &mut impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    offset: u64,
    file_len: u64,
) -> Result<Option<u64>> {
    let mut fixed = [0u8; FIXED_LEN + 2];
    if file_len - offset < fixed.len() as u64 {
        return Ok(None);
    }
    read_at(offset, &mut fixed).map_err(Error::io)?;
    if !is_gz(&fixed) || fixed[3] & 0x04 == 0 {
        return Ok(None);
    }
    let xlen = u64::from(u16::from_le_bytes([fixed[10], fixed[11]]));
    let extra_at = offset + fixed.len() as u64;
    if file_len - extra_at < xlen {
        return Ok(None);
    }
    let mut extra = vec![0u8; xlen as usize];
    read_at(extra_at, &mut extra).map_err(Error::io)?;
    Ok(recorded_len(&extra).filter(|&len| len >= fixed.len() as u64 + xlen + TRAILER_LEN as u64))
}

#[cfg(test)]
mod tests {
    use super::member::{encode_bgzf, encode_gz, BGZF_EOF};
    use super::*;
    use crate::error::ErrorKind;

    fn laid_out(file: &[u8], limit: u64) -> Result<Layout> {
        let mut read_at = |off: u64, buf: &mut [u8]| {
            let off = off as usize;
            buf.copy_from_slice(&file[off..off + buf.len()]);
            Ok(())
        };
        layout_at(&mut read_at, file.len() as u64, limit)
    }

    #[test]
    fn bgzf_blocks_are_grouped_into_jobs_of_a_mebibyte() {
        let data = vec![5u8; 3 << 20];
        let mut file = Vec::new();
        encode_bgzf(6, &data, &mut file).unwrap();
        file.extend_from_slice(&BGZF_EOF);
        assert!(is_bgzf(&file));
        let Layout::Frames(spans) = laid_out(&file, 64 << 20).unwrap() else {
            panic!("a BGZF file is laid out");
        };
        assert_eq!(spans.iter().map(|s| s.len).sum::<u64>(), file.len() as u64);
        assert_eq!(spans.iter().map(|s| s.content).sum::<u64>(), 3 << 20);
        assert!(spans.iter().all(|s| s.content <= GROUP));
        // 3 MiB in groups of 16 blocks of 65280 bytes.
        assert_eq!(spans.len(), (3usize << 20).div_ceil(16 * 65280));
    }

    #[test]
    fn members_without_a_size_or_over_the_limit_are_sequential() {
        let mut gz = Vec::new();
        encode_gz(6, &[1u8; 5000], &mut gz).unwrap();
        assert!(is_gz(&gz) && !is_bgzf(&gz));
        assert!(matches!(laid_out(&gz, 1 << 20), Ok(Layout::Frames(_))));
        assert_eq!(laid_out(&gz, 4000).unwrap(), Layout::Sequential);
        // gzip's own header: no extra field.
        let plain = [&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3][..], &gz[20..]].concat();
        assert_eq!(laid_out(&plain, 1 << 20).unwrap(), Layout::Sequential);
        // Trailing bytes after a good member.
        let trailing = [&gz[..], b"junk and more junk"].concat();
        assert_eq!(laid_out(&trailing, 1 << 20).unwrap(), Layout::Sequential);
    }

    #[test]
    fn a_size_field_past_the_end_is_refused() {
        let mut gz = Vec::new();
        encode_gz(6, &[1u8; 5000], &mut gz).unwrap();
        let cut = &gz[..gz.len() - 1];
        let err = laid_out(cut, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
    }
}
