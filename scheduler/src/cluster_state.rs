//! The cluster as the scheduler knows it: the core [`Snapshot`] fed from watch events, plus
//! the scheduler's own in-flight work that the snapshot must respect (nominations while
//! victims are deleted, claims being provisioned: [`crate::in_flight`]). Pure state machinery: watch wiring is in
//! `watch.rs`, API writes in `actions/`; this is tested by feeding objects.

use crate::in_flight::Flights;
use hubpack_core::model::{Millis, PodKey};
use hubpack_core::snapshot::Snapshot;
use hubpack_kube::convert::{
    LabelMatch, PodContext, VolumeCatalog, condition, node_from_k8s, placed_pod_by_resources,
    pod_from_k8s,
};
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::api::storage::v1::CSINode;
use std::collections::{HashMap, HashSet};

/// What a pod event means for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodChange {
    /// One of ours waiting for a node: queue it (or refresh its place).
    Pending {
        key: PodKey,
        priority: i32,
        created: Millis,
    },
    /// Not (or no longer) ours to schedule.
    NotPending { key: PodKey },
}

/// Terminal pods hold no resources.
fn is_terminal(p: &k8s::Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn key_of(p: &k8s::Pod) -> PodKey {
    PodKey::new(
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or_default(),
    )
}

fn is_pod_ready(p: &k8s::Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| condition::true_since(c, "Ready"))
        .is_some()
}

/// Settings the state needs to classify pods.
pub struct Classifier {
    pub scheduler_name: String,
    pub placeholder_selectors: Vec<LabelMatch>,
    pub prepull_selectors: Vec<LabelMatch>,
}

impl Classifier {
    pub fn is_ours(&self, p: &k8s::Pod) -> bool {
        p.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()) == Some(&self.scheduler_name)
    }

    /// Ours and waiting for a node.
    pub fn is_pending_ours(&self, p: &k8s::Pod) -> bool {
        self.is_ours(p)
            && !is_terminal(p)
            && p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
    }

    fn is_prepull(&self, p: &k8s::Pod) -> bool {
        let labels = p.metadata.labels.as_ref();
        self.prepull_selectors.iter().any(|s| s.matches(labels))
    }

    pub fn pod_context<'a>(&'a self, volumes: &'a dyn VolumeCatalog) -> PodContext<'a> {
        PodContext {
            scheduler_name: &self.scheduler_name,
            placeholder_selectors: &self.placeholder_selectors,
            volumes,
        }
    }
}

#[derive(Default)]
pub struct ClusterState {
    pub snapshot: Snapshot,
    /// Pods nominated (waiting for their victims) or provisioning (for their claims).
    pub in_flight: Flights,
    /// Ready pre-pull pods per node.
    prepull_ready: HashMap<String, HashSet<PodKey>>,
    /// uids of kubelet rejections already reported.
    rejections_seen: HashSet<String>,
    /// Placed pods with required pod anti-affinity: hubpack does not evaluate it, so a pod
    /// such a term may select is refused visibly rather than placed in violation.
    anti_affinity: HashMap<PodKey, (String, Vec<k8s::PodAffinityTerm>)>,
}

/// Side effects of a pod event beyond the snapshot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PodEventEffects {
    pub change: Option<PodChange>,
    /// Preemptors whose last victim just went: schedule them now.
    pub wake: Vec<PodKey>,
    /// Nodes whose pre-pull readiness flipped: reconvert them.
    pub prepull_changed: Option<String>,
    /// A pod of ours the kubelet rejected after binding (reason, node), first sighting.
    pub kubelet_rejected: Option<(String, String)>,
    /// Something was freed on this node: parked pods that could use it may fit now.
    pub freed: Option<String>,
}

impl ClusterState {
    /// A pod was added or changed.
    pub fn apply_pod(
        &mut self,
        p: &k8s::Pod,
        cls: &Classifier,
        volumes: &dyn VolumeCatalog,
    ) -> PodEventEffects {
        let key = key_of(p);
        if is_terminal(p) {
            let mut fx = self.unplace(p, cls);
            fx.kubelet_rejected = self.kubelet_rejection(p, cls);
            return fx;
        }
        let mut fx = PodEventEffects {
            prepull_changed: self.track_prepull(p, cls, &key, true),
            ..Default::default()
        };
        self.track_anti_affinity(p, &key);
        match pod_from_k8s(p, &cls.pod_context(volumes)) {
            Ok(mut pod) => {
                // Our nomination stands until we clear it, whatever a stale event says.
                if pod.node_name.is_none()
                    && let Some(node) = self.in_flight.nominated_node(&key)
                {
                    pod.nominated_node = Some(node.to_string());
                }
                self.snapshot.upsert_pod(pod);
            }
            Err(e) => {
                // A placed pod holds its requests whatever else fails to parse; a pending
                // one of ours gets reported when the scheduler tries it.
                if let Some(pod) = placed_pod_by_resources(p) {
                    tracing::warn!(pod = %key, error = %e, "cannot convert pod; counted by its requests only");
                    self.snapshot.upsert_pod(pod);
                } else if !cls.is_ours(p) {
                    tracing::warn!(pod = %key, error = %e, "cannot convert pod; not counted");
                }
            }
        }
        fx.change = Some(if cls.is_pending_ours(p) {
            PodChange::Pending {
                key,
                priority: p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
                created: p
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(hubpack_kube::convert::time_millis)
                    .unwrap_or(0),
            }
        } else {
            self.in_flight.end(&key);
            PodChange::NotPending { key }
        });
        fx
    }

