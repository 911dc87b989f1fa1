//! The image model: kwok has no container runtime, never fills `status.images`, and its stages
//! only see the pod. This controller keeps each node's image cache on the real API:
//!
//! - for every pod bound to a node and not yet started it decides when the pod's images
//!   (init containers included) are on the node: now if the node lists them all in
//!   `status.images`, else when the pull finishes (a pull already under way on that node is
//!   shared, as the kubelet shares it), and writes that time in the pod's
//!   `e2e.hubpack.dev/ready-at` annotation, which kwok's pod-ready stage waits for;
//! - when a pull finishes it adds the image to the node's `status.images`.
//!
//! A pull takes the pod's `e2e.hubpack.dev/pull-time` annotation (a Go duration) or the
//! configured default. Pre-pull DaemonSet pods go through the same model, so warm and cold nodes
//! differ on the API as they do in life. Not modelled: the kubelet's 50-image cap on
//! `status.images` (every pulled image is listed, since the list is also the model's memory of
//! what is on the node), image garbage collection, and pull failures. Run it with [`run`] or `hubpack-e2e-model images`.

use crate::kwok::{READY_AT_ANNOTATION, parse_go_duration};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Per-pod override of the pull time, a Go duration such as `"45s"`.
pub const PULL_TIME_ANNOTATION: &str = "e2e.hubpack.dev/pull-time";
/// The size reported for a pulled image (the scheduler's ImageLocality reads sizes).
const IMAGE_SIZE_BYTES: i64 = 500 << 20;

#[derive(Clone, Debug)]
pub struct ImageModelConfig {
    /// How long pulling images onto a node that lacks them takes.
    pub default_pull_time: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageModelError {
    #[error("pod watch ended")]
    WatchEnded,
}

/// The fully qualified form of an image reference, as containerd reports it in
/// `status.images`: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize_image(image: &str) -> String {
    let (name, suffix) = match image.find('@') {
        Some(at) => (&image[..at], &image[at..]),
        None => {
            // A tag is a ':' after the last '/' (a ':' before it is a registry port).
            let last_slash = image.rfind('/').map_or(0, |i| i + 1);
            match image[last_slash..].rfind(':') {
                Some(colon) => (&image[..last_slash + colon], &image[last_slash + colon..]),
                None => (image, ":latest"),
            }
        }
    };
    let first = name.split('/').next().unwrap_or(name);
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{full}{suffix}")
}

/// Every image a pod runs, normalized, init containers included.
pub fn pod_images(pod: &Pod) -> BTreeSet<String> {
    let Some(spec) = &pod.spec else {
        return BTreeSet::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter_map(|c| c.image.as_deref())
        .map(normalize_image)
        .collect()
}

/// Images a node lists in `status.images`, normalized.
pub fn node_images(node: &Node) -> BTreeSet<String> {
    node.status
        .iter()
        .flat_map(|s| s.images.iter().flatten())
        .flat_map(|i| i.names.iter().flatten())
        .map(|n| normalize_image(n))
        .collect()
}

/// Pulls under way: (node, image) → when it completes.
type Pulls = Arc<Mutex<HashMap<(String, String), Timestamp>>>;

/// Runs the image model until the pod watch ends (it retries API errors with backoff, so it
/// survives an apiserver restart).
pub async fn run(client: kube::Client, config: ImageModelConfig) -> Result<(), ImageModelError> {
    let pods: Api<Pod> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let pulls: Pulls = Arc::default();
    // One writer of node images at a time: each write replaces the whole list.
    let node_writer = Arc::new(Mutex::new(()));
    let watch_config = watcher::Config::default().fields("spec.nodeName!=");
    let mut events = watcher(pods.clone(), watch_config)
        .default_backoff()
        .applied_objects()
        .boxed();
    tracing::info!(default_pull_time = ?config.default_pull_time, "image model running");
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(pod) => pod,
            Err(error) => {
                tracing::warn!(%error, "pod watch error (retrying)");
                continue;
            }
        };
        if !needs_decision(&pod) {
            continue;
        }
        if let Err(error) = decide(&pods, &nodes, &pulls, &node_writer, &config, &pod).await {
            tracing::warn!(%error, pod = ?pod.metadata.name, "image decision failed; retried on the pod's next event");
        }
    }
    Err(ImageModelError::WatchEnded)
}

fn needs_decision(pod: &Pod) -> bool {
    let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let decided = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(READY_AT_ANNOTATION));
    let pending = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Pending");
    bound && !decided && pending && pod.metadata.deletion_timestamp.is_none()
}

