//! Warm-first packing (docs/design.md, "Warm-first packing"): where a pod goes, which
//! placeholders a user evicts, or why nothing fits.
//!
//! [`decide`] and [`decide_full_scan`] return the identical [`Decision`]; the full scan
//! filters and ranks every node (the test oracle and the benchmark baseline), `decide`
//! walks the snapshot's index and stops as soon as no remaining node can rank higher.
//! Neither mutates the snapshot: the caller applies the decision (`assume`, `nominate`,
//! evictions) and reports back through the snapshot's update methods.

mod config;
mod decision;
mod evaluate;
mod indexed;
mod oracle;
mod rank;
pub mod warmth;

pub use config::PolicyConfig;
pub use decision::{Decision, Diagnosis, SkipReason};

use crate::filter;
use crate::model::{Millis, Pod};
use crate::snapshot::Snapshot;
use evaluate::Outcome;
use std::collections::HashMap;

/// The decision for `pod`, using the snapshot's index.
pub fn decide(snapshot: &Snapshot, pod: &Pod, now: Millis, cfg: &PolicyConfig) -> Decision {
    if let Some(d) = before_nodes(snapshot, pod) {
        return d;
    }
    indexed::decide(snapshot, pod, now, cfg)
}

/// The decision for `pod` by filtering and ranking every node: the reference `decide`
/// must agree with.
pub fn decide_full_scan(
    snapshot: &Snapshot,
    pod: &Pod,
    now: Millis,
    cfg: &PolicyConfig,
) -> Decision {
    if let Some(d) = before_nodes(snapshot, pod) {
        return d;
    }
    oracle::decide(snapshot, pod, now, cfg)
}

/// Skips, and failures that hold on every node (kube's PreFilter).
fn before_nodes(snapshot: &Snapshot, pod: &Pod) -> Option<Decision> {
    if pod.deleting {
        return Some(Decision::Skip(SkipReason::Deleting));
    }
    let placed = snapshot
        .pod(&pod.key)
        .is_some_and(|p| p.node_name.is_some());
    if pod.node_name.is_some() || placed {
        return Some(Decision::Skip(SkipReason::AlreadyBound));
    }
    if pod.scheduling_gated {
        return Some(Decision::Skip(SkipReason::SchedulingGated));
    }
    let reason = filter::pre_filter(pod)?;
    let n = snapshot.node_count();
    let mut counts = HashMap::new();
    if n > 0 {
        counts.insert(reason, n);
    }
    Some(Decision::Unschedulable(Diagnosis::from_counts(n, counts)))
}

fn to_decision(node: String, outcome: Outcome) -> Decision {
    match outcome {
        Outcome::Preempt(victims) => Decision::Preempt { node, victims },
        _ => Decision::Bind { node },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
