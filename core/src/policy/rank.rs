//! The lexicographic rank of a candidate node (docs/design.md, "Warm-first packing"); the
//! greatest key wins.

use super::PolicyConfig;
use super::evaluate::{Outcome, StaticVerdict};
use super::warmth::node_is_warm;
use crate::model::{Node, Pod, PodRole, Resources};
use crate::snapshot::NodeUsage;
use std::cmp::Reverse;

/// Everything but the last two fields is what the index bounds; see `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RankKey {
    /// Preferred node affinity weight.
    pub affinity: i64,
    /// User: warm. Placeholder: cold. Other: constant.
    pub tier: bool,
    /// Free seat (not preemption).
    pub free: bool,
    /// Fewer untolerated PreferNoSchedule taints.
    pub prefer_no_schedule: Reverse<i64>,
    /// MostAllocated after placement.
    pub score: i64,
    pub victims: Reverse<usize>,
    /// A user on a cold node: the node Ready longest (its pull, begun by the pre-puller or
    /// a pod at Ready, ends first); see [`warm_sooner`].
    pub sooner: Reverse<i64>,
    pub name: Reverse<String>,
}

pub(crate) type Prefix = (i64, bool, bool, Reverse<i64>, i64);

impl RankKey {
    pub fn prefix(&self) -> Prefix {
        (
            self.affinity,
            self.tier,
            self.free,
            self.prefer_no_schedule,
            self.score,
        )
    }
}

/// The rank tier of a node for the pod: warm for users, cold for placeholders (the design:
/// placeholders go to cold nodes first, leaving warm seats to users). A placeholder's
/// `images` are its users' (adapters never pass its pause image), see `node_is_warm`.
pub(crate) fn tier(node: &Node, pod: &Pod, now: i64, cfg: &PolicyConfig) -> bool {
    match pod.role {
        PodRole::User => node_is_warm(node, pod, now, cfg),
        PodRole::Placeholder => !node_is_warm(node, pod, now, cfg),
        PodRole::Other => false,
    }
}

/// Among cold nodes a user would wait on, the one that turns warm first: Ready earliest
/// (every node pulls from its Ready on, for the pre-puller or its first pod). Without it the
/// name decided, and a cloud's random node names sent a class to the node still pulling
/// longest while an earlier one turned warm empty. Constant for warm nodes and other pods.
pub(crate) fn warm_sooner(node: &Node, pod: &Pod, now: i64, cfg: &PolicyConfig) -> Reverse<i64> {
    if pod.role == PodRole::User && !node_is_warm(node, pod, now, cfg) {
        Reverse(node.ready_since.unwrap_or(i64::MAX))
    } else {
        Reverse(i64::MIN)
    }
}

/// kube-scheduler's MostAllocated (noderesources/most_allocated.go): per resource
/// min(requested, capacity) * 100 / capacity, weighted integer average over cpu and
/// memory, resources without capacity skipped.
pub(crate) fn most_allocated(
    allocatable: &Resources,
    requested: &Resources,
    cfg: &PolicyConfig,
) -> i64 {
    let mut total = 0i64;
    let mut weights = 0i64;
    for (cap, req, w) in [
        (allocatable.cpu_milli, requested.cpu_milli, cfg.cpu_weight),
        (allocatable.memory, requested.memory, cfg.memory_weight),
    ] {
        if cap <= 0 {
            continue;
        }
        let req = req.clamp(0, cap);
        let s = (i128::from(req) * 100 / i128::from(cap)) as i64;
        total += s * w;
        weights += w;
    }
    if weights == 0 { 0 } else { total / weights }
}

/// Users are packed by what non-placeholder pods use (so users gather where users are);
/// placeholders and other pods by everything placed.
pub(crate) fn score(node: &Node, usage: Option<&NodeUsage>, pod: &Pod, cfg: &PolicyConfig) -> i64 {
    let base = usage.map(|u| {
        if pod.role == PodRole::User {
            &u.score_non_placeholder
        } else {
            &u.score_all
        }
    });
    let after = match base {
        Some(b) => b + &pod.score_requests,
        None => pod.score_requests.clone(),
    };
    most_allocated(&node.allocatable, &after, cfg)
}

pub(crate) fn rank_key(
    node: &Node,
    usage: Option<&NodeUsage>,
    pod: &Pod,
    sv: &StaticVerdict,
    outcome: &Outcome,
    now: i64,
    cfg: &PolicyConfig,
) -> RankKey {
    let victims = match outcome {
        Outcome::Preempt(v) => v.len(),
        _ => 0,
    };
    RankKey {
        affinity: sv.affinity,
        tier: tier(node, pod, now, cfg),
        free: matches!(outcome, Outcome::Free),
        prefer_no_schedule: Reverse(sv.prefer_no_schedule),
        score: score(node, usage, pod, cfg),
        victims: Reverse(victims),
        sooner: warm_sooner(node, pod, now, cfg),
        name: Reverse(node.name.clone()),
    }
}
