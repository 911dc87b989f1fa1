//! The `PodScheduled=False, reason=Unschedulable` condition: the cluster autoscaler scales
//! up only for pods carrying it (docs/design.md, "Scale-up only for pods marked Unschedulable"). Written as a strategic merge patch of
//! the status (conditions merge by `type`), like kube-scheduler's PatchPodStatus, and only
//! when it would change something, so a pod retried every few seconds costs no writes.

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

/// Why a pod is not scheduled, as the condition's reason says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotScheduled {
    /// No node fits (Kubernetes' filters would say the same): the autoscaler scales up
    /// for it.
    Unschedulable,
    /// A refusal only hubpack makes (an unsupported constraint, a field it cannot read).
    /// kube-scheduler writes this reason for its internal failures; the cluster autoscaler
    /// acts only on `Unschedulable`, so it adds no node hubpack would never use.
    SchedulerError,
    /// Assumed on a node, waiting for its claims to be provisioned or bound there. Not
    /// `Unschedulable`: no node is missing, so the autoscaler must not add one.
    WaitingForVolumes,
}

impl NotScheduled {
    pub fn reason(self) -> &'static str {
        match self {
            NotScheduled::Unschedulable => "Unschedulable",
            NotScheduled::SchedulerError => "SchedulerError",
            NotScheduled::WaitingForVolumes => "WaitingForVolumes",
        }
    }
}

/// The patch that marks the pod not scheduled with `reason` and `message` (and clears a
/// stale nomination), or `None` if the pod already says exactly that.
pub fn unschedulable_patch(
    pod: &Pod,
    reason: NotScheduled,
    message: &str,
    now: jiff::Timestamp,
) -> Option<Value> {
    let reason = reason.reason();
    let status = pod.status.as_ref();
    let existing: Option<&PodCondition> = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    let nominated = status
        .and_then(|s| s.nominated_node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let same = existing.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    if same && !nominated {
        return None;
    }
    // The transition time moves only when the status flips, as the API convention asks.
    let transition = match existing {
        Some(c) if c.status == "False" => c.last_transition_time.as_ref().map(|t| t.0),
        _ => None,
    }
    .unwrap_or(now);
    let mut patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition.to_string(),
    }]}});
    if nominated {
        patch["status"]["nominatedNodeName"] = Value::Null;
    }
    Some(patch)
}

/// Applies [`unschedulable_patch`]; returns whether a write was sent.
/// The caller has paced the write (the status lane takes a spare token first).
pub async fn mark_unschedulable(
    client: &kube::Client,
    pod: &Pod,
    reason: NotScheduled,
    message: &str,
) -> crate::error::Result<bool> {
    let Some(patch) = unschedulable_patch(pod, reason, message, jiff::Timestamp::now()) else {
        return Ok(false);
    };
    let (Some(ns), Some(name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) else {
        return Ok(false);
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubpack_kube::test_support::*;

    fn pod(status: Value) -> Pod {
        let mut v = pod_json("hub", "u");
        v["status"] = status;
        serde_json::from_value(v).unwrap()
    }

    const U: NotScheduled = NotScheduled::Unschedulable;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_refusal_only_hubpack_makes_says_scheduler_error_and_replaces_unschedulable() {
        let existing = json!({"conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        let p = unschedulable_patch(
            &pod(existing),
            NotScheduled::SchedulerError,
            "m",
            ts("2026-01-02T00:00:00Z"),
        )
        .expect("same message, other reason: written");
        assert_eq!(p["status"]["conditions"][0]["reason"], "SchedulerError");
    }

    #[test]
    fn a_fresh_pod_gets_the_condition_now() {
        let p = unschedulable_patch(
            &pod(json!({})),
            NotScheduled::Unschedulable,
            "0/3 nodes are available",
            ts("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            p,
            json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes are available",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
        );
    }

    #[test]
    fn same_message_writes_nothing_new_message_keeps_transition_time() {
        let existing = json!({"conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "old", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        assert!(
            unschedulable_patch(&pod(existing.clone()), U, "old", ts("2026-01-02T00:00:00Z"))
                .is_none()
        );
        let p = unschedulable_patch(&pod(existing), U, "new", ts("2026-01-02T00:00:00Z")).unwrap();
        assert_eq!(p["status"]["conditions"][0]["message"], "new");
        assert_eq!(
            p["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn a_nominated_pod_has_its_nomination_cleared() {
        let p = unschedulable_patch(
            &pod(json!({"nominatedNodeName": "n1"})),
            U,
            "m",
            ts("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(p["status"]["nominatedNodeName"], Value::Null);
        assert!(
            p["status"]
                .as_object()
                .unwrap()
                .contains_key("nominatedNodeName")
        );
    }

    #[tokio::test]
    async fn sends_a_strategic_merge_patch_of_the_status() {
        let (client, mut handle) = mock_client();
        let server =
            tokio::spawn(async move { next(&mut handle, 200, pod_json("hub", "u")).await });
        let sent = mark_unschedulable(&client, &pod(json!({})), U, "msg")
            .await
            .unwrap();
        assert!(sent);
        let seen = server.await.unwrap();
        assert_eq!(seen.method, "PATCH");
        assert_eq!(seen.path, "/api/v1/namespaces/hub/pods/u/status");
        assert_eq!(seen.content_type, "application/strategic-merge-patch+json");
        assert_eq!(
            seen.body["status"]["conditions"][0]["reason"],
            "Unschedulable"
        );
    }
}
