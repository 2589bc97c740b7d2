//! How a file of a standard format (`.zst`, `.gz`) is read: as units that
//! decode each on its own, in parallel, or as one sequential stream. The
//! layout is found before any output exists, from sizes the format itself
//! records (a zstd seek table or frame headers, a BGZF block size), and
//! without decoding. See `docs/design.md`, "Standard formats".

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// One unit to decode in parallel: a zstd frame, or gzip members read and
/// decoded together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Bytes of the unit in the file.
    pub len: u64,
    /// Bytes it decodes to.
    pub content: u64,
    /// A zstd skippable frame (the seek table's included): no data, not
    /// counted as a chunk.
    pub skippable: bool,
}

/// How a file is read.
#[derive(Debug, PartialEq)]
pub enum Layout {
    /// Units that can be decoded each on its own, in file order.
    Frames(Vec<Span>),
    /// One sequential decode of the whole input.
    Sequential,
    /// An age file whose header is opened: its pieces, and what they hold.
    Age(Box<crate::stream::AgeLayout>),
}

/// Whether a unit of `len` bytes that says it decodes to `content` can be
/// one job: at most `limit` bytes decoded, and no larger than such content
/// can be coded (raw or stored blocks add a few bytes per 64–128 KiB,
/// headers and checksums a few dozen), so that neither side of a job is
/// larger than the content the restore window allows.
pub(crate) fn fits(len: u64, content: u64, limit: u64) -> bool {
    content <= limit && len <= content + content / 1024 + 1024
}

/// A positional reader of `file` for the formats' `layout_at`.
pub(crate) fn file_reader(file: &File) -> impl FnMut(u64, &mut [u8]) -> io::Result<()> + '_ {
    move |offset, buf| file.read_exact_at(buf, offset)
}
