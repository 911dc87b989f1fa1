//! The checkpoint ConfigMap ([`crate::checkpoint`] says what is in it): read once at start,
//! before the first decision, so every replica (a new leader included) starts from what the
//! last leader learned; written by the leader every `checkpoint.intervalSeconds` and on
//! shutdown, by server-side apply with the controller's own field manager. A missing
//! ConfigMap is a first start; one of another version or unreadable is reported (log and a
//! warning Event on it) and ignored, then overwritten by the next write.

use super::calendar::Feed;
use super::events::reference;
use super::reconcile::{Context, now_ms, owner_reference};
use crate::checkpoint::{self, CalendarCopy, Checkpoint, DATA_KEY};
use crate::decide::Controller;
use crate::error::Result;
use crate::objects::{self, MANAGER};
use hubpack_core::model::Millis;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::collections::BTreeMap;

/// Read attempts (one per reconcile round) before deciding without the checkpoint.
const READ_ATTEMPTS: u32 = 5;

/// Where the checkpoint stands in this process.
#[derive(Debug, Default)]
pub struct Progress {
    /// This replica's identity, named in what it writes.
    pub identity: String,
    /// Read (restored, absent, or unusable), or given up on: decisions may start.
    pub read: bool,
    failed_reads: u32,
    /// Wall-clock ms of the last write (0: none yet).
    pub written_at: Millis,
    /// The calendars the last write could not fit (logged when the list changes).
    dropped: Vec<String>,
}

impl Progress {
    pub fn new(identity: String) -> Progress {
        Progress {
            identity,
            ..Default::default()
        }
    }

    /// Whether the leader should write now.
    pub fn due(&self, ctx: &Context, now: Millis) -> bool {
        let interval = crate::sources::secs(ctx.config.checkpoint.interval_seconds);
        ctx.config.checkpoint.enabled
            && self.read
            && (self.written_at == 0 || now - self.written_at >= interval)
    }
}

fn api(ctx: &Context) -> Api<ConfigMap> {
    Api::namespaced(ctx.applier.client(), &ctx.namespace)
}

/// Reads the checkpoint and restores `controller` and the calendar copies from it. Sets
/// `progress.read` once there is nothing more to wait for.
pub async fn load(ctx: &Context, controller: &mut Controller, progress: &mut Progress) {
    let cfg = &ctx.config.checkpoint;
    if !cfg.enabled {
        progress.read = true;
        return;
    }
    let name = cfg.config_map_name.as_str();
    let found = match api(ctx).get_opt(name).await {
        Ok(found) => found,
        Err(e) => {
            progress.failed_reads += 1;
            let giving_up = progress.failed_reads >= READ_ATTEMPTS;
            tracing::warn!(error = %e, configmap = name, attempt = progress.failed_reads, giving_up,
                "cannot read the checkpoint");
            progress.read = giving_up;
            return;
        }
    };
    progress.read = true;
    let Some(cm) = found else {
        tracing::info!(
            configmap = name,
            "no checkpoint yet: learning starts afresh"
        );
        return;
    };
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .cloned()
        .unwrap_or_default();
    match checkpoint::decode(&text) {
        Ok(saved) => {
            let pools = controller.restore(&saved.pools);
            let calendars = restore_calendars(ctx, &saved.calendars);
            tracing::info!(
                configmap = name,
                written_at = saved.written_at,
                writer = %saved.writer,
                ?pools,
                ?calendars,
                dropped_calendars = ?saved.dropped_calendars,
                "started from the checkpoint"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, configmap = name, "checkpoint ignored");
            ctx.events
                .publish(
                    &reference("v1", "ConfigMap", Some(&ctx.namespace), name),
                    true,
                    "CheckpointIgnored",
                    e.to_string(),
                )
                .await;
        }
    }
}

