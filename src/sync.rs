//! The lock and condition variable the governor waits on: parking_lot's in
//! every normal build, loom's model-checked ones under `--cfg loom` (see
//! `tests/loom_governor.rs`). Only what the governor calls is wrapped.

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex};

#[cfg(loom)]
pub use self::model::{model_timeouts, Condvar, Mutex, MutexGuard};

#[cfg(loom)]
mod model {
    use std::ops::{Deref, DerefMut};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// loom's timed wait never times out (it is a plain wait), so how a
    /// timeout behaves is a switch each model sets: off, a waiter wakes
    /// only when notified (a lost wakeup shows as a deadlock); on, every
    /// timed wait returns at once, the earliest a real timeout could fire.
    static TIMEOUTS: AtomicBool = AtomicBool::new(false);

    /// Sets whether timed waits time out at once in the model.
    pub fn model_timeouts(on: bool) {
        TIMEOUTS.store(on, Ordering::SeqCst);
    }

    /// parking_lot's API (`lock` without poisoning) over loom's mutex.
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    /// Holds loom's guard in an `Option` so that a wait can move it out
    /// and back, as loom's `Condvar` takes guards by value.
    pub struct MutexGuard<'a, T> {
        lock: &'a loom::sync::Mutex<T>,
        inner: Option<loom::sync::MutexGuard<'a, T>>,
    }

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                lock: &self.0,
                inner: Some(self.0.lock().expect("no poisoning in the model")),
            }
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.inner.as_ref().expect("guard held outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.inner.as_mut().expect("guard held outside a wait")
        }
    }

    #[derive(Debug)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub fn new() -> Condvar {
            Condvar(loom::sync::Condvar::new())
        }

        pub fn wait_for<T>(&self, guard: &mut MutexGuard<'_, T>, timeout: Duration) {
            let held = guard.inner.take().expect("guard held outside a wait");
            if TIMEOUTS.load(Ordering::SeqCst) {
                // Timed out at once: unlock, let the others run, relock.
                drop(held);
                loom::thread::yield_now();
                guard.inner = Some(guard.lock.lock().expect("no poisoning in the model"));
            } else {
                let (held, _) = self
                    .0
                    .wait_timeout(held, timeout)
                    .expect("no poisoning in the model");
                guard.inner = Some(held);
            }
        }

        pub fn notify_one(&self) {
            self.0.notify_one();
        }
    }
}
