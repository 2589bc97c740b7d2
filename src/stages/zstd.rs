//! zstd: each chunk is one zstd frame.
//!
//! A frame larger than 1 MiB is compressed with a window as large as the
//! frame: zstd's default window (2 MiB at level 3, 8 MiB at 19) would
//! leave the frame's later bytes unable to match its first ones, and the
//! larger window is what brings independent 8 MiB frames level with
//! `zstd -T2`'s stream (`docs/performance.md`, "Ratio against zstd -T2").
//! Frames of at most 1 MiB keep zstd's own choice, byte for byte. Restore
//! needs no setting for it: a frame is decoded in one shot into its chunk's
//! buffer, and the decoder accepts windows up to 128 MiB (the largest chunk
//! is 64 MiB).

use std::cell::RefCell;
use std::ops::RangeInclusive;

use ::zstd::bulk::{Compressor, Decompressor};

use crate::error::{Error, Result};
use crate::stage::{ChunkInfo, Stage};

/// Compresses each chunk as one zstd frame, without zstd's content checksum
/// (the container's CRC already covers the stored bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zstd {
    level: i32,
}

impl Zstd {
    /// The levels [`Zstd::new`] accepts. 20..=22 are left out: they need
    /// "ultra" windows of up to 128 MiB per worker.
    pub const LEVELS: RangeInclusive<i32> = 1..=19;

    /// The level of a spec that names none (`zstd`): 3, zstd's own default.
    pub const DEFAULT_LEVEL: i32 = 3;

    /// A zstd stage at `level`.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] if `level` is outside [`Zstd::LEVELS`].
    pub fn new(level: i32) -> Result<Zstd> {
        if !Self::LEVELS.contains(&level) {
            return Err(Error::usage(format!(
                "zstd level {level} is out of range {:?}",
                Self::LEVELS
            )));
        }
        Ok(Zstd { level })
    }

    /// The compression level.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// The default chunk size for this stage: four of zstd's default
    /// windows at this level (8 MiB at levels 3–8, 32 MiB at 17–19), the
    /// job size `zstd -T` itself cuts its input into, at least 1 MiB.
    pub fn frame_size(level: i32) -> usize {
        (4usize << default_window_log(level)).max(1 << 20)
    }
}

/// zstd's default window log at `level` for inputs over 256 KiB
/// (`zstd -N --show-default-cparams`; the table of zstd 1.5).
fn default_window_log(level: i32) -> u32 {
    match level {
        ..=1 => 19,
        2 => 20,
        3..=8 => 21,
        9..=16 => 22,
        _ => 23,
    }
}

/// Frames up to this size are compressed with zstd's own parameters.
const OWN_WINDOW_MAX: usize = 1 << 20;

/// The window log of a frame of `len` bytes: 0 (zstd's choice) up to
/// [`OWN_WINDOW_MAX`], else the smallest window that holds the frame.
pub(crate) fn window_log(len: usize) -> u32 {
    if len <= OWN_WINDOW_MAX {
        return 0;
    }
    // ceil(log2(len)); at most 26 since a chunk is at most 64 MiB.
    usize::BITS - (len - 1).leading_zeros()
}

