//! One node against one pod: every filter in kube-scheduler order, and if only resources
//! (or ports or attach limits) are short, the placeholders a user pod would evict.

use crate::filter::{
    self, HostPortSet, NodeLoad, Reason, VolumeIds, attach_limit_ok, fit_reasons, ports_conflict,
};
use crate::model::{Node, Pod, PodKey, PodRole, PodVolume};
use crate::snapshot::Snapshot;

/// Everything about a node/pod pair that depends only on the node's labels, taints,
/// `unschedulable` and readiness: shared by every node of an index bucket.
#[derive(Debug, Clone)]
pub(crate) struct StaticVerdict {
    pub pre: Option<Reason>,
    pub post: Vec<Reason>,
    pub affinity: i64,
    pub prefer_no_schedule: i64,
}

pub(crate) fn static_verdict(node: &Node, pod: &Pod) -> StaticVerdict {
    StaticVerdict {
        pre: filter::static_pre(node, pod),
        post: filter::static_post(node, pod),
        affinity: filter::preferred_weight(node, &pod.preferred_affinity),
        prefer_no_schedule: filter::prefer_no_schedule_count(&node.taints, &pod.tolerations),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Free,
    Preempt(Vec<PodKey>),
    Fail(Vec<Reason>),
}

/// The node's load as this pod sees it: placed pods plus pending pods nominated here with
/// priority ≥ the pod's (kube's RunFilterPluginsWithNominatedPods, framework/runtime).
struct Seen<'a> {
    placed: Vec<&'a Pod>,
    nominated: Vec<&'a Pod>,
    load: NodeLoad,
}

fn seen<'a>(snap: &'a Snapshot, node: &str, pod: &Pod) -> Seen<'a> {
    let mut load = NodeLoad::default();
    let mut nominated = Vec::new();
    if let Some(u) = snap.usage(node) {
        load.requested = u.requested.clone();
        load.pod_count = u.placed.len() as i64;
        for p in snap.nominated_on(node) {
            if p.key != pod.key && p.priority >= pod.priority {
                load.requested += &p.requests;
                load.pod_count += 1;
                nominated.push(p);
            }
        }
    }
    let needs_pods = !pod.host_ports.is_empty() || has_attachable(pod);
    let placed = if needs_pods {
        snap.pods_on(node).collect()
    } else {
        Vec::new()
    };
    Seen {
        placed,
        nominated,
        load,
    }
}

pub(crate) fn has_attachable(pod: &Pod) -> bool {
    pod.volumes.iter().any(|v| {
        matches!(
            v,
            PodVolume::Bound {
                csi_driver: Some(_),
                ..
            } | PodVolume::WaitForFirstConsumer {
                csi_driver: Some(_),
                ..
            }
        )
    })
}

/// NodePorts, NodeResourcesFit, NodeVolumeLimits with `removed` taken off the node; the
/// reasons of the first failing one.
fn dynamic_reasons(node: &Node, s: &Seen<'_>, pod: &Pod, removed: &[&Pod]) -> Vec<Reason> {
    let kept = || {
        s.placed
            .iter()
            .filter(|p| !removed.iter().any(|r| r.key == p.key))
            .chain(s.nominated.iter())
    };
    if !pod.host_ports.is_empty() {
        let mut used = HostPortSet::default();
        for p in kept() {
            used.add(&p.host_ports);
        }
        if ports_conflict(&used, &pod.host_ports) {
            return vec![Reason::HostPorts];
        }
    }
    let reasons = if removed.is_empty() {
        fit_reasons(&node.allocatable, &s.load, &pod.requests)
    } else {
        let mut load = s.load.clone();
        for r in removed {
            load.requested -= &r.requests;
            load.pod_count -= 1;
        }
        fit_reasons(&node.allocatable, &load, &pod.requests)
    };
    if !reasons.is_empty() {
        return reasons;
    }
    if has_attachable(pod) {
        let mut ids = VolumeIds::default();
        for p in kept() {
            ids.add_pod(p);
        }
        if !attach_limit_ok(node, &ids, pod) {
            return vec![Reason::VolumeLimits];
        }
    }
    Vec::new()
}

