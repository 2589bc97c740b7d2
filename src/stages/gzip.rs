//! gzip (deflate): each chunk is one raw deflate stream.

use std::cell::RefCell;
use std::ops::RangeInclusive;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{Error, Result};
use crate::stage::{ChunkInfo, Stage};

/// Compresses each chunk as one raw deflate stream (spec `gzip:N`, alias
/// `deflate:N`).
///
/// There is no gzip header or trailer per chunk: the container frames the
/// chunks and checks them with its own CRC, so the output is not a `.gz`
/// file even though the compression is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gzip {
    level: u32,
}

impl Gzip {
    /// The levels [`Gzip::new`] accepts.
    pub const LEVELS: RangeInclusive<u32> = 1..=9;

    /// The level of a spec that names none (`gzip`): 6, as in `gzip(1)`.
    pub const DEFAULT_LEVEL: u32 = 6;

    /// A deflate stage at `level`.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] if `level` is outside [`Gzip::LEVELS`].
    pub fn new(level: u32) -> Result<Gzip> {
        if !Self::LEVELS.contains(&level) {
            return Err(Error::usage(format!(
                "gzip level {level} is out of range {:?}",
                Self::LEVELS
            )));
        }
        Ok(Gzip { level })
    }

    /// The compression level.
    pub fn level(&self) -> u32 {
        self.level
    }
}

thread_local! {
    // Deflate state is a few hundred KiB; each worker reuses its own.
    static COMPRESS: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
    static DECOMPRESS: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// zlib's `deflateBound` for a raw stream: enough that one call finishes.
fn bound(len: usize) -> usize {
    len + (len >> 12) + (len >> 14) + (len >> 25) + 16
}

/// Appends `input` as one raw deflate stream at `level` to `output`.
fn deflate_append(level: u32, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
    COMPRESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = || Compress::new(Compression::new(level), false);
        let (cached, compress) = match &mut *slot {
            Some(cached) => cached,
            empty => empty.insert((level, fresh())),
        };
        if *cached != level {
            *compress = fresh();
            *cached = level;
        }
        compress.reset();
        crate::pool::reserve(output, output.len() + bound(input.len()))?;
        loop {
            let done = compress.total_in() as usize;
            let status = compress
                .compress_vec(&input[done..], output, FlushCompress::Finish)
                .map_err(|e| Error::stage(format!("compression failed: {e}")))?;
            if status == Status::StreamEnd {
                return Ok(());
            }
            // compress_vec only fills spare capacity; should the bound
            // ever fall short, make room and go on.
            output.reserve(output.len().max(64));
        }
    })
}

/// Appends the decoding of the one raw deflate stream `input` to `output`:
/// at most `limit` bytes, and the stream must end exactly at the end of
/// `input`.
fn inflate_append(input: &[u8], limit: usize, output: &mut Vec<u8>) -> Result<()> {
    DECOMPRESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompress = slot.get_or_insert_with(|| Decompress::new(false));
        // Also clears the error state a corrupt stream may have left.
        decompress.reset(false);
        let base = output.len();
        // One byte of room past the limit, so that a stream that is too
        // long shows as such instead of as a stream that never ends.
        crate::pool::reserve(output, base + limit.saturating_add(1))?;
        loop {
            let (done_in, done_out) = (decompress.total_in() as usize, output.len());
            let status = decompress
                .decompress_vec(&input[done_in..], output, FlushDecompress::Finish)
                .map_err(|e| Error::integrity(format!("corrupt deflate stream: {e}")))?;
            if output.len() - base > limit {
                output.truncate(base);
                return Err(Error::integrity(format!(
                    "deflate stream decodes to more than the limit of {limit} bytes"
                )));
            }
            if status == Status::StreamEnd {
                break;
            }
            // Room is left in the output, so no progress means no input.
            if decompress.total_in() as usize == done_in && output.len() == done_out {
                return Err(Error::integrity("truncated deflate stream"));
            }
        }
        let trailing = input.len() - decompress.total_in() as usize;
        if trailing != 0 {
            return Err(Error::integrity(format!(
                "{trailing} bytes after the end of the deflate stream"
            )));
        }
        Ok(())
    })
}

impl Stage for Gzip {
    fn forward(&self, _chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        output.clear();
        deflate_append(self.level, input, output)
    }

    fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        output.clear();
        inflate_append(input, chunk.limit, output)
    }

    fn name(&self) -> String {
        "gzip".to_string()
    }

    fn skip_if_larger(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::stages::test_util::{check_codec, info, text};

    #[test]
    fn codec_contract() {
        for level in [1, 6, 9] {
            // Block type 3 is reserved: invalid from the first byte.
            check_codec(&Gzip::new(level).unwrap(), &[0xff; 16]);
        }
    }

    #[test]
    fn levels_are_validated() {
        for bad in [0, 10, u32::MAX] {
            let err = Gzip::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage);
            assert_eq!(
                err.to_string(),
                format!("gzip level {bad} is out of range 1..=9")
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let data = text(1000);
        let mut packed = Vec::new();
        Gzip::new(6)
            .unwrap()
            .forward(&info(0), &data, &mut packed)
            .unwrap();
        packed.push(0);
        let mut out = Vec::new();
        let err = Gzip::new(6)
            .unwrap()
            .inverse(&info(1000), &packed, &mut out);
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Integrity);
    }
}
