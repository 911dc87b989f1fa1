//! events.k8s.io Events: the target changing (and why) on the placeholder Deployment, bad
//! input on the object it came from (warning). One Event per distinct message (hubpack-kube's
//! recorder keys series on the note too), so a new problem is never folded into an older
//! one's count. A failed Event write is logged, never fatal.

use hubpack_kube::events::{EventRecord, EventRecorder, EventType};
use k8s_openapi::api::core::v1::ObjectReference;

pub struct Events {
    recorder: EventRecorder,
}

pub fn reference(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        namespace: namespace.map(String::from),
        name: Some(name.into()),
        ..Default::default()
    }
}

impl Events {
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        Events {
            recorder: EventRecorder::new(client, crate::objects::MANAGER, instance),
        }
    }

    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        // hubpack_kube's recorder keeps the note within the API server's limit.
        let ev = EventRecord {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note,
            action: "Reconcile".to_string(),
        };
        if let Err(e) = self.recorder.publish(&ev, regarding).await {
            tracing::warn!(error = %e, reason, object = ?regarding.name, "could not write event");
        }
    }
}
