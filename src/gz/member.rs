//! One gzip member (RFC 1952, section 2.3): its header, the field that
//! records its size (BGZF's `BC`, syncpipe's `SP`), and its coding with
//! the member's CRC-32 and length checked. Members are deflated and
//! inflated whole by libdeflate (a member is a chunk or a 64 KiB block,
//! in memory either way), which is faster than a streaming zlib at both.

use std::cell::RefCell;

use flate2::Crc;
use libdeflater::{CompressionLvl, Compressor, DecompressionError, Decompressor};

use crate::error::{Error, Result};

/// ID1, ID2 and CM (deflate): how every member starts.
pub const MAGIC: [u8; 3] = [0x1f, 0x8b, 8];
/// The fixed part of a header: magic, FLG, MTIME, XFL, OS.
pub const FIXED_LEN: usize = 10;
/// CRC-32 and ISIZE after the deflate data.
pub const TRAILER_LEN: usize = 8;

const FTEXT: u8 = 0x01;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
/// OS field: 3 is Unix (gzip's own value there), 255 unknown (BGZF's).
const OS_UNIX: u8 = 3;
const OS_UNKNOWN: u8 = 255;

/// Input bytes per BGZF block: bgzip's 0xff00, so that even a stored
/// (incompressible) block stays within the 64 KiB a block may hold.
pub const BGZF_BLOCK: usize = 0xff00;
/// Largest BGZF block (its BSIZE field holds the size minus one).
const BGZF_MAX: usize = 1 << 16;
/// The empty block that ends a BGZF file (SAM/BAM specification, 4.1.2).
pub const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0,
    0, 0, 0, 0, 0, 0, 0,
];

/// The subfield syncpipe's `.gz` members carry: `SP`, 4 bytes, the
/// member's total length (little-endian), so that a restore can find
/// every member without inflating. Other readers skip extra subfields.
const SP: [u8; 2] = *b"SP";
/// BGZF's subfield: `BC`, 2 bytes, the block's total length minus one.
const BC: [u8; 2] = *b"BC";

/// The member length that the extra field `extra` records, if it has one
/// of the two size subfields.
pub fn recorded_len(extra: &[u8]) -> Option<u64> {
    let mut rest = extra;
    while rest.len() >= 4 {
        let id = [rest[0], rest[1]];
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let data = rest.get(4..4 + len)?;
        match (id, len) {
            (BC, 2) => return Some(u64::from(u16::from_le_bytes([data[0], data[1]])) + 1),
            (SP, 4) => {
                return Some(u64::from(u32::from_le_bytes(
                    data.try_into().expect("4 bytes"),
                )))
            }
            _ => rest = &rest[4 + len..],
        }
    }
    None
}

/// What a member's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the header (the deflate data starts there).
    pub len: usize,
    /// The member's total length, if a size subfield records it.
    pub member_len: Option<u64>,
}

/// Parses the header of the member that starts `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Head> {
    let short = || Error::integrity("the gzip input ends inside a member header");
    let fixed = buf.get(..FIXED_LEN).ok_or_else(short)?;
    if fixed[..3] != MAGIC {
        return Err(Error::integrity(
            "not a gzip member (no gzip magic where a member should start)",
        ));
    }
    let flags = fixed[3];
    if flags & !(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT) != 0 {
        return Err(Error::integrity(
            "gzip member header has reserved flag bits set",
        ));
    }
    let mut pos = FIXED_LEN;
    let mut member_len = None;
    if flags & FEXTRA != 0 {
        let xlen = buf.get(pos..pos + 2).ok_or_else(short)?;
        let xlen = usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        let extra = buf.get(pos + 2..pos + 2 + xlen).ok_or_else(short)?;
        member_len = recorded_len(extra);
        pos += 2 + xlen;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = buf
                .get(pos..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
                .ok_or_else(short)?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    if pos > buf.len() {
        return Err(short());
    }
    Ok(Head {
        len: pos,
        member_len,
    })
}

thread_local! {
    // One compressor per worker thread and level, as the codec stages keep.
    static DEFLATE: RefCell<Option<(u32, Compressor)>> = const { RefCell::new(None) };
    static INFLATE: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Appends `data` as one raw deflate stream at `level` (0 stores) to
/// `out`, through libdeflate: a member is compressed whole, which is what
/// libdeflate does best.
fn deflate_append(level: u32, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = || {
            CompressionLvl::new(level as i32)
                .map(Compressor::new)
                .map_err(|_| Error::usage(format!("deflate level {level} is out of range")))
        };
        let compressor = match &mut *slot {
            Some((cached, c)) if *cached == level => c,
            other => &mut other.insert((level, fresh()?)).1,
        };
        let start = out.len();
        let bound = compressor.deflate_compress_bound(data.len());
        crate::pool::reserve(out, start + bound)?;
        out.resize(start + bound, 0);
        let n = compressor
            .deflate_compress(data, &mut out[start..])
            .map_err(|e| Error::stage(format!("deflate failed: {e}")))?;
        out.truncate(start + n);
        Ok(())
    })
}

