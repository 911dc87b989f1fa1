//! Reflectors (watch + cache, with backoff) for what the controller reads: every pod (user
//! pods, placeholders, pre-pullers and whatever else takes room on nodes), nodes, event
//! ConfigMaps and its own Deployments. Each change wakes the reconcile loop. They run on
//! every replica, so a standby's caches are warm when it takes over.

use crate::objects::MANAGER;
use crate::sources::configmap::EVENTS_LABEL;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::{self, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Watched kinds; readiness waits for every one's first list.
pub const WATCHED_KINDS: usize = 4;

#[derive(Clone)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub configmaps: Store<ConfigMap>,
    pub deployments: Store<Deployment>,
}

/// Starts every watcher; `synced` counts kinds whose first list is complete, `wake` is
/// notified on every change.
pub fn spawn_all(
    client: &Client,
    namespace: &str,
    watch_configmaps: bool,
    synced: Arc<AtomicUsize>,
    wake: Arc<Notify>,
) -> (Stores, Vec<JoinHandle<()>>) {
    let (pods, pw) = reflector::store();
    let (nodes, nw) = reflector::store();
    let (configmaps, cw) = reflector::store();
    let (deployments, dw) = reflector::store();
    let mine =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let mut tasks = vec![
        spawn(
            Api::all(client.clone()),
            watcher::Config::default(),
            pw,
            &synced,
            &wake,
        ),
        spawn(
            Api::all(client.clone()),
            watcher::Config::default(),
            nw,
            &synced,
            &wake,
        ),
        spawn(
            Api::namespaced(client.clone(), namespace),
            mine,
            dw,
            &synced,
            &wake,
        ),
    ];
    if watch_configmaps {
        tasks.push(spawn(
            Api::namespaced(client.clone(), namespace),
            watcher::Config::default().labels(EVENTS_LABEL),
            cw,
            &synced,
            &wake,
        ));
    } else {
        synced.fetch_add(1, Ordering::AcqRel);
    }
    (
        Stores {
            pods,
            nodes,
            configmaps,
            deployments,
        },
        tasks,
    )
}

fn spawn<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    synced: &Arc<AtomicUsize>,
    wake: &Arc<Notify>,
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let synced = synced.clone();
    let wake = wake.clone();
    tokio::spawn(async move {
        let stream = watcher(api, config)
            .default_backoff()
            .modify(|o| o.managed_fields_mut().clear())
            .reflect(writer);
        let mut stream = std::pin::pin!(stream);
        let mut first_sync = true;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) if first_sync => {
                    first_sync = false;
                    synced.fetch_add(1, Ordering::AcqRel);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(kind = K::kind(&()).as_ref(), error = %e, "watch error");
                    continue;
                }
            }
            wake.notify_one();
        }
    })
}
