//! One zstd frame (RFC 8878): its header, its extent in a file found from
//! the block headers alone, and its coding with zstd's content checksum.
//!
//! The walk reads 3 bytes per block (a block holds at most 128 KiB), so
//! finding the frames of a file that has no seek table costs a few
//! thousand small reads per GiB and no decoding.

use std::cell::RefCell;

use ::zstd::bulk::{Compressor, Decompressor};
use ::zstd::zstd_safe::CParameter;

use crate::error::{Error, Result};

/// The first four bytes of a zstd frame.
pub const FRAME_MAGIC: u32 = 0xFD2F_B528;
/// Largest block a valid frame holds.
const MAX_BLOCK: u32 = 128 << 10;
/// Longest frame header: magic, descriptor, window, dictionary id, size.
pub const MAX_HEADER_LEN: usize = 4 + 1 + 1 + 4 + 8;

/// Skippable frames carry magics 0x184D2A50..=0x184D2A5F.
pub fn is_skippable(magic: u32) -> bool {
    magic & 0xFFFF_FFF0 == 0x184D_2A50
}

/// What a frame's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A zstd frame: its header's length, its declared content size, and
    /// whether a 4-byte content checksum follows its last block.
    Zstd {
        header_len: usize,
        content_size: Option<u64>,
        checksum: bool,
    },
    /// A skippable frame of this many bytes in all (its 8-byte head
    /// included).
    Skippable { len: u64 },
}

/// Parses the head of the frame that starts `buf` (as many of the first
/// [`MAX_HEADER_LEN`] bytes as the input has).
pub fn parse_head(buf: &[u8]) -> Result<Head> {
    let short = || Error::integrity("the zstd input ends inside a frame header");
    let magic = u32::from_le_bytes(buf.get(..4).ok_or_else(short)?.try_into().expect("4 bytes"));
    if is_skippable(magic) {
        let size = buf.get(4..8).ok_or_else(short)?;
        let size = u32::from_le_bytes(size.try_into().expect("4 bytes"));
        return Ok(Head::Skippable {
            len: 8 + u64::from(size),
        });
    }
    if magic != FRAME_MAGIC {
        return Err(Error::integrity(format!(
            "not a zstd frame (magic {magic:#010x} where a frame should start)"
        )));
    }
    let fhd = *buf.get(4).ok_or_else(short)?;
    let fcs_flag = fhd >> 6;
    let single_segment = fhd & 0x20 != 0;
    if fhd & 0x08 != 0 {
        return Err(Error::integrity(
            "zstd frame header has its reserved bit set",
        ));
    }
    let checksum = fhd & 0x04 != 0;
    let dict_len = [0, 1, 2, 4][usize::from(fhd & 0x03)];
    let window_len = usize::from(!single_segment);
    let fcs_len = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let header_len = 5 + window_len + dict_len + fcs_len;
    let fcs = buf
        .get(header_len - fcs_len..header_len)
        .ok_or_else(short)?;
    let content_size = match fcs_len {
        0 => None,
        1 => Some(u64::from(fcs[0])),
        // The 2-byte form is offset by 256 (RFC 8878, 3.1.1.1.4).
        2 => Some(u64::from(u16::from_le_bytes([fcs[0], fcs[1]])) + 256),
        4 => Some(u64::from(u32::from_le_bytes(
            fcs.try_into().expect("4 bytes"),
        ))),
        _ => Some(u64::from_le_bytes(fcs.try_into().expect("8 bytes"))),
    };
    Ok(Head::Zstd {
        header_len,
        content_size,
        checksum,
    })
}

/// A frame found by [`walk`]: its bytes in the file and what it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub len: u64,
    /// Declared content size; 0 for a skippable frame; `None` if the frame
    /// does not declare it.
    pub content_size: Option<u64>,
    pub skippable: bool,
}

/// Finds the extent of the frame at `offset` of a file of `file_len`
/// bytes, reading through `read_at(offset, buf)` (fills `buf` exactly).
pub fn walk(
    read_at: &mut impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    offset: u64,
    file_len: u64,
) -> Result<Extent> {
    let mut head = [0u8; MAX_HEADER_LEN];
    let avail = (file_len - offset).min(MAX_HEADER_LEN as u64) as usize;
    read_at(offset, &mut head[..avail]).map_err(Error::io)?;
    let past_end = || Error::integrity("a zstd frame runs past the end of the file");
    match parse_head(&head[..avail])? {
        Head::Skippable { len } => {
            if offset + len > file_len {
                return Err(past_end());
            }
            Ok(Extent {
                len,
                content_size: Some(0),
                skippable: true,
            })
        }
        Head::Zstd {
            header_len,
            content_size,
            checksum,
        } => {
            let mut pos = offset + header_len as u64;
            loop {
                let mut block = [0u8; 3];
                if pos + 3 > file_len {
                    return Err(past_end());
                }
                read_at(pos, &mut block).map_err(Error::io)?;
                let bh = u32::from_le_bytes([block[0], block[1], block[2], 0]);
                let (last, kind, size) = (bh & 1 != 0, (bh >> 1) & 3, bh >> 3);
                if kind == 3 {
                    return Err(Error::integrity("zstd block of the reserved type"));
                }
                if size > MAX_BLOCK {
                    return Err(Error::integrity(format!(
                        "zstd block of {size} bytes, more than the 128 KiB a block may hold"
                    )));
                }
                // An RLE block stores one byte, whatever its size.
                pos += 3 + if kind == 1 { 1 } else { u64::from(size) };
                if last {
                    break;
                }
            }
            if checksum {
                pos += 4;
            }
            if pos > file_len {
                return Err(past_end());
            }
            Ok(Extent {
                len: pos - offset,
                content_size,
                skippable: false,
            })
        }
    }
}

