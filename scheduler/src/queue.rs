//! The scheduling queue, after kube-scheduler's
//! ([`scheduling_queue.go`](https://github.com/kubernetes/kubernetes/blob/v1.36.2/pkg/scheduler/backend/queue/scheduling_queue.go)): an active heap ordered by
//! priority (higher first) then creation time (older first); a backoff area where failed
//! pods wait `initial × 2^(attempts−1)` capped at `max`; and a parking area for
//! Unschedulable pods, which leave it on a cluster event that may help them (see
//! `requeue.rs`: a node they could use added or changed, resources freed on one, their
//! claim changed), straight to the active heap whatever remains of their backoff, so the
//! pods that waited longest get a new seat first; or after `park_flush`, a periodic retry
//! whose failure does not lengthen the backoff. Waiting pods are indexed by when they are due, so
//! a pop, the depth and the next due time cost O(log W), not a scan of W waiting pods.
//! Pure: the caller passes the time.

use hubpack_core::model::{Millis, PodKey};
use priority_queue::PriorityQueue;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Heap order: higher priority, then older, then first seen (creation times have a second's
/// resolution: pods created within one second keep the order they arrived in).
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
    /// Parked (Unschedulable) since: leaves on a cluster event that may help, or at
    /// `parked_at + park_flush`.
    parked_at: Option<Millis>,
}

impl Waiting {
    /// When it may go back to the heap without an event.
    fn due(&self, flush: Millis) -> Millis {
        match self.parked_at {
            Some(p) => self.ready_at.max(p.saturating_add(flush)),
            None => self.ready_at,
        }
    }
}

/// Waiting pods, indexed by when they are due (with 10,000 pods parked, a scan per pop,
/// depth or next-ready query would cost O(W²) to drain W pods).
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    backoff: Backoff,
    active: PriorityQueue<PodKey, Order>,
    waiting: HashMap<PodKey, Waiting>,
    /// (due, key) of every waiting pod.
    due: BTreeSet<(Millis, PodKey)>,
    parked: usize,
    attempts: HashMap<PodKey, u32>,
    /// Popped and not yet done, retried or parked.
    popped: HashSet<PodKey>,
    /// Handed to a bind in flight: left to the bind's outcome ([`Self::done`] or
    /// [`Self::retry`]), so an update meanwhile does not queue it a second time.
    binding: HashSet<PodKey>,
    /// Popped by the periodic flush, not by an event or the end of a backoff: its next
    /// failure does not count toward the backoff.
    flushed: HashSet<PodKey>,
    /// (creation time, key) of every pod the queue holds, for the oldest's age.
    by_created: BTreeSet<(Millis, PodKey)>,
    created: HashMap<PodKey, Millis>,
    /// When each pod was first enqueued (a counter), kept across its retries until it is
    /// bound or gone: the tie-break among pods created within the same second.
    arrival: HashMap<PodKey, u64>,
    seq: u64,
}

impl SchedulingQueue {
    pub fn new(backoff: Backoff) -> Self {
        SchedulingQueue {
            backoff,
            ..Default::default()
        }
    }

    fn order(&mut self, key: &PodKey, priority: i32, created: Millis) -> Order {
        let seq = match self.arrival.get(key) {
            Some(seq) => *seq,
            None => {
                self.seq += 1;
                self.arrival.insert(key.clone(), self.seq);
                self.seq
            }
        };
        Order {
            priority,
            created,
            seq,
        }
    }

    fn insert_waiting(&mut self, key: PodKey, w: Waiting) {
        self.take_waiting(&key);
        self.due
            .insert((w.due(self.backoff.park_flush_ms), key.clone()));
        if w.parked_at.is_some() {
            self.parked += 1;
        }
        self.waiting.insert(key, w);
    }

    fn take_waiting(&mut self, key: &PodKey) -> Option<Waiting> {
        let w = self.waiting.remove(key)?;
        self.due
            .remove(&(w.due(self.backoff.park_flush_ms), key.clone()));
        if w.parked_at.is_some() {
            self.parked -= 1;
        }
        Some(w)
    }

