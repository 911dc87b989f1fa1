//! An events.k8s.io/v1 recorder that keeps one Event per distinct message. kube-rs's
//! `Recorder` folds repeats into a series by a key without the note (kube-runtime
//! `events.rs` `EventKey`), so a second FailedScheduling with another message only bumps
//! the first one's count and the new message is never shown (KubeSpawner's progress page
//! and `kubectl describe` keep the first). Here the note is part of the key, as in
//! client-go's `EventCorrelator` (tools/record/events_cache.go `getEventKey` includes the
//! message): a repeat of the same message becomes a series on its Event, a new message a
//! new Event. The regarding reference carries the object's UID, so `kubectl describe`
//! lists the Events under it.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a sent Event is remembered for a series (kube-runtime's and client-go's 6 min).
const SERIES_TTL_MS: i64 = 6 * 60 * 1000;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One Event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub type_: EventType,
    pub reason: String,
    pub action: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    namespace: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    uid: Option<String>,
    record_type: EventType,
    reason: String,
    action: String,
    note: String,
}

#[derive(Debug, Clone)]
struct Sent {
    name: String,
    count: i32,
    last: Timestamp,
}

/// Writes Events as `controller` (`instance`: the replica).
pub struct EventRecorder {
    client: kube::Client,
    controller: String,
    instance: String,
    sent: Mutex<HashMap<SeriesKey, Sent>>,
}

impl EventRecorder {
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        EventRecorder {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the Event, or, for a repeat of the same message on the same object within
    /// the TTL, counts it in the existing Event's series.
    pub async fn publish(
        &self,
        record: &EventRecord,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let cut = EventRecord {
            note: within_note_limit(&record.note),
            ..record.clone()
        };
        let record = &cut;
        let now = Timestamp::now();
        let key = SeriesKey {
            namespace: regarding.namespace.clone(),
            kind: regarding.kind.clone(),
            name: regarding.name.clone(),
            uid: regarding.uid.clone(),
            record_type: record.type_,
            reason: record.reason.clone(),
            action: record.action.clone(),
            note: record.note.clone(),
        };
        let repeat = {
            let mut sent = self.lock();
            sent.retain(|_, s| now.as_millisecond() - s.last.as_millisecond() < SERIES_TTL_MS);
            sent.get(&key).cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let sent = match repeat {
            Some(s) => {
                let count = s.count + 1;
                let patch = serde_json::json!({"series": EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                }});
                events
                    .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                Sent {
                    name: s.name,
                    count,
                    last: now,
                }
            }
            None => {
                let event = self.new_event(record, regarding, now);
                let created = events.create(&PostParams::default(), &event).await?;
                Sent {
                    name: created
                        .metadata
                        .name
                        .or(event.metadata.name)
                        .unwrap_or_default(),
                    count: 1,
                    last: now,
                }
            }
        };
        self.lock().insert(key, sent);
        Ok(())
    }

    fn new_event(
        &self,
        record: &EventRecord,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> K8sEvent {
        K8sEvent {
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            action: Some(record.action.clone()),
            reason: Some(record.reason.clone()),
            note: Some(record.note.clone()),
            type_: Some(record.type_.as_str().to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SeriesKey, Sent>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the cache is a hint.
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The API server refuses an Event whose note exceeds 1 kB: a longer note is cut at a
/// character boundary to at most [`NOTE_LIMIT`] bytes, ending in "...".
pub fn within_note_limit(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    let mut cut = NOTE_LIMIT - 3;
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &note[..cut])
}

/// The longest note written (the API server's limit is 1024 bytes).
pub const NOTE_LIMIT: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use serde_json::json;

    #[test]
    fn a_long_note_is_cut_at_a_character_boundary_within_the_limit() {
        assert_eq!(within_note_limit("abc"), "abc");
        let long = "é".repeat(NOTE_LIMIT);
        let cut = within_note_limit(&long);
        assert!(
            cut.len() <= NOTE_LIMIT && cut.ends_with("..."),
            "{}",
            cut.len()
        );
        assert!(cut.trim_end_matches("...").chars().all(|c| c == 'é'));
        let exact = "a".repeat(NOTE_LIMIT);
        assert_eq!(within_note_limit(&exact), exact);
    }

    fn reply() -> serde_json::Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
               "metadata": {"name": "u.1", "namespace": "hub"},
               "eventTime": "2026-01-01T00:00:00.000000Z"})
    }

    fn record(note: &str) -> EventRecord {
        EventRecord {
            type_: EventType::Warning,
            reason: "FailedScheduling".into(),
            action: "Scheduling".into(),
            note: note.into(),
        }
    }

    #[tokio::test]
    async fn a_new_message_is_a_new_event_and_a_repeat_joins_its_series() {
        let (client, mut handle) = mock_client();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let status = if seen.len() == 2 { 200 } else { 201 };
                seen.push(next(&mut handle, status, reply()).await);
            }
            seen
        });
        let rec = EventRecorder::new(client, "hubpack-scheduler", Some("s-0".into()));
        let pod = ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("hub".into()),
            name: Some("u".into()),
            uid: Some("uid-u".into()),
            ..Default::default()
        };
        rec.publish(&record("0/2 nodes are available"), &pod)
            .await
            .unwrap();
        rec.publish(&record("0/3 nodes are available"), &pod)
            .await
            .unwrap();
        rec.publish(&record("0/2 nodes are available"), &pod)
            .await
            .unwrap();
        let seen = server.await.unwrap();
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].body["note"], "0/2 nodes are available");
        assert_eq!(seen[0].body["regarding"]["uid"], "uid-u");
        assert_eq!(seen[0].body["reportingInstance"], "s-0");
        assert_eq!(seen[1].method, "POST", "another message: its own Event");
        assert_eq!(seen[1].body["note"], "0/3 nodes are available");
        assert_eq!(seen[2].method, "PATCH", "the same message: a series");
        assert_eq!(
            seen[2].path,
            "/apis/events.k8s.io/v1/namespaces/hub/events/u.1"
        );
        assert_eq!(seen[2].body["series"]["count"], 2);
    }
}
