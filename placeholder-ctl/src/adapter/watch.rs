//! Reflectors (hubpack-kube's reflector loop, one per kind) for what the controller reads:
//! every pod (user pods, placeholders, pre-pullers and whatever else takes room on nodes),
//! nodes, event ConfigMaps and its own Deployments. The controller reads the caches only;
//! each change wakes the reconcile loop. They run on every replica, so a standby's caches
//! are warm when it takes over.

use crate::error::Error;
use crate::objects::MANAGER;
use crate::sources::configmap::EVENTS_LABEL;
use hubpack_kube::reflect::{self, Signals, Watch};
use hubpack_kube::supervise::Supervisor;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use std::sync::atomic::Ordering;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Watched kinds; readiness waits for every one's first list.
pub const WATCHED_KINDS: usize = 4;

#[derive(Clone)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub configmaps: Store<ConfigMap>,
    pub deployments: Store<Deployment>,
}

/// Starts every watcher under the supervisor, until `stop`; `signals.synced` counts kinds
/// whose first list is complete, `signals.wake` is notified on every change.
pub fn spawn_all(
    client: &Client,
    namespace: &str,
    watch_configmaps: bool,
    signals: Signals,
    supervisor: &Supervisor<Error>,
    stop: &CancellationToken,
) -> (Stores, Vec<JoinHandle<()>>) {
    let (pods, pw) = reflector::store();
    let (nodes, nw) = reflector::store();
    let (configmaps, cw) = reflector::store();
    let (deployments, dw) = reflector::store();
    let mine =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let mut tasks = vec![
        spawn(
            supervisor,
            "watch pods",
            Watch {
                api: Api::all(client.clone()),
                config: watcher::Config::default(),
                writer: pw,
            },
            &signals,
            stop,
        ),
        spawn(
            supervisor,
            "watch nodes",
            Watch {
                api: Api::all(client.clone()),
                config: watcher::Config::default(),
                writer: nw,
            },
            &signals,
            stop,
        ),
        spawn(
            supervisor,
            "watch deployments",
            Watch {
                api: Api::namespaced(client.clone(), namespace),
                config: mine,
                writer: dw,
            },
            &signals,
            stop,
        ),
    ];
    if watch_configmaps {
        tasks.push(spawn(
            supervisor,
            "watch event configmaps",
            Watch {
                api: Api::namespaced(client.clone(), namespace),
                config: watcher::Config::default().labels(EVENTS_LABEL),
                writer: cw,
            },
            &signals,
            stop,
        ));
    } else {
        signals.synced.fetch_add(1, Ordering::AcqRel);
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

/// One kind's watch under the supervisor; the controller reads its cache only.
fn spawn<K>(
    supervisor: &Supervisor<Error>,
    name: &'static str,
    watch: Watch<K>,
    signals: &Signals,
    stop: &CancellationToken,
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let run = reflect::run(watch, signals.clone(), (), stop.clone());
    supervisor.spawn(name, async move { Ok(run.await?) })
}
