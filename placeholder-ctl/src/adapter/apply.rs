//! Writes by server-side apply (field manager `hubpack-placeholder-ctl`, forced: the
//! controller owns these fields), and only when the object differs from what this process
//! last applied, so a quiet cluster sees no writes. Also lists and deletes the owned objects
//! no configured pool wants ([`crate::prune`]).

use super::metrics::KindLabels;
use crate::buffer::CapacityBuffer;
use crate::error::Result;
use crate::objects::{DELETION_COST, MANAGER};
use crate::prune::{Found, OwnedKind};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Pod, PodTemplate};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Api, Client};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;

/// The CapacityBuffer API (`autoscaling.x-k8s.io/v1beta1`), served by a CRD.
pub fn buffer_resource() -> ApiResource {
    use crate::buffer::{BUFFER_GROUP, BUFFER_KIND, BUFFER_PLURAL, BUFFER_VERSION};
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(BUFFER_GROUP, BUFFER_VERSION, BUFFER_KIND),
        BUFFER_PLURAL,
    )
}

pub struct Applier {
    client: Client,
    namespace: String,
    /// Kind/name → the JSON last applied successfully.
    last: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Writes sent, by kind (the `api_writes` counter): what each backend costs the API
    /// server.
    writes: Family<KindLabels, Counter>,
}

fn params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

impl Applier {
    pub fn new(client: Client, namespace: String) -> Applier {
        Applier {
            client,
            namespace,
            last: Mutex::new(BTreeMap::new()),
            writes: Family::default(),
        }
    }

    /// The writes counter, for the metrics registry.
    pub fn writes(&self) -> Family<KindLabels, Counter> {
        self.writes.clone()
    }

    fn wrote(&self, kind: &str) {
        self.writes
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Forget what was applied (on gaining leadership: another replica may have written).
    pub fn forget(&self) {
        if let Ok(mut l) = self.last.lock() {
            l.clear();
        }
    }

    fn unchanged(&self, key: &str, value: &serde_json::Value) -> bool {
        self.last
            .lock()
            .map(|l| l.get(key) == Some(value))
            .unwrap_or(false)
    }

    fn remember(&self, key: String, value: serde_json::Value) {
        if let Ok(mut l) = self.last.lock() {
            l.insert(key, value);
        }
    }

    /// Applies `obj` through `api` unless it equals the last applied; returns the server's
    /// object when written.
    async fn apply<K>(&self, api: Api<K>, kind: &str, name: &str, obj: &K) -> Result<Option<K>>
    where
        K: Clone + DeserializeOwned + Serialize + Debug,
    {
        let value = serde_json::to_value(obj).unwrap_or_default();
        let key = format!("{kind}/{name}");
        if self.unchanged(&key, &value) {
            return Ok(None);
        }
        self.wrote(kind);
        let written = api.patch(name, &params(), &Patch::Apply(obj)).await?;
        self.remember(key, value);
        Ok(Some(written))
    }

    pub async fn priority_class(&self, pc: &PriorityClass) -> Result<Option<PriorityClass>> {
        let name = pc.metadata.name.clone().unwrap_or_default();
        self.apply(Api::all(self.client.clone()), "PriorityClass", &name, pc)
            .await
    }

    pub async fn deployment(&self, d: &Deployment) -> Result<Option<Deployment>> {
        let name = d.metadata.name.clone().unwrap_or_default();
        let api = Api::namespaced(self.client.clone(), &self.namespace);
        self.apply(api, "Deployment", &name, d).await
    }

    pub async fn pdb(&self, p: &PodDisruptionBudget) -> Result<Option<PodDisruptionBudget>> {
        let name = p.metadata.name.clone().unwrap_or_default();
        let api = Api::namespaced(self.client.clone(), &self.namespace);
        self.apply(api, "PodDisruptionBudget", &name, p).await
    }

    pub async fn daemonset(&self, ds: &DaemonSet) -> Result<Option<DaemonSet>> {
        let name = ds.metadata.name.clone().unwrap_or_default();
        let api = Api::namespaced(self.client.clone(), &self.namespace);
        self.apply(api, "DaemonSet", &name, ds).await
    }

    pub async fn pod_template(&self, t: &PodTemplate) -> Result<Option<PodTemplate>> {
        let name = t.metadata.name.clone().unwrap_or_default();
        let api = Api::namespaced(self.client.clone(), &self.namespace);
        self.apply(api, "PodTemplate", &name, t).await
    }

    /// Applies the buffer's spec (its status is the autoscaler's).
    pub async fn capacity_buffer(&self, b: &CapacityBuffer) -> Result<Option<DynamicObject>> {
        let name = b.metadata.name.clone().unwrap_or_default();
        let value = serde_json::to_value(b).unwrap_or_default();
        let obj: DynamicObject = serde_json::from_value(value).map_err(kube::Error::SerdeError)?;
        self.apply(self.buffers(), "CapacityBuffer", &name, &obj)
            .await
    }

    /// One CapacityBuffer as the API server has it; None when absent.
    pub async fn get_capacity_buffer(&self, name: &str) -> Result<Option<CapacityBuffer>> {
        let Some(obj) = self.buffers().get_opt(name).await? else {
            return Ok(None);
        };
        let value = serde_json::to_value(obj).unwrap_or_default();
        Ok(Some(
            serde_json::from_value(value).map_err(kube::Error::SerdeError)?,
        ))
    }

    fn buffers(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &buffer_resource())
    }

