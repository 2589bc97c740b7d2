//! Which file of a batch starts next: the ordering policy of the batch's
//! scheduler thread (`scheduler.rs`), kept free of threads and clocks so that a
//! test can drive it on a synthetic clock.
//!
//! `simple` starts files in the order they were found (FIFO). `fair` starts
//! three small files for every large one and lets large files hold at most
//! a quarter of the in-flight slots (at least one), so a few large files at
//! the head of the list cannot hold every slot while hundreds of small files
//! wait behind them (head-of-line blocking). Capping large files costs
//! little throughput: a large file is parallel inside (its chunks run on
//! every CPU token at once), while small files are only parallel across
//! files, so it is the small ones that need the slots.

use std::collections::VecDeque;

/// Files up to this size (10 MiB, inclusive) are *small* for the fair
/// scheduler: "small" means under about 10 MB, widened to 10 MiB so that
/// the 10 MiB files of the mixed benchmark (`benches/make_mixed.py`) count
/// as small ones.
pub const FAIR_SMALL_MAX: u64 = 10 << 20;
/// Small files started for each large one by the fair scheduler.
pub const FAIR_SMALLS_PER_LARGE: u32 = 3;

/// The scheduling policy of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// First in, first out: files start in the order they were found.
    Simple,
    /// 3 small : 1 large, large files in at most a quarter of the slots.
    /// The default.
    #[default]
    Fair,
}

named_enum!(
    Policy,
    "scheduler",
    [
        Policy::Simple => "simple",
        Policy::Fair => "fair",
    ]
);

/// Size class of a queued item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// At most [`FAIR_SMALL_MAX`] bytes.
    Small,
    /// Larger.
    Large,
}

impl Class {
    /// The class of an item of `bytes` bytes.
    pub fn of(bytes: u64) -> Class {
        if bytes <= FAIR_SMALL_MAX {
            Class::Small
        } else {
            Class::Large
        }
    }
}

/// What is running now, as the scheduler counts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Running {
    /// Large items in flight.
    pub large: usize,
    /// Slots in all (the bound on items in flight).
    pub slots: usize,
}

/// The queue of items not yet started, and the policy that picks the next.
#[derive(Debug)]
pub struct Queue<T> {
    policy: Policy,
    /// Items in the order found, with their class.
    fifo: VecDeque<(Class, T)>,
    small: VecDeque<T>,
    large: VecDeque<T>,
    smalls_since_large: u32,
}

impl<T> Queue<T> {
    /// An empty queue with `policy`.
    pub fn new(policy: Policy) -> Queue<T> {
        Queue {
            policy,
            fifo: VecDeque::new(),
            small: VecDeque::new(),
            large: VecDeque::new(),
            smalls_since_large: 0,
        }
    }

    /// Adds an item of `bytes` bytes at the back.
    pub fn push(&mut self, bytes: u64, item: T) {
        let class = Class::of(bytes);
        match (self.policy, class) {
            (Policy::Simple, _) => self.fifo.push_back((class, item)),
            (Policy::Fair, Class::Small) => self.small.push_back(item),
            (Policy::Fair, Class::Large) => self.large.push_back(item),
        }
    }

