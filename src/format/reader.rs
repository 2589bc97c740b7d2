//! Reading a container body: one item at a time ([`read_item`]), and the
//! [`Walker`] that reads them in order and enforces the rules that span
//! records. Also the short-read-tolerant helpers the other parts use.

use std::io::{self, Read};

use super::record::read_chunk;
use super::trailer::read_trailer;
use super::{Header, RecordHead, Trailer, DIGEST_LEN, TAG_CHUNK, TAG_TRAILER};
use crate::error::{Error, Result};

/// One item read from the body of a container.
#[derive(Debug)]
pub enum Item {
    /// A chunk record whose CRC has been checked.
    Chunk {
        /// The fixed fields.
        head: RecordHead,
        /// The per-chunk digest of the original bytes, if any.
        digest: Option<[u8; DIGEST_LEN]>,
    },
    /// The trailer (CRC checked).
    Trailer(Trailer),
}

/// Reads the next record or the trailer. A chunk's payload is read into
/// `payload` (resized; its capacity is reused across records).
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] for truncation, a bad tag, out-of-range
/// lengths or a CRC mismatch; the error names the chunk it expected.
pub fn read_item(
    r: &mut impl Read,
    header: &Header,
    expected_index: u64,
    payload: &mut Vec<u8>,
) -> Result<Item> {
    let mut tag = [0u8; 1];
    if read_full(r, &mut tag)? == 0 {
        return Err(
            Error::integrity("truncated container: missing chunks or trailer")
                .with_chunk(expected_index),
        );
    }
    match tag[0] {
        TAG_CHUNK => read_chunk(r, header, expected_index, payload),
        TAG_TRAILER => read_trailer(r, header).map(Item::Trailer),
        other => {
            Err(Error::integrity(format!("bad record tag {other:#04x}")).with_chunk(expected_index))
        }
    }
}

/// Reads a container body in order and enforces the rules that span
/// records: one last chunk, nothing after it but the trailer, a trailer that
/// matches what came before, no more data than the header announced, and
/// nothing after the trailer. Restore and `inspect` share it, so they accept
/// exactly the same containers.
#[derive(Debug)]
pub struct Walker<'h> {
    header: &'h Header,
    next_index: u64,
    original: u64,
    seen_last: bool,
}

impl<'h> Walker<'h> {
    /// A walker positioned at the first record, just after the header.
    pub fn new(header: &'h Header) -> Walker<'h> {
        Walker {
            header,
            next_index: 0,
            original: 0,
            seen_last: false,
        }
    }

    /// The next record (payload in `payload`) or, once, the trailer.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Integrity`] for anything out of place, naming the
    /// chunk where one applies; [`crate::ErrorKind::Io`] for read failures.
    pub fn next(&mut self, r: &mut impl Read, payload: &mut Vec<u8>) -> Result<Item> {
        let at = self.next_index;
        let item = read_item(r, self.header, at, payload)?;
        match &item {
            Item::Chunk { head, .. } => {
                if self.seen_last {
                    return Err(
                        Error::integrity("chunk after the last chunk (spliced container)")
                            .with_chunk(at),
                    );
                }
                self.seen_last = head.is_last();
                self.original += u64::from(head.original_len);
                if let Some(len) = self.header.original_len {
                    if self.original > len {
                        return Err(Error::integrity(format!(
                            "more data than the header's original length of {len} bytes"
                        ))
                        .with_chunk(at));
                    }
                }
                self.next_index = at
                    .checked_add(1)
                    .ok_or_else(|| Error::integrity("chunk counter overflow"))?;
            }
            Item::Trailer(t) => {
                if !self.seen_last {
                    return Err(Error::integrity(
                        "truncated container: the trailer comes before the last chunk",
                    )
                    .with_chunk(at));
                }
                if t.chunk_count != self.next_index || t.original_len != self.original {
                    return Err(Error::integrity(format!(
                        "trailer says {} chunks and {} bytes, the container holds {} and {}",
                        t.chunk_count, t.original_len, self.next_index, self.original
                    )));
                }
                if let Some(len) = self.header.original_len {
                    if len != self.original {
                        return Err(Error::integrity(format!(
                            "header says {len} bytes, the container holds {}",
                            self.original
                        )));
                    }
                }
                let mut extra = [0u8; 1];
                if read_full(r, &mut extra)? != 0 {
                    return Err(Error::integrity("unexpected data after the trailer"));
                }
            }
        }
        Ok(item)
    }
}

/// Fills `buf` as far as the reader allows; returns the bytes read (short
/// only at end of input). Retries `Interrupted`.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(e)),
        }
    }
    Ok(filled)
}

pub(super) fn read_exact_or(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    if read_full(r, buf)? < buf.len() {
        return Err(Error::integrity(what.to_string()));
    }
    Ok(())
}
