//! What the bench sees through its own watches, each stamped with the time it was seen: when
//! every pod was bound (and where), nominated, or (placeholders) deleted, and when each node
//! first listed the user image. Plus the end-of-phase overcommit check.

use crate::setup::IMAGE_FULL;
use futures::TryStreamExt;
use hubpack_kube::convert::quantity::{QuantityError, parse_milli, parse_units};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::watcher;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct Seen {
    /// pod name → (node, first seen bound)
    pub bound: HashMap<String, (String, Instant)>,
    /// pod name → (node, first seen nominated)
    pub nominated: HashMap<String, (String, Instant)>,
    /// placeholder name → (node, first seen deleting or deleted)
    pub placeholder_gone: HashMap<String, (String, Instant)>,
    /// pod name → first seen Ready
    pub ready: HashMap<String, Instant>,
    /// node → first seen listing the user image
    pub warm_since: HashMap<String, Instant>,
}

pub type Shared = Arc<Mutex<Seen>>;

pub fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn is_placeholder(p: &Pod) -> bool {
    p.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get("component").map(String::as_str) == Some("user-placeholder"))
}

fn record_pod(seen: &Shared, p: &Pod, deleted: bool) {
    let now = Instant::now();
    let name = p.metadata.name.clone().unwrap_or_default();
    let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
    let mut s = lock(seen);
    if is_placeholder(p) {
        if deleted || p.metadata.deletion_timestamp.is_some() {
            s.placeholder_gone
                .entry(name)
                .or_insert((node.unwrap_or_default(), now));
        }
        return;
    }
    if let Some(n) = p
        .status
        .as_ref()
        .and_then(|st| st.nominated_node_name.clone())
        .filter(|n| !n.is_empty())
    {
        s.nominated.entry(name.clone()).or_insert((n, now));
    }
    let ready = p
        .status
        .as_ref()
        .and_then(|st| st.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready {
        s.ready.entry(name.clone()).or_insert(now);
    }
    if let Some(node) = node {
        s.bound.entry(name).or_insert((node, now));
    }
}

/// Watches the pods of `namespace` and every node until aborted.
pub fn watch(client: &kube::Client, namespace: &str, seen: Shared) -> Vec<JoinHandle<()>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let nodes: Api<Node> = Api::all(client.clone());
    let pod_seen = seen.clone();
    let pod_task = tokio::spawn(async move {
        let stream = watcher(pods, watcher::Config::default());
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                    record_pod(&pod_seen, &p, false);
                }
                Ok(Some(watcher::Event::Delete(p))) => record_pod(&pod_seen, &p, true),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => eprintln!("bench pod watch: {e} (retrying)"),
            }
        }
    });
    let node_task = tokio::spawn(async move {
        let stream = watcher(nodes, watcher::Config::default());
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => {
                    let has = n
                        .status
                        .as_ref()
                        .and_then(|s| s.images.as_ref())
                        .is_some_and(|imgs| {
                            imgs.iter().any(|i| {
                                i.names
                                    .as_ref()
                                    .is_some_and(|ns| ns.iter().any(|x| x == IMAGE_FULL))
                            })
                        });
                    if has {
                        lock(&seen)
                            .warm_since
                            .entry(n.metadata.name.unwrap_or_default())
                            .or_insert_with(Instant::now);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => eprintln!("bench node watch: {e} (retrying)"),
            }
        }
    });
    vec![pod_task, node_task]
}

/// Nodes whose non-terminal pods request more cpu, memory or pod slots than allocatable.
pub async fn overcommitted_nodes(client: &kube::Client) -> Vec<String> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    // (cpu milli, memory bytes, pods)
    let mut used: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for p in &pods.items {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded") | Some("Failed")) {
            continue;
        }
        let Some(spec) = &p.spec else { continue };
        let Some(node) = spec.node_name.clone() else {
            continue;
        };
        let entry = used.entry(node).or_default();
        entry.2 += 1;
        for c in &spec.containers {
            let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            if let Some(r) = req {
                entry.0 += r.get("cpu").map_or(0, |q| parse_milli(&q.0).unwrap_or(0));
                entry.1 += r
                    .get("memory")
                    .map_or(0, |q| parse_units(&q.0).unwrap_or(0));
            }
        }
    }
    nodes
        .items
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            let alloc = n.status.as_ref()?.allocatable.as_ref()?;
            let get = |k: &str, f: fn(&str) -> Result<i64, QuantityError>| {
                alloc
                    .get(k)
                    .map_or(i64::MAX, |q| f(&q.0).unwrap_or(i64::MAX))
            };
            let (cpu, mem, slots) = used.get(&name).copied().unwrap_or_default();
            let over = cpu > get("cpu", parse_milli)
                || mem > get("memory", parse_units)
                || slots > get("pods", parse_units);
            over.then_some(name)
        })
        .collect()
}

/// `values` ascending, as hubpack-sim's `quantile` takes them.
pub fn ascending(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}
