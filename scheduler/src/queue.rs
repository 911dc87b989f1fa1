//! The scheduling queue, after kube-scheduler's (sched.md §1.8): an active heap ordered by
//! priority (higher first) then creation time (older first); a backoff area where failed
//! pods wait `initial × 2^(attempts−1)` capped at `max`; and a parking area for
//! Unschedulable pods, which leave it on a cluster event that may help them (node added,
//! taint removed, pod deleted, …) or after `park_flush`. Pure: the caller passes the time.

use hubpack_core::model::{Millis, PodKey};
use priority_queue::PriorityQueue;
use std::cmp::{Ordering, Reverse};
use std::collections::{HashMap, HashSet};

/// Heap order: higher priority, then older, then first enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Order {
    priority: i32,
    created: Millis,
    seq: u64,
}

impl Ord for Order {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then(Reverse(self.created).cmp(&Reverse(other.created)))
            .then(Reverse(self.seq).cmp(&Reverse(other.seq)))
    }
}

impl PartialOrd for Order {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial_ms: Millis,
    pub max_ms: Millis,
    /// Parked (Unschedulable) pods are retried at least this often even without an event.
    pub park_flush_ms: Millis,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: 1_000,
            max_ms: 10_000,
            park_flush_ms: 30_000,
        }
    }
}

impl Backoff {
    /// Delay after the n-th consecutive failure (n ≥ 1).
    pub fn delay(&self, attempts: u32) -> Millis {
        let shift = attempts.saturating_sub(1).min(30);
        self.initial_ms.saturating_mul(1 << shift).min(self.max_ms)
    }
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    order: Order,
    ready_at: Millis,
    parked_at: Option<Millis>,
}

#[derive(Debug, Default)]
pub struct SchedulingQueue {
    backoff: Backoff,
    active: PriorityQueue<PodKey, Order>,
    waiting: HashMap<PodKey, Waiting>,
    attempts: HashMap<PodKey, u32>,
    in_flight: HashSet<PodKey>,
    seq: u64,
}

impl SchedulingQueue {
    pub fn new(backoff: Backoff) -> Self {
        SchedulingQueue {
            backoff,
            ..Default::default()
        }
    }

    fn order(&mut self, priority: i32, created: Millis) -> Order {
        self.seq += 1;
        Order {
            priority,
            created,
            seq: self.seq,
        }
    }

    /// A pending pod was added or updated. New pods go to the active heap; a pod already
    /// queued keeps its place (its priority is refreshed); a waiting pod keeps waiting; a
    /// pod being scheduled right now is left to its attempt's outcome.
    pub fn add(&mut self, key: PodKey, priority: i32, created: Millis) {
        if self.in_flight.contains(&key) {
            return;
        }
        if let Some(w) = self.waiting.get_mut(&key) {
            w.order.priority = priority;
            return;
        }
        if let Some(old) = self.active.get_priority(&key).copied() {
            self.active.change_priority(
                &key,
                Order {
                    priority,
                    created,
                    ..old
                },
            );
            return;
        }
        let order = self.order(priority, created);
        self.active.push(key, order);
    }

    /// The pod is gone or no longer ours to schedule.
    pub fn remove(&mut self, key: &PodKey) {
        self.active.remove(key);
        self.waiting.remove(key);
        self.attempts.remove(key);
        self.in_flight.remove(key);
    }