thread_local! {
    // One context per worker thread, as the zstd stage keeps (creating one
    // costs more than a small frame).
    static COMPRESSOR: RefCell<Option<(i32, u32, Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `data` as one frame at `level` into `out` (cleared first; a pooled
/// buffer keeps its capacity from chunk to chunk), with its content size
/// and zstd's content checksum (XXH64), as `zstd` itself writes a frame.
pub fn compress(data: &[u8], level: i32, out: &mut Vec<u8>) -> Result<()> {
    let failed = |e: std::io::Error| Error::stage(format!("zstd compression failed: {e}"));
    // The window the zstd stage uses for the same frame (as large as the
    // frame past 1 MiB): the same ratio in both formats.
    let wlog = crate::stages::zstd::window_log(data.len());
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot
            .as_ref()
            .is_none_or(|(l, w, _)| *l != level || *w != wlog)
        {
            let mut c = Compressor::new(level).map_err(failed)?;
            c.include_checksum(true).map_err(failed)?;
            c.include_contentsize(true).map_err(failed)?;
            c.set_parameter(CParameter::NbWorkers(0)).map_err(failed)?;
            c.set_parameter(CParameter::WindowLog(wlog))
                .map_err(failed)?;
            *slot = Some((level, wlog, c));
        }
        let (_, _, c) = slot.as_mut().expect("set above");
        out.clear();
        // zstd writes into the spare capacity; the bound fits any input.
        crate::pool::reserve(out, ::zstd::zstd_safe::compress_bound(data.len()))?;
        c.compress_to_buffer(data, out).map_err(failed)?;
        Ok(())
    })
}

/// Decodes the one frame `frame`, which must hold exactly `expected`
/// bytes; a skippable frame holds none. zstd checks the frame's content
/// checksum, if it has one.
pub fn decompress(frame: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    if frame.len() >= 4 && is_skippable(u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")))
    {
        return if expected == 0 {
            Ok(())
        } else {
            Err(Error::integrity(
                "a skippable frame where data was expected",
            ))
        };
    }
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = match &mut *slot {
            Some(d) => d,
            empty => empty.insert(
                Decompressor::new()
                    .map_err(|e| Error::stage(format!("cannot create a zstd decoder: {e}")))?,
            ),
        };
        // One byte of room past the expected size: a frame that holds more
        // fails as too large instead of being cut silently.
        crate::pool::reserve(out, expected + 1)?;
        d.decompress_to_buffer(frame, out)
            .map_err(|e| Error::integrity(format!("corrupt zstd frame: {e}")))?;
        if out.len() != expected {
            return Err(Error::integrity(format!(
                "a zstd frame holds {} bytes where {expected} were expected",
                out.len()
            )));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(data, 3, &mut out).unwrap();
        out
    }

    fn walk_all(file: &[u8]) -> Result<Vec<Extent>> {
        let mut read_at = |off: u64, buf: &mut [u8]| {
            let off = off as usize;
            buf.copy_from_slice(&file[off..off + buf.len()]);
            Ok(())
        };
        let mut out = Vec::new();
        let mut off = 0u64;
        while off < file.len() as u64 {
            let e = walk(&mut read_at, off, file.len() as u64)?;
            off += e.len;
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn frames_are_found_from_their_block_headers() {
        let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let b = vec![7u8; 1000];
        let (fa, fb) = (frame(&a), frame(&b));
        let skip = [0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 9, 9];
        let file = [fa.clone(), skip.to_vec(), fb.clone()].concat();
        let found = walk_all(&file).unwrap();
        assert_eq!(
            found,
            [
                Extent {
                    len: fa.len() as u64,
                    content_size: Some(a.len() as u64),
                    skippable: false
                },
                Extent {
                    len: 10,
                    content_size: Some(0),
                    skippable: true
                },
                Extent {
                    len: fb.len() as u64,
                    content_size: Some(1000),
                    skippable: false
                },
            ]
        );
        let mut out = Vec::new();
        decompress(&fa, a.len(), &mut out).unwrap();
        assert_eq!(out, a);
        // The wrong expected size, and a flipped byte, are refused.
        assert!(decompress(&fa, a.len() - 1, &mut out).is_err());
        let mut bad = fb.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        assert!(decompress(&bad, b.len(), &mut out).is_err());
        // A cut frame is found to run past the end.
        assert!(walk_all(&fa[..fa.len() - 1]).is_err());
    }

    #[test]
    fn header_fields_decode_as_the_rfc_says() {
        // Single segment, 2-byte content size (value + 256), checksum.
        let h = [0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x10, 0x00];
        assert_eq!(
            parse_head(&h).unwrap(),
            Head::Zstd {
                header_len: 7,
                content_size: Some(272),
                checksum: true
            }
        );
        assert!(parse_head(&[0x28, 0xb5, 0x2f]).is_err());
        assert!(parse_head(b"\x89SPIPE\r\n").is_err());
    }
}
