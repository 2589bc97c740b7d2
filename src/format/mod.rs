//! The container format, versions 1 and 2 (specified in
//! [`docs/format.md`](../../docs/format.md)).
//! Version 2 is version 1 plus the encryption section in the header; a
//! writer uses it only for encrypted containers, so unencrypted containers
//! stay readable by version-1 readers.
//!
//! A header, then one length-prefixed record per chunk, then a trailer. Every
//! part carries a CRC-32 of its own bytes, so a flipped byte is caught even
//! with no checksum stage, and every size is bounded before anything is
//! allocated: a hostile header cannot make the reader reserve gigabytes.
//!
//! One part per file: `header` (the header and its encryption section),
//! `record` (chunk record framing), `trailer`, `reader` (reading the body
//! and the [`Walker`] that enforces the rules spanning records), and
//! `cursor` (the bounds-checked decoder they share). Every item is
//! re-exported here, so paths stay `crate::format::X`.

mod cursor;
mod header;
mod reader;
mod record;
mod trailer;

pub use header::{Crypto, Header, Kdf, StageDesc};
pub use reader::{read_full, Item, Walker};
// The library reads records through `Walker`; `read_item` is for what the
// `internals` feature opens the format to (tests and fuzz targets).
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use reader::read_item;
pub use record::RecordHead;
pub use trailer::Trailer;

/// The first 8 bytes of every container. The high byte and the CR LF pair
/// catch 7-bit and newline-translating transports, as PNG's magic does.
pub const MAGIC: [u8; 8] = *b"\x89SPIPE\r\n";
/// The format version of unencrypted containers.
pub const VERSION: u16 = 1;
/// The format version of encrypted containers (version 1 plus the
/// encryption section).
pub const VERSION_ENCRYPTED: u16 = 2;
/// Largest header body accepted (bytes after the length field).
pub const MAX_HEADER_LEN: u32 = 4096;
/// Largest chunk size the format allows: 64 MiB.
pub const MAX_CHUNK_SIZE: usize = 64 << 20;
/// Most transform stages in one container (the skip mask is one byte).
pub const MAX_STAGES: usize = 8;
/// Stage id written for a stage that is not built in; restore needs the same
/// stage supplied by the program (see `PipelineBuilder::custom_stage`).
pub const CUSTOM_STAGE_ID: u8 = 0xff;
/// Length of every digest (SHA-256 and BLAKE3 both give 32 bytes).
pub const DIGEST_LEN: usize = 32;

const TAG_CHUNK: u8 = b'C';
const TAG_TRAILER: u8 = b'T';
/// Header flag: chunks vary in length (hill-climbed). The header's chunk
/// size is then the largest a chunk may be, and chunks before the last may
/// be shorter. Without it every chunk but the last is exactly the chunk
/// size, which readers check.
pub const HEADER_FLAG_VARIABLE: u16 = 0x0001;
/// Record flag: this is the final chunk.
pub const FLAG_LAST: u8 = 0x01;
/// Fixed bytes of a chunk record before the digest: tag, index, flags,
/// skip mask, original length, payload length.
const CHUNK_HEAD_LEN: usize = 1 + 8 + 1 + 1 + 4 + 4;

/// The largest payload a record may carry for a given chunk size. Compressed
/// payloads never exceed the chunk (a chunk that does not shrink is stored
/// raw); the slack is for stages that add a little, such as an AEAD tag.
pub fn max_payload(chunk_size: usize) -> usize {
    chunk_size + chunk_size / 8 + 4096
}
