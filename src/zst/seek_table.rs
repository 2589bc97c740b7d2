//! The seek table of the zstd seekable format (facebook/zstd,
//! `contrib/seekable_format/zstd_seekable_compression_format.md`): a final
//! skippable frame listing each frame's compressed and decompressed size,
//! which every zstd decoder skips and a seekable reader uses to find the
//! frames without decoding anything.
//!
//! ```text
//! 0x184D2A5E | frame size u32 | entries (8 or 12 bytes each) | frames u32 | descriptor u8 | 0x8F92EAB1
//! ```
//!
//! syncpipe writes entries without the optional per-frame checksum (each
//! frame carries zstd's own content checksum instead) and reads both kinds.
//! Parsing bounds everything by the file's size before allocating: a
//! forged table cannot make the reader reserve more than the file holds.

use crate::error::{Error, Result};

/// Magic of the skippable frame that holds the table.
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// The last four bytes of a seekable file.
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Bytes of the footer: frame count, descriptor, magic.
pub const FOOTER_LEN: usize = 9;
/// Most frames a table may list (the reference implementation's limit).
pub const MAX_FRAMES: u32 = 0x0800_0000;
/// Descriptor bit: each entry has a 4-byte checksum.
const CHECKSUM_FLAG: u8 = 0x80;
/// Descriptor bits that must be zero.
const RESERVED_BITS: u8 = 0x7c;

/// One frame of a seekable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub compressed: u32,
    pub decompressed: u32,
}

/// The frames of a seekable file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeekTable {
    pub entries: Vec<Entry>,
}

impl SeekTable {
    /// The table as its skippable frame (without per-entry checksums).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let frames = u32::try_from(self.entries.len())
            .ok()
            .filter(|&n| n <= MAX_FRAMES)
            .ok_or_else(|| {
                Error::resource(format!(
                    "{} frames are more than a seek table can list ({MAX_FRAMES}); \
                     use a larger chunk size",
                    self.entries.len()
                ))
            })?;
        let body = self.entries.len() * 8 + FOOTER_LEN;
        let mut out = Vec::with_capacity(8 + body);
        out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        out.extend_from_slice(&(body as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.compressed.to_le_bytes());
            out.extend_from_slice(&e.decompressed.to_le_bytes());
        }
        out.extend_from_slice(&frames.to_le_bytes());
        out.push(0);
        out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        Ok(out)
    }

    /// Bytes of the table's skippable frame with `frames` entries of
    /// `entry_len` bytes.
    pub fn frame_len(frames: u32, entry_len: usize) -> u64 {
        8 + frames as u64 * entry_len as u64 + FOOTER_LEN as u64
    }

    /// Reads the footer (the last [`FOOTER_LEN`] bytes of a file of
    /// `file_len` bytes): `Ok(None)` if the file has no seek table, else
    /// the frame count and the entry length, checked to fit in the file.
    pub fn footer(footer: &[u8; FOOTER_LEN], file_len: u64) -> Result<Option<(u32, usize)>> {
        let magic = u32::from_le_bytes([footer[5], footer[6], footer[7], footer[8]]);
        if magic != SEEKABLE_MAGIC {
            return Ok(None);
        }
        let frames = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]);
        let descriptor = footer[4];
        if descriptor & RESERVED_BITS != 0 {
            return Err(Error::integrity(
                "the seek table's descriptor has reserved bits set",
            ));
        }
        if frames > MAX_FRAMES {
            return Err(Error::integrity(format!(
                "the seek table lists {frames} frames, more than {MAX_FRAMES}"
            )));
        }
        let entry_len = if descriptor & CHECKSUM_FLAG != 0 {
            12
        } else {
            8
        };
        if Self::frame_len(frames, entry_len) > file_len {
            return Err(Error::integrity(
                "the seek table is larger than the file that holds it",
            ));
        }
        Ok(Some((frames, entry_len)))
    }

    /// Parses the table's whole skippable frame (`frame`, as located by
    /// [`SeekTable::footer`]) of a file of `file_len` bytes, and checks that
    /// the frames it lists and the table itself make up the file exactly.
    pub fn parse(frame: &[u8], frames: u32, entry_len: usize, file_len: u64) -> Result<SeekTable> {
        let bad = |what: &str| Error::integrity(format!("the seek table {what}"));
        if frame.len() as u64 != Self::frame_len(frames, entry_len) {
            return Err(bad("has the wrong length"));
        }
        let magic = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let size = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if magic != SKIPPABLE_MAGIC {
            return Err(bad("does not start with its skippable frame's magic"));
        }
        if size as usize != frame.len() - 8 {
            return Err(bad("frame's size field does not match its entries"));
        }
        let mut entries = Vec::with_capacity(frames as usize);
        let mut total = frame.len() as u64;
        for raw in frame[8..frame.len() - FOOTER_LEN].chunks_exact(entry_len) {
            let e = Entry {
                compressed: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
                decompressed: u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
            };
            total += u64::from(e.compressed);
            entries.push(e);
        }
        if total != file_len {
            return Err(bad(&format!(
                "lists frames of {} bytes in all, but the file has {file_len}",
                total - frame.len() as u64
            )));
        }
        Ok(SeekTable { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sizes: &[(u32, u32)]) -> SeekTable {
        SeekTable {
            entries: sizes
                .iter()
                .map(|&(compressed, decompressed)| Entry {
                    compressed,
                    decompressed,
                })
                .collect(),
        }
    }

    #[test]
    fn a_table_reads_back_from_its_footer() {
        let t = table(&[(100, 1000), (50, 700)]);
        let frame = t.encode().unwrap();
        let file_len = 150 + frame.len() as u64;
        let footer: [u8; FOOTER_LEN] = frame[frame.len() - FOOTER_LEN..].try_into().unwrap();
        let (frames, entry_len) = SeekTable::footer(&footer, file_len).unwrap().unwrap();
        assert_eq!((frames, entry_len), (2, 8));
        assert_eq!(
            SeekTable::parse(&frame, frames, entry_len, file_len).unwrap(),
            t
        );
    }

    #[test]
    fn forged_tables_are_refused() {
        let t = table(&[(100, 1000)]);
        let frame = t.encode().unwrap();
        let footer: [u8; FOOTER_LEN] = frame[frame.len() - FOOTER_LEN..].try_into().unwrap();
        // The sizes must add up to the file.
        assert!(SeekTable::parse(&frame, 1, 8, 99 + frame.len() as u64).is_err());
        // A count the file cannot hold.
        let mut huge = footer;
        huge[..4].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert!(SeekTable::footer(&huge, 1000).is_err());
        // Reserved bits.
        let mut reserved = footer;
        reserved[4] = 0x04;
        assert!(SeekTable::footer(&reserved, 1000).is_err());
        // Not a seekable file at all.
        assert_eq!(SeekTable::footer(&[0; FOOTER_LEN], 1000).unwrap(), None);
    }
}
