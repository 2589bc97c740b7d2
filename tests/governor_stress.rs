//! The governor under stress, for what the loom models cannot show (loom
//! has no clock, so the 20 ms cancel poll is not modelled there; see
//! `tests/loom_governor.rs`): many threads acquiring, releasing and being
//! cancelled at random on real threads, every test under a watchdog so a
//! deadlock fails instead of hanging the suite.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::watchdog;
use parking_lot::Mutex;
use syncpipe::{CancelToken, ErrorKind, Semaphore};

const CAPACITY: usize = 3;
const WORKERS: usize = 12;
const ROUNDS: usize = 1500;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Twelve workers on three permits: leases, raw acquire/release and
/// try_acquire mixed at random, while a canceller thread cancels the token
/// of whichever wait it picks. Never more than three holders, every
/// cancelled wait ends, every permit comes back.
#[test]
fn random_acquire_release_and_cancel_keep_the_count_exact() {
    let (acquired, cancelled) = watchdog(120, || {
        let sem = Arc::new(Semaphore::new("cpu", CAPACITY));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let acquired = Arc::new(AtomicUsize::new(0));
        let cancelled = Arc::new(AtomicUsize::new(0));
        // The token each worker is waiting with right now, for the
        // canceller to pick from.
        let slots: Arc<Vec<Mutex<Option<CancelToken>>>> =
            Arc::new((0..WORKERS).map(|_| Mutex::new(None)).collect());
        let done = Arc::new(AtomicUsize::new(0));

        let canceller = {
            let (slots, done) = (slots.clone(), done.clone());
            thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64;
                while done.load(Ordering::SeqCst) < WORKERS {
                    let pick = xorshift(&mut rng) as usize % WORKERS;
                    if let Some(c) = slots[pick].lock().as_ref() {
                        c.cancel();
                    }
                    thread::sleep(Duration::from_micros(200));
                }
            })
        };

        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (sem, inside, peak) = (sem.clone(), inside.clone(), peak.clone());
                let (acquired, cancelled) = (acquired.clone(), cancelled.clone());
                let (slots, done) = (slots.clone(), done.clone());
                thread::spawn(move || {
                    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ (w as u64 + 1);
                    // Inside the permit: count holders; sometimes stay a
                    // while so that others queue up behind.
                    let enter = |pause: bool| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        assert!(now <= CAPACITY, "{now} holders of {CAPACITY} permits");
                        if pause {
                            thread::sleep(Duration::from_micros(100));
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                    };
                    for _ in 0..ROUNDS {
                        let r = xorshift(&mut rng);
                        let cancel = CancelToken::new();
                        *slots[w].lock() = Some(cancel.clone());
                        match r % 3 {
                            0 => match sem.acquire(&cancel) {
                                Ok(lease) => {
                                    acquired.fetch_add(1, Ordering::SeqCst);
                                    enter(r & 0x30 == 0);
                                    drop(lease);
                                }
                                Err(e) => {
                                    assert_eq!(e.kind(), ErrorKind::Cancelled);
                                    cancelled.fetch_add(1, Ordering::SeqCst);
                                }
                            },
                            1 => match sem.acquire_raw(&cancel) {
                                Ok(_) => {
                                    acquired.fetch_add(1, Ordering::SeqCst);
                                    enter(r & 0x30 == 0);
                                    sem.release().expect("one permit was taken");
                                }
                                Err(e) => {
                                    assert_eq!(e.kind(), ErrorKind::Cancelled);
                                    cancelled.fetch_add(1, Ordering::SeqCst);
                                }
                            },
                            _ => {
                                if let Some(lease) = sem.try_acquire() {
                                    acquired.fetch_add(1, Ordering::SeqCst);
                                    enter(r & 0x30 == 0);
                                    drop(lease);
                                }
                            }
                        }
                        *slots[w].lock() = None;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        canceller.join().expect("canceller");
        assert!(peak.load(Ordering::SeqCst) <= CAPACITY);
        assert_eq!(sem.available(), CAPACITY, "every permit is back");
        (
            acquired.load(Ordering::SeqCst),
            cancelled.load(Ordering::SeqCst),
        )
    });
    assert!(acquired > WORKERS * ROUNDS / 4, "only {acquired} acquired");
    // Whether a cancel lands on a blocked wait is up to the scheduler; the
    // count shows the path ran without requiring a number of it.
    eprintln!("acquired {acquired}, cancelled {cancelled}");
}

/// Waiters blocked on an exhausted semaphore (nothing will ever be
/// released) are all cancelled at once: each returns `Cancelled` within
/// the poll interval plus scheduling slack, and the held permits come back.
#[test]
fn cancel_reaches_every_blocked_waiter_within_the_poll_interval() {
    watchdog(60, || {
        let sem = Arc::new(Semaphore::new("cpu", 2));
        let held: Vec<_> = (0..2)
            .map(|_| sem.try_acquire().expect("free permit"))
            .collect();
        let cancel = CancelToken::new();
        let (tx, rx) = mpsc::channel();
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let (sem, cancel, tx) = (sem.clone(), cancel.child(), tx.clone());
                thread::spawn(move || {
                    let r = sem.acquire(&cancel).map(|_| ());
                    tx.send((r.map_err(|e| e.kind()), Instant::now()))
                        .expect("test channel");
                })
            })
            .collect();
        // Let every waiter reach its wait.
        thread::sleep(Duration::from_millis(100));
        let at = Instant::now();
        cancel.cancel();
        for _ in 0..8 {
            let (r, when) = rx.recv_timeout(Duration::from_secs(10)).expect("woken");
            assert_eq!(r, Err(ErrorKind::Cancelled));
            let latency = when.saturating_duration_since(at);
            assert!(
                latency < Duration::from_secs(1),
                "a cancelled waiter took {latency:?} (poll is 20 ms)"
            );
        }
        for w in waiters {
            w.join().expect("waiter");
        }
        drop(held);
        assert_eq!(sem.available(), 2);
    });
}
