//! The hasher thread: the whole-file digest, when it cannot be assembled
//! from the workers' pieces (SHA-256, or BLAKE3 over chunks that are not
//! whole subtrees; see `stages/tree.rs`).
//!
//! It sits between the reader and the dispatcher: the reader hands it each
//! chunk in order over a short bounded channel, it hashes the chunk and
//! passes it on. So the reader only reads, and hashing runs beside reading
//! instead of after it; a serial hash's speed is then the ceiling of its
//! own thread, not a share of the reader's. The channel's bound is the only
//! read-ahead it adds.

use crossbeam_channel::Receiver;

use super::reader::Feed;
use super::state::{Role, RunState};
use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::format::DIGEST_LEN;
use crate::stages::ChecksumKind;

/// Chunks read ahead of the hasher: one being hashed, one waiting, so that
/// neither thread waits on the other in steady state.
pub(crate) const DEPTH: usize = 2;

/// A chunk on its way to the hasher, with the IO wait its read took (the
/// reader's, reported by the feed on the job it becomes).
pub(crate) struct Read {
    pub chunk: Chunk,
    pub read_wait: u64,
}

/// Hashes each chunk from `chunks` in order and sends it on; returns the
/// digest once the reader has closed the channel.
///
/// # Errors
///
/// Cancelled when the run stops (the dispatcher is gone, or the run was
/// cancelled); the chunks still queued are dropped with the channel.
pub(crate) fn run(
    state: &RunState<'_>,
    kind: ChecksumKind,
    chunks: Receiver<Read>,
    feed: &Feed<'_, Chunk>,
) -> Result<[u8; DIGEST_LEN]> {
    let mut hasher = kind.hasher();
    let hashed = chunks.iter().try_for_each(|Read { chunk, read_wait }| {
        state.check()?;
        hasher.update(&chunk.data);
        feed.send_waited(chunk, read_wait)
            .map_err(|_| Error::cancelled())
    });
    state.note_thread_cpu(Role::Hasher);
    hashed.map(|()| hasher.finalize())
}
