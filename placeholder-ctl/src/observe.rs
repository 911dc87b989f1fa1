//! What the cluster looks like to one pool, computed from the watched objects (pure over
//! k8s-openapi values): free warm seats per zone (counted only on nodes where a user pod
//! of the pool would be scheduled: the core's filters), the pool's placeholders and the users on
//! their nodes, user images by use, user-pod creations, and bad user pods.

use crate::config::{Config, PoolConfig, PoolSizes};
use crate::objects::{
    COMPONENT_LABEL, PLACEHOLDER_COMPONENT, POOL_LABEL, PREPULLER_COMPONENT, ZONE_LABEL,
};
use hubpack_core::filter::static_pre;
use hubpack_core::headroom::{seats_in, validate_placeholder};
use hubpack_core::model::{
    ImageName, Millis, Node as CoreNode, Pod as CorePod, PodRole, Resources,
};
use hubpack_core::policy::warmth::images_warm;
use hubpack_kube::convert::condition::{self, Condition as _};
use hubpack_kube::convert::{PodContext, VolumeIndex, node_is_ready, pod_from_k8s, time_millis};
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};

/// One of our placeholder pods.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceholderPod {
    pub name: String,
    pub uid: String,
    pub zone: Option<String>,
    pub node: Option<String>,
    /// Users on its node (for the deletion cost); None while pending.
    pub users_on_node: Option<usize>,
    /// When it was marked Unschedulable, while pending.
    pub unschedulable_since: Option<Millis>,
    /// Its current `pod-deletion-cost` annotation.
    pub deletion_cost: Option<i32>,
}

/// A user pod the controller cannot size from.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPodProblem {
    pub namespace: String,
    pub name: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolView {
    /// F per zone (`None` when not split): seats on warm nodes neither used by users nor
    /// held by placeholders, within free pod slots.
    pub free_warm_seats: BTreeMap<Option<String>, i64>,
    pub placeholders: Vec<PlaceholderPod>,
    /// Image → running user pods using it.
    pub user_images: BTreeMap<String, usize>,
    /// Creation times of the pool's user pods (uid, ms).
    pub user_creations: Vec<(String, Millis)>,
    pub problems: Vec<UserPodProblem>,
    /// Nodes of the pool that are warm (name → zone).
    pub warm_nodes: BTreeMap<String, Option<String>>,
    /// When each node of the pool turned warm: its pre-puller's Ready transition time.
    pub warm_since: BTreeMap<String, Millis>,
    /// Node creation times.
    pub node_created: BTreeMap<String, Millis>,
    /// Nodes of the pool on which one placeholder would not fit even empty (after the
    /// DaemonSets): the config's `freshNode` does not match the pool's real nodes.
    pub misfits: Vec<(String, String)>,
}

fn labels_match(want: &BTreeMap<String, String>, have: Option<&BTreeMap<String, String>>) -> bool {
    want.iter()
        .all(|(k, v)| have.and_then(|h| h.get(k)).is_some_and(|x| x == v))
}

fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn pod_ready_since(p: &Pod) -> Option<Millis> {
    condition::true_since(p.status.as_ref()?.conditions.as_deref()?, "Ready")
}

fn unschedulable_since(p: &Pod) -> Option<Millis> {
    condition::since(p.status.as_ref()?.conditions.as_deref()?, |c| {
        c.type_() == "PodScheduled" && c.status() == "False" && c.reason() == Some("Unschedulable")
    })
}

fn node_name(p: &Pod) -> Option<&str> {
    p.spec.as_ref()?.node_name.as_deref()
}

/// Whether `pod` is a user pod (per `userPods.selector`) of `pool`.
pub fn is_user_of(cfg: &Config, pool: &PoolConfig, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    if !labels_match(&cfg.user_pods.selector, labels) || !labels_match(&pool.user_selector, labels)
    {
        return false;
    }
    cfg.user_pods
        .namespace
        .as_deref()
        .is_none_or(|ns| pod.metadata.namespace.as_deref() == Some(ns))
}

/// The pool's view of the cluster: what its pods hold and where, then its warm nodes and
/// their free seats, then its placeholders.
pub fn observe_pool(
    cfg: &Config,
    pool: &PoolConfig,
    sizes: &PoolSizes,
    nodes: &[&Node],
    pods: &[&Pod],
) -> PoolView {
    let namespace = cfg.namespace();
    let volumes = VolumeIndex::default();
    let ctx = PodContext {
        scheduler_name: &cfg.scheduler_name,
        placeholder_selectors: &[],
        volumes: &volumes,
    };
    let mut view = PoolView::default();
    let tally = tally_pods(cfg, pool, &namespace, &ctx, pods, &mut view);
    let user = user_pod_of(cfg, pool, &ctx);
    for n in nodes {
        observe_node(pool, sizes, user.as_ref(), n, &tally, &mut view);
    }
    observe_placeholders(pool, &namespace, nodes, pods, &tally.users_on, &mut view);
    view
}