/// Gives each configured calendar without a good copy yet (its first fetch has not
/// answered) the saved one. Returns the calendars restored.
fn restore_calendars(ctx: &Context, saved: &BTreeMap<String, CalendarCopy>) -> Vec<String> {
    let Ok(mut feeds) = ctx.feeds.lock() else {
        return Vec::new();
    };
    let mut restored = Vec::new();
    for cal in &ctx.config.calendars {
        let Some(copy) = saved.get(&cal.name) else {
            continue;
        };
        let feed: &mut Feed = feeds.entry(cal.name.clone()).or_default();
        if feed.text.is_none() {
            feed.text = Some(copy.text.clone());
            feed.fetched_at = copy.fetched_at;
            restored.push(cal.name.clone());
        }
    }
    restored
}

/// The checkpoint of `controller` and the calendars' last good copies now.
pub fn snapshot(ctx: &Context, controller: &Controller, identity: &str) -> Checkpoint {
    let calendars = ctx
        .feeds
        .lock()
        .map(|feeds| {
            feeds
                .iter()
                .filter_map(|(name, f)| {
                    Some((
                        name.clone(),
                        CalendarCopy {
                            text: f.text.clone()?,
                            fetched_at: f.fetched_at,
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Checkpoint {
        version: checkpoint::VERSION,
        written_at: now_ms(),
        writer: identity.to_string(),
        pools: controller.checkpoint(),
        calendars,
        dropped_calendars: Vec::new(),
    }
}

/// Writes the checkpoint (the caller leads). A failure is logged and retried at the next
/// interval.
pub async fn write(ctx: &Context, controller: &Controller, progress: &mut Progress) {
    let now = now_ms();
    progress.written_at = now;
    let encoded = match checkpoint::encode(&snapshot(ctx, controller, &progress.identity)) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint not written");
            return;
        }
    };
    if encoded.dropped_calendars != progress.dropped {
        if !encoded.dropped_calendars.is_empty() {
            tracing::warn!(
                dropped = ?encoded.dropped_calendars,
                limit_bytes = checkpoint::MAX_BYTES,
                "calendar copies left out of the checkpoint (too large): a restart while such a feed is unreachable has no copy of it"
            );
        }
        progress.dropped = encoded.dropped_calendars.clone();
    }
    let name = ctx.config.checkpoint.config_map_name.clone();
    let owner = owner_reference(ctx).await;
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(
                objects::owner_labels(&ctx.config, "checkpoint", "", None)
                    .into_iter()
                    .filter(|(k, _)| k != objects::POOL_LABEL)
                    .collect(),
            ),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        data: Some([(DATA_KEY.to_string(), encoded.text)].into()),
        ..Default::default()
    };
    let written: Result<ConfigMap> = api(ctx)
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .map_err(Into::into);
    match written {
        Ok(_) => {
            ctx.metrics.checkpoint_written.set(now / 1000);
            tracing::debug!(configmap = %name, "checkpoint written");
        }
        Err(e) => {
            ctx.metrics
                .errors
                .get_or_create(&super::metrics::KindLabels {
                    kind: e.metric_label().into(),
                })
                .inc();
            tracing::warn!(error = %e, configmap = %name, "checkpoint write failed; retried at the next interval");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::config::Config;
    use hubpack_kube::test_support::{mock_client, next, status_err};

    fn context(client: kube::Client) -> Context {
        let cfg = Config::parse(
            "namespace: hub\n\
             instance: hub\n\
             calendars:\n\
             - {name: course, pool: default, defaultUsers: 10, url: \"https://calendar.example/c.ics\"}\n\
             pools:\n\
             - name: default\n\
             \x20 allNodes: true\n\
             \x20 perUser: {cpu: 500m, memory: 2Gi}\n\
             \x20 freshNode: {allocatable: {cpu: \"4\", memory: 16Gi, pods: \"110\"}}\n",
            "t",
        )
        .unwrap();
        Context::for_tests(client, cfg, vec![])
    }

    fn configmap(text: &str) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "hubpack-placeholder-ctl-state", "namespace": "hub"},
            "data": {DATA_KEY: text}})
    }

    const CAL: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";

    #[tokio::test]
    async fn written_by_server_side_apply_and_read_back_at_start() {
        let (client, mut handle) = mock_client();
        let ctx = context(client);
        ctx.feeds
            .lock()
            .unwrap()
            .entry("course".into())
            .or_default()
            .take(Ok(CAL.into()), 7);
        let controller = Controller::new(&ctx.config);
        let mut progress = Progress::new("ctl-0".into());
        progress.read = true;
        assert!(progress.due(&ctx, 1));
        let server = tokio::spawn(async move {
            let seen = next(&mut handle, 200, serde_json::json!({})).await;
            (seen, handle)
        });
        write(&ctx, &controller, &mut progress).await;
        let (seen, _handle) = server.await.unwrap();
        assert_eq!(
            ctx.metrics.checkpoint_written.get(),
            progress.written_at / 1000
        );
        assert!(!progress.due(&ctx, progress.written_at + 59_000));
        assert!(progress.due(&ctx, progress.written_at + 60_000));
        assert_eq!(seen.method, "PATCH");
        assert_eq!(
            seen.path,
            "/api/v1/namespaces/hub/configmaps/hubpack-placeholder-ctl-state"
        );
        assert!(
            seen.query.contains("fieldManager=hubpack-placeholder-ctl"),
            "{}",
            seen.query
        );
        assert_eq!(seen.content_type, "application/apply-patch+yaml");
        let labels = &seen.body["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/managed-by"],
            "hubpack-placeholder-ctl"
        );
        assert_eq!(labels["app.kubernetes.io/instance"], "hub");
        let text = seen.body["data"][DATA_KEY].as_str().unwrap().to_string();
        let saved = checkpoint::decode(&text).unwrap();
        assert_eq!(saved.writer, "ctl-0");
        assert!(saved.pools.contains_key("default"));
        assert_eq!(saved.calendars["course"].text, CAL);

        // A new process: the calendar's copy is there before its first fetch answers.
        let (client, mut handle2) = mock_client();
        let fresh = context(client);
        let mut controller = Controller::new(&fresh.config);
        let mut progress = Progress::new("ctl-1".into());
        let server = tokio::spawn(async move { next(&mut handle2, 200, configmap(&text)).await });
        load(&fresh, &mut controller, &mut progress).await;
        let seen = server.await.unwrap();
        assert_eq!(seen.method, "GET");
        assert!(progress.read);
        let feeds = fresh.feeds.lock().unwrap();
        assert_eq!(feeds["course"].text.as_deref(), Some(CAL));
        assert_eq!(feeds["course"].fetched_at, Some(7));
    }

    #[tokio::test]
    async fn an_unusable_checkpoint_is_evented_and_ignored_and_a_missing_one_is_a_first_start() {
        let (client, mut handle) = mock_client();
        let ctx = context(client);
        let mut controller = Controller::new(&ctx.config);
        let mut progress = Progress::new("ctl-0".into());
        let newer = r#"{"version":2,"writtenAt":1}"#;
        let server = tokio::spawn(async move {
            next(&mut handle, 200, configmap(newer)).await;
            let event = next(&mut handle, 201, serde_json::json!({})).await;
            (event, handle)
        });
        load(&ctx, &mut controller, &mut progress).await;
        let (event, mut handle) = server.await.unwrap();
        assert!(progress.read, "ignored, not retried");
        assert_eq!(event.body["reason"], "CheckpointIgnored");
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["regarding"]["kind"], "ConfigMap");
        assert!(
            event.body["note"].as_str().unwrap().contains("version 2"),
            "{}",
            event.body
        );
        assert_eq!(controller.lead_of(&ctx.config, "default"), 600_000);
        // Missing: read, nothing restored, no Event.
        let mut progress = Progress::new("ctl-0".into());
        let server = tokio::spawn(async move {
            next(&mut handle, 404, status_err(404, "NotFound")).await;
            handle
        });
        load(&ctx, &mut controller, &mut progress).await;
        let _handle = server.await.unwrap();
        assert!(progress.read);
        assert!(progress.due(&ctx, 1), "the first write is due at once");
    }
}
