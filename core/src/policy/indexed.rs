//! `decide` over the snapshot index (see `snapshot::index` for the layout).
//!
//! Per bucket, the label/taint filters and the affinity and PreferNoSchedule keys are
//! evaluated once. Then, in each bucket, nodes are walked upward from the pod's own request
//! fraction in the "free counting all pods" set (free seats) and, for a user that may
//! preempt, in the "free counting only non-placeholder pods" set (what eviction could
//! free). Any node that fits has a tightest free fraction at least the pod's request
//! fraction, so nodes below the start cannot be candidates. Along the walk the free
//! fraction grows, so the MostAllocated score a node can reach shrinks:
//!
//!   score ≤ 100 · max_r (used_r + excess_r + pod_r) / cap_r
//!         ≤ 100 · (1 − key + max_r (maxexcess_r + pod_r) / cap_r)
//!
//! where `excess` is how much scoring requests exceed fit requests on the node. Once that
//! bound, with the best tier the node could have, ranks strictly below the best candidate
//! found, no later node in the set can win and the walk stops. Single nodes are skipped
//! without evaluation when their own bound (their actual tier; for users in the free walk
//! also their non-placeholder fraction) ranks below the best, or ties it and they need
//! at least as many victims (a lower bound from the node's largest placeholder) with a
//! later name. Nodes that are looked at are evaluated with the very same `evaluate` and
//! `rank_key` as the full scan, so the decision is identical.
//!
//! When nothing fits, every node is accounted for in the diagnosis: static failures once
//! per bucket, resource shortfalls tallied by pattern from the bucket's member loads, and
//! only nodes with nominated pods (or pods with host ports or attachable volumes)
//! evaluated one by one. Pods whose selectors use the node's identity (`matchFields`, the
//! hostname label), and negative weights, where the buckets or the bound do not hold, go
//! to the full scan.

use super::evaluate::{Mode, Outcome, StaticVerdict, evaluate, has_attachable, static_verdict};
use super::rank::{Prefix, RankKey, rank_key, tier, warm_sooner};
use super::warmth::{is_settled, warm_without_lookup};
use super::{Decision, Diagnosis, PolicyConfig, to_decision};
use crate::filter;
use crate::model::{Millis, Pod, PodRole, ResourceName, Resources};
use crate::snapshot::{Brief, Bucket, FxHashMap, PARTS_PER_BILLION, Snapshot, tightest_fraction};
use std::cmp::Reverse;

struct Search<'a> {
    snap: &'a Snapshot,
    pod: &'a Pod,
    now: Millis,
    cfg: &'a PolicyConfig,
    best: Option<(RankKey, Outcome)>,
}

/// Which ordered set of a bucket to walk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    Free,
    Preempt,
}

pub(super) fn decide(snap: &Snapshot, pod: &Pod, now: Millis, cfg: &PolicyConfig) -> Decision {
    if filter::uses_node_name(pod) || cfg.cpu_weight < 0 || cfg.memory_weight < 0 {
        return super::oracle::decide(snap, pod, now, cfg);
    }
    let mut buckets: Vec<(&Bucket, StaticVerdict)> = snap
        .index()
        .buckets
        .values()
        .filter_map(|b| {
            let (first, _) = b.members.first_key_value()?;
            let node = snap.node(first)?;
            Some((b, static_verdict(node, pod)))
        })
        .collect();
    // Most promising buckets first, so the bound prunes the others early.
    buckets.sort_by_key(|(_, sv)| (Reverse(sv.affinity), sv.prefer_no_schedule));
    let mut s = Search {
        snap,
        pod,
        now,
        cfg,
        best: None,
    };
    let passing = || {
        buckets
            .iter()
            .filter(|(_, sv)| sv.pre.is_none() && sv.post.is_empty())
    };
    for (b, sv) in passing() {
        s.walk(b, sv, Walk::Free);
    }
    if pod.may_preempt() {
        for (b, sv) in passing() {
            s.walk(b, sv, Walk::Preempt);
        }
    }
    if let Some((key, outcome)) = s.best {
        return to_decision(key.name.0, outcome);
    }
    let mut counts: FxHashMap<filter::Reason, usize> = FxHashMap::default();
    // A pod without host ports or attachable volumes, on a node nobody is nominated to,
    // fails on resources alone: count from the member loads, without node lookups.
    let plain = pod.host_ports.is_empty() && !has_attachable(pod);
    for (b, sv) in &buckets {
        if let Some(r) = &sv.pre {
            *counts.entry(r.clone()).or_insert(0) += b.members.len();
            continue;
        }
        let Some(alloc) = b
            .members
            .first_key_value()
            .and_then(|(n, _)| snap.node(n))
            .map(|n| n.allocatable.clone())
        else {
            continue;
        };
        // Without extended resources a node's reasons are a function of which of pods,
        // cpu, memory and ephemeral storage fall short: tally those patterns.
        let mut patterns = [0usize; 16];
        let by_pattern = pod.requests.extended.values().all(|v| *v <= 0);
        for (name, m) in &b.members {
            if plain && !m.nominated && by_pattern {
                patterns[shortfall_pattern(&alloc, &m.load, &pod.requests)] += 1;
                continue;
            }
            if plain && !m.nominated {
                let mut short = false;
                filter::for_each_fit_reason(&alloc, &m.load, &pod.requests, |r| {
                    short = true;
                    *counts.entry(r).or_insert(0) += 1;
                });
                if !short {
                    for r in &sv.post {
                        *counts.entry(r.clone()).or_insert(0) += 1;
                    }
                }
                continue;
            }
            let Some(node) = snap.node(name) else {
                continue;
            };
            // No victims anywhere (else there would be a candidate): filter reasons only.
            if let Outcome::Fail(reasons) = evaluate(snap, node, pod, sv, Mode::FreeOnly) {
                for r in reasons {
                    *counts.entry(r).or_insert(0) += 1;
                }
            }
        }
        for (mask, n) in patterns.into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            if mask == 0 {
                for r in &sv.post {
                    *counts.entry(r.clone()).or_insert(0) += n;
                }
            }
            for (bit, r) in PATTERN_REASONS.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    *counts.entry(r.clone()).or_insert(0) += n;
                }
            }
        }
    }
    Decision::Unschedulable(Diagnosis::from_counts(snap.node_count(), counts))
}