/// What the pods hold per node: requests (nominated pods included), users, and the
/// pool's pre-puller Ready since when.
#[derive(Default)]
struct PodTally<'a> {
    used: BTreeMap<&'a str, Resources>,
    users_on: BTreeMap<&'a str, usize>,
    prepull_ready: BTreeMap<&'a str, Millis>,
}

/// Tallies the live pods per node, and records the pool's user pods (creations, images,
/// problems) in `view`.
fn tally_pods<'a>(
    cfg: &Config,
    pool: &PoolConfig,
    namespace: &str,
    ctx: &PodContext<'_>,
    pods: &[&'a Pod],
    view: &mut PoolView,
) -> PodTally<'a> {
    let mut tally = PodTally::default();
    for p in pods {
        if is_terminal(p) || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let labels = p.metadata.labels.as_ref();
        let ours = p.metadata.namespace.as_deref() == Some(namespace)
            && labels.and_then(|l| l.get(POOL_LABEL)) == Some(&pool.name);
        let component = labels
            .and_then(|l| l.get(COMPONENT_LABEL))
            .map(String::as_str);
        // A pod nominated to a node (a user waiting for its evicted placeholders to go)
        // takes its seat there already, as the scheduler counts it.
        let nominated = p
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|_| node_name(p).is_none());
        if let Some(node) = node_name(p).or(nominated) {
            let req = pod_from_k8s(p, ctx).map(|c| c.requests).unwrap_or_default();
            let entry = tally.used.entry(node).or_default();
            *entry = &*entry + &req;
            if ours
                && component == Some(PREPULLER_COMPONENT)
                && let Some(t) = pod_ready_since(p)
            {
                tally.prepull_ready.insert(node, t);
            }
        }
        if is_user_of(cfg, pool, p) {
            observe_user_pod(p, ctx, view);
            if let Some(node) = node_name(p) {
                *tally.users_on.entry(node).or_default() += 1;
            }
        }
    }
    tally
}

/// Records one user pod of the pool: its creation, its images while it runs, and what
/// makes it unsizable.
fn observe_user_pod(p: &Pod, ctx: &PodContext<'_>, view: &mut PoolView) {
    let name = p.metadata.name.clone().unwrap_or_default();
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    if let Some(t) = p.metadata.creation_timestamp.as_ref() {
        view.user_creations.push((
            p.metadata
                .uid
                .clone()
                .unwrap_or_else(|| format!("{ns}/{name}")),
            time_millis(t),
        ));
    }
    match pod_from_k8s(p, ctx) {
        Ok(core) => {
            if core.requests.cpu_milli <= 0 && core.requests.memory <= 0 {
                view.problems.push(UserPodProblem {
                    namespace: ns.clone(),
                    name: name.clone(),
                    field: "spec.containers[*].resources.requests".into(),
                    message: "requests neither cpu nor memory: it can take any seat, so seats cannot be sized for it".into(),
                });
            }
            if node_name(p).is_some() {
                for img in &core.images {
                    *view
                        .user_images
                        .entry(img.as_str().to_string())
                        .or_default() += 1;
                }
            }
        }
        Err(e) => view.problems.push(UserPodProblem {
            namespace: ns,
            name,
            field: "spec".into(),
            message: e.to_string(),
        }),
    }
}