    /// A pending pod was added or updated. New pods go to the active heap; a pod already
    /// queued keeps its place (its priority is refreshed); a waiting pod keeps waiting; a
    /// pod being scheduled right now is left to its attempt's outcome.
    pub fn add(&mut self, key: PodKey, priority: i32, created: Millis) {
        if self.popped.contains(&key) || self.binding.contains(&key) {
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
        let order = self.order(&key, priority, created);
        self.hold(&key, created);
        self.active.push(key, order);
    }

    fn hold(&mut self, key: &PodKey, created: Millis) {
        if let Some(old) = self.created.insert(key.clone(), created) {
            self.by_created.remove(&(old, key.clone()));
        }
        self.by_created.insert((created, key.clone()));
    }

    fn release(&mut self, key: &PodKey) {
        if let Some(old) = self.created.remove(key) {
            self.by_created.remove(&(old, key.clone()));
        }
    }

    /// The creation time the queue holds for the pod.
    pub fn created_of(&self, key: &PodKey) -> Option<Millis> {
        self.created.get(key).copied()
    }

    /// Creation time of the oldest pod the queue holds (waiting, active or popped).
    pub fn oldest_created(&self) -> Option<Millis> {
        self.by_created.first().map(|(t, _)| *t)
    }

    /// The pod is gone or no longer ours to schedule.
    pub fn remove(&mut self, key: &PodKey) {
        self.release(key);
        self.active.remove(key);
        self.take_waiting(key);
        self.attempts.remove(key);
        self.arrival.remove(key);
        self.popped.remove(key);
        self.flushed.remove(key);
        self.binding.remove(key);
    }

    /// The next pod to schedule, after moving every waiting pod that is due to the heap.
    /// The pod is popped until [`Self::done`], [`Self::retry`], [`Self::park`] or
    /// [`Self::defer`].
    pub fn pop(&mut self, now: Millis) -> Option<PodKey> {
        while let Some((due, _)) = self.due.first()
            && *due <= now
        {
            let Some((_, key)) = self.due.pop_first() else {
                break;
            };
            if let Some(w) = self.waiting.remove(&key) {
                if w.parked_at.is_some() {
                    // Still parked when due: the periodic flush, not a change that may help.
                    self.parked -= 1;
                    self.flushed.insert(key.clone());
                }
                self.active.push(key, w.order);
            }
        }
        let (key, _) = self.active.pop()?;
        self.popped.insert(key.clone());
        Some(key)
    }

    /// Handed to a bind in flight: no longer counted as pending, and not queued again by
    /// an update until the bind ends ([`Self::done`] or, if it failed, [`Self::retry`]).
    pub fn binding(&mut self, key: &PodKey) {
        self.release(key);
        self.popped.remove(key);
        self.flushed.remove(key);
        self.active.remove(key);
        self.take_waiting(key);
        self.binding.insert(key.clone());
    }

    /// Whether a bind is in flight for the pod.
    pub fn is_binding(&self, key: &PodKey) -> bool {
        self.binding.contains(key)
    }

    /// Scheduled (bound): forget its failures.
    pub fn done(&mut self, key: &PodKey) {
        self.release(key);
        self.popped.remove(key);
        self.attempts.remove(key);
        self.arrival.remove(key);
        self.flushed.remove(key);
        self.binding.remove(key);
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
        self.hold(&key, created);
        self.popped.remove(&key);
        self.flushed.remove(&key);
        self.binding.remove(&key);
        self.active.remove(&key);
        let order = self.order(&key, priority, created);
        self.insert_waiting(
            key,
            Waiting {
                order,
                ready_at: until,
                parked_at: None,
            },
        );
    }

    fn wait(&mut self, key: PodKey, priority: i32, created: Millis, now: Millis, parked: bool) {
        self.hold(&key, created);
        self.popped.remove(&key);
        self.binding.remove(&key);
        self.active.remove(&key);
        let attempts = self.attempts.entry(key.clone()).or_insert(0);
        // A periodic retry is the queue's own initiative: failing it again says nothing
        // new, and a doubled backoff would let later arrivals overtake the pod.
        if !self.flushed.remove(&key) || *attempts == 0 {
            *attempts += 1;
        }
        let ready_at = now + self.backoff.delay(*attempts);
        let order = self.order(&key, priority, created);
        self.insert_waiting(
            key,
            Waiting {
                order,
                ready_at,
                parked_at: parked.then_some(now),
            },
        );
    }

    /// Something changed that may make any parked pod schedulable: they go back to the
    /// active heap at once. Prefer [`Self::unpark_where`] when the change helps only some.
    pub fn cluster_changed(&mut self) {
        self.unpark_where(|_| true);
    }

    /// Unparks the parked pods for which `helps` says the change may help; returns how many.
    /// They go straight to the active heap, whatever remains of their backoff: the pods
    /// that waited longest are tried first on the new seat (the heap's order), not those
    /// whose backoff happens to end first. A parked pod failed as Unschedulable, not on an
    /// error that retrying too soon would repeat, so the backoff has nothing to protect.
    pub fn unpark_where(&mut self, mut helps: impl FnMut(&PodKey) -> bool) -> usize {
        if self.parked == 0 {
            return 0;
        }
        let keys: Vec<PodKey> = self
            .waiting
            .iter()
            .filter(|(k, w)| w.parked_at.is_some() && helps(k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            if let Some(w) = self.take_waiting(key) {
                self.active.push(key.clone(), w.order);
            }
        }
        keys.len()
    }

    /// What the pod was waiting for happened (its victims are gone, its claims are bound):
    /// schedule it now, backoff or not.
    pub fn wake(&mut self, key: &PodKey) {
        if let Some(w) = self.take_waiting(key) {
            self.active.push(key.clone(), w.order);
        }
    }

    /// When the earliest waiting pod becomes due (for the loop's sleep).
    pub fn next_ready_at(&self) -> Option<Millis> {
        self.due.first().map(|(t, _)| *t)
    }

    #[cfg(test)]
    pub fn contains(&self, key: &PodKey) -> bool {
        self.active.get(key).is_some()
            || self.waiting.contains_key(key)
            || self.popped.contains(key)
    }

    /// (active, waiting in backoff, parked Unschedulable)
    pub fn depth(&self) -> (usize, usize, usize) {
        (
            self.active.len(),
            self.waiting.len() - self.parked,
            self.parked,
        )
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
    fn pods_created_within_one_second_keep_their_arrival_order_across_retries() {
        let mut q = SchedulingQueue::new(Backoff::default());
        // Creation times have a second's resolution: both say 10 s.
        q.add(k("first"), 0, 10_000);
        q.add(k("second"), 0, 10_000);
        assert_eq!(q.pop(0), Some(k("first")));
        q.park(k("first"), 0, 10_000, 0);
        assert_eq!(q.pop(0), Some(k("second")));
        q.park(k("second"), 0, 10_000, 0);
        // The first is retried alone (e.g. its claim changed) and fails again, later.
        q.wake(&k("first"));
        assert_eq!(q.pop(100), Some(k("first")));
        q.park(k("first"), 0, 10_000, 100);
        // A node turns Ready: both are tried again, the first to arrive first.
        q.cluster_changed();
        assert_eq!(q.pop(200), Some(k("first")));
        assert_eq!(q.pop(200), Some(k("second")));
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
    fn a_change_wakes_only_the_parked_pods_it_can_help() {
        let mut q = SchedulingQueue::new(Backoff::default());
        for (i, name) in ["small-a", "huge", "small-b"].iter().enumerate() {
            q.add(k(name), 0, i as i64);
            let p = q.pop(0).unwrap();
            q.park(p, 0, i as i64, 0);
        }
        q.add(k("backing-off"), 0, 9);
        let p = q.pop(0).unwrap();
        q.retry(p, 0, 9, 0);
        assert_eq!(q.depth(), (0, 1, 3));
        let woken = q.unpark_where(|k| k.0.starts_with("small"));
        assert_eq!(
            woken, 2,
            "only parked pods are asked, and only those helped leave"
        );
        assert_eq!(q.depth(), (2, 1, 1), "the helped ones are active at once");
        let mut popped: Vec<_> = std::iter::from_fn(|| q.pop(5_000)).map(|p| p.0).collect();
        popped.sort();
        assert_eq!(popped, ["backing-off", "small-a", "small-b"]);
        assert_eq!(q.depth(), (0, 0, 1));
        assert_eq!(q.next_ready_at(), Some(30_000), "huge waits for the flush");
    }

    /// Parks `name` after `failures` event-driven attempts ending at `now`.
    fn park_after(
        q: &mut SchedulingQueue,
        name: &str,
        created: Millis,
        failures: u32,
        now: Millis,
    ) {
        q.add(k(name), 0, created);
        for _ in 0..failures {
            q.unpark_where(|p| p.0 == name);
            let p = q.pop(now).unwrap();
            assert_eq!(p, k(name));
            q.park(p, 0, created, now);
        }
    }

    #[test]
    fn a_helpful_change_releases_parked_pods_oldest_first_whatever_their_backoff() {
        let mut q = SchedulingQueue::new(Backoff::default());
        // The oldest user failed 4 times (8 s backoff), the newest once (1 s).
        park_after(&mut q, "oldest", 1, 4, 0);
        park_after(&mut q, "middle", 2, 2, 0);
        park_after(&mut q, "newest", 3, 1, 0);
        assert_eq!(q.depth(), (0, 0, 3));
        // A node turns Ready 1.5 s later: only the newest's backoff is over.
        q.cluster_changed();
        let order: Vec<_> = std::iter::from_fn(|| q.pop(1_500)).map(|p| p.0).collect();
        assert_eq!(order, ["oldest", "middle", "newest"]);
    }

    #[test]
    fn periodic_retries_do_not_count_toward_the_backoff() {
        let mut q = SchedulingQueue::new(Backoff::default());
        q.add(k("a"), 0, 1);
        let a = q.pop(0).unwrap();
        q.park(a, 0, 1, 0);
        // Flushed at 30 s and again at 60 s with no change in the cluster.
        for flush in [30_000, 60_000] {
            assert_eq!(q.pop(flush - 1), None);
            let a = q.pop(flush).unwrap();
            q.park(a, 0, 1, flush);
        }
        assert_eq!(
            q.attempts.get(&k("a")),
            Some(&1),
            "only the first failure counts"
        );
        // A retry for another reason after a flushed attempt backs off as after one failure.
        let a = q.pop(90_000).unwrap();
        q.retry(a, 0, 1, 90_000);
        assert_eq!(q.next_ready_at(), Some(91_000));
        let a = q.pop(91_000).unwrap();
        q.retry(a, 0, 1, 91_000);
        assert_eq!(
            q.next_ready_at(),
            Some(93_000),
            "a non-periodic failure counts"
        );
    }

    #[test]
    fn a_new_arrival_does_not_overtake_an_older_pod_released_by_a_change() {
        let mut q = SchedulingQueue::new(Backoff::default());
        park_after(&mut q, "waited", 1, 5, 0);
        q.add(k("arrived"), 0, 2);
        q.cluster_changed();
        assert_eq!(q.pop(100), Some(k("waited")));
    }

    #[test]
    fn an_update_during_a_bind_does_not_queue_the_pod_again_nor_erase_a_failed_binds_retry() {
        let mut q = SchedulingQueue::new(Backoff::default());
        q.add(k("a"), 0, 1);
        let a = q.pop(0).unwrap();
        q.binding(&a);
        assert!(q.is_binding(&a));
        // The pod's own status write comes back as an update while the bind is out.
        q.add(k("a"), 0, 1);
        assert_eq!(q.pop(0), None, "not re-popped while its bind is in flight");
        // The bind fails: the retry stands, and a later update does not cut it short.
        q.retry(k("a"), 0, 1, 0);
        assert!(!q.is_binding(&a));
        q.add(k("a"), 0, 1);
        assert_eq!(q.pop(999), None);
        assert_eq!(q.pop(1_000), Some(k("a")));
        q.binding(&a);
        q.done(&a);
        assert!(!q.contains(&a) && !q.is_binding(&a));
        // Deleted while binding: gone for good.
        q.add(k("b"), 0, 2);
        let b = q.pop(0).unwrap();
        q.binding(&b);
        q.remove(&b);
        assert!(!q.is_binding(&b));
        q.add(k("b"), 0, 3);
        assert_eq!(
            q.pop(0),
            Some(k("b")),
            "a pod of the same name created anew is queued"
        );
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

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, i32),
        Pop(i64),
        Retry(u8),
        Park(u8),
        Defer(u8, i64),
        Wake(u8),
        Remove(u8),
        Changed,
        Unpark(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..12, -2i32..2).prop_map(|(k, p)| Op::Add(k, p)),
            (0i64..40_000).prop_map(Op::Pop),
            (0u8..12).prop_map(Op::Retry),
            (0u8..12).prop_map(Op::Park),
            (0u8..12, 0i64..20_000).prop_map(|(k, t)| Op::Defer(k, t)),
            (0u8..12).prop_map(Op::Wake),
            (0u8..12).prop_map(Op::Remove),
            Just(Op::Changed),
            (0u8..12).prop_map(Op::Unpark),
        ]
    }

    proptest! {
        /// The index of waiting pods agrees with a scan of them: a pod pops when due and
        /// not before, the depth and the next due time are what a scan would say.
        #[test]
        fn the_due_index_agrees_with_a_scan(ops in proptest::collection::vec(op(), 1..80)) {
            let mut q = SchedulingQueue::new(Backoff::default());
            let mut now = 0i64;
            let key = |i: u8| PodKey(format!("p{i}"));
            for op in ops {
                match op {
                    Op::Add(i, p) => q.add(key(i), p, i64::from(i)),
                    Op::Pop(dt) => {
                        now += dt;
                        let due_before: usize = q.waiting.values()
                            .filter(|w| w.due(q.backoff.park_flush_ms) <= now).count();
                        let active_before = q.active.len();
                        let popped = q.pop(now);
                        prop_assert_eq!(popped.is_some(), active_before + due_before > 0);
                        if let Some(k) = popped {
                            prop_assert!(!q.waiting.contains_key(&k));
                        }
                        prop_assert!(q.waiting.values().all(|w| w.due(q.backoff.park_flush_ms) > now));
                    }
                    Op::Retry(i) => if q.popped.contains(&key(i)) { q.retry(key(i), 0, 0, now) },
                    Op::Park(i) => if q.popped.contains(&key(i)) { q.park(key(i), 0, 0, now) },
                    Op::Defer(i, t) => if q.popped.contains(&key(i)) { q.defer(key(i), 0, 0, now + t) },
                    Op::Wake(i) => q.wake(&key(i)),
                    Op::Remove(i) => q.remove(&key(i)),
                    Op::Changed => { q.cluster_changed(); }
                    Op::Unpark(i) => { q.unpark_where(|k| *k == key(i)); }
                }
                let parked = q.waiting.values().filter(|w| w.parked_at.is_some()).count();
                prop_assert_eq!(q.depth(), (q.active.len(), q.waiting.len() - parked, parked));
                prop_assert_eq!(q.due.len(), q.waiting.len());
                let min = q.waiting.values().map(|w| w.due(q.backoff.park_flush_ms)).min();
                prop_assert_eq!(q.next_ready_at(), min);
            }
        }

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
