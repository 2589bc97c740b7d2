//! The governor's semaphore under loom: every interleaving of a few threads
//! (within a preemption bound) is explored, so a lost wakeup, a permit
//! handed out twice or one never returned is a failure, not a rare flake.
//!
//! ```text
//! CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom" \
//!     cargo test --release --test loom_governor
//! ```
//!
//! (`.ci/loom` does this.) In normal builds the file compiles to nothing.
//!
//! What cannot be modelled: loom has no clock, and its timed wait is a
//! plain wait. The semaphore polls its cancel token on a 20 ms timed wait,
//! so the models run it two ways (`syncpipe::sync::model_timeouts`):
//! timeouts off, where a waiter wakes only through `release`'s notify (so
//! acquire/release is proved not to depend on the poll), and timeouts on,
//! where every timed wait may return at once (so a cancel always ends the
//! wait). That a real timeout does fire, and within 20 ms, is the
//! stress test's and `governor::tests::cancel_wakes_a_waiter`'s to show.
#![cfg(loom)]

use std::sync::Mutex as StdMutex;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use syncpipe::sync::model_timeouts;
use syncpipe::{CancelToken, ErrorKind, Semaphore};

/// The timeout switch is process-wide: one model at a time.
static SERIAL: StdMutex<()> = StdMutex::new(());

fn model(timeouts: bool, f: impl Fn() + Sync + Send + 'static) {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    model_timeouts(timeouts);
    let mut builder = loom::model::Builder::new();
    // Enough to reach every ordering of the few lock operations each thread
    // makes here; unbounded, the spinning waits of the timeout models would
    // not finish.
    builder.preemption_bound = Some(3);
    // Counts the interleavings explored (a plain atomic: outside the model).
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "loom: {} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// Cancels `cancel` from the calling thread between two locks of the
/// semaphore's mutex. `CancelToken` is a plain atomic that loom does not see;
/// the locks are loom operations ordered against the waiter's, so the
/// model places the cancel between any two of the waiter's steps (before
/// its wait, while it is parked, after it got a permit).
fn cancel_between_locks(sem: &Semaphore, cancel: &CancelToken) {
    let _ = sem.available();
    cancel.cancel();
    let _ = sem.available();
}

/// Takes a permit and, while holding it, checks that no more than
/// `capacity` holders are inside at once.
fn hold(sem: &Semaphore, inside: &AtomicUsize, capacity: usize, cancel: &CancelToken) {
    let lease = sem.acquire(cancel).expect("not cancelled");
    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(now <= capacity, "{now} holders of {capacity} permits");
    inside.fetch_sub(1, Ordering::SeqCst);
    drop(lease);
}

/// Three threads, one permit: mutual exclusion, no lost wakeup (timeouts
/// off: a waiter that missed its notify would hang, which loom reports as
/// a deadlock), every permit back at the end.
#[test]
fn three_threads_one_permit_no_lost_wakeup() {
    model(false, || {
        let sem = Arc::new(Semaphore::new("cpu", 1));
        let inside = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || hold(&sem, &inside, 1, &CancelToken::new()))
            })
            .collect();
        hold(&sem, &inside, 1, &CancelToken::new());
        for w in workers {
            w.join().expect("worker");
        }
        assert_eq!(sem.available(), 1);
    });
}

/// Two permits, three threads each taking one twice: the count never goes
/// past capacity and never leaks.
#[test]
fn two_permits_three_threads_never_exceed_capacity() {
    model(false, || {
        let sem = Arc::new(Semaphore::new("io", 2));
        let inside = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || hold(&sem, &inside, 2, &CancelToken::new()))
            })
            .collect();
        hold(&sem, &inside, 2, &CancelToken::new());
        for w in workers {
            w.join().expect("worker");
        }
        assert_eq!(sem.available(), 2);
    });
}

/// The explicit form: `acquire_raw` and one `release` per permit, a waiter
/// woken by the release.
#[test]
fn raw_acquire_and_release_hand_over() {
    model(false, || {
        let sem = Arc::new(Semaphore::new("cpu", 1));
        sem.acquire_raw(&CancelToken::new()).expect("free permit");
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || {
                sem.acquire_raw(&CancelToken::new()).expect("not cancelled");
                sem.release().expect("one permit was taken");
            })
        };
        sem.release().expect("one permit was taken");
        waiter.join().expect("waiter");
        assert_eq!(sem.available(), 1);
    });
}

/// A waiter blocked on an exhausted semaphore is cancelled: it returns
/// `Cancelled` without a permit, the holder's permit comes back, and the
/// count ends at capacity. Timeouts on: the cancel is seen at the next
/// poll, whenever the cancel lands relative to the wait.
#[test]
fn cancel_while_waiting_wakes_the_waiter_and_returns_every_permit() {
    model(true, || {
        let sem = Arc::new(Semaphore::new("cpu", 1));
        let cancel = CancelToken::new();
        let held = sem.try_acquire().expect("free permit");
        let waiter = {
            let (sem, cancel) = (sem.clone(), cancel.clone());
            thread::spawn(move || {
                // The holder lets go only after this thread ends: the
                // cancel is the only way out of the wait.
                let e = sem.acquire(&cancel).expect_err("no permit is free");
                assert_eq!(e.kind(), ErrorKind::Cancelled);
            })
        };
        cancel_between_locks(&sem, &cancel);
        waiter.join().expect("waiter");
        drop(held);
        assert_eq!(sem.available(), 1);
    });
}

/// Cancel with a permit released concurrently: the waiter either gets the
/// permit or is cancelled, never both, never neither, and nothing leaks.
#[test]
fn cancel_racing_a_release_loses_no_permit() {
    model(true, || {
        let sem = Arc::new(Semaphore::new("cpu", 1));
        let cancel = CancelToken::new();
        sem.acquire_raw(&CancelToken::new()).expect("free permit");
        let waiter = {
            let (sem, cancel) = (sem.clone(), cancel.clone());
            thread::spawn(move || {
                if sem.acquire_raw(&cancel).is_ok() {
                    sem.release().expect("one permit was taken");
                }
            })
        };
        let releaser = {
            let sem = sem.clone();
            thread::spawn(move || sem.release().expect("one permit was taken"))
        };
        cancel_between_locks(&sem, &cancel);
        waiter.join().expect("waiter");
        releaser.join().expect("releaser");
        assert_eq!(sem.available(), 1);
    });
}