    /// The objects of `kind` in the namespace that carry `selector` (the ownership labels),
    /// as the pure [`crate::prune`] step reads them.
    pub async fn list_owned(&self, kind: OwnedKind, selector: &str) -> Result<Vec<Found>> {
        let lp = ListParams::default().labels(selector);
        let metas = match kind {
            OwnedKind::Deployment => self.list_metadata::<Deployment>(&lp).await?,
            OwnedKind::PodDisruptionBudget => {
                self.list_metadata::<PodDisruptionBudget>(&lp).await?
            }
            OwnedKind::DaemonSet => self.list_metadata::<DaemonSet>(&lp).await?,
            OwnedKind::PodTemplate => self.list_metadata::<PodTemplate>(&lp).await?,
            OwnedKind::CapacityBuffer => {
                let list = self.buffers().list_metadata(&lp).await?;
                list.items.into_iter().map(|m| m.metadata).collect()
            }
        };
        Ok(metas
            .into_iter()
            .map(|m| Found {
                kind,
                name: m.name.unwrap_or_default(),
                labels: m.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes one owned object (its dependents in the background: a Deployment's
    /// ReplicaSets and pods); an object already gone is not an error.
    pub async fn delete(&self, kind: OwnedKind, name: &str) -> Result<()> {
        let dp = DeleteParams::background();
        self.wrote(kind.as_str());
        let result = match kind {
            OwnedKind::Deployment => self
                .namespaced::<Deployment>()
                .delete(name, &dp)
                .await
                .map(|_| ()),
            OwnedKind::PodDisruptionBudget => self
                .namespaced::<PodDisruptionBudget>()
                .delete(name, &dp)
                .await
                .map(|_| ()),
            OwnedKind::DaemonSet => self
                .namespaced::<DaemonSet>()
                .delete(name, &dp)
                .await
                .map(|_| ()),
            OwnedKind::PodTemplate => self
                .namespaced::<PodTemplate>()
                .delete(name, &dp)
                .await
                .map(|_| ()),
            OwnedKind::CapacityBuffer => self.buffers().delete(name, &dp).await.map(|_| ()),
        };
        if let Ok(mut l) = self.last.lock() {
            l.remove(&format!("{}/{name}", kind.as_str()));
        }
        match result {
            Ok(()) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The metadata of the namespace's objects of one kind that match `lp`.
    async fn list_metadata<K>(&self, lp: &ListParams) -> Result<Vec<ObjectMeta>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let list = self.namespaced::<K>().list_metadata(lp).await?;
        Ok(list.items.into_iter().map(|m| m.metadata).collect())
    }

    fn namespaced<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Sets `controller.kubernetes.io/pod-deletion-cost` on one placeholder pod (the
    /// ReplicaSet removes the lowest cost first). Applies the annotation alone.
    pub async fn deletion_cost(&self, pod: &str, cost: i32) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "annotations": {DELETION_COST: cost.to_string()}},
        });
        self.wrote("Pod");
        api.patch(pod, &params(), &Patch::Apply(body)).await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::objects;
    use hubpack_kube::test_support::{mock_client, next};

    fn cfg() -> Config {
        let mut c = Config::parse(include_str!("../../config.example.yaml"), "t").unwrap();
        c.namespace = Some("hub".into());
        c
    }

    fn assert_apply(seen: &hubpack_kube::test_support::Seen, path: &str) {
        assert_eq!(seen.method, "PATCH");
        assert_eq!(seen.path, path);
        assert_eq!(seen.content_type, "application/apply-patch+yaml");
        assert!(
            seen.query.contains("fieldManager=hubpack-placeholder-ctl"),
            "{}",
            seen.query
        );
        assert!(seen.query.contains("force=true"), "{}", seen.query);
    }

    #[tokio::test]
    async fn the_deployment_is_applied_with_replicas_and_again_only_when_changed() {
        let (client, mut handle) = mock_client();
        let c = cfg();
        let sizes = c.pool_sizes().unwrap();
        let applier = Applier::new(client, "hub".into());
        let d3 = objects::placeholder_deployment(
            &c,
            &c.pools[0],
            &sizes[0],
            None,
            3,
            &["img:1".into()],
            None,
        );
        let d4 = objects::placeholder_deployment(
            &c,
            &c.pools[0],
            &sizes[0],
            None,
            4,
            &["img:1".into()],
            None,
        );
        let reply = serde_json::to_value(&d3).unwrap();
        let server = tokio::spawn(async move {
            let first = next(&mut handle, 200, reply.clone()).await;
            let second = next(&mut handle, 200, reply).await;
            (first, second)
        });
        assert!(applier.deployment(&d3).await.unwrap().is_some());
        assert!(
            applier.deployment(&d3).await.unwrap().is_none(),
            "unchanged: no write"
        );
        assert!(applier.deployment(&d4).await.unwrap().is_some());
        let (first, second) = server.await.unwrap();
        assert_apply(
            &first,
            "/apis/apps/v1/namespaces/hub/deployments/hubpack-placeholder-default",
        );
        assert_eq!(first.body["kind"], "Deployment");
        assert_eq!(first.body["spec"]["replicas"], 3);
        let tpl = &first.body["spec"]["template"];
        assert_eq!(tpl["spec"]["schedulerName"], "hubpack-scheduler");
        assert_eq!(tpl["spec"]["terminationGracePeriodSeconds"], 0);
        assert_eq!(
            tpl["metadata"]["annotations"]["hubpack.io/user-images"],
            "img:1"
        );
        assert_eq!(second.body["spec"]["replicas"], 4);
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_next_time() {
        let (client, mut handle) = mock_client();
        let c = cfg();
        let applier = Applier::new(client, "hub".into());
        let ds = objects::prepuller_daemonset(&c, &c.pools[0], &["a:1".into()], None);
        let reply = serde_json::to_value(&ds).unwrap();
        let server = tokio::spawn(async move {
            let failed = next(
                &mut handle,
                500,
                hubpack_kube::test_support::status_err(500, "InternalError"),
            )
            .await;
            let ok = next(&mut handle, 200, reply).await;
            (failed, ok)
        });
        assert!(applier.daemonset(&ds).await.is_err());
        assert!(applier.daemonset(&ds).await.unwrap().is_some());
        let (failed, ok) = server.await.unwrap();
        assert_apply(
            &failed,
            "/apis/apps/v1/namespaces/hub/daemonsets/hubpack-prepuller-default",
        );
        let init = &ok.body["spec"]["template"]["spec"]["initContainers"];
        assert_eq!(init[0]["image"], "a:1");
        assert_eq!(
            init[0]["command"],
            serde_json::json!(["/bin/sh", "-c", "true"])
        );
        assert_eq!(
            ok.body["spec"]["template"]["spec"]["priorityClassName"],
            "hubpack-prepuller"
        );
    }

    #[tokio::test]
    async fn priority_classes_are_cluster_scoped_applies() {
        let (client, mut handle) = mock_client();
        let c = cfg();
        let applier = Applier::new(client, "hub".into());
        let pcs = objects::priority_classes(&c);
        let replies: Vec<_> = pcs
            .iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for r in replies {
                seen.push(next(&mut handle, 200, r).await);
            }
            seen
        });
        for pc in &pcs {
            applier.priority_class(pc).await.unwrap();
        }
        let seen = server.await.unwrap();
        assert_apply(
            &seen[0],
            "/apis/scheduling.k8s.io/v1/priorityclasses/hubpack-placeholder",
        );
        assert_eq!(seen[0].body["value"], -10);
        assert_eq!(seen[0].body["preemptionPolicy"], "Never");
        assert_apply(
            &seen[1],
            "/apis/scheduling.k8s.io/v1/priorityclasses/hubpack-prepuller",
        );
        assert_eq!(seen[1].body["value"], -5);
    }

    #[tokio::test]
    async fn the_pdb_allows_eviction_and_is_owned_by_its_deployment() {
        let (client, mut handle) = mock_client();
        let c = cfg();
        let applier = Applier::new(client, "hub".into());
        let owner = objects::owner_of(
            "Deployment",
            "apps/v1",
            "hubpack-placeholder-default",
            "uid-d",
        );
        let pdb = objects::placeholder_pdb(&c, &c.pools[0], None, Some(&owner));
        let reply = serde_json::to_value(&pdb).unwrap();
        let server = tokio::spawn(async move { next(&mut handle, 200, reply).await });
        applier.pdb(&pdb).await.unwrap();
        let seen = server.await.unwrap();
        assert_apply(
            &seen,
            "/apis/policy/v1/namespaces/hub/poddisruptionbudgets/hubpack-placeholder-default",
        );
        assert_eq!(seen.body["spec"]["maxUnavailable"], "100%");
        assert_eq!(seen.body["metadata"]["ownerReferences"][0]["uid"], "uid-d");
        assert_eq!(
            seen.body["metadata"]["ownerReferences"][0]["kind"],
            "Deployment"
        );
    }

    #[tokio::test]
    async fn deletion_cost_applies_only_the_annotation() {
        let (client, mut handle) = mock_client();
        let applier = Applier::new(client, "hub".into());
        let server = tokio::spawn(async move {
            next(
                &mut handle,
                200,
                hubpack_kube::test_support::pod_json("hub", "ph-1"),
            )
            .await
        });
        applier.deletion_cost("ph-1", 7).await.unwrap();
        let seen = server.await.unwrap();
        assert_apply(&seen, "/api/v1/namespaces/hub/pods/ph-1");
        assert_eq!(
            seen.body,
            serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "ph-1", "annotations": {"controller.kubernetes.io/pod-deletion-cost": "7"}}})
        );
    }
}
