//! `inspect`: what `syncpipe info` shows — the header, and the records
//! walked by their length prefixes with the same framing rules as restore
//! (CRCs, order, last chunk, trailer), nothing decoded.

use std::io::Read;

use crate::error::Result;
use crate::format::{Header, Item, Trailer, Walker, CUSTOM_STAGE_ID};
use crate::stages::StageSpec;

/// A container's header, trailer and record statistics.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The header.
    pub header: Header,
    /// The trailer.
    pub trailer: Trailer,
    /// Chunk records.
    pub chunks: u64,
    /// Total payload bytes over all records.
    pub payload_bytes: u64,
    /// Records for which at least one stage was skipped because its output
    /// would not have been smaller (stored raw).
    pub stored_raw: u64,
}

/// Reads a whole container's framing: header, every record's head and CRC,
/// the trailer, and that nothing follows it. Single-threaded: it reads the
/// payload bytes but never runs a stage.
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] for anything wrong with the framing,
/// [`crate::ErrorKind::Io`] for read failures.
pub fn inspect(mut input: impl Read) -> Result<Inspection> {
    let header = Header::read_from(&mut input)?;
    for desc in header.stages.iter().filter(|d| d.id != CUSTOM_STAGE_ID) {
        StageSpec::from_id(desc.id, desc.param)?;
    }
    let mut walker = Walker::new(&header);
    let mut payload = Vec::new();
    let (mut chunks, mut payload_bytes, mut stored_raw) = (0u64, 0u64, 0u64);
    loop {
        match walker.next(&mut input, &mut payload)? {
            Item::Chunk { head, .. } => {
                chunks += 1;
                payload_bytes += u64::from(head.payload_len);
                if head.skip_mask != 0 {
                    stored_raw += 1;
                }
            }
            Item::Trailer(trailer) => {
                return Ok(Inspection {
                    header,
                    trailer,
                    chunks,
                    payload_bytes,
                    stored_raw,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, Pipeline};

    fn container() -> Vec<u8> {
        let p = Pipeline::builder()
            .chunk_size(100)
            .threads(1)
            .build()
            .expect("valid");
        let mut out = Vec::new();
        p.run(&[5u8; 250][..], &mut out).expect("process");
        out
    }

    #[test]
    fn counts_chunks_and_length() {
        let i = inspect(&container()[..]).expect("valid");
        assert_eq!(i.chunks, 3);
        assert_eq!(i.trailer.original_len, 250);
    }

    #[test]
    fn shares_restores_framing_rules() {
        // Forge the trailer's chunk count (and its CRC): inspect must refuse
        // it exactly as restore does.
        let mut c = container();
        let dlen = 32;
        let t = c.len() - (1 + 16 + dlen + 4);
        c[t + 1] = 9;
        let crc = crc32fast::hash(&c[t..c.len() - 4]);
        let n = c.len();
        c[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let e = inspect(&c[..]).expect_err("forged trailer");
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(e.to_string().contains("trailer says 9 chunks"), "{e}");
    }
}