impl Search<'_> {
    fn walk(&mut self, b: &Bucket, sv: &StaticVerdict, walk: Walk) {
        let pod = self.pod;
        let req = [pod.requests.cpu_milli, pod.requests.memory];
        let Some(start) = start_key(b.capacity, req) else {
            return;
        };
        let (set, excess) = match (walk, pod.role) {
            (Walk::Free, PodRole::User) => (&b.by_free, &b.excess_non_placeholder),
            (Walk::Free, _) => (&b.by_free, &b.excess_all),
            (Walk::Preempt, _) => (&b.by_non_placeholder, &b.excess_non_placeholder),
        };
        let score_req = [pod.score_requests.cpu_milli, pod.score_requests.memory];
        let extra = extra_fraction(b.capacity, [excess[0].max(), excess[1].max()], score_req);
        let best_tier = pod.role != PodRole::Other;
        let free = walk == Walk::Free;
        let prefix = |tier: bool, score: i64| -> Prefix {
            (
                sv.affinity,
                tier,
                free,
                Reverse(sv.prefer_no_schedule),
                score,
            )
        };
        for ((key, name), brief) in set.range((start, String::new())..) {
            let bound = score_bound(*key, extra);
            if let Some((best, _)) = &self.best
                && prefix(best_tier, bound) < best.prefix()
            {
                break;
            }
            let mut node = None;
            if let Some((best, _)) = &self.best {
                // A user's score counts only non-placeholder pods: in the free walk the
                // node's own non-placeholder fraction bounds it tighter.
                let bound = match (walk, pod.role) {
                    (Walk::Free, PodRole::User) => {
                        bound.min(score_bound(brief.non_placeholder, extra))
                    }
                    _ => bound,
                };
                let node_tier = match brief_tier(brief, pod, self.now, self.cfg) {
                    Some(t) => t,
                    None => {
                        let Some(n) = self.snap.node(name) else {
                            continue;
                        };
                        node = Some(n);
                        tier(n, pod, self.now, self.cfg)
                    }
                };
                let ub = prefix(node_tier, bound);
                // Below the best, or tied with it up to the victims and certain to need more
                // victims, or as many and warm later or a later name: it cannot win, no need
                // to look.
                if ub < best.prefix() {
                    continue;
                }
                if ub == best.prefix() {
                    let Some(n) = node.or_else(|| self.snap.node(name)) else {
                        continue;
                    };
                    node = Some(n);
                    let least = match walk {
                        Walk::Free => 0,
                        Walk::Preempt => self
                            .snap
                            .usage(name)
                            .map_or(1, |u| u.least_victims(&n.allocatable, &pod.requests).max(1)),
                    };
                    let best_victims = best.victims.0 as i64;
                    let sooner = warm_sooner(n, pod, self.now, self.cfg);
                    let later = sooner < best.sooner
                        || (sooner == best.sooner && name.as_str() > best.name.0.as_str());
                    if least > best_victims || (least == best_victims && later) {
                        continue;
                    }
                }
            }
            let Some(node) = node.or_else(|| self.snap.node(name)) else {
                continue;
            };
            // The free walk only looks for free seats; preemption candidates come from the
            // preempt walk.
            let mode = match walk {
                Walk::Free => Mode::FreeOnly,
                Walk::Preempt => Mode::Full,
            };
            let outcome = evaluate(self.snap, node, pod, sv, mode);
            if matches!(outcome, Outcome::Fail(_)) {
                continue;
            }
            let usage = self.snap.usage(name);
            let k = rank_key(node, usage, pod, sv, &outcome, self.now, self.cfg);
            if self.best.as_ref().is_none_or(|(b, _)| k > *b) {
                self.best = Some((k, outcome));
            }
        }
    }
}

