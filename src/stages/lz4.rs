//! LZ4: each chunk is one LZ4 block.

use lz4_flex::block::{compress_into, decompress_into, get_maximum_output_size, DecompressError};

use crate::error::{Error, Result};
use crate::stage::{ChunkInfo, Stage};

/// Compresses each chunk as one raw LZ4 block (block format, no size prefix:
/// the container records each chunk's original size). Fast, modest ratio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lz4;

impl Stage for Lz4 {
    fn forward(&self, _chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        output.clear();
        output.resize(get_maximum_output_size(input.len()), 0);
        match compress_into(input, output) {
            Ok(len) => {
                output.truncate(len);
                Ok(())
            }
            Err(e) => {
                output.clear();
                Err(Error::stage(format!("compression failed: {e}")))
            }
        }
    }

    fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        // Forward always emits at least a token byte; an empty block would
        // otherwise decode to nothing without complaint.
        if input.is_empty() {
            return Err(Error::integrity("corrupt block: empty input"));
        }
        output.clear();
        // The slice bounds the decoder: a block that would decode to more
        // fails with "output too small" instead of growing the buffer.
        crate::pool::reserve(output, chunk.limit)?;
        output.resize(chunk.limit, 0);
        match decompress_into(input, output) {
            Ok(len) => {
                output.truncate(len);
                Ok(())
            }
            Err(DecompressError::OutputTooSmall { .. }) => {
                output.clear();
                Err(Error::integrity(format!(
                    "block decodes to more than the limit of {} bytes",
                    chunk.limit
                )))
            }
            Err(e) => {
                output.clear();
                Err(Error::integrity(format!(
                    "corrupt block (limit {} bytes): {e}",
                    chunk.limit
                )))
            }
        }
    }

    fn name(&self) -> String {
        "lz4".to_string()
    }

    fn skip_if_larger(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::test_util::{check_codec, info, noise};

    #[test]
    fn codec_contract() {
        // A token announcing 15+ literals, then length bytes that never end.
        check_codec(&Lz4, &[0xff; 16]);
    }

    #[test]
    fn incompressible_data_grows_only_a_little() {
        let data = noise(65_536, 3);
        let mut out = Vec::new();
        Lz4.forward(&info(0), &data, &mut out).unwrap();
        assert!(out.len() <= get_maximum_output_size(data.len()));
        assert!(out.len() >= data.len());
    }
}
