//! Watches feeding the cluster state and the queue: hubpack-kube's reflector loop, one per
//! kind, whose changes (relist deletions included) go to this module's handlers. Runs
//! whether or not this replica leads, so a standby's caches are warm when it takes over.

use crate::actions::status_lane::StatusWrite;
use crate::context::Context;
use crate::error::Error;
use crate::stores::Writers;
use hubpack_core::model::PodKey;
use hubpack_kube::reflect::{self, Change, Observer, Relister, Signals, Watch};
use hubpack_kube::supervise::Supervisor;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use std::fmt::Debug;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts every watcher under the supervisor, until `stop`; `ctx.synced` counts kinds whose
/// first list is complete.
pub fn spawn_all(
    ctx: &Arc<Context>,
    writers: Writers,
    supervisor: &Supervisor<Error>,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    vec![
        spawn(
            ctx,
            supervisor,
            stop,
            "watch pods",
            writers.pods,
            on_pod,
            trim_pod,
        ),
        spawn(
            ctx,
            supervisor,
            stop,
            "watch nodes",
            writers.nodes,
            on_node,
            keep,
        ),
        spawn(
            ctx,
            supervisor,
            stop,
            "watch csinodes",
            writers.csinodes,
            on_csinode,
            keep,
        ),
        spawn(
            ctx,
            supervisor,
            stop,
            "watch claims",
            writers.claims,
            on_claim,
            keep,
        ),
        spawn(
            ctx,
            supervisor,
            stop,
            "watch volumes",
            writers.volumes,
            on_volume,
            keep,
        ),
        spawn(
            ctx,
            supervisor,
            stop,
            "watch storage classes",
            writers.classes,
            on_class,
            keep,
        ),
    ]
}

fn keep<K>(k: K) -> K {
    k
}

/// One kind's watch under the supervisor: every object of the kind, its changes handed to
/// `handle`, `keep` trimming what the relist bookkeeping remembers.
fn spawn<K>(
    ctx: &Arc<Context>,
    supervisor: &Supervisor<Error>,
    stop: &CancellationToken,
    name: &'static str,
    writer: Writer<K>,
    handle: fn(&Arc<Context>, Change<'_, K>),
    keep: fn(K) -> K,
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let watch = Watch {
        api: Api::all(ctx.client.clone()),
        config: watcher::Config::default().any_semantic(),
        writer,
    };
    let signals = Signals {
        synced: ctx.synced.clone(),
        wake: ctx.wake.clone(),
    };
    let feed = Feed {
        ctx: ctx.clone(),
        relister: Relister::new(keep),
        handle,
    };
    let run = reflect::run(watch, signals, feed, stop.clone());
    supervisor.spawn(name, async move { Ok(run.await?) })
}

/// Hands one kind's changes to its handler and counts relists and errors.
struct Feed<K: Resource> {
    ctx: Arc<Context>,
    relister: Relister<K>,
    handle: fn(&Arc<Context>, Change<'_, K>),
}

impl<K> Observer<K> for Feed<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync,
{
    fn event(&mut self, event: Event<K>) {
        if matches!(event, Event::Init) {
            self.ctx.metrics.watch_relist(&K::kind(&()));
        }
        let (ctx, handle) = (&self.ctx, self.handle);
        self.relister.feed(event, |change| handle(ctx, change));
    }

    fn error(&mut self, kind: &str, _error: &watcher::Error) {
        self.ctx.metrics.watch_error(kind);
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
}