/// A user pod of the pool as the core sees it: the pool's node selector, affinity and
/// tolerations (what its user pods carry, and its placeholders copy).
fn user_pod_of(cfg: &Config, pool: &PoolConfig, ctx: &PodContext<'_>) -> Option<CorePod> {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(format!("{}-user", pool.name)),
            namespace: Some(cfg.namespace()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            scheduler_name: Some(cfg.scheduler_name.clone()),
            node_selector: (!pool.node_selector.is_empty()).then(|| pool.node_selector.clone()),
            affinity: pool.affinity.clone(),
            tolerations: (!pool.tolerations.is_empty()).then(|| pool.tolerations.clone()),
            containers: vec![Container {
                name: "user".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    pod_from_k8s(&pod, ctx).ok()
}

/// Whether a user pod of the pool would be scheduled on the node, as far as the node's
/// labels, taints and cordon say (core's [`static_pre`]: NodeUnschedulable, taints and
/// tolerations, node selector and required affinity). Resources are counted separately.
fn takes_users(user: Option<&CorePod>, node: &CoreNode) -> bool {
    user.is_some_and(|u| static_pre(node, u).is_none())
}

/// The node's zone label when the pool is split by zone.
fn zone_of(pool: &PoolConfig, n: &Node) -> Option<String> {
    let split = pool.zones.as_ref()?;
    n.metadata.labels.as_ref()?.get(&split.key).cloned()
}

/// Records one node of the pool: its creation and warm times, whether a placeholder fits
/// it, and, when it is Ready, schedulable and warm, its free seats.
fn observe_node(
    pool: &PoolConfig,
    sizes: &PoolSizes,
    user: Option<&CorePod>,
    n: &Node,
    tally: &PodTally<'_>,
    view: &mut PoolView,
) {
    let Some(name) = n.metadata.name.as_deref() else {
        return;
    };
    if !labels_match(&pool.node_selector, n.metadata.labels.as_ref()) {
        return;
    }
    if let Some(t) = n.metadata.creation_timestamp.as_ref() {
        view.node_created.insert(name.to_string(), time_millis(t));
    }
    if let Some(t) = tally.prepull_ready.get(name) {
        view.warm_since.insert(name.to_string(), *t);
    }
    let core = hubpack_kube::convert::node_from_k8s(n, None, false).ok();
    if let Some(core) = &core
        && core.allocatable.pods > 0
        && let Err(e) = validate_placeholder(
            &core.allocatable,
            &sizes.daemonsets,
            &sizes.placeholder_request,
        )
    {
        view.misfits.push((name.to_string(), e.to_string()));
    }
    let takes_users = core.as_ref().is_some_and(|c| takes_users(user, c));
    if !takes_users
        || node_is_ready(n).is_none()
        || !is_warm_for_pool(pool, n, tally.prepull_ready.contains_key(name))
    {
        return;
    }
    let zone = zone_of(pool, n);
    if pool.zones.is_some() && zone.is_none() {
        return;
    }
    view.warm_nodes.insert(name.to_string(), zone.clone());
    let alloc = core.map(|c| c.allocatable).unwrap_or_default();
    let free = &alloc - tally.used.get(name).unwrap_or(&Resources::default());
    *view.free_warm_seats.entry(zone).or_default() += seats_in(&free, &sizes.per_user);
}

/// Warm for the pool's placeholders (core's [`images_warm`]): its pre-puller Ready, or
/// the pool's images all there.
fn is_warm_for_pool(pool: &PoolConfig, n: &Node, prepull_ready: bool) -> bool {
    let pool_images: Vec<ImageName> = pool
        .images
        .iter()
        .map(|i| ImageName::normalize(i))
        .collect();
    let present: BTreeSet<ImageName> = n
        .status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|i| i.names.iter().flatten())
        .map(|raw| ImageName::normalize(raw))
        .collect();
    images_warm(prepull_ready, PodRole::Placeholder, &pool_images, |i| {
        present.contains(i)
    })
}

/// Records the pool's live placeholder pods: zone (label, else its node's), node, users
/// there, Unschedulable mark and deletion cost.
fn observe_placeholders(
    pool: &PoolConfig,
    namespace: &str,
    nodes: &[&Node],
    pods: &[&Pod],
    users_on: &BTreeMap<&str, usize>,
    view: &mut PoolView,
) {
    let zone_by_node: BTreeMap<&str, Option<String>> = nodes
        .iter()
        .filter_map(|n| Some((n.metadata.name.as_deref()?, zone_of(pool, n))))
        .collect();
    for p in pods {
        let labels = p.metadata.labels.as_ref();
        let ours = p.metadata.namespace.as_deref() == Some(namespace)
            && labels.and_then(|l| l.get(POOL_LABEL)) == Some(&pool.name)
            && labels
                .and_then(|l| l.get(COMPONENT_LABEL))
                .map(String::as_str)
                == Some(PLACEHOLDER_COMPONENT);
        if !ours || is_terminal(p) || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let node = node_name(p).map(String::from);
        let zone = labels.and_then(|l| l.get(ZONE_LABEL).cloned()).or_else(|| {
            node.as_deref()
                .and_then(|n| zone_by_node.get(n).cloned().flatten())
        });
        view.placeholders.push(PlaceholderPod {
            name: p.metadata.name.clone().unwrap_or_default(),
            uid: p.metadata.uid.clone().unwrap_or_default(),
            zone,
            users_on_node: node
                .as_deref()
                .map(|n| users_on.get(n).copied().unwrap_or(0)),
            node,
            unschedulable_since: unschedulable_since(p),
            deletion_cost: p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::objects::DELETION_COST))
                .and_then(|v| v.parse().ok()),
        });
    }
}