/// How much of a node's evaluation is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Free seat, else victims, else the failure reasons.
    Full,
    /// Free seat, else the failure reasons (the same reasons `Full` gives when no victims
    /// help), without searching for victims.
    FreeOnly,
}

pub(crate) fn evaluate(
    snap: &Snapshot,
    node: &Node,
    pod: &Pod,
    sv: &StaticVerdict,
    mode: Mode,
) -> Outcome {
    if let Some(r) = &sv.pre {
        return Outcome::Fail(vec![r.clone()]);
    }
    let s = seen(snap, &node.name, pod);
    let reasons = dynamic_reasons(node, &s, pod, &[]);
    if reasons.is_empty() {
        return if sv.post.is_empty() {
            Outcome::Free
        } else {
            Outcome::Fail(sv.post.clone())
        };
    }
    // Preemption only helps with what evicting pods frees (kube: only nodes whose status
    // is Unschedulable, not UnschedulableAndUnresolvable, are preemption candidates).
    if mode == Mode::Full
        && pod.may_preempt()
        && sv.post.is_empty()
        && could_fit_without_placeholders(snap, node, pod, &s)
    {
        let placeholders: Vec<&Pod> = snap.placeholders_on(&node.name).collect();
        if let Some(v) = choose_victims(node, &s, pod, &placeholders) {
            return Outcome::Preempt(v);
        }
    }
    Outcome::Fail(reasons)
}

/// A cheap necessary condition for preemption: the pod's resources fit once every
/// placeholder is gone (evicting only lower-priority ones frees at most that).
fn could_fit_without_placeholders(snap: &Snapshot, node: &Node, pod: &Pod, s: &Seen<'_>) -> bool {
    let Some(u) = snap.usage(&node.name) else {
        return true;
    };
    let mut load = s.load.clone();
    load.requested -= &u.requested;
    load.requested += &u.requested_non_placeholder;
    load.pod_count -= u.placeholder_count;
    fit_reasons(&node.allocatable, &load, &pod.requests).is_empty()
}

/// The placeholders to evict: among placeholders with lower priority than the pod, the
/// fewest whose removal makes the pod fit, preferring lower priority, then newer.
/// A single sufficient victim is found exactly; otherwise the least important ones are
/// taken in order until the pod fits, then each is given back (most important first) if
/// the pod still fits without evicting it (like kube's reprieve). The exact minimum is a
/// multi-dimensional knapsack; this greedy set is minimal by inclusion.
fn choose_victims(
    node: &Node,
    s: &Seen<'_>,
    pod: &Pod,
    placeholders: &[&Pod],
) -> Option<Vec<PodKey>> {
    let mut cands: Vec<&Pod> = placeholders
        .iter()
        .copied()
        .filter(|p| p.role == PodRole::Placeholder && p.priority < pod.priority)
        .collect();
    if cands.is_empty() {
        return None;
    }
    cands.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.created.cmp(&a.created))
            .then(a.key.cmp(&b.key))
    });
    let fits = |removed: &[&Pod]| dynamic_reasons(node, s, pod, removed).is_empty();
    if !fits(&cands) {
        return None;
    }
    if let Some(one) = cands.iter().find(|c| fits(&[**c])) {
        return Some(vec![one.key.clone()]);
    }
    let mut chosen: Vec<&Pod> = Vec::new();
    for c in &cands {
        chosen.push(c);
        if fits(&chosen) {
            break;
        }
    }
    let mut i = chosen.len();
    while i > 0 {
        i -= 1;
        let mut without = chosen.clone();
        without.remove(i);
        if fits(&without) {
            chosen = without;
        }
    }
    Some(chosen.into_iter().map(|p| p.key.clone()).collect())
}