thread_local! {
    // A context costs more to create than a small chunk costs to compress, so
    // each worker thread keeps one (with the level and window log it was
    // last set to).
    static COMPRESSOR: RefCell<Option<(i32, u32, Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

fn new_compressor(level: i32) -> std::io::Result<Compressor<'static>> {
    let mut compressor = Compressor::new(level)?;
    // Off by default already; stated because the container checks the bytes.
    compressor.include_checksum(false)?;
    Ok(compressor)
}

impl Stage for Zstd {
    fn forward(&self, _chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        let failed = |e: std::io::Error| Error::stage(format!("compression failed: {e}"));
        COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            let (level, wlog, compressor) = match &mut *slot {
                Some(cached) => cached,
                empty => empty.insert((self.level, 0, new_compressor(self.level).map_err(failed)?)),
            };
            if *level != self.level {
                compressor
                    .set_compression_level(self.level)
                    .map_err(failed)?;
                *level = self.level;
            }
            let want = window_log(input.len());
            if *wlog != want {
                compressor
                    .set_parameter(::zstd::zstd_safe::CParameter::WindowLog(want))
                    .map_err(failed)?;
                *wlog = want;
            }
            output.clear();
            // Writes into the spare capacity (no zero-filling); the bound
            // guarantees even incompressible input fits.
            output.reserve(::zstd::zstd_safe::compress_bound(input.len()));
            compressor
                .compress_to_buffer(input, output)
                .map_err(failed)?;
            Ok(())
        })
    }

    fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        // Forward never produces an empty frame, and zstd would accept "no
        // frames" as empty content.
        if input.is_empty() {
            return Err(Error::integrity("corrupt frame: empty input"));
        }
        // A frame that declares more than the limit is a bomb (or damage):
        // refuse it before decoding a byte. Frames without a declared size
        // are still bounded by the buffer below.
        if let Ok(Some(declared)) = ::zstd::zstd_safe::get_frame_content_size(input) {
            if declared > chunk.limit as u64 {
                return Err(Error::integrity(format!(
                    "frame declares {declared} bytes, more than the limit of {} bytes",
                    chunk.limit
                )));
            }
        }
        DECOMPRESSOR.with(|cell| -> Result<()> {
            let mut slot = cell.borrow_mut();
            let decompressor = match &mut *slot {
                Some(cached) => cached,
                empty => empty.insert(
                    Decompressor::new()
                        .map_err(|e| Error::stage(format!("cannot create a decoder: {e}")))?,
                ),
            };
            output.clear();
            // zstd decodes into the capacity and never past it; the frame
            // header's content size lets it refuse an oversized frame early.
            crate::pool::reserve(output, chunk.limit)?;
            decompressor
                .decompress_to_buffer(input, output)
                .map_err(|e| {
                    Error::integrity(format!(
                        "corrupt frame, or it decodes to more than the limit of {} bytes: {e}",
                        chunk.limit
                    ))
                })?;
            Ok(())
        })?;
        // The capacity may exceed the limit (kept from a larger chunk).
        if output.len() > chunk.limit {
            output.clear();
            return Err(Error::integrity(format!(
                "frame decodes to more than the limit of {} bytes",
                chunk.limit
            )));
        }
        Ok(())
    }

    fn name(&self) -> String {
        "zstd".to_string()
    }

    fn skip_if_larger(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::stages::test_util::{check_codec, info, noise, text};

    /// zstd's own output for `data` at `level`, from a fresh compressor.
    fn plain(level: i32, data: &[u8]) -> Vec<u8> {
        new_compressor(level).unwrap().compress(data).unwrap()
    }

    #[test]
    fn codec_contract() {
        for level in [1, 3, 19] {
            check_codec(&Zstd::new(level).unwrap(), b"not a zstd frame at all");
        }
    }

    #[test]
    fn levels_are_validated() {
        for bad in [0, -1, 20, 25] {
            let err = Zstd::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage);
            assert_eq!(
                err.to_string(),
                format!("zstd level {bad} is out of range 1..=19")
            );
        }
        assert_eq!(Zstd::new(19).unwrap().level(), 19);
    }

    #[test]
    fn level_change_on_one_thread_takes_effect() {
        let data = text(200_000);
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        Zstd::new(1)
            .unwrap()
            .forward(&info(0), &data, &mut fast)
            .unwrap();
        Zstd::new(19)
            .unwrap()
            .forward(&info(0), &data, &mut slow)
            .unwrap();
        assert!(slow.len() < fast.len());
        let mut again = Vec::new();
        Zstd::new(1)
            .unwrap()
            .forward(&info(0), &data, &mut again)
            .unwrap();
        assert_eq!(again, fast);
    }

    #[test]
    fn no_content_checksum_is_written() {
        let mut out = Vec::new();
        Zstd::new(3)
            .unwrap()
            .forward(&info(0), b"hello", &mut out)
            .unwrap();
        // Frame header descriptor, after the 4-byte magic: bit 2 is the
        // content checksum flag.
        assert_eq!(out[4] & 0b100, 0);
    }

    #[test]
    fn frames_up_to_1_mib_are_zstds_own_bytes() {
        // The same thread, so the cached compressor has just been set to a
        // large window by the 3 MiB frame before each small one.
        let big = noise(3 << 20, 3);
        for level in [1, 3, 19] {
            let stage = Zstd::new(level).unwrap();
            for len in [1000, 300 << 10, 1 << 20] {
                let mut out = Vec::new();
                stage.forward(&info(0), &big, &mut out).unwrap();
                let data = text(len);
                stage.forward(&info(0), &data, &mut out).unwrap();
                assert_eq!(out, plain(level, &data), "level {level}, {len} bytes");
            }
        }
    }

    #[test]
    fn a_large_frame_matches_across_its_whole_length() {
        // 3 MiB of noise, then the same 3 MiB again: zstd's own 2 MiB window
        // at level 3 cannot reach back to the copy, a window as large as
        // the frame can, and the frame still restores.
        let half = noise(3 << 20, 11);
        let data = [half.as_slice(), half.as_slice()].concat();
        let stage = Zstd::new(3).unwrap();
        let mut packed = Vec::new();
        stage.forward(&info(0), &data, &mut packed).unwrap();
        assert!(
            packed.len() < half.len() + (half.len() / 50),
            "{} bytes: the second copy was not matched",
            packed.len()
        );
        assert!(plain(3, &data).len() > data.len() * 9 / 10);
        let mut restored = Vec::new();
        stage
            .inverse(&info(data.len()), &packed, &mut restored)
            .unwrap();
        assert!(restored == data);
    }

    #[test]
    fn frame_size_is_four_default_windows() {
        assert_eq!(Zstd::frame_size(1), 2 << 20);
        assert_eq!(Zstd::frame_size(3), 8 << 20);
        assert_eq!(Zstd::frame_size(9), 16 << 20);
        assert_eq!(Zstd::frame_size(19), 32 << 20);
        assert_eq!(window_log(1 << 20), 0);
        assert_eq!(window_log((1 << 20) + 1), 21);
        assert_eq!(window_log(8 << 20), 23);
        assert_eq!(window_log(64 << 20), 26);
    }
}
