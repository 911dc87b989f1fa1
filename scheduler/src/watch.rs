//! Watches (reflectors with backoff) feeding the cluster state and the queue. Runs whether
//! or not this replica leads, so a standby's caches are warm when it takes over.
//!
//! A re-list after a watch gap reports the full set again but no DELETE for objects that
//! vanished meanwhile; each watcher remembers what it knew and deletes the missing ones
//! when the re-list ends.

use crate::actions::status_lane::StatusWrite;
use crate::context::Context;
use crate::stores::Writers;
use crate::supervise::Supervisor;
use futures::StreamExt;
use hubpack_core::model::PodKey;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A change after relist bookkeeping.
pub enum Change<'a, K> {
    Applied(&'a K),
    Deleted(&'a K),
}

/// Starts every watcher under the supervisor, until `stop`; `ctx.synced` counts kinds whose
/// first list is complete.
pub fn spawn_all(
    ctx: &Arc<Context>,
    writers: Writers,
    supervisor: &Supervisor,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let c = &ctx.client;
    vec![
        supervisor.spawn(
            "watch pods",
            run(
                Api::all(c.clone()),
                writers.pods,
                ctx.clone(),
                stop.clone(),
                on_pod,
                trim_pod,
            ),
        ),
        supervisor.spawn(
            "watch nodes",
            run(
                Api::all(c.clone()),
                writers.nodes,
                ctx.clone(),
                stop.clone(),
                on_node,
                keep,
            ),
        ),
        supervisor.spawn(
            "watch csinodes",
            run(
                Api::all(c.clone()),
                writers.csinodes,
                ctx.clone(),
                stop.clone(),
                on_csinode,
                keep,
            ),
        ),
        supervisor.spawn(
            "watch claims",
            run(
                Api::all(c.clone()),
                writers.claims,
                ctx.clone(),
                stop.clone(),
                on_claim,
                keep,
            ),
        ),
        supervisor.spawn(
            "watch volumes",
            run(
                Api::all(c.clone()),
                writers.volumes,
                ctx.clone(),
                stop.clone(),
                on_volume,
                keep,
            ),
        ),
        supervisor.spawn(
            "watch storage classes",
            run(
                Api::all(c.clone()),
                writers.classes,
                ctx.clone(),
                stop.clone(),
                on_class,
                keep,
            ),
        ),
    ]
}

fn keep<K>(k: K) -> K {
    k
}

/// One kind's watch, until `stop`. The stream retries with backoff by itself, so it ends
/// only if something is badly wrong: the supervisor then stops the replica.
async fn run<K>(
    api: Api<K>,
    writer: Writer<K>,
    ctx: Arc<Context>,
    stop: CancellationToken,
    handle: fn(&Arc<Context>, Change<'_, K>),
    keep: fn(K) -> K,
) -> crate::error::Result<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let kind = K::kind(&()).to_string();
    let stream = watcher(api)
        .default_backoff()
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let mut relister = Relister::new(keep);
    let mut first_sync = true;
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            ev = stream.next() => ev,
        };
        let Some(ev) = ev else {
            return Err(crate::error::Error::TaskEnded {
                task: "watch",
                detail: format!("the {kind} watch stream ended"),
            });
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(kind, error = %e, "watch error");
                ctx.metrics.watch_error(&kind);
                continue;
            }
        };
        if matches!(ev, Event::Init) {
            ctx.metrics.watch_relist(&kind);
        }
        let listed = relister.feed(ev, |change| handle(&ctx, change));
        if listed && first_sync {
            first_sync = false;
            ctx.synced.fetch_add(1, Ordering::AcqRel);
        }
        ctx.wake.notify_one();
    }
}

/// Turns watcher events into changes, remembering what it has seen so that a re-list
/// (which reports no DELETE for objects gone during a watch gap) still yields their
/// deletion when it ends.
pub struct Relister<K: Resource> {
    known: HashMap<ObjectRef<K>, K>,
    relist: Option<HashSet<ObjectRef<K>>>,
    /// What is kept of each object for its eventual delete handling (the reflector's store
    /// holds the full object already).
    keep: fn(K) -> K,
}

impl<K: Resource> Default for Relister<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn default() -> Self {
        Relister::new(|k| k)
    }
}

impl<K: Resource> Relister<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    pub fn new(keep: fn(K) -> K) -> Self {
        Relister {
            known: HashMap::new(),
            relist: None,
            keep,
        }
    }
}

