//! What the tests read off a pod as the API server lists it: its node, when it was created,
//! and when it turned Ready (wall-clock milliseconds, to compare with other timestamps).

use k8s_openapi::api::core::v1::Pod;

/// The node the pod is bound to.
pub fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone())
}

/// The pod's creation time (0 when the API server has not set it).
pub fn created_at(pod: &Pod) -> i64 {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_millisecond())
        .unwrap_or(0)
}

/// When the pod's `Ready` condition last turned True.
pub fn ready_at(pod: &Pod) -> Option<i64> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0.as_millisecond())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_bound_ready_pod_and_of_a_bare_one() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "creationTimestamp": "2026-12-06T10:00:00Z"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-06T10:00:01Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-06T10:00:05Z"}
            ]}
        }))
        .unwrap();
        assert_eq!(node_of(&pod).as_deref(), Some("n1"));
        assert_eq!(ready_at(&pod).unwrap() - created_at(&pod), 5_000);
        let bare = Pod::default();
        assert_eq!(
            (node_of(&bare), created_at(&bare), ready_at(&bare)),
            (None, 0, None)
        );
    }
}