async fn decide(
    pods: &Api<Pod>,
    nodes: &Api<Node>,
    pulls: &Pulls,
    node_writer: &Arc<Mutex<()>>,
    config: &ImageModelConfig,
    pod: &Pod,
) -> Result<(), kube::Error> {
    let (Some(name), Some(namespace), Some(node_name)) = (
        pod.metadata.name.as_deref(),
        pod.metadata.namespace.as_deref(),
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
    ) else {
        return Ok(());
    };
    let pull_time = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PULL_TIME_ANNOTATION))
        .and_then(|d| parse_go_duration(d))
        .unwrap_or(config.default_pull_time);
    let present = node_images(&nodes.get(node_name).await?);
    let now = Timestamp::now();
    let mut ready_at = now;
    {
        let mut pulls_guard = pulls.lock().await;
        for image in pod_images(pod) {
            if present.contains(&image) {
                continue;
            }
            let key = (node_name.to_string(), image.clone());
            let done = match pulls_guard.get(&key) {
                Some(done) => *done,
                None => {
                    let done = now
                        .checked_add(jiff::SignedDuration::try_from(pull_time).unwrap_or_default())
                        .unwrap_or(now);
                    pulls_guard.insert(key.clone(), done);
                    tokio::spawn(finish_pull(
                        nodes.clone(),
                        pulls.clone(),
                        node_writer.clone(),
                        key,
                        pull_time,
                    ));
                    tracing::info!(node = node_name, %image, ?pull_time, "pull started");
                    done
                }
            };
            ready_at = ready_at.max(done);
        }
    }
    let patch = serde_json::json!({
        "metadata": {"annotations": {READY_AT_ANNOTATION: ready_at.to_string()}}
    });
    Api::<Pod>::namespaced(pods.clone().into_client(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::debug!(pod = name, node = node_name, %ready_at, "pod ready time set");
    Ok(())
}

async fn finish_pull(
    nodes: Api<Node>,
    pulls: Pulls,
    node_writer: Arc<Mutex<()>>,
    key: (String, String),
    pull_time: Duration,
) {
    tokio::time::sleep(pull_time).await;
    let (node_name, image) = &key;
    let mut attempt = 0u32;
    loop {
        match add_image(&nodes, &node_writer, node_name, image).await {
            Ok(()) => break,
            Err(kube::Error::Api(status)) if status.code == 404 => break,
            Err(error) if attempt < 30 => {
                attempt += 1;
                tracing::warn!(%error, node = node_name, %image, "adding image to node failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => {
                tracing::error!(%error, node = node_name, %image, "giving up adding image to node");
                break;
            }
        }
    }
    pulls.lock().await.remove(&key);
    tracing::info!(node = node_name, %image, "pull finished");
}

async fn add_image(
    nodes: &Api<Node>,
    node_writer: &Arc<Mutex<()>>,
    node_name: &str,
    image: &str,
) -> Result<(), kube::Error> {
    let _writer = node_writer.lock().await;
    let node = nodes.get(node_name).await?;
    let mut images = node.status.and_then(|s| s.images).unwrap_or_default();
    let already = images
        .iter()
        .flat_map(|i| i.names.iter().flatten())
        .any(|n| normalize_image(n) == image);
    if already {
        return Ok(());
    }
    images.insert(
        0,
        k8s_openapi::api::core::v1::ContainerImage {
            names: Some(vec![image.to_string()]),
            size_bytes: Some(IMAGE_SIZE_BYTES),
        },
    );
    let patch = serde_json::json!({"status": {"images": images}});
    nodes
        .patch_status(node_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_image_references_like_containerd() {
        assert_eq!(
            normalize_image("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize_image("busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            normalize_image("jupyter/base-notebook:2024"),
            "docker.io/jupyter/base-notebook:2024"
        );
        assert_eq!(
            normalize_image("quay.io/jupyter/scipy-notebook"),
            "quay.io/jupyter/scipy-notebook:latest"
        );
        assert_eq!(
            normalize_image("localhost:5000/img:v1"),
            "localhost:5000/img:v1"
        );
        assert_eq!(
            normalize_image("registry.k8s.io/pause@sha256:abc"),
            "registry.k8s.io/pause@sha256:abc"
        );
        assert_eq!(
            normalize_image("docker.io/library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
    }

    #[test]
    fn a_pod_needs_a_decision_only_when_bound_pending_and_undecided() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}],
                     "initContainers": [{"name": "i", "image": "alpine:3"}]},
        }))
        .unwrap();
        assert!(!needs_decision(&pod));
        pod.spec.as_mut().unwrap().node_name = Some("node".into());
        assert!(needs_decision(&pod));
        assert_eq!(
            pod_images(&pod).into_iter().collect::<Vec<_>>(),
            vec![
                "docker.io/library/alpine:3",
                "docker.io/library/busybox:latest"
            ]
        );
        pod.metadata
            .annotations
            .get_or_insert_default()
            .insert(READY_AT_ANNOTATION.into(), "2026-01-01T00:00:00Z".into());
        assert!(!needs_decision(&pod));
    }
}