/// What a pod's delete handling needs: identity, labels, node, scheduler, phase.
pub fn trim_pod(p: Pod) -> Pod {
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    Pod {
        metadata: ObjectMeta {
            name: p.metadata.name,
            namespace: p.metadata.namespace,
            uid: p.metadata.uid,
            labels: p.metadata.labels,
            ..Default::default()
        },
        spec: p.spec.map(|s| PodSpec {
            node_name: s.node_name,
            scheduler_name: s.scheduler_name,
            ..Default::default()
        }),
        status: p.status.map(|s| PodStatus {
            phase: s.phase,
            ..Default::default()
        }),
    }
}

impl<K> Relister<K>
where
    K: Resource<DynamicType = ()> + Clone,
{
    /// Feeds one event, calling `handle` for each change; true when a (re-)list ended.
    pub fn feed(&mut self, ev: Event<K>, mut handle: impl FnMut(Change<'_, K>)) -> bool {
        match ev {
            Event::Init => {
                self.relist = Some(HashSet::new());
                false
            }
            Event::InitApply(o) | Event::Apply(o) => {
                let r = ObjectRef::from_obj(&o);
                if let Some(seen) = self.relist.as_mut() {
                    seen.insert(r.clone());
                }
                handle(Change::Applied(&o));
                self.known.insert(r, (self.keep)(o));
                false
            }
            Event::Delete(o) => {
                self.known.remove(&ObjectRef::from_obj(&o));
                handle(Change::Deleted(&o));
                false
            }
            Event::InitDone => {
                if let Some(seen) = self.relist.take() {
                    let gone: Vec<_> = self
                        .known
                        .keys()
                        .filter(|r| !seen.contains(r))
                        .cloned()
                        .collect();
                    for r in gone {
                        if let Some(o) = self.known.remove(&r) {
                            handle(Change::Deleted(&o));
                        }
                    }
                }
                true
            }
        }
    }
}

fn watcher<K>(api: Api<K>) -> impl futures::Stream<Item = watcher::Result<Event<K>>>
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default().any_semantic())
}

pub fn on_pod(ctx: &Arc<Context>, change: Change<'_, Pod>) {
    let fx = {
        let mut st = ctx.state();
        match change {
            Change::Applied(p) => st.apply_pod(p, &ctx.classifier, &ctx.stores),
            Change::Deleted(p) => st.delete_pod(p, &ctx.classifier),
        }
    };
    {
        let mut q = ctx.queue();
        match fx.change {
            Some(crate::cluster_state::PodChange::Pending {
                key,
                priority,
                created,
            }) => q.add(key, priority, created),
            Some(crate::cluster_state::PodChange::NotPending { key }) => q.remove(&key),
            None => {}
        }
        for k in &fx.wake {
            q.wake(k);
        }
    }
    if let Some(node) = &fx.freed {
        crate::requeue::node_changed(ctx, node);
    }
    if let Some(node) = fx.prepull_changed {
        refresh_node(ctx, &node);
    }
    if let Some((reason, node)) = fx.kubelet_rejected {
        report_rejection(ctx, change_pod(&change), reason, node);
    }
}

fn change_pod<'a>(c: &Change<'a, Pod>) -> &'a Pod {
    match c {
        Change::Applied(p) | Change::Deleted(p) => p,
    }
}

fn report_rejection(ctx: &Arc<Context>, pod: &Pod, reason: String, node: String) {
    tracing::warn!(pod = ?pod.metadata.name, %reason, %node, "kubelet rejected a pod we bound");
    ctx.metrics
        .kubelet_rejections
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: crate::metrics::reason_label(&reason),
        })
        .inc();
    // The event is written by the status lane's worker, not from this handler.
    ctx.status_lane.push(
        key_of(pod),
        StatusWrite::KubeletRejected {
            pod: Box::new(crate::actions::events::pod_ref(pod)),
            reason,
            node,
        },
    );
}

