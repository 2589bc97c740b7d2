//! A pool of reusable chunk buffers.
//!
//! Streaming a file allocates a few chunk-sized buffers at the start and then
//! recycles them: in steady state a run allocates nothing. The free list is a
//! bounded crossbeam channel used only with `try_send`/`try_recv`, so taking
//! or returning a buffer never blocks, which matters because rayon workers
//! return buffers and must never block (rayon#779).

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};

/// A free list of `Vec<u8>` buffers with reuse counters.
#[derive(Debug)]
pub struct BufferPool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    /// Relaxed counters: statistics only, read after the run's threads are
    /// joined (the join is the synchronisation point that makes them exact).
    reused: AtomicU64,
    fresh: AtomicU64,
    capacity_hint: usize,
}

impl BufferPool {
    /// A pool that keeps at most `max_free` idle buffers; new buffers are
    /// created with `capacity_hint` bytes of capacity.
    pub fn new(max_free: usize, capacity_hint: usize) -> BufferPool {
        let (tx, rx) = crossbeam_channel::bounded(max_free.max(1));
        BufferPool {
            tx,
            rx,
            reused: AtomicU64::new(0),
            fresh: AtomicU64::new(0),
            capacity_hint,
        }
    }

    /// An empty buffer: a recycled one when available, else a new one.
    pub fn take(&self) -> Vec<u8> {
        match self.rx.try_recv() {
            Ok(mut buf) => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                buf.clear();
                buf
            }
            Err(_) => {
                self.fresh.fetch_add(1, Ordering::Relaxed);
                Vec::with_capacity(self.capacity_hint)
            }
        }
    }

    /// Returns a buffer for reuse; dropped if the pool is full.
    pub fn give(&self, buf: Vec<u8>) {
        if buf.capacity() > 0 {
            let _ = self.tx.try_send(buf);
        }
    }

    /// (buffers reused, buffers freshly allocated) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.reused.load(Ordering::Relaxed),
            self.fresh.load(Ordering::Relaxed),
        )
    }
}

/// Makes room for `len` bytes in `buf`, fallibly: a chunk buffer that
/// cannot be had (the chunk sizes a container declares, under `ulimit -v`)
/// is an error of that run, where `Vec`'s own growth would abort the
/// process.
///
/// # Errors
///
/// [`crate::ErrorKind::Resource`] naming the size.
pub(crate) fn reserve(buf: &mut Vec<u8>, len: usize) -> crate::error::Result<()> {
    buf.try_reserve(len.saturating_sub(buf.len())).map_err(|_| {
        crate::error::Error::resource(format!(
            "out of memory: cannot allocate a chunk buffer of {len} bytes"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused() {
        let p = BufferPool::new(2, 16);
        let a = p.take();
        p.give(a);
        let b = p.take();
        assert!(b.capacity() >= 16);
        assert_eq!(p.stats(), (1, 1));
    }

    #[test]
    fn full_pool_drops_extra_buffers() {
        let p = BufferPool::new(1, 8);
        let (a, b) = (p.take(), p.take());
        p.give(a);
        p.give(b); // dropped, not blocking
        let _ = p.take();
        let _ = p.take();
        assert_eq!(p.stats(), (1, 3));
    }
}
