//! What `decide` returns.

use crate::filter::Reason;
use crate::model::PodKey;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A free seat: bind there.
    Bind { node: String },
    /// Evict these placeholders, nominate the pod to the node, bind once they are gone.
    Preempt { node: String, victims: Vec<PodKey> },
    /// No node can take the pod, even with preemption.
    Unschedulable(Diagnosis),
    /// Not for the scheduler now.
    Skip(SkipReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    SchedulingGated,
    Deleting,
    AlreadyBound,
}

/// Why no node fits: how many nodes were considered and, per reason, on how many nodes it
/// held (each node contributes the reasons of its first failing filter, as in
/// kube-scheduler, so a node short of both cpu and memory counts for both).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnosis {
    pub nodes: usize,
    pub reasons: BTreeMap<String, usize>,
}

impl Diagnosis {
    /// kube-scheduler's FitError message (pkg/scheduler/schedule_one.go `FitError.Error`):
    /// `0/N nodes are available:` then `<count> <reason>` items sorted as strings (Go's
    /// sort.Strings, i.e. byte order, so "10 …" sorts before "8 …"), comma separated,
    /// ending with a period.
    pub fn message(&self) -> String {
        let mut items: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        items.sort();
        let mut msg = format!("0/{} nodes are available:", self.nodes);
        if !items.is_empty() {
            msg.push(' ');
            msg.push_str(&items.join(", "));
            msg.push('.');
        }
        msg
    }

    /// Every reason is one only hubpack gives (a constraint it does not implement), so
    /// Kubernetes' own filters, which the cluster autoscaler simulates, would find a node:
    /// an added node would never be used by hubpack. Adapters report such a pod with a
    /// reason the autoscaler ignores (`SchedulerError`).
    pub fn refused_by_hubpack_only(&self) -> bool {
        !self.reasons.is_empty()
            && self
                .reasons
                .keys()
                .all(|r| r.starts_with(crate::filter::UNSUPPORTED_PREFIX))
    }

    pub(crate) fn from_counts(
        nodes: usize,
        counts: impl IntoIterator<Item = (Reason, usize)>,
    ) -> Diagnosis {
        Diagnosis {
            nodes,
            reasons: counts
                .into_iter()
                .map(|(r, n)| (r.to_string(), n))
                .collect(),
        }
    }
}
