//! A small dynamic provisioner for end-to-end tests, like the image model for what the local
//! cluster lacks (no CSI driver, no external-provisioner): it answers claims of the
//! StorageClasses whose `provisioner` is the name it serves, once a scheduler has picked a
//! node for them (`volume.kubernetes.io/selected-node`, WaitForFirstConsumer), by creating a
//! PersistentVolume pinned to that node (node affinity on `kubernetes.io/hostname`), of the
//! claim's requested size, pre-bound to the claim (`claimRef` with its uid). The
//! kube-controller-manager's PV binder then binds claim and volume, as with a real driver.
//!
//! Started in-process by a test ([`Provisioner::start`]; it stops when dropped), or as the
//! `provisioner` process of a cluster whose options ask for it
//! ([`crate::cluster::ClusterOptions::provisioner`], on in `cargo xtask cluster up`): the
//! `hubpack-e2e-model provisioner` mode, which also creates the default StorageClass
//! [`DEFAULT_CLASS`] (WaitForFirstConsumer, served by [`DEFAULT_PROVISIONER`]), so a claim
//! with no `storageClassName`, as z2jh renders a user's home, is provisioned out of the box.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

/// The claim annotation a scheduler sets to start provisioning on a node.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// The default StorageClass of a cluster that runs the provisioner process.
pub const DEFAULT_CLASS: &str = "standard";
/// The provisioner name [`DEFAULT_CLASS`] names.
pub const DEFAULT_PROVISIONER: &str = "e2e.hubpack.dev/local-disk";
/// The annotation that makes a StorageClass the cluster's default.
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// A running provisioner; aborted on drop.
pub struct Provisioner {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provisioner {
    /// Serves claims of classes whose `provisioner` is `name`.
    pub fn start(client: kube::Client, name: &str) -> Provisioner {
        let name = name.to_string();
        let task = tokio::spawn(async move { run(client, &name).await });
        Provisioner { task }
    }
}

/// Serves claims of classes whose `provisioner` is `name`, until the watch ends.
pub async fn run(client: kube::Client, name: &str) {
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let mut stream = std::pin::pin!(watcher(claims, watcher::Config::default()).applied_objects());
    while let Some(ev) = stream.next().await {
        let Ok(pvc) = ev else { continue };
        if let Err(e) = provision(&client, name, &pvc).await {
            tracing::warn!(claim = ?pvc.metadata.name, error = %e, "provisioning failed");
        }
    }
}

/// Creates the cluster's default StorageClass `name` (WaitForFirstConsumer, served by
/// `provisioner`), unless a class of that name exists.
pub async fn create_default_class(
    client: &kube::Client,
    name: &str,
    provisioner: &str,
) -> Result<(), kube::Error> {
    let sc = default_class(name, provisioner).map_err(kube::Error::SerdeError)?;
    match Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &sc)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn default_class(name: &str, provisioner: &str) -> Result<StorageClass, serde_json::Error> {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": provisioner,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete",
    }))
}

/// Creates a WaitForFirstConsumer StorageClass served by `provisioner`
/// (`kubernetes.io/no-provisioner` for static volumes only).
pub async fn create_class(
    client: &kube::Client,
    name: &str,
    provisioner: &str,
) -> Result<(), kube::Error> {
    let sc: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
    .map_err(kube::Error::SerdeError)?;
    Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &sc)
        .await?;
    Ok(())
}

/// Creates a ReadWriteOnce claim of `class` asking `size`, with `labels`.
pub async fn create_claim(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    class: &str,
    size: &str,
    labels: serde_json::Value,
) -> Result<(), kube::Error> {
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                 "resources": {"requests": {"storage": size}}},
    }))
    .map_err(kube::Error::SerdeError)?;
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &pvc)
        .await?;
    Ok(())
}

/// The PV for `pvc` on `node` (public for unit tests).
pub fn volume_for(pvc: &PersistentVolumeClaim, class: &str, node: &str) -> PersistentVolume {
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    let spec = pvc.spec.clone().unwrap_or_default();
    let size = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map_or_else(|| "1Gi".to_string(), |q| q.0.clone());
    serde_json::from_value(json!({
        "metadata": {"name": format!("pvc-{uid}")},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "volumeMode": spec.volume_mode.unwrap_or_else(|| "Filesystem".into()),
            "storageClassName": class,
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": format!("/tmp/hubpack-e2e/{uid}")},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": pvc.metadata.namespace, "name": pvc.metadata.name,
                         "uid": uid},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
        },
    }))
    .unwrap_or_default()
}

async fn provision(
    client: &kube::Client,
    provisioner: &str,
    pvc: &PersistentVolumeClaim,
) -> Result<(), kube::Error> {
    let Some(node) = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE))
    else {
        return Ok(());
    };
    let spec = pvc.spec.as_ref();
    let bound = spec
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty());
    let Some(class) = spec.and_then(|s| s.storage_class_name.as_deref()) else {
        return Ok(());
    };
    if bound || pvc.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let Some(sc) = Api::<StorageClass>::all(client.clone())
        .get_opt(class)
        .await?
    else {
        return Ok(());
    };
    if sc.provisioner != provisioner {
        return Ok(());
    }
    let pv = volume_for(pvc, class, node);
    match Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
    {
        Ok(_) => {
            tracing::info!(claim = ?pvc.metadata.name, %node, "provisioned");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_class_is_marked_default_and_waits_for_the_first_consumer() {
        let sc = serde_json::to_value(default_class("standard", "p").unwrap()).unwrap();
        assert_eq!(
            sc["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION],
            "true"
        );
        assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer");
        assert_eq!(sc["provisioner"], "p");
    }

    #[test]
    fn the_volume_is_pinned_to_the_node_sized_and_pre_bound() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "home", "namespace": "hub", "uid": "u1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "e2e",
                     "resources": {"requests": {"storage": "5Gi"}}},
        }))
        .unwrap();
        let pv = serde_json::to_value(volume_for(&pvc, "e2e", "node-1")).unwrap();
        assert_eq!(pv["metadata"]["name"], "pvc-u1");
        assert_eq!(pv["spec"]["capacity"]["storage"], "5Gi");
        assert_eq!(pv["spec"]["claimRef"]["uid"], "u1");
        assert_eq!(pv["spec"]["claimRef"]["namespace"], "hub");
        assert_eq!(
            pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
                [0],
            "node-1"
        );
    }
}
