//! `inspect`: what `syncpipe info` shows — the header, and the records
//! walked by their length prefixes (framing and CRCs checked, nothing
//! decoded).

use std::io::Read;

use crate::error::Result;
use crate::format::{self, Header, Item, Trailer};

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
    let mut payload = Vec::new();
    let (mut chunks, mut payload_bytes, mut stored_raw) = (0u64, 0u64, 0u64);
    loop {
        match format::read_item(&mut input, &header, chunks, &mut payload)? {
            Item::Chunk { head, .. } => {
                chunks += 1;
                payload_bytes += u64::from(head.payload_len);
                if head.skip_mask != 0 {
                    stored_raw += 1;
                }
            }
            Item::Trailer(trailer) => {
                let mut extra = [0u8; 1];
                if format::read_full(&mut input, &mut extra)? != 0 {
                    return Err(crate::Error::integrity("unexpected data after the trailer"));
                }
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