    /// True when nothing is left to start (the policy's simulation).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.fifo.is_empty() && self.small.is_empty() && self.large.is_empty()
    }

    /// The item to start in a free slot, given what is `running`; `None`
    /// only when the queue is empty (a free slot never idles while work is
    /// queued: fair gives a capped large file's turn to a small one).
    pub fn next(&mut self, running: Running) -> Option<(Class, T)> {
        match self.policy {
            Policy::Simple => self.fifo.pop_front(),
            Policy::Fair => {
                let large_cap = (running.slots / 4).max(1);
                let large_ok = running.large < large_cap || self.small.is_empty();
                let want_large = self.smalls_since_large >= FAIR_SMALLS_PER_LARGE;
                if !self.large.is_empty() && large_ok && (want_large || self.small.is_empty()) {
                    self.smalls_since_large = 0;
                    return self.large.pop_front().map(|t| (Class::Large, t));
                }
                if let Some(t) = self.small.pop_front() {
                    self.smalls_since_large = self.smalls_since_large.saturating_add(1);
                    return Some((Class::Small, t));
                }
                None
            }
        }
    }

    /// Removes and returns every item not yet started (a cancelled batch).
    pub fn drain(&mut self) -> Vec<T> {
        let mut all: Vec<T> = self.fifo.drain(..).map(|(_, t)| t).collect();
        all.extend(self.small.drain(..));
        all.extend(self.large.drain(..));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One file of the synthetic model: its size class and its cost in
    /// core-seconds of CPU work.
    #[derive(Clone, Copy)]
    struct Job {
        id: usize,
        class: Class,
        cost: f64,
    }

    /// Runs `jobs` (in the order found) through `policy` on a synthetic
    /// clock: `slots` files in flight at most, `cores` CPUs shared by the
    /// files in flight (processor sharing, water-filled: a small file can
    /// use one core, a large one every core, as its chunks run in
    /// parallel). Returns each job's completion time.
    fn simulate(policy: Policy, jobs: &[Job], slots: usize, cores: f64) -> Vec<f64> {
        let mut queue = Queue::new(policy);
        for j in jobs {
            let bytes = match j.class {
                Class::Small => 1,
                Class::Large => FAIR_SMALL_MAX + 1,
            };
            queue.push(bytes, *j);
        }
        let mut done = vec![f64::NAN; jobs.len()];
        // (job, remaining cost)
        let mut running: Vec<(Job, f64)> = Vec::new();
        let mut now = 0.0;
        loop {
            while running.len() < slots {
                let large = running
                    .iter()
                    .filter(|(j, _)| j.class == Class::Large)
                    .count();
                match queue.next(Running { large, slots }) {
                    Some((_, j)) => running.push((j, j.cost)),
                    None => break,
                }
            }
            if running.is_empty() {
                assert!(
                    queue.is_empty(),
                    "the policy must not stall an idle machine"
                );
                return done;
            }
            // Water-filling: equal shares, capped by each file's demand,
            // the excess shared again among the uncapped.
            let demand = |j: &Job| match j.class {
                Class::Small => 1.0,
                Class::Large => cores,
            };
            let mut rate = vec![0.0; running.len()];
            let mut left = cores;
            let mut open: Vec<usize> = (0..running.len()).collect();
            while !open.is_empty() && left > 1e-12 {
                let share = left / open.len() as f64;
                let capped: Vec<usize> = open
                    .iter()
                    .copied()
                    .filter(|&i| demand(&running[i].0) - rate[i] <= share)
                    .collect();
                if capped.is_empty() {
                    for &i in &open {
                        rate[i] += share;
                    }
                    break;
                }
                for &i in &capped {
                    left -= demand(&running[i].0) - rate[i];
                    rate[i] = demand(&running[i].0);
                }
                open.retain(|i| !capped.contains(i));
            }
            let step = running
                .iter()
                .zip(&rate)
                .map(|((_, rem), r)| rem / r)
                .fold(f64::INFINITY, f64::min);
            now += step;
            for ((_, rem), r) in running.iter_mut().zip(&rate) {
                *rem -= r * step;
            }
            running.retain(|(j, rem)| {
                if *rem <= 1e-9 {
                    done[j.id] = now;
                    false
                } else {
                    true
                }
            });
        }
    }

    fn p95(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[((xs.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)]
    }

    /// `large` large files (100 core-s each) found first, then 300 small
    /// ones (0.05 core-s each), as a tree whose `big/` sorts first.
    fn tree(large: usize) -> Vec<Job> {
        let mut jobs = Vec::new();
        for _ in 0..large {
            jobs.push((Class::Large, 100.0));
        }
        for _ in 0..300 {
            jobs.push((Class::Small, 0.05));
        }
        jobs.into_iter()
            .enumerate()
            .map(|(id, (class, cost))| Job { id, class, cost })
            .collect()
    }

    fn small_p95(policy: Policy, jobs: &[Job], slots: usize, cores: f64) -> (f64, f64) {
        let done = simulate(policy, jobs, slots, cores);
        let small: Vec<f64> = jobs
            .iter()
            .filter(|j| j.class == Class::Small)
            .map(|j| done[j.id])
            .collect();
        let makespan = done.iter().copied().fold(0.0, f64::max);
        (p95(small), makespan)
    }

    #[test]
    fn fair_lowers_small_file_p95_behind_large_files() {
        // 4 slots on 2 cores (the batch default: twice the CPU tokens).
        let jobs = tree(6);
        let (simple, simple_end) = small_p95(Policy::Simple, &jobs, 4, 2.0);
        let (fair, fair_end) = small_p95(Policy::Fair, &jobs, 4, 2.0);
        // FIFO: the six large files take every slot; the small ones wait
        // for about 200 s. Fair: they finish in the first ~20 s.
        assert!(simple > 150.0, "simple P95 {simple}");
        assert!(fair < 0.1 * simple, "fair P95 {fair} vs simple {simple}");
        // Same total work, and no idle core either way: same makespan.
        assert!((fair_end - simple_end).abs() < 1e-6 * simple_end);
    }

    #[test]
    fn fair_is_no_worse_with_one_large_file() {
        let jobs = tree(1);
        let (simple, _) = small_p95(Policy::Simple, &jobs, 4, 2.0);
        let (fair, _) = small_p95(Policy::Fair, &jobs, 4, 2.0);
        assert!(fair <= simple + 1e-9, "fair {fair} simple {simple}");
    }

    #[test]
    fn fair_ratio_is_three_to_one() {
        let mut q = Queue::new(Policy::Fair);
        for i in 0..8 {
            q.push(1, i);
        }
        for i in 100..102 {
            q.push(FAIR_SMALL_MAX + 1, i);
        }
        let free = Running {
            large: 0,
            slots: 16,
        };
        let order: Vec<i32> = std::iter::from_fn(|| q.next(free).map(|(_, t)| t)).collect();
        assert_eq!(order, vec![0, 1, 2, 100, 3, 4, 5, 101, 6, 7]);
    }

    #[test]
    fn fair_caps_large_files_only_while_small_ones_wait() {
        let mut q = Queue::new(Policy::Fair);
        q.push(FAIR_SMALL_MAX + 1, "L1");
        q.push(FAIR_SMALL_MAX + 1, "L2");
        q.push(1, "s");
        let one_large = Running { large: 1, slots: 4 };
        assert_eq!(q.next(one_large).map(|x| x.1), Some("s"));
        // No small file left: large files may take every slot.
        assert_eq!(q.next(one_large).map(|x| x.1), Some("L1"));
        assert_eq!(
            q.next(Running { large: 2, slots: 4 }).map(|x| x.1),
            Some("L2")
        );
        assert!(q.next(one_large).is_none());
    }

    #[test]
    fn simple_is_fifo() {
        let mut q = Queue::new(Policy::Simple);
        q.push(FAIR_SMALL_MAX + 1, 0);
        q.push(1, 1);
        q.push(1, 2);
        let r = Running { large: 4, slots: 4 };
        let order: Vec<i32> = std::iter::from_fn(|| q.next(r).map(|(_, t)| t)).collect();
        assert_eq!(order, vec![0, 1, 2]);
    }
}