/// The XFL byte gzip writes: 2 for the slowest level, 4 for the fastest.
fn xfl(level: u32) -> u8 {
    match level {
        9 => 2,
        1 => 4,
        _ => 0,
    }
}

/// Appends CRC-32 and ISIZE of `data`.
fn push_trailer(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&crc32(data).to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952); a member here is at most
    // a chunk, 64 MiB.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
}

/// Appends a member header whose extra field is the one size subfield
/// `id` with `len` bytes of value, zero until the member's size is known;
/// returns where that value starts. MTIME is 0 and no name is stored, as
/// `gzip -n` writes: the output's bytes depend on the data alone.
fn push_header(out: &mut Vec<u8>, xfl: u8, os: u8, id: [u8; 2], len: u16) -> usize {
    out.extend_from_slice(&MAGIC);
    out.push(FEXTRA);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&[xfl, os]);
    // XLEN: the subfield's id, its length and its value.
    out.extend_from_slice(&(4 + len).to_le_bytes());
    out.extend_from_slice(&id);
    out.extend_from_slice(&len.to_le_bytes());
    let at = out.len();
    out.resize(at + usize::from(len), 0);
    at
}

/// `data` as one member at `level` into `out` (cleared first), with the
/// `SP` subfield giving its length.
pub fn encode_gz(level: u32, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let at = push_header(out, xfl(level), OS_UNIX, SP, 4);
    deflate_append(level, data, out)?;
    push_trailer(data, out);
    let len = u32::try_from(out.len())
        .map_err(|_| Error::usage("a gzip member is limited to 4 GiB: use a smaller chunk size"))?;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// `data` as BGZF blocks of [`BGZF_BLOCK`] input bytes at `level` into
/// `out` (cleared first), each a member whose `BC` subfield gives its
/// size, as the SAM/BAM specification (section 4.1) lays them out.
pub fn encode_bgzf(level: u32, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    for block in data.chunks(BGZF_BLOCK) {
        let start = out.len();
        let mut at = start;
        for level in [level, 0] {
            out.truncate(start);
            at = push_header(out, 0, OS_UNKNOWN, BC, 2);
            deflate_append(level, block, out)?;
            push_trailer(block, out);
            // Stored blocks (level 0) always fit: 65280 bytes plus 5 per
            // stored block and 26 of framing. A compressed block that
            // does not is stored instead.
            if out.len() - start <= BGZF_MAX {
                break;
            }
        }
        let bsize = u16::try_from(out.len() - start - 1)
            .expect("a stored block of BGZF_BLOCK bytes fits 64 KiB");
        out[at..at + 2].copy_from_slice(&bsize.to_le_bytes());
    }
    Ok(())
}

/// Decodes the whole members `members` (each recording its length, as
/// the layout found them), which together must hold exactly `expected`
/// bytes, into `out`. libdeflate inflates each member whole and checks its
/// CRC-32 and ISIZE; the trailer at the member's recorded end must be that
/// same one.
pub fn decode(members: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    crate::pool::reserve(out, expected)?;
    let mut rest = members;
    while !rest.is_empty() {
        let head = parse_head(rest)?;
        let len = head
            .member_len
            .ok_or_else(|| Error::integrity("a gzip member without its size field"))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > rest.len() || len < head.len + TRAILER_LEN {
            return Err(Error::integrity(format!(
                "a gzip member's size field ({len} bytes) does not fit the member"
            )));
        }
        let trailer = &rest[len - TRAILER_LEN..len];
        let want_crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let isize = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes")) as usize;
        let start = out.len();
        if isize > expected - start {
            return Err(Error::integrity(format!(
                "gzip members hold more than the {expected} bytes expected"
            )));
        }
        out.resize(start + isize, 0);
        let inflated = INFLATE.with(|cell| {
            cell.borrow_mut()
                .get_or_insert_with(Decompressor::new)
                .gzip_decompress(&rest[..len], &mut out[start..])
        });
        match inflated {
            Ok(n) if n == isize && crc32(&out[start..]) == want_crc => {}
            Ok(_) => {
                return Err(Error::integrity(
                    "a gzip member's CRC-32 or ISIZE at its recorded end does not match its data",
                ))
            }
            Err(DecompressionError::InsufficientSpace) => {
                return Err(Error::integrity(
                    "a gzip member decodes to more than its ISIZE",
                ))
            }
            Err(DecompressionError::BadData) => {
                return Err(Error::integrity(
                    "corrupt gzip member (its deflate data, CRC-32 or ISIZE)",
                ))
            }
        }
        rest = &rest[len..];
    }
    if out.len() != expected {
        return Err(Error::integrity(format!(
            "gzip members hold {} bytes where {expected} were expected",
            out.len()
        )));
    }
    Ok(())
}

/// CRC-32 (the gzip trailer's) of `data`.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = Crc::new();
    crc.update(data);
    crc.sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"gzip members, "[i % 14]).collect()
    }

    #[test]
    fn members_record_their_length_and_decode_back() {
        let data = text(200_000);
        let mut gz = Vec::new();
        encode_gz(6, &data, &mut gz).unwrap();
        let head = parse_head(&gz).unwrap();
        assert_eq!(head.member_len, Some(gz.len() as u64));
        let mut out = Vec::new();
        decode(&gz, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn bgzf_blocks_are_at_most_64_kib_even_for_random_data() {
        // Incompressible: xorshift bytes.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut bgzf = Vec::new();
        encode_bgzf(9, &data, &mut bgzf).unwrap();
        let mut rest = &bgzf[..];
        let mut blocks = 0;
        while !rest.is_empty() {
            let len = parse_head(rest).unwrap().member_len.unwrap() as usize;
            assert!(len <= BGZF_MAX);
            rest = &rest[len..];
            blocks += 1;
        }
        assert_eq!(blocks, data.len().div_ceil(BGZF_BLOCK));
        let mut out = Vec::new();
        decode(&bgzf, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn the_eof_block_is_an_empty_bgzf_block() {
        assert_eq!(parse_head(&BGZF_EOF).unwrap().member_len, Some(28));
        let mut out = Vec::new();
        decode(&BGZF_EOF, 0, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn damage_is_an_integrity_error() {
        let data = text(10_000);
        let mut gz = Vec::new();
        encode_gz(6, &data, &mut gz).unwrap();
        let mut out = Vec::new();
        let n = gz.len();
        // A flipped CRC byte, a flipped ISIZE byte, a flipped data byte, a
        // wrong expected length, a size field pointing past the end.
        for (at, what) in [(n - 8, "crc"), (n - 2, "isize"), (25, "data"), (16, "size")] {
            let mut bad = gz.clone();
            bad[at] ^= 0x40;
            let err = decode(&bad, data.len(), &mut out).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Integrity, "{what}");
        }
        let err = decode(&gz, data.len() - 1, &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        let err = decode(&gz[..n - 1], data.len(), &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
    }

    #[test]
    fn headers_with_name_comment_and_crc_are_skipped() {
        let mut m = vec![0x1f, 0x8b, 8, FNAME | FCOMMENT | FHCRC, 0, 0, 0, 0, 0, 3];
        m.extend_from_slice(b"name\0comment\0\xaa\xbb");
        assert_eq!(parse_head(&m).unwrap().len, m.len());
        assert_eq!(parse_head(&m).unwrap().member_len, None);
        // A name that never ends is a short header.
        let err = parse_head(&m[..14]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
    }
}
