//! The `Stage` trait: one transform of a chunk, and its inverse.
//!
//! A stage sees one chunk at a time, on a rayon worker, with no shared state
//! between chunks (chunks are independent so they can run in parallel and be
//! restored in parallel). The engine owns the buffers: `output` arrives empty
//! (capacity kept from earlier chunks, so steady state allocates nothing) and
//! the stage writes its whole result into it.

use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// What a stage knows about the chunk it is transforming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Position of the chunk in the stream, from 0.
    pub index: u64,
    /// True for the final chunk of the stream (an empty input has one empty,
    /// final chunk), so that stages such as STREAM-style encryption can bind
    /// "this is the end" into their output.
    pub last: bool,
    /// Upper bound on the size of an inverse's output: a stage must refuse to
    /// produce more (hostile input could otherwise expand without limit).
    pub limit: usize,
}

/// One transform of a chunk and its inverse.
///
/// Implemented for the built-in stages (see [`crate::stages`]), for
/// [`FnStage`] (a pair of closures, see [`from_fn`]), and for `&S`, `Box<S>`
/// and `Arc<S>`.
///
/// # Errors
///
/// Return [`Error`]s built with [`Error::stage`] for failures of the forward
/// direction and [`Error::integrity`] when the inverse meets input it cannot
/// decode; the engine adds the chunk index and stage name.
pub trait Stage: Send + Sync {
    /// Transforms `input` into `output` (which is empty on entry).
    fn forward(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()>;

    /// Undoes [`Stage::forward`]: `output` is empty on entry and must not
    /// grow past `chunk.limit` bytes.
    fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()>;

    /// [`Stage::forward`] in a run that may be cancelled meanwhile; the
    /// engine calls this one. A stage whose work on one chunk is long (brotli
    /// at quality 11 takes seconds per MiB) should check `cancel` between
    /// pieces of that work and return [`Error::cancelled`] once it is set:
    /// the run cannot end before its chunk jobs do, so this is what bounds
    /// the time from a Ctrl-C to the exit. When not cancelled, the output
    /// must be exactly [`Stage::forward`]'s (containers must not depend on
    /// whether a token was watched).
    ///
    /// By default: checks once, then runs [`Stage::forward`].
    fn forward_cancellable(
        &self,
        chunk: &ChunkInfo,
        input: &[u8],
        output: &mut Vec<u8>,
        cancel: &CancelToken,
    ) -> Result<()> {
        if cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        self.forward(chunk, input, output)
    }

    /// A short lowercase name for messages and the container header.
    ///
    /// By default, `"custom"`.
    fn name(&self) -> String {
        "custom".to_string()
    }

    /// True if a chunk whose forward output is not smaller than its input
    /// should be stored untransformed by this stage (compressors on
    /// incompressible data). The record remembers the skip, and restore skips
    /// the inverse for that chunk.
    ///
    /// By default, `false`.
    fn skip_if_larger(&self) -> bool {
        false
    }
}

/// `&S`, `Box<S>` and `Arc<S>` are stages when `S` is: every method
/// forwards, so a shared or boxed stage behaves exactly like the original.
macro_rules! forward_stage {
    ($($ptr:ty),*) => {$(
        impl<S: Stage + ?Sized> Stage for $ptr {
            fn forward(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
                (**self).forward(chunk, input, output)
            }
            fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
                (**self).inverse(chunk, input, output)
            }
            fn forward_cancellable(
                &self,
                chunk: &ChunkInfo,
                input: &[u8],
                output: &mut Vec<u8>,
                cancel: &CancelToken,
            ) -> Result<()> {
                (**self).forward_cancellable(chunk, input, output, cancel)
            }
            fn name(&self) -> String {
                (**self).name()
            }
            fn skip_if_larger(&self) -> bool {
                (**self).skip_if_larger()
            }
        }
    )*};
}

forward_stage!(&S, Box<S>, Arc<S>);

/// A stage made of two closures; see [`from_fn`].
pub struct FnStage<F, G> {
    name: String,
    forward: F,
    inverse: G,
}

/// Builds a stage from a forward and an inverse closure.
///
/// Each closure gets the chunk's bytes and an empty output vector. The
/// inverse must not produce more than the original chunk size; the engine
/// checks the length it gets back against the record.
///
/// ```
/// use syncpipe::stage::{from_fn, Stage, ChunkInfo};
/// let xor = from_fn(
///     "xor",
///     |input: &[u8], out: &mut Vec<u8>| { out.extend(input.iter().map(|b| b ^ 0x5a)); Ok(()) },
///     |input: &[u8], out: &mut Vec<u8>| { out.extend(input.iter().map(|b| b ^ 0x5a)); Ok(()) },
/// );
/// let info = ChunkInfo { index: 0, last: true, limit: 16 };
/// let mut out = Vec::new();
/// xor.forward(&info, b"abc", &mut out).unwrap();
/// assert_eq!(out, [b'a' ^ 0x5a, b'b' ^ 0x5a, b'c' ^ 0x5a]);
/// ```
pub fn from_fn<F, G>(name: impl Into<String>, forward: F, inverse: G) -> FnStage<F, G>
where
    F: Fn(&[u8], &mut Vec<u8>) -> Result<()> + Send + Sync,
    G: Fn(&[u8], &mut Vec<u8>) -> Result<()> + Send + Sync,
{
    FnStage {
        name: name.into(),
        forward,
        inverse,
    }
}

impl<F, G> Stage for FnStage<F, G>
where
    F: Fn(&[u8], &mut Vec<u8>) -> Result<()> + Send + Sync,
    G: Fn(&[u8], &mut Vec<u8>) -> Result<()> + Send + Sync,
{
    fn forward(&self, _chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        (self.forward)(input, output)
    }
    fn inverse(&self, chunk: &ChunkInfo, input: &[u8], output: &mut Vec<u8>) -> Result<()> {
        (self.inverse)(input, output)?;
        if output.len() > chunk.limit {
            return Err(Error::integrity(format!(
                "inverse produced {} bytes, more than the limit of {}",
                output.len(),
                chunk.limit
            )));
        }
        Ok(())
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}
