//! The status lane: the writes that can wait (a pod's not-scheduled condition, clearing a
//! nomination that did not work out) go here, never ahead of binds and evictions.
//!
//! With thousands of pods pending, a condition patch per failed attempt in the one FIFO
//! limiter binds use would queue minutes of patches ahead of any bind (the message changes
//! with every node added). Here (as in kube-scheduler's API
//! dispatcher, KEP-5229) each pod has at most one pending status write, the latest; it is
//! dropped if the pod is no longer pending ours when its turn comes; and it takes only a
//! token nobody reserved ([`RateLimiter::acquire_spare`]), so binds and evictions go first.
//! One worker (the scheduler's `status_worker`) sends them, so the lane costs one task however
//! long it is.
//!
//! [`RateLimiter::acquire_spare`]: super::rate_limit::RateLimiter::acquire_spare

use super::condition::NotScheduled;
use hubpack_core::model::PodKey;
use k8s_openapi::api::core::v1::ObjectReference;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// A write that can wait.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusWrite {
    /// `PodScheduled=False` with this reason and message (clears a nomination too), and a
    /// `FailedScheduling` event when it changes the condition.
    NotScheduled {
        reason: NotScheduled,
        message: String,
    },
    /// Clear `status.nominatedNodeName` (the autoscaler never scales up for a nominated pod).
    ClearNomination,
    /// A `RejectedByKubelet` event on a pod we bound (it is terminal: sent whatever its
    /// state).
    KubeletRejected {
        pod: Box<ObjectReference>,
        reason: String,
        node: String,
    },
}

#[derive(Default)]
struct Pending {
    order: VecDeque<PodKey>,
    latest: HashMap<PodKey, StatusWrite>,
}

#[derive(Default)]
pub struct StatusLane {
    pending: Mutex<Pending>,
    ready: Notify,
}

impl StatusLane {
    /// Queues `write` for the pod, replacing any write still pending for it (it keeps its
    /// place in line).
    pub fn push(&self, key: PodKey, write: StatusWrite) {
        let mut p = self.lock();
        if p.latest.insert(key.clone(), write).is_none() {
            p.order.push_back(key);
        }
        drop(p);
        self.ready.notify_one();
    }

    /// Drops what is pending for the pod (it was nominated anew, or bound).
    pub fn cancel(&self, key: &PodKey) {
        self.lock().latest.remove(key);
    }

    /// Drops every pending write (this replica does not lead: they are the leader's to
    /// make).
    pub fn clear(&self) {
        let mut p = self.lock();
        p.order.clear();
        p.latest.clear();
    }

    /// Writes waiting.
    pub fn len(&self) -> usize {
        self.lock().latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Completes on the next push; register it before looking, so a push between the look
    /// and the wait is not missed.
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.ready.notified()
    }

    /// The oldest pending write.
    pub(crate) fn pop(&self) -> Option<(PodKey, StatusWrite)> {
        let mut p = self.lock();
        while let Some(key) = p.order.pop_front() {
            if let Some(w) = p.latest.remove(&key) {
                return Some((key, w));
            }
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> PodKey {
        PodKey(s.into())
    }

    fn not_scheduled(m: &str) -> StatusWrite {
        StatusWrite::NotScheduled {
            reason: NotScheduled::Unschedulable,
            message: m.into(),
        }
    }

    #[test]
    fn one_pending_write_per_pod_the_latest_in_its_first_place() {
        let lane = StatusLane::default();
        for i in 0..1000 {
            lane.push(
                k("hub/a"),
                not_scheduled(&format!("0/{i} nodes are available")),
            );
            lane.push(k("hub/b"), not_scheduled("b"));
        }
        assert_eq!(lane.len(), 2);
        assert_eq!(
            lane.pop(),
            Some((k("hub/a"), not_scheduled("0/999 nodes are available")))
        );
        lane.cancel(&k("hub/b"));
        assert_eq!(lane.pop(), None);
        assert!(lane.is_empty());
    }
}