const PATTERN_REASONS: [filter::Reason; 4] = [
    filter::Reason::TooManyPods,
    filter::Reason::Insufficient(ResourceName::Cpu),
    filter::Reason::Insufficient(ResourceName::Memory),
    filter::Reason::Insufficient(ResourceName::EphemeralStorage),
];

/// Which of `PATTERN_REASONS` `filter::fit_reasons` reports, as bits, for a request without
/// extended resources.
fn shortfall_pattern(alloc: &Resources, load: &filter::NodeLoad, req: &Resources) -> usize {
    let short = |want: i64, alloc: i64, used: i64| want > 0 && want > alloc - used;
    let used = &load.requested;
    usize::from(load.pod_count + 1 > alloc.pods)
        | usize::from(short(req.cpu_milli, alloc.cpu_milli, used.cpu_milli)) << 1
        | usize::from(short(req.memory, alloc.memory, used.memory)) << 2
        | usize::from(short(
            req.ephemeral_storage,
            alloc.ephemeral_storage,
            used.ephemeral_storage,
        )) << 3
}

/// The node's tier for the pod from its brief, when the brief is enough: `None` when the
/// pod's images have to be looked for on the node (same answer as `rank::tier`).
fn brief_tier(brief: &Brief, pod: &Pod, now: Millis, cfg: &PolicyConfig) -> Option<bool> {
    let warm = if !is_settled(brief.ready_since, now, cfg) {
        Some(false)
    } else {
        warm_without_lookup(brief.prepull_ready, pod)
    };
    match pod.role {
        PodRole::User => warm,
        PodRole::Placeholder => warm.map(|w| !w),
        PodRole::Other => Some(false),
    }
}

/// The lowest tightest-free-fraction key a node that fits the request can have; `None`
/// when the pod asks for a resource the bucket has no capacity of.
fn start_key(capacity: [i64; 2], req: [i64; 2]) -> Option<i64> {
    let mut start = i64::MAX;
    let mut any = false;
    for r in 0..2 {
        if capacity[r] <= 0 {
            if req[r] > 0 {
                return None;
            }
            continue;
        }
        any = true;
        // A resource the pod asks 0 of never fails to fit, whatever the node's free amount.
        if req[r] <= 0 {
            return Some(i64::MIN);
        }
        let one = tightest_fraction([capacity[r], 0], [capacity[r] - req[r], 0]);
        start = start.min(one);
    }
    Some(if any { start } else { i64::MIN })
}

/// Ceiling of max_r (excess_r + pod_r) / cap_r, in parts per billion.
fn extra_fraction(capacity: [i64; 2], excess: [i64; 2], req: [i64; 2]) -> i128 {
    let mut extra = 0i128;
    for r in 0..2 {
        if capacity[r] > 0 {
            let num =
                (i128::from(excess[r].max(0)) + i128::from(req[r].max(0))) * PARTS_PER_BILLION;
            let cap = i128::from(capacity[r]);
            extra = extra.max((num + cap - 1).div_euclid(cap));
        }
    }
    extra
}

/// The highest MostAllocated score a node with this key could reach (see module doc).
fn score_bound(key: i64, extra: i128) -> i64 {
    let b = 100 * (PARTS_PER_BILLION - i128::from(key) + extra);
    b.div_euclid(PARTS_PER_BILLION).clamp(0, 100) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_key_is_the_request_fraction() {
        assert_eq!(start_key([1000, 1000], [500, 250]), Some(250_000_000));
        assert_eq!(start_key([1000, 1000], [0, 250]), Some(i64::MIN));
        assert_eq!(start_key([0, 1000], [1, 250]), None);
        assert_eq!(start_key([0, 0], [0, 0]), Some(i64::MIN));
    }

    #[test]
    fn score_bound_covers_the_real_score() {
        // Node 1000m/1000Mi, used 600/700 → free fractions 0.4/0.3 → key 0.3.
        let key = tightest_fraction([1000, 1000], [600, 700]);
        let extra = extra_fraction([1000, 1000], [0, 0], [100, 100]);
        // Real score: cpu 70, mem 80 → 75; the bound is max-based: 80.
        assert_eq!(score_bound(key, extra), 80);
        assert_eq!(score_bound(i64::MAX, extra), 0);
    }
}