    /// The next pod to schedule, after moving every pod whose backoff ended to the heap.
    /// The pod is in flight until [`Self::done`], [`Self::retry`] or [`Self::park`].
    pub fn pop(&mut self, now: Millis) -> Option<PodKey> {
        let ready: Vec<PodKey> = self
            .waiting
            .iter()
            .filter(|(_, w)| {
                w.ready_at <= now
                    && w.parked_at
                        .is_none_or(|p| p + self.backoff.park_flush_ms <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in ready {
            if let Some(w) = self.waiting.remove(&key) {
                self.active.push(key, w.order);
            }
        }
        let (key, _) = self.active.pop()?;
        self.in_flight.insert(key.clone());
        Some(key)
    }

    /// Scheduled (bound, or handed to the API): forget its failures.
    pub fn done(&mut self, key: &PodKey) {
        self.in_flight.remove(key);
        self.attempts.remove(key);
    }

    /// Failed for a reason that may pass by itself (API error, waiting for victims or a
    /// volume): back off and retry.
    pub fn retry(&mut self, key: PodKey, priority: i32, created: Millis, now: Millis) {
        self.wait(key, priority, created, now, false);
    }

    /// Unschedulable: back off, then wait for a cluster event (or the periodic flush).
    pub fn park(&mut self, key: PodKey, priority: i32, created: Millis, now: Millis) {
        self.wait(key, priority, created, now, true);
    }

    /// Not before `until`, whatever happens meanwhile (a placeholder's Unschedulable grace);
    /// does not count as a failure for the backoff.
    pub fn defer(&mut self, key: PodKey, priority: i32, created: Millis, until: Millis) {
        self.in_flight.remove(&key);
        self.active.remove(&key);
        let order = self.order(priority, created);
        self.waiting.insert(
            key,
            Waiting {
                order,
                ready_at: until,
                parked_at: None,
            },
        );
    }

    fn wait(&mut self, key: PodKey, priority: i32, created: Millis, now: Millis, parked: bool) {
        self.in_flight.remove(&key);
        self.active.remove(&key);
        let attempts = self.attempts.entry(key.clone()).or_insert(0);
        *attempts += 1;
        let ready_at = now + self.backoff.delay(*attempts);
        let order = self.order(priority, created);
        self.waiting.insert(
            key,
            Waiting {
                order,
                ready_at,
                parked_at: parked.then_some(now),
            },
        );
    }

    /// Something changed that may make parked pods schedulable: they leave as soon as their
    /// backoff ends.
    pub fn cluster_changed(&mut self) {
        for w in self.waiting.values_mut() {
            w.parked_at = None;
        }
    }

    /// What the pod was waiting for happened (its victims are gone, its claims are bound):
    /// schedule it now, backoff or not.
    pub fn wake(&mut self, key: &PodKey) {
        if let Some(w) = self.waiting.remove(key) {
            self.active.push(key.clone(), w.order);
        }
    }

    /// When the earliest waiting pod becomes ready (for the loop's sleep).
    pub fn next_ready_at(&self) -> Option<Millis> {
        self.waiting
            .values()
            .map(|w| match w.parked_at {
                Some(p) => w.ready_at.max(p + self.backoff.park_flush_ms),
                None => w.ready_at,
            })
            .min()
    }

    pub fn contains(&self, key: &PodKey) -> bool {
        self.active.get(key).is_some()
            || self.waiting.contains_key(key)
            || self.in_flight.contains(key)
    }

    /// (active, waiting in backoff, parked Unschedulable)
    pub fn depth(&self) -> (usize, usize, usize) {
        let parked = self
            .waiting
            .values()
            .filter(|w| w.parked_at.is_some())
            .count();
        (self.active.len(), self.waiting.len() - parked, parked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> PodKey {
        PodKey(s.into())
    }

    #[test]
    fn higher_priority_first_then_older_then_fifo() {
        let mut q = SchedulingQueue::new(Backoff::default());
        q.add(k("low-old"), -10, 1);
        q.add(k("user-new"), 0, 50);
        q.add(k("user-old"), 0, 10);
        q.add(k("user-same-a"), 0, 20);
        q.add(k("user-same-b"), 0, 20);
        let order: Vec<_> = std::iter::from_fn(|| q.pop(0)).map(|p| p.0).collect();
        assert_eq!(
            order,
            [
                "user-old",
                "user-same-a",
                "user-same-b",
                "user-new",
                "low-old"
            ]
        );
    }

    #[test]
    fn an_update_refreshes_priority_without_duplicating() {
        let mut q = SchedulingQueue::new(Backoff::default());
        q.add(k("a"), 0, 1);
        q.add(k("b"), 0, 2);
        q.add(k("b"), 5, 2);
        assert_eq!(q.depth(), (2, 0, 0));
        assert_eq!(q.pop(0), Some(k("b")));
        assert_eq!(q.pop(0), Some(k("a")));
        assert_eq!(q.pop(0), None);
    }

    #[test]
    fn backoff_doubles_from_one_second_to_ten() {
        let b = Backoff::default();
        let delays: Vec<_> = (1..=6).map(|n| b.delay(n)).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(b.delay(u32::MAX), 10_000);
    }

    #[test]
    fn a_retried_pod_waits_out_its_backoff() {
        let mut q = SchedulingQueue::new(Backoff::default());
        q.add(k("a"), 0, 1);
        assert_eq!(q.pop(0), Some(k("a")));
        q.retry(k("a"), 0, 1, 0);
        assert_eq!(q.pop(999), None);
        assert_eq!(q.next_ready_at(), Some(1_000));
        assert_eq!(q.pop(1_000), Some(k("a")));
        q.retry(k("a"), 0, 1, 1_000);
        assert_eq!(q.pop(2_999), None, "second failure waits 2 s");
        assert_eq!(q.pop(3_000), Some(k("a")));
        q.done(&k("a"));
        q.add(k("a"), 0, 1);
        q.retry(k("a"), 0, 1, 10_000);
        assert_eq!(q.pop(11_000), Some(k("a")), "success resets the backoff");
    }

    #[test]
    fn parked_pods_leave_on_a_cluster_event_or_the_flush() {
        let mut q = SchedulingQueue::new(Backoff::default());
        q.add(k("a"), 0, 1);
        q.add(k("b"), 0, 2);
        let a = q.pop(0).unwrap();
        q.park(a, 0, 1, 0);
        let b = q.pop(0).unwrap();
        q.park(b, 0, 2, 0);
        assert_eq!(q.depth(), (0, 0, 2));
        assert_eq!(
            q.pop(5_000),
            None,
            "no event: stays parked past its backoff"
        );
        q.cluster_changed();
        assert_eq!(q.pop(5_000), Some(k("a")));
        q.park(k("a"), 0, 1, 5_000);
        assert_eq!(q.pop(5_000), Some(k("b")));
        q.done(&k("b"));
        assert_eq!(q.pop(34_999), None);
        assert_eq!(q.next_ready_at(), Some(35_000));
        assert_eq!(q.pop(35_000), Some(k("a")), "periodic flush");
    }

    #[test]
    fn updates_while_in_flight_or_waiting_do_not_duplicate() {
        let mut q = SchedulingQueue::new(Backoff::default());
        q.add(k("a"), 0, 1);
        let a = q.pop(0).unwrap();
        q.add(k("a"), 0, 1);
        assert_eq!(q.pop(0), None, "in flight: not queued twice");
        q.retry(a, 0, 1, 0);
        q.add(k("a"), 0, 1);
        assert_eq!(q.pop(0), None, "still backing off");
        assert!(q.contains(&k("a")));
        q.wake(&k("a"));
        assert_eq!(
            q.pop(0),
            Some(k("a")),
            "woken: skips the rest of its backoff"
        );
        q.remove(&k("a"));
        assert!(!q.contains(&k("a")));
        assert_eq!(q.pop(100_000), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the insertion order, pods come out by priority (high first), then age.
        #[test]
        fn pops_in_priority_then_age_order(pods in proptest::collection::vec((-20i32..20, 0i64..50), 1..40)) {
            let mut q = SchedulingQueue::new(Backoff::default());
            for (i, (prio, created)) in pods.iter().enumerate() {
                q.add(PodKey(format!("p{i}")), *prio, *created);
            }
            let mut last: Option<(i32, i64)> = None;
            let mut n = 0;
            while let Some(k) = q.pop(0) {
                let i: usize = k.0[1..].parse().unwrap();
                let (prio, created) = pods[i];
                if let Some((lp, lc)) = last {
                    prop_assert!(prio < lp || (prio == lp && created >= lc));
                }
                last = Some((prio, created));
                n += 1;
            }
            prop_assert_eq!(n, pods.len());
        }
    }
}
