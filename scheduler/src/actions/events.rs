//! events.k8s.io Events, as kube-scheduler writes them: `Scheduled` and `FailedScheduling`
//! on the pod, `Preempted` on each evicted placeholder. A failed Event write is logged, never
//! fatal: events are for people, the condition is the contract.

use super::RateLimiter;
use hubpack_kube::events::{EventRecord, EventRecorder, EventType};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Resource;

pub struct Events {
    /// One Event per distinct message (see [`EventRecorder`]).
    recorder: EventRecorder,
    /// Events have their own write budget (kube-scheduler uses a separate event client),
    /// so a burst of events never delays binds.
    limiter: RateLimiter,
}

/// The pod's reference, UID included (kube's `object_ref` copies `metadata.uid`).
pub fn pod_ref(pod: &Pod) -> ObjectReference {
    pod.object_ref(&())
}

impl Events {
    pub fn new(
        client: kube::Client,
        scheduler_name: &str,
        instance: Option<String>,
        limiter: RateLimiter,
    ) -> Self {
        Events {
            limiter,
            recorder: EventRecorder::new(client, scheduler_name, instance),
        }
    }

    async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        if self.limiter.acquire().await.is_err() {
            // Not the leader any more: the new leader reports what it does.
            return;
        }
        let ev = EventRecord {
            type_,
            reason: reason.to_string(),
            note,
            action: action.to_string(),
        };
        if let Err(e) = self.recorder.publish(&ev, regarding).await {
            tracing::warn!(error = %e, reason, object = ?regarding.name, "could not write event");
        }
    }

    pub async fn scheduled(&self, pod: &ObjectReference, node: &str) {
        let who = format!(
            "{}/{}",
            pod.namespace.as_deref().unwrap_or_default(),
            pod.name.as_deref().unwrap_or_default()
        );
        self.publish(
            pod,
            EventType::Normal,
            "Scheduled",
            "Binding",
            format!("Successfully assigned {who} to {node}"),
        )
        .await;
    }

    pub async fn failed_scheduling(&self, pod: &ObjectReference, message: &str) {
        self.publish(
            pod,
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            message.to_string(),
        )
        .await;
    }

    pub async fn preempted(&self, victim: &ObjectReference, preemptor: &str, node: &str) {
        self.publish(
            victim,
            EventType::Normal,
            "Preempted",
            "Preempting",
            format!("Preempted by pod {preemptor} on node {node}"),
        )
        .await;
    }

    pub async fn kubelet_rejected(&self, pod: &ObjectReference, reason: &str, node: &str) {
        self.publish(
            pod,
            EventType::Warning,
            "RejectedByKubelet",
            "Admission",
            format!("kubelet on {node} rejected the pod after binding: {reason}"),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubpack_kube::test_support::*;

    #[tokio::test]
    async fn failed_scheduling_is_a_warning_event_on_the_pod() {
        let (client, mut handle) = mock_client();
        let server = tokio::spawn(async move {
            let reply = serde_json::json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "e", "namespace": "hub"}, "eventTime": "2026-01-01T00:00:00.000000Z"});
            next(&mut handle, 201, reply).await
        });
        let events = Events::new(
            client,
            "hubpack-scheduler",
            Some("sched-0".into()),
            RateLimiter::new(100.0, 10),
        );
        let pod: Pod = serde_json::from_value(pod_json("hub", "u")).unwrap();
        events
            .failed_scheduling(&pod_ref(&pod), "0/2 nodes are available")
            .await;
        let seen = server.await.unwrap();
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/apis/events.k8s.io/v1/namespaces/hub/events");
        assert_eq!(seen.body["reason"], "FailedScheduling");
        assert_eq!(seen.body["type"], "Warning");
        assert_eq!(seen.body["note"], "0/2 nodes are available");
        assert_eq!(seen.body["regarding"]["name"], "u");
        assert_eq!(seen.body["reportingController"], "hubpack-scheduler");
    }
}
