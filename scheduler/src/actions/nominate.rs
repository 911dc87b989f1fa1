//! `status.nominatedNodeName`: set on a user pod while its victims are evicted (the seat is
//! reserved for it, and the cluster autoscaler knows not to scale up for it); cleared when
//! the preemption does not work out, since the autoscaler never scales up for a nominated
//! pod. Whether the API server clears it on binding depends on the
//! ClearingNominatedNodeNameAfterBinding feature gate (beta, on by default from 1.35); a
//! bound pod's nomination is harmless either way. The caller paces the write.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub async fn set_nomination(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    node: Option<&str>,
) -> crate::error::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"status": {"nominatedNodeName": node}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[tokio::test]
    async fn sets_and_clears_with_a_status_merge_patch() {
        let (client, mut handle) = mock_client();
        let server = tokio::spawn(async move {
            let set = next(&mut handle, 200, pod_json("hub", "u")).await;
            let clear = next(&mut handle, 200, pod_json("hub", "u")).await;
            (set, clear)
        });
        set_nomination(&client, "hub", "u", Some("n1"))
            .await
            .unwrap();
        set_nomination(&client, "hub", "u", None).await.unwrap();
        let (set, clear) = server.await.unwrap();
        assert_eq!(set.method, "PATCH");
        assert_eq!(set.path, "/api/v1/namespaces/hub/pods/u/status");
        assert_eq!(set.content_type, "application/merge-patch+json");
        assert_eq!(set.body, json!({"status": {"nominatedNodeName": "n1"}}));
        assert_eq!(clear.body, json!({"status": {"nominatedNodeName": null}}));
    }
}
