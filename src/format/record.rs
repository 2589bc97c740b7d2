//! Chunk record framing: the fixed head (index, flags, skip mask, lengths),
//! the per-chunk digest of an unencrypted container, the payload and the
//! record's CRC; reading one checks every length against the header.

use std::io::Read;

use super::cursor::Cursor;
use super::reader::read_exact_or;
use super::{max_payload, Header, Item, CHUNK_HEAD_LEN, DIGEST_LEN, FLAG_LAST, TAG_CHUNK};
use crate::error::{Error, Result};

/// The fixed part of a chunk record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    /// Chunk index, from 0.
    pub index: u64,
    /// [`FLAG_LAST`] or 0.
    pub flags: u8,
    /// Bit i set: stage i was skipped for this chunk (stored as it came in).
    pub skip_mask: u8,
    /// Bytes of original data in the chunk.
    pub original_len: u32,
    /// Bytes of payload that follow the head (and digest).
    pub payload_len: u32,
}

impl RecordHead {
    /// True for the final chunk.
    pub fn is_last(&self) -> bool {
        self.flags & FLAG_LAST != 0
    }

    /// Encodes the head and the digest into `out` (cleared first).
    pub fn encode(&self, digest: Option<&[u8; DIGEST_LEN]>, out: &mut Vec<u8>) {
        out.clear();
        out.push(TAG_CHUNK);
        out.extend_from_slice(&self.index.to_le_bytes());
        out.push(self.flags);
        out.push(self.skip_mask);
        out.extend_from_slice(&self.original_len.to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        if let Some(d) = digest {
            out.extend_from_slice(d);
        }
    }
}

/// Reads the rest of a chunk record, its tag already read: head, digest,
/// payload (into `payload`) and CRC, each checked against `header`.
pub(super) fn read_chunk(
    r: &mut impl Read,
    header: &Header,
    expected_index: u64,
    payload: &mut Vec<u8>,
) -> Result<Item> {
    let dlen = header.record_digest_len();
    let mut head_buf = [0u8; CHUNK_HEAD_LEN + DIGEST_LEN];
    head_buf[0] = TAG_CHUNK;
    let head_bytes = &mut head_buf[..CHUNK_HEAD_LEN + dlen];
    read_exact_or(r, &mut head_bytes[1..], "truncated record")
        .map_err(|e| e.with_chunk(expected_index))?;
    let mut c = Cursor {
        buf: head_bytes,
        pos: 1,
    };
    let head = RecordHead {
        index: c.u64()?,
        flags: c.u8()?,
        skip_mask: c.u8()?,
        original_len: c.u32()?,
        payload_len: c.u32()?,
    };
    let digest = c.digest(dlen)?;
    let at = |msg: String| Error::integrity(msg).with_chunk(expected_index);
    if head.index != expected_index {
        return Err(at(format!(
            "record out of order: found chunk {} (reordered or spliced container)",
            head.index
        )));
    }
    if head.flags & !FLAG_LAST != 0 {
        return Err(at(format!("unknown record flags {:#x}", head.flags)));
    }
    // Widened before shifting: with 8 stages a u8 shift would overflow.
    if u16::from(head.skip_mask) >> header.stages.len() != 0 {
        return Err(at(format!("bad skip mask {:#x}", head.skip_mask)));
    }
    let olen = head.original_len as usize;
    // Writers fill every chunk but the last (with variable chunks:
    // never beyond the largest size), and only an empty input has
    // an empty chunk (chunk 0).
    if olen > header.chunk_size
        || (!head.is_last() && !header.variable_chunks && olen != header.chunk_size)
        || (olen == 0 && head.index != 0)
    {
        return Err(at(format!(
            "original length {olen} does not fit chunk size {}",
            header.chunk_size
        )));
    }
    let plen = head.payload_len as usize;
    if plen > max_payload(header.chunk_size) {
        return Err(at(format!("payload length {plen} exceeds the bound")));
    }
    payload.clear();
    // Room for the claimed length is reserved, not touched: it costs
    // address space, not memory, and fails as an error, not an abort.
    crate::pool::reserve(payload, plen)?;
    // Grown as bytes arrive rather than zero-filled to the claimed
    // length first: a truncated hostile record costs only the bytes
    // it really has (read_to_end retries `Interrupted`).
    let got = r
        .take(plen as u64)
        .read_to_end(payload)
        .map_err(Error::io)?;
    if got < plen {
        return Err(at("truncated record".to_string()));
    }
    let mut crc = [0u8; 4];
    read_exact_or(r, &mut crc, "truncated record").map_err(|e| e.with_chunk(expected_index))?;
    let mut h = crc32fast::Hasher::new();
    h.update(head_bytes);
    h.update(payload);
    if h.finalize() != u32::from_le_bytes(crc) {
        return Err(at("record checksum mismatch (corrupt data)".to_string()));
    }
    Ok(Item::Chunk { head, digest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::header::tests::header;
    use crate::format::read_item;

    #[test]
    fn record_round_trips_and_detects_flips() {
        let h = header();
        let head = RecordHead {
            index: 0,
            flags: FLAG_LAST,
            skip_mask: 0,
            original_len: 3,
            payload_len: 3,
        };
        let mut rec = Vec::new();
        head.encode(Some(&[7u8; DIGEST_LEN]), &mut rec);
        rec.extend_from_slice(b"abc");
        let crc = crc32fast::hash(&rec);
        rec.extend_from_slice(&crc.to_le_bytes());
        let mut payload = Vec::new();
        match read_item(&mut &rec[..], &h, 0, &mut payload).expect("valid") {
            Item::Chunk { head: got, digest } => {
                assert_eq!(got, head);
                assert_eq!(digest, Some([7u8; DIGEST_LEN]));
                assert_eq!(payload, b"abc");
            }
            Item::Trailer(_) => panic!("expected a chunk"),
        }
        for i in 0..rec.len() {
            let mut b = rec.clone();
            b[i] ^= 0x01;
            assert!(
                read_item(&mut &b[..], &h, 0, &mut payload).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn short_chunks_before_the_last_need_the_variable_flag() {
        let record = |index: u64, len: u32| {
            let head = RecordHead {
                index,
                flags: 0,
                skip_mask: 0,
                original_len: len,
                payload_len: len,
            };
            let mut rec = Vec::new();
            head.encode(Some(&[7u8; DIGEST_LEN]), &mut rec);
            rec.extend(std::iter::repeat_n(b'x', len as usize));
            let crc = crc32fast::hash(&rec);
            rec.extend_from_slice(&crc.to_le_bytes());
            rec
        };
        let mut payload = Vec::new();
        let fixed = header();
        let short = record(0, 600);
        let e = read_item(&mut &short[..], &fixed, 0, &mut payload).expect_err("fixed size");
        assert!(e.to_string().contains("does not fit"), "{e}");
        let variable = Header {
            variable_chunks: true,
            ..header()
        };
        let back = Header::read_from(&mut &variable.encode()[..]).expect("valid");
        assert!(back.variable_chunks, "the flag round-trips");
        assert!(read_item(&mut &short[..], &variable, 0, &mut payload).is_ok());
        // Still never beyond the largest size.
        let long = record(0, 1025);
        assert!(read_item(&mut &long[..], &variable, 0, &mut payload).is_err());
        // Unknown flags stay refused.
        let mut b = variable.encode();
        b[14] |= 0x02;
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        let e = Header::read_from(&mut &b[..]).expect_err("unknown flag");
        assert!(e.to_string().contains("unknown header flags"), "{e}");
    }
}
