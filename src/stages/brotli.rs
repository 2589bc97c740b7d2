//! Brotli: each chunk is one brotli stream.

use std::io::{self, Read};
use std::ops::RangeInclusive;

use ::brotli::enc::BrotliEncoderParams;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::stage::{ChunkInfo, Stage};

/// The window of every stream: 4 MiB (`lgwin` 22), brotli's usual default,
/// so a decoder never needs more than that per worker.
const LGWIN: i32 = 22;

/// Compresses each chunk as one brotli stream. Slow at high qualities, best
/// ratio of the built-in codecs on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brotli {
    quality: u32,
}

impl Brotli {
    /// The qualities [`Brotli::new`] accepts.
    pub const QUALITIES: RangeInclusive<u32> = 0..=11;

    /// The quality of a spec that names none (`brotli`): 5, a balance of
    /// speed and ratio (brotli's own default, 11, is very slow).
    pub const DEFAULT_QUALITY: u32 = 5;

    /// A brotli stage at `quality`.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] if `quality` is outside [`Brotli::QUALITIES`].
    pub fn new(quality: u32) -> Result<Brotli> {
        if !Self::QUALITIES.contains(&quality) {
            return Err(Error::usage(format!(
                "brotli quality {quality} is out of range {:?}",
                Self::QUALITIES
            )));
        }
        Ok(Brotli { quality })
    }

    /// The compression quality.
    pub fn quality(&self) -> u32 {
        self.quality
    }
}

/// A writer that refuses to grow `out` past `limit` bytes, so that a hostile
/// stream cannot make the decoder allocate without bound.
struct Bounded<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
}

impl io::Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.limit - self.out.len() {
            return Err(io::Error::other(format!(
                "stream decodes to more than the limit of {} bytes",
                self.limit
            )));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The chunk as brotli's encoder reads it, with the cancel token checked
/// before every read.
///
/// Why a reader and not a hand-fed streaming encoder: `BrotliCompress`
/// pulls its input 4 KiB at a time and does its heavy work (one input block
/// of 256 KiB at qualities 9 to 11) between reads, so a check per read
/// stops a cancelled chunk within one block. And because this reader hands
/// out exactly the bytes, in exactly the reads, that the plain slice would,
/// the encoder's output is byte for byte the same as without a token.
struct Watched<'a> {
    input: &'a [u8],
    cancel: Option<&'a CancelToken>,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(io::Error::other("cancelled"));
        }
        self.input.read(buf)
    }
}

impl Brotli {
    fn compress(
        &self,
        input: &[u8],
        output: &mut Vec<u8>,
        cancel: Option<&CancelToken>,
    ) -> Result<()> {
        let params = BrotliEncoderParams {
            quality: self.quality as i32,
            lgwin: LGWIN,
            size_hint: input.len(),
            ..BrotliEncoderParams::default()
        };
        output.clear();
        let mut reader = Watched { input, cancel };
        ::brotli::BrotliCompress(&mut reader, output, &params).map_err(|e| {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                output.clear();
                Error::cancelled()
            } else {
                Error::stage(format!("compression failed: {e}"))
            }
        })?;
        Ok(())
    }
}

impl Stage for Brotli {
    fn forward(&self, _chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        self.compress(input, output, None)
    }

    fn forward_cancellable(
        &self,
        _chunk: &ChunkInfo,
        input: &[u8],
        output: &mut Vec<u8>,
        cancel: &CancelToken,
    ) -> Result<()> {
        self.compress(input, output, Some(cancel))
    }

    fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        output.clear();
        let mut reader = input;
        let mut writer = Bounded {
            out: output,
            limit: chunk.limit,
        };
        // Any failure, including the bounded writer's, is bad input here.
        // Bytes after the end of the stream go unnoticed (the decoder reads
        // ahead); the container's CRC covers them.
        ::brotli::BrotliDecompress(&mut reader, &mut writer).map_err(|e| {
            output.clear();
            match e.kind() {
                io::ErrorKind::Other => Error::integrity(e.to_string()),
                _ => Error::integrity(format!("corrupt or truncated stream: {e}")),
            }
        })
    }

    fn name(&self) -> String {
        "brotli".to_string()
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
        for quality in [1, 5, 9] {
            check_codec(&Brotli::new(quality).unwrap(), &[0xff; 16]);
        }
    }

    #[test]
    fn extreme_qualities_round_trip() {
        let data = text(20_000);
        for quality in [0, 11] {
            let stage = Brotli::new(quality).unwrap();
            let (mut packed, mut restored) = (Vec::new(), Vec::new());
            stage.forward(&info(0), &data, &mut packed).unwrap();
            stage
                .inverse(&info(data.len()), &packed, &mut restored)
                .unwrap();
            assert_eq!(restored, data);
        }
    }

    #[test]
    fn watching_a_token_changes_no_byte() {
        let data = text(700_000);
        for quality in [1, 9, 11] {
            let stage = Brotli::new(quality).unwrap();
            let (mut plain, mut watched) = (Vec::new(), Vec::new());
            stage.forward(&info(0), &data, &mut plain).unwrap();
            stage
                .forward_cancellable(&info(0), &data, &mut watched, &CancelToken::new())
                .unwrap();
            assert!(plain == watched, "quality {quality}");
        }
    }

    #[test]
    fn a_cancelled_token_stops_the_encoder() {
        let cancel = CancelToken::new();
        cancel.cancel();
        let mut out = Vec::new();
        let err = Brotli::new(9)
            .unwrap()
            .forward_cancellable(&info(0), &text(100_000), &mut out, &cancel)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(out.is_empty());
    }

    #[test]
    fn qualities_are_validated() {
        let err = Brotli::new(12).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert_eq!(err.to_string(), "brotli quality 12 is out of range 0..=11");
        assert_eq!(Brotli::new(0).unwrap().quality(), 0);
    }
}