    /// A pod's DELETE was seen. Only now does it stop counting: the kubelet counts
    /// terminating pods at admission.
    pub fn delete_pod(&mut self, p: &k8s::Pod, cls: &Classifier) -> PodEventEffects {
        if let Some(uid) = &p.metadata.uid {
            // Its rejection, if any, was reported; a pod gone is not seen again.
            self.rejections_seen.remove(uid);
        }
        self.unplace(p, cls)
    }

    /// The pod no longer counts (deleted, or terminal).
    fn unplace(&mut self, p: &k8s::Pod, cls: &Classifier) -> PodEventEffects {
        let key = key_of(p);
        let removed = self.snapshot.remove_pod(&key);
        self.in_flight.end(&key);
        self.anti_affinity.remove(&key);
        let wake = self.in_flight.victim_deleted(&key);
        PodEventEffects {
            change: Some(PodChange::NotPending { key: key.clone() }),
            wake,
            prepull_changed: self.track_prepull(p, cls, &key, false),
            kubelet_rejected: None,
            freed: removed.and_then(|r| r.node_name),
        }
    }

    fn track_prepull(
        &mut self,
        p: &k8s::Pod,
        cls: &Classifier,
        key: &PodKey,
        present: bool,
    ) -> Option<String> {
        if !cls.is_prepull(p) {
            return None;
        }
        let node = p.spec.as_ref()?.node_name.clone()?;
        let set = self.prepull_ready.entry(node.clone()).or_default();
        let before = !set.is_empty();
        if present && is_pod_ready(p) {
            set.insert(key.clone());
        } else {
            set.remove(key);
        }
        let after = !set.is_empty();
        if set.is_empty() {
            self.prepull_ready.remove(&node);
        }
        (before != after).then_some(node)
    }

    fn track_anti_affinity(&mut self, p: &k8s::Pod, key: &PodKey) {
        let placed = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let terms = p
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .clone()
            })
            .filter(|t| !t.is_empty());
        match terms {
            Some(terms) if placed => {
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                self.anti_affinity.insert(key.clone(), (ns, terms));
            }
            _ => {
                self.anti_affinity.remove(key);
            }
        }
    }

    /// A placed pod whose required anti-affinity may select `incoming` (its label selector
    /// matches, in a namespace the term covers; a namespaceSelector counts as covering all).
    pub fn anti_affinity_against(&self, incoming: &k8s::Pod) -> Option<&PodKey> {
        let ns = incoming.metadata.namespace.as_deref().unwrap_or_default();
        let labels = incoming.metadata.labels.as_ref();
        self.anti_affinity
            .iter()
            .find(|(_, (owner_ns, terms))| {
                terms.iter().any(|t| {
                    let in_scope = t.namespace_selector.is_some()
                        || match t.namespaces.as_deref() {
                            Some(list) if !list.is_empty() => list.iter().any(|n| n == ns),
                            _ => owner_ns == ns,
                        };
                    in_scope
                        && t.label_selector.as_ref().is_some_and(|s| {
                            hubpack_kube::convert::selector::label_selector_matches(s, labels)
                        })
                })
            })
            .map(|(k, _)| k)
    }

    pub fn prepull_ready(&self, node: &str) -> bool {
        self.prepull_ready.contains_key(node)
    }

    fn kubelet_rejection(&mut self, p: &k8s::Pod, cls: &Classifier) -> Option<(String, String)> {
        let status = p.status.as_ref()?;
        let reason = status.reason.as_deref()?;
        if !(cls.is_ours(p)
            && status.phase.as_deref() == Some("Failed")
            && reason.starts_with("OutOf"))
        {
            return None;
        }
        let uid = p.metadata.uid.clone()?;
        if !self.rejections_seen.insert(uid) {
            return None;
        }
        let node = p.spec.as_ref()?.node_name.clone().unwrap_or_default();
        Some((reason.to_string(), node))
    }

    /// Upserts the node; returns whether anything the policy looks at changed (a heartbeat
    /// or condition refresh changes nothing, and must not wake every parked pod).
    pub fn apply_node(
        &mut self,
        n: &k8s::Node,
        csi: Option<&CSINode>,
    ) -> Result<bool, hubpack_kube::convert::ConvertError> {
        let name = n.metadata.name.clone().unwrap_or_default();
        let node = node_from_k8s(n, csi, self.prepull_ready(&name))?;
        if self.snapshot.node(&name) == Some(&node) {
            return Ok(false);
        }
        self.snapshot.upsert_node(node);
        Ok(true)
    }

    pub fn delete_node(&mut self, name: &str) {
        self.snapshot.remove_node(name);
    }
}

#[cfg(test)]
mod tests;
