//! The governor: counting semaphores for CPU and IO work, and a memory gauge.
//!
//! Two-level governance: the [`Governor`] is global (one per process or per
//! batch, shared by every file through an `Arc`), the channel depth is local
//! (per file). CPU tokens bound how many chunk jobs run on the rayon pool at
//! once; IO tokens bound how many reads and writes are in flight.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
// parking_lot, or loom's model under `--cfg loom`.
use crate::sync::{Condvar, Mutex};

/// How often a waiter re-checks its cancel token. A semaphore is shared by
/// runs with different tokens, so a cancel cannot notify "its" waiters
/// directly; a timed wait bounds the cancel latency instead (20 ms is far
/// below anything a person notices and costs nothing while permits flow,
/// because a release wakes the waiter long before the timeout).
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// A counting semaphore on one `parking_lot` `Mutex` + `Condvar` (loom's,
/// through `crate::sync`, when model-checked).
///
/// No wakeup is lost: `release` changes the count and notifies while holding
/// the lock, and a waiter checks the count under that same lock before
/// `wait` atomically unlocks and parks it. So a release either happens before
/// the check (and the waiter sees the permit) or after the waiter is parked
/// (and the notify reaches it).
pub struct Semaphore {
    name: &'static str,
    capacity: usize,
    available: Mutex<usize>,
    cond: Condvar,
    /// Waits that had to block, and their total time (for tuning).
    /// Relaxed: statistics only, nothing is published through them.
    waits: AtomicU64,
    wait_nanos: AtomicU64,
}

/// A permit held by RAII: dropping it (also during a panic unwind) returns the
/// permit. The idiomatic form of [`Semaphore::acquire_raw`] +
/// [`Semaphore::release`].
#[must_use = "a lease returns its permit when dropped"]
pub struct Lease<'a> {
    sem: &'a Semaphore,
    waited: Duration,
}

impl Semaphore {
    /// A semaphore with `capacity` permits (at least 1).
    pub fn new(name: &'static str, capacity: usize) -> Semaphore {
        let capacity = capacity.max(1);
        Semaphore {
            name,
            capacity,
            available: Mutex::new(capacity),
            cond: Condvar::new(),
            waits: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
        }
    }

