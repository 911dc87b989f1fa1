//! The overflow round: a full user pool, then a class larger than its free seats created over
//! a window while new nodes turn Ready one by one. Users who waited longest should be
//! bound first: the round counts pairs of users bound in the opposite order of their creation
//! ([`hubpack_e2e::ordering::order_inversions`]) and reports creation→bound.

use crate::observe::{self, Seen, Shared, ascending};
use crate::setup::{NODE_CPU, NODE_MEMORY, SEATS_PER_NODE};
use crate::workload::{self, ms, user};
use futures::StreamExt;
use hubpack_e2e::harness;
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_e2e::ordering::{Served, order_inversions};
use hubpack_e2e::wait;
use hubpack_sim::stats::quantile;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The label that keeps the round's users on the round's own pool.
const POOL_LABEL: &str = "e2e.hubpack.dev/bench-pool";
const POOL: &str = "overflow";
/// What a kubelet registers its Node with, lifted by the node lifecycle controller once the
/// node is Ready.
const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// The round's shape (environment knobs `BENCH_OVERFLOW_*`).
pub struct OverflowKnobs {
    /// Users of the class (`BENCH_OVERFLOW_USERS`; 0 skips the round).
    pub users: usize,
    /// Nodes of the pool, full before the class comes (`BENCH_OVERFLOW_FULL_NODES`).
    pub full_nodes: usize,
    /// The class arrives evenly over this window (`BENCH_OVERFLOW_WINDOW_S`).
    pub window: Duration,
    /// The first new node turns Ready this long after the class starts arriving
    /// (`BENCH_OVERFLOW_FIRST_READY_S`; longer than the scheduler's periodic retry of parked
    /// pods, so the first users have been retried by it)...
    pub first_ready: Duration,
    /// ... and the others this far apart (`BENCH_OVERFLOW_NODE_GAP_S`), while users are still
    /// arriving: users who failed on an earlier new node and users who just arrived wait for
    /// the next one together.
    pub node_gap: Duration,
    /// Binds closer than this count as simultaneous (`BENCH_OVERFLOW_SIMULTANEOUS_MS`).
    pub simultaneous: Duration,
}

pub struct Overflow {
    pub users: usize,
    pub bound: usize,
    pub timed_out: bool,
    pub bind_p50_ms: f64,
    pub bind_p99_ms: f64,
    pub inversions: usize,
    /// Inversions counting every bind order, however close (concurrent binds included).
    pub strict_inversions: usize,
    pub overcommitted: Vec<String>,
}

fn template() -> NodeTemplate {
    let mut t = NodeTemplate::new(Pool::User)
        .with_boot_delay(Duration::ZERO)
        .with_resources(NODE_CPU, NODE_MEMORY, 110);
    t.extra_labels.insert(POOL_LABEL.into(), POOL.into());
    t
}

/// A new node as a kubelet registers it: NotReady, with the not-ready taint, Ready after
/// `boot`.
fn booting_node(name: &str, boot: Duration) -> Node {
    let mut node = template().with_boot_delay(boot).node(name);
    node.spec
        .get_or_insert_default()
        .taints
        .get_or_insert_default()
        .push(Taint {
            key: NOT_READY_TAINT.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
    node
}

/// A user of the round: only the round's pool fits it.
fn pool_user(name: &str) -> Pod {
    let mut pod = user(name);
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_selector
            .get_or_insert_default()
            .insert(POOL_LABEL.into(), POOL.into());
    }
    pod
}

/// A user already in the pool (bound by the bench): both schedulers start from the same fill.
fn seated_user(name: &str, node: &str) -> Pod {
    let mut pod = pool_user(name);
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.into());
    }
    pod
}

pub async fn overflow(
    client: &kube::Client,
    tag: &str,
    k: &OverflowKnobs,
    limit: Duration,
) -> Overflow {
    let nodes: Api<Node> = Api::all(client.clone());
    let full: Vec<String> = (0..k.full_nodes)
        .map(|i| format!("overflow-full-{i}"))
        .collect();
    for name in &full {
        nodes
            .create(&PostParams::default(), &template().node(name))
            .await
            .unwrap();
    }
    wait::until("the full pool Ready", Duration::from_secs(120), || {
        let nodes = nodes.clone();
        async move {
            let list = nodes
                .list(&ListParams::default().labels(&format!("{POOL_LABEL}={POOL}")))
                .await
                .ok()?;
            let ready = list
                .items
                .iter()
                .filter(|n| wait::node_schedulable(n))
                .count();
            (ready >= k.full_nodes).then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let ns = harness::create_namespace(client, "overflow").await.unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let seated: Vec<Pod> = full
        .iter()
        .flat_map(|node| {
            (0..SEATS_PER_NODE).map(move |i| seated_user(&format!("seated-{node}-{i}"), node))
        })
        .collect();
    futures::stream::iter(seated)
        .map(|p| {
            let api = api.clone();
            async move { workload::create(&api, &p).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let seen: Shared = Arc::new(Mutex::new(Seen::default()));
    let watches = observe::watch(client, &ns, seen.clone());
    // The scheduler's caches and the bench's watches see the full pool first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seated_n = observe::lock(&seen).bound.len();

    // The new nodes register now and turn Ready one by one from `first_ready` on.
    let new_nodes = k.users.div_ceil(SEATS_PER_NODE);
    let start = Instant::now();
    for i in 0..new_nodes {
        let boot = k.first_ready + k.node_gap * i as u32;
        nodes
            .create(
                &PostParams::default(),
                &booting_node(&format!("overflow-new-{i}"), boot),
            )
            .await
            .unwrap();
    }
    let gap = k.window.div_f64(k.users.max(1) as f64);
    let created: HashMap<String, Instant> = futures::stream::iter(0..k.users)
        .map(|i| {
            let api = api.clone();
            async move {
                tokio::time::sleep_until((start + gap * i as u32).into()).await;
                let name = format!("class-{i}");
                let at = Instant::now();
                workload::create(&api, &pool_user(&name)).await;
                (name, at)
            }
        })
        .buffer_unordered(k.users.max(1))
        .collect()
        .await;
    let deadline =
        start + k.window.max(k.first_ready) + k.node_gap * (new_nodes as u32 + 1) + limit;
    let timed_out =
        workload::wait_bound(&seen, seated_n + k.users, deadline, tag, "overflow").await;
    for w in watches {
        w.abort();
    }
    let overcommitted = observe::overcommitted_nodes(client).await;
    let s = std::mem::take(&mut *observe::lock(&seen));
    let served: Vec<Served> = created
        .iter()
        .filter_map(|(name, at)| {
            let (_, bound) = s.bound.get(name)?;
            Some(Served {
                priority: 0,
                created: *at,
                bound: *bound,
            })
        })
        .collect();
    let bind = ascending(
        served
            .iter()
            .map(|u| ms(u.bound.saturating_duration_since(u.created)))
            .collect(),
    );
    let result = Overflow {
        users: k.users,
        bound: served.len(),
        timed_out,
        bind_p50_ms: quantile(&bind, 0.5),
        bind_p99_ms: quantile(&bind, 0.99),
        inversions: order_inversions(&served, k.simultaneous),
        strict_inversions: order_inversions(&served, Duration::ZERO),
        overcommitted,
    };
    workload::clean(client, &ns).await;
    // Later phases on this cluster see only the bench's own nodes.
    let _ = nodes
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("{POOL_LABEL}={POOL}")),
        )
        .await;
    result
}
