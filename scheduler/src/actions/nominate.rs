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

/// The status patch of a pod that preempts: its nomination, and `PodScheduled=False,
/// reason=Unschedulable` saying what it waits for, in one strategic merge patch
/// (conditions merge by type), as kube-scheduler writes a preemptor's status. The
/// autoscaler skips a nominated pod that fits its nominated node, so this adds no node.
pub fn preempting_patch(node: &str, message: &str, now: jiff::Timestamp) -> serde_json::Value {
    json!({"status": {
        "nominatedNodeName": node,
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": now.to_string(),
        }],
    }})
}

/// Nominates the pod to `node` and says why it waits there (see [`preempting_patch`]).
pub async fn nominate_preemptor(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    node: &str,
    message: &str,
) -> crate::error::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = preempting_patch(node, message, jiff::Timestamp::now());
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    Ok(())
}

/// What a preempting pod waits for, for its condition and event.
pub fn preempting_message(victims: usize, node: &str) -> String {
    let s = if victims == 1 { "" } else { "s" };
    format!(
        "preempting {victims} placeholder{s} on node {node}: the pod binds there once they are gone"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubpack_kube::test_support::*;

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

#[cfg(test)]
mod preempting_tests {
    use super::*;

    #[test]
    fn a_preemptor_is_nominated_and_says_what_it_waits_for_in_one_patch() {
        let p = preempting_patch(
            "n1",
            &preempting_message(2, "n1"),
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
        assert_eq!(p["status"]["nominatedNodeName"], "n1");
        let c = &p["status"]["conditions"][0];
        assert_eq!(c["type"], "PodScheduled");
        assert_eq!(c["reason"], "Unschedulable");
        assert_eq!(
            c["message"],
            "preempting 2 placeholders on node n1: the pod binds there once they are gone"
        );
    }
}