    /// Takes a permit, waiting while none is free, and returns it as a lease.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Cancelled`] if `cancel` is set before a permit is
    /// free (checked at least every 20 ms): a cancelled run never hangs here.
    pub fn acquire<'a>(&'a self, cancel: &CancelToken) -> Result<Lease<'a>> {
        let waited = self.acquire_raw(cancel)?;
        Ok(Lease { sem: self, waited })
    }

    /// Takes a permit without waiting; `None` if none is free.
    pub fn try_acquire(&self) -> Option<Lease<'_>> {
        let mut available = self.available.lock();
        if *available == 0 {
            return None;
        }
        *available -= 1;
        Some(Lease {
            sem: self,
            waited: Duration::ZERO,
        })
    }

    /// The explicit form, for teaching: takes a permit that the caller must
    /// hand back with exactly one [`Semaphore::release`], and returns how
    /// long it waited for it (zero when one was free). Prefer
    /// [`Semaphore::acquire`], whose lease cannot be forgotten or returned
    /// twice.
    ///
    /// The semaphore records nothing but its own counts: a caller that
    /// wants the wait in a histogram (the engine does, per chunk) takes it
    /// from the return value, so this type depends on no metrics.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Cancelled`] as for [`Semaphore::acquire`].
    pub fn acquire_raw(&self, cancel: &CancelToken) -> Result<Duration> {
        let mut available = self.available.lock();
        if *available > 0 {
            *available -= 1;
            return Ok(Duration::ZERO);
        }
        let start = Instant::now();
        let result = loop {
            if cancel.is_cancelled() {
                break Err(Error::cancelled());
            }
            self.cond.wait_for(&mut available, CANCEL_POLL);
            if *available > 0 {
                *available -= 1;
                break Ok(());
            }
        };
        drop(available);
        let waited = start.elapsed();
        self.waits.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        result.map(|()| waited)
    }

    /// Returns one permit taken with [`Semaphore::acquire_raw`].
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Usage`] if every permit is already back: a
    /// release with nothing taken (a double release) is a bug in the
    /// caller, reported instead of absorbed, and the count is unchanged
    /// (capping it silently would hide the bug and the leak it pairs with).
    pub fn release(&self) -> Result<()> {
        let mut available = self.available.lock();
        if *available >= self.capacity {
            return Err(Error::usage(format!(
                "semaphore {}: released with all {} permits already back (a double release)",
                self.name, self.capacity
            )));
        }
        *available += 1;
        // Notify under the lock: see the type's docs for why no wakeup is lost.
        self.cond.notify_one();
        Ok(())
    }

    /// Permits free right now (a gauge; stale as soon as it returns).
    pub fn available(&self) -> usize {
        *self.available.lock()
    }

    /// The number of permits the semaphore was built with.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many acquires had to wait, and for how long in total.
    pub fn wait_stats(&self) -> (u64, Duration) {
        (
            self.waits.load(Ordering::Relaxed),
            Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        )
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("name", &self.name)
            .field("available", &self.available())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Lease<'_> {
    /// How long the acquire waited for this permit (zero when one was
    /// free).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // One lease holds exactly one permit, so this release cannot find
        // the count full.
        let released = self.sem.release();
        debug_assert!(released.is_ok(), "{released:?}");
    }
}

impl fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lease({})", self.sem.name)
    }
}

/// Bytes of chunk data alive in a run (read but not yet written), with the
/// peak. A gauge, not a cap: the memory bound comes from the channel depths
/// and CPU tokens, and this is how tests and metrics observe it.
#[derive(Debug, Default)]
pub struct MemoryGauge {
    current: AtomicU64,
    peak: AtomicU64,
}

impl MemoryGauge {
    /// Counts `bytes` as held.
    pub fn add(&self, bytes: usize) {
        // Relaxed: the gauge orders nothing; `fetch_max` keeps the peak
        // correct even when two threads race (each RMW sees the latest value).
        let now = self.current.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts `bytes` as released.
    pub fn sub(&self, bytes: usize) {
        self.current.fetch_sub(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes held now.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// The most bytes ever held at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// CPU and IO semaphores plus the memory gauge, shared by every file of a run.
///
/// One governor can bound several pipelines together:
///
/// ```
/// use std::sync::Arc;
/// use syncpipe::{CancelToken, Governor, Pipeline};
///
/// let governor = Arc::new(Governor::new(2, 4));
/// let a = Pipeline::builder().governor(Arc::clone(&governor)).build()?;
/// let b = Pipeline::builder().governor(Arc::clone(&governor)).build()?;
/// a.run(&[1u8; 1000][..], &mut Vec::new())?;
/// b.run(&[2u8; 1000][..], &mut Vec::new())?;
/// assert!(governor.all_returned());
///
/// // The semaphores work on their own, too: a lease returns its permit on drop.
/// let lease = governor.cpu.acquire(&CancelToken::new())?;
/// assert_eq!(governor.cpu.available(), 1);
/// drop(lease);
/// assert_eq!(governor.cpu.available(), 2);
/// # Ok::<(), syncpipe::Error>(())
/// ```
#[derive(Debug)]
pub struct Governor {
    /// Bounds chunk jobs running on the CPU pool.
    pub cpu: Semaphore,
    /// Bounds reads and writes in flight.
    pub io: Semaphore,
    /// Bytes of chunk data alive.
    pub memory: MemoryGauge,
}

impl Governor {
    /// A governor with `cpu` CPU tokens and `io` IO tokens (each at least 1).
    pub fn new(cpu: usize, io: usize) -> Governor {
        Governor {
            cpu: Semaphore::new("cpu", cpu),
            io: Semaphore::new("io", io),
            memory: MemoryGauge::default(),
        }
    }