fn key_of(p: &Pod) -> PodKey {
    PodKey::new(
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Reconverts a node from the cache (its CSINode or pre-pull pod changed).
pub fn refresh_node(ctx: &Arc<Context>, name: &str) {
    if let Some(n) = ctx.stores.nodes.get(&ObjectRef::new(name)) {
        on_node(ctx, Change::Applied(&n));
    }
}

pub fn on_node(ctx: &Arc<Context>, change: Change<'_, Node>) {
    match change {
        Change::Applied(n) => {
            let name = n.name_any();
            let csi = ctx.stores.csinodes.get(&ObjectRef::new(&name));
            let applied = ctx.state().apply_node(n, csi.as_deref());
            match applied {
                Ok(true) => crate::requeue::node_changed(ctx, &name),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "cannot convert node; ignored");
                    ctx.state().delete_node(&name);
                }
            }
        }
        // A node gone helps no waiting pod.
        Change::Deleted(n) => ctx.state().delete_node(&n.name_any()),
    }
}

fn on_csinode(ctx: &Arc<Context>, change: Change<'_, CSINode>) {
    let name = match change {
        Change::Applied(c) | Change::Deleted(c) => c.name_any(),
    };
    refresh_node(ctx, &name);
}

pub(crate) fn on_claim(ctx: &Arc<Context>, change: Change<'_, PersistentVolumeClaim>) {
    if let Change::Applied(pvc) = change {
        let ns = pvc.namespace().unwrap_or_default();
        let stores = &ctx.stores;
        let bound = |claim: &str| {
            stores
                .claims
                .get(&ObjectRef::new(claim).within(&ns))
                .is_some_and(|c| crate::actions::volumes::claim_is_bound(&c))
        };
        let wake: Vec<PodKey> = ctx.state().in_flight.claims_bound(&ns, &bound);
        let mut q = ctx.queue();
        for k in &wake {
            q.wake(k);
        }
    }
    let (Change::Applied(pvc) | Change::Deleted(pvc)) = change;
    let ns = pvc.namespace().unwrap_or_default();
    crate::requeue::claim_changed(ctx, &ns, Some(&pvc.name_any()));
}

fn on_volume(ctx: &Arc<Context>, _change: Change<'_, PersistentVolume>) {
    crate::requeue::claim_changed(ctx, "", None);
}

fn on_class(ctx: &Arc<Context>, _change: Change<'_, StorageClass>) {
    crate::requeue::claim_changed(ctx, "", None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn feed(r: &mut Relister<Node>, ev: Event<Node>) -> (Vec<String>, bool) {
        let mut seen = Vec::new();
        let done = r.feed(ev, |c| {
            seen.push(match c {
                Change::Applied(n) => format!("+{}", n.name_any()),
                Change::Deleted(n) => format!("-{}", n.name_any()),
            })
        });
        (seen, done)
    }

    #[test]
    fn a_trimmed_pod_keeps_what_its_deletion_needs() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "puller", "namespace": "hub", "uid": "u",
                         "labels": {"component": "continuous-image-puller"},
                         "annotations": {"big": "x"}},
            "spec": {"nodeName": "n1", "schedulerName": "s",
                     "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        let t = trim_pod(p.clone());
        assert_eq!(t.metadata.name, p.metadata.name);
        assert_eq!(t.metadata.namespace, p.metadata.namespace);
        assert_eq!(t.metadata.labels, p.metadata.labels);
        assert!(t.metadata.annotations.is_none());
        let spec = t.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(spec.scheduler_name.as_deref(), Some("s"));
        assert!(spec.containers.is_empty());
        assert_eq!(t.status.unwrap().phase.as_deref(), Some("Running"));
    }

    #[test]
    fn a_relist_deletes_what_vanished_during_the_gap() {
        let mut r = Relister::default();
        assert_eq!(feed(&mut r, Event::Init), (vec![], false));
        feed(&mut r, Event::InitApply(node("a")));
        feed(&mut r, Event::InitApply(node("b")));
        assert_eq!(feed(&mut r, Event::InitDone), (vec![], true));
        assert_eq!(feed(&mut r, Event::Apply(node("c"))).0, vec!["+c"]);
        // The watch broke; b and c went away meanwhile; the re-list shows only a.
        feed(&mut r, Event::Init);
        assert_eq!(feed(&mut r, Event::InitApply(node("a"))).0, vec!["+a"]);
        let (mut changes, done) = feed(&mut r, Event::InitDone);
        changes.sort();
        assert_eq!(changes, vec!["-b", "-c"]);
        assert!(done);
        assert_eq!(feed(&mut r, Event::Delete(node("a"))).0, vec!["-a"]);
    }
}
