//! Passthrough: the identity transform.

use crate::error::{Error, Result};
use crate::stage::{ChunkInfo, Stage};

/// Copies each chunk unchanged in both directions.
///
/// Useful to measure the engine itself (reading, framing, checksums, writing)
/// without a codec's cost, or to add only a checksum to a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passthrough;

impl Stage for Passthrough {
    fn forward(&self, _chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        output.clear();
        output.extend_from_slice(input);
        Ok(())
    }

    fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        if input.len() > chunk.limit {
            return Err(Error::integrity(format!(
                "chunk of {} bytes is larger than the limit of {} bytes",
                input.len(),
                chunk.limit
            )));
        }
        output.clear();
        output.extend_from_slice(input);
        Ok(())
    }

    fn name(&self) -> String {
        "passthrough".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::stages::test_util::{info, noise};

    #[test]
    fn copies_both_ways() {
        for data in [Vec::new(), vec![1], noise(10_000, 5)] {
            let (mut packed, mut restored) = (Vec::new(), Vec::new());
            Passthrough.forward(&info(0), &data, &mut packed).unwrap();
            assert_eq!(packed, data);
            Passthrough
                .inverse(&info(data.len()), &packed, &mut restored)
                .unwrap();
            assert_eq!(restored, data);
        }
        assert!(!Passthrough.skip_if_larger());
        assert_eq!(Passthrough.name(), "passthrough");
    }

    #[test]
    fn inverse_respects_the_limit() {
        let mut out = Vec::new();
        let err = Passthrough.inverse(&info(2), b"abc", &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(out.is_empty());
    }
}