    /// True when every CPU and IO permit is back (true between runs; the
    /// engine checks it after each run it owns, tests assert it).
    pub fn all_returned(&self) -> bool {
        self.cpu.available() == self.cpu.capacity() && self.io.available() == self.io.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn lease_returns_permit_on_drop() {
        let s = Semaphore::new("t", 2);
        let c = CancelToken::new();
        let a = s.acquire(&c).expect("free permit");
        let b = s.acquire(&c).expect("free permit");
        assert_eq!(s.available(), 0);
        assert!(s.try_acquire().is_none());
        drop(a);
        assert_eq!(s.available(), 1);
        drop(b);
        assert_eq!(s.available(), 2);
    }

    #[test]
    fn lease_returns_permit_on_panic() {
        let s = Arc::new(Semaphore::new("t", 1));
        let s2 = Arc::clone(&s);
        let r = thread::spawn(move || {
            let _l = s2.acquire(&CancelToken::new()).expect("free permit");
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(s.available(), 1);
    }

    #[test]
    fn a_double_release_is_an_error_and_changes_nothing() {
        let s = Semaphore::new("t", 2);
        assert_eq!(
            s.acquire_raw(&CancelToken::new()).expect("free"),
            Duration::ZERO
        );
        s.release().expect("one permit was taken");
        let err = s.release().expect_err("nothing was taken");
        assert_eq!(err.kind(), crate::ErrorKind::Usage);
        assert!(err.to_string().contains("double release"), "{err}");
        assert_eq!(s.available(), 2);
        // The count was not pushed past capacity: two leases, then none.
        let (a, b) = (s.try_acquire(), s.try_acquire());
        assert!(a.is_some() && b.is_some() && s.try_acquire().is_none());
    }

    #[test]
    fn waiter_is_woken_by_release() {
        let s = Arc::new(Semaphore::new("t", 1));
        s.acquire_raw(&CancelToken::new()).expect("free permit");
        let (tx, rx) = mpsc::channel();
        let s2 = Arc::clone(&s);
        let h = thread::spawn(move || {
            let got = s2.acquire(&CancelToken::new()).is_ok();
            tx.send(got).expect("test channel");
        });
        thread::sleep(Duration::from_millis(50));
        s.release().expect("one permit was taken");
        // Watchdog: a lost wakeup fails the test instead of hanging it.
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        h.join().expect("waiter thread");
        assert_eq!(s.available(), 1);
        assert_eq!(s.wait_stats().0, 1);
    }

    #[test]
    fn cancel_wakes_a_waiter() {
        let s = Arc::new(Semaphore::new("t", 1));
        let held = s.try_acquire().expect("free permit");
        let cancel = CancelToken::new();
        let (tx, rx) = mpsc::channel();
        let (s2, c2) = (Arc::clone(&s), cancel.clone());
        let h = thread::spawn(move || {
            let r = s2.acquire(&c2).map(|_| ());
            tx.send(r.is_err()).expect("test channel");
        });
        thread::sleep(Duration::from_millis(30));
        cancel.cancel();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        h.join().expect("waiter thread");
        drop(held);
        assert_eq!(s.available(), 1);
    }

    #[test]
    fn many_threads_never_exceed_capacity() {
        let s = Arc::new(Semaphore::new("t", 3));
        let inside = Arc::new(AtomicU64::new(0));
        let max = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..8 {
            let (s, inside, max, tx) = (s.clone(), inside.clone(), max.clone(), tx.clone());
            thread::spawn(move || {
                for _ in 0..200 {
                    let _l = s.acquire(&CancelToken::new()).expect("not cancelled");
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
                tx.send(()).expect("test channel");
            });
        }
        for _ in 0..8 {
            rx.recv_timeout(Duration::from_secs(30)).expect("deadlock");
        }
        assert!(max.load(Ordering::SeqCst) <= 3);
        assert_eq!(s.available(), 3);
    }

    #[test]
    fn gauge_tracks_peak() {
        let g = MemoryGauge::default();
        g.add(10);
        g.add(5);
        g.sub(10);
        g.add(2);
        assert_eq!(g.current(), 7);
        assert_eq!(g.peak(), 15);
    }
}
