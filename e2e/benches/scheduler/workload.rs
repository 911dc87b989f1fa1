//! The two phases of a round: a throughput burst (every pod created at once) and a class
//! burst (users arriving evenly over a window onto warm nodes full of per-user placeholders,
//! with cold nodes free). Each phase is bounded in time and says so when it runs out.

use crate::observe::{self, Seen, Shared, ascending};
use crate::setup::{IMAGE, PLACEHOLDER_CLASS, SCHEDULER_NAME, SEATS_PER_NODE, warm_name};
use futures::StreamExt;
use hubpack_e2e::harness;
use hubpack_sim::stats::quantile;
use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const USER_CPU: &str = "500m";
pub const USER_MEMORY: &str = "2Gi";
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

pub fn requests() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(USER_CPU.into())),
            ("memory".to_string(), Quantity(USER_MEMORY.into())),
        ])),
        ..Default::default()
    }
}

/// A user pod for the scheduler under test (priority 0, the user pool's selector and toleration).
pub fn user(name: &str) -> Pod {
    let mut pod = harness::user_pod(name, IMAGE);
    if let Some(spec) = pod.spec.as_mut() {
        spec.scheduler_name = Some(SCHEDULER_NAME.into());
        spec.containers[0].resources = Some(requests());
    }
    pod
}

/// A per-user placeholder (z2jh's labels, priority −10, preemptionPolicy Never), already bound
/// to `node`: both schedulers start from the same placement.
fn placeholder(name: &str, node: &str) -> Pod {
    let mut pod = harness::user_pod(name, PAUSE_IMAGE);
    pod.metadata.labels = Some(BTreeMap::from([(
        "component".to_string(),
        "user-placeholder".to_string(),
    )]));
    if let Some(spec) = pod.spec.as_mut() {
        spec.scheduler_name = Some(SCHEDULER_NAME.into());
        spec.priority_class_name = Some(PLACEHOLDER_CLASS.into());
        spec.node_name = Some(node.into());
        spec.containers[0].resources = Some(requests());
    }
    pod
}

pub struct Throughput {
    pub created: usize,
    pub bound: usize,
    pub timed_out: bool,
    pub create_s: f64,
    pub pods_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub nodes_used: usize,
    pub overcommitted: Vec<String>,
}

/// Creates `pods` users at once (64 requests in flight) and waits until all are bound or
/// `limit` passes.
pub async fn throughput(
    client: &kube::Client,
    tag: &str,
    pods: usize,
    limit: Duration,
) -> Throughput {
    let ns = harness::create_namespace(client, "tput").await.unwrap();
    let seen: Shared = Arc::new(Mutex::new(Seen::default()));
    let watches = observe::watch(client, &ns, seen.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);

    let start = Instant::now();
    let created = create_users(&api, pods).await;
    let create_s = start.elapsed().as_secs_f64();
    let timed_out = wait_bound(&seen, pods, start + limit, tag, "throughput").await;
    for w in watches {
        w.abort();
    }
    let overcommitted = observe::overcommitted_nodes(client).await;
    // The watches are stopped: take what they saw.
    let s = std::mem::take(&mut *observe::lock(&seen));
    let latencies = ascending(bind_latencies(&s, &created));
    let last = s.bound.values().map(|(_, at)| *at).max().unwrap_or(start);
    let result = Throughput {
        created: created.len(),
        bound: s.bound.len(),
        timed_out,
        create_s,
        pods_per_s: s.bound.len() as f64 / (last - start).as_secs_f64().max(1e-3),
        p50_ms: quantile(&latencies, 0.5),
        p99_ms: quantile(&latencies, 0.99),
        nodes_used: s
            .bound
            .values()
            .map(|(n, _)| n)
            .collect::<HashSet<_>>()
            .len(),
        overcommitted,
    };
    clean(client, &ns).await;
    result
}

/// Creates a pod, retrying what an overloaded API server answers now and then (a timeout,
/// 429, 5xx) for up to a minute; a pod already there (an earlier try that did land) counts.
pub async fn create(api: &Api<Pod>, pod: &Pod) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api.create(&PostParams::default(), pod).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!(
                    "bench: creating {:?} failed ({e}); retrying",
                    pod.metadata.name
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("creating {:?}: {e}", pod.metadata.name),
        }
    }
}

/// Creates users `u-0` … `u-{n-1}` at once (64 requests in flight); when each was created.
async fn create_users(api: &Api<Pod>, n: usize) -> HashMap<String, Instant> {
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("u-{i}");
                let at = Instant::now();
                create(&api, &user(&name)).await;
                (name, at)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

/// Creation→bound of every pod seen bound, in milliseconds.
fn bind_latencies(s: &Seen, created: &HashMap<String, Instant>) -> Vec<f64> {
    s.bound
        .iter()
        .filter_map(|(n, (_, at))| Some(ms(*at - *created.get(n)?)))
        .collect()
}

pub struct Burst {
    pub users: usize,
    pub bound: usize,
    pub timed_out: bool,
    pub bind_p50_ms: f64,
    pub bind_p99_ms: f64,
    /// Users seen Ready (their image pulled) and creation→Ready quantiles.
    pub ready: usize,
    pub ready_timed_out: bool,
    pub ready_p50_ms: f64,
    pub ready_p99_ms: f64,
    pub preemptors: usize,
    pub preempt_bind_p50_ms: f64,
    pub preempt_bind_p99_ms: f64,
    pub on_cold: usize,
    pub hol_users: usize,
    pub overcommitted: Vec<String>,
}

/// `users` arrive evenly over `window` onto a cluster whose `warm` warm nodes each hold
/// `SEATS_PER_NODE - 1` placeholders (one seat free); cold nodes are empty.
pub async fn burst(
    client: &kube::Client,
    tag: &str,
    warm: usize,
    users: usize,
    window: Duration,
    limit: Duration,
) -> Burst {
    let ns = harness::create_namespace(client, "burst").await.unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let per_node = SEATS_PER_NODE - 1;
    let placeholders: Vec<Pod> = (0..warm)
        .flat_map(|n| {
            (0..per_node).map(move |i| placeholder(&format!("ph-{n}-{i}"), &warm_name(n)))
        })
        .collect();
    futures::stream::iter(placeholders)
        .map(|p| {
            let api = api.clone();
            async move { create(&api, &p).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let seen: Shared = Arc::new(Mutex::new(Seen::default()));
    let watches = observe::watch(client, &ns, seen.clone());
    // Both the scheduler's caches and the bench's watches see the placeholders first.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let start = Instant::now();
    let gap = window.div_f64(users.max(1) as f64);
    let arrivals: HashMap<String, Instant> = futures::stream::iter(0..users)
        .map(|i| {
            let api = api.clone();
            async move {
                tokio::time::sleep_until((start + gap * i as u32).into()).await;
                let name = format!("u-{i}");
                let at = Instant::now();
                create(&api, &user(&name)).await;
                (name, at)
            }
        })
        .buffer_unordered(users.max(1))
        .collect()
        .await;
    let timed_out = wait_bound(&seen, users, start + window + limit, tag, "burst").await;
    // Users wait for Ready, not for the bind: on a cold node, for the pull too.
    let ready_timed_out = wait_ready(
        &seen,
        users,
        Instant::now() + crate::setup::pull_time() + limit,
        tag,
    )
    .await;
    // Let late placeholder deletions reach the watch before reading it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for w in watches {
        w.abort();
    }
    let overcommitted = observe::overcommitted_nodes(client).await;
    let s = std::mem::take(&mut *observe::lock(&seen));
    let mut result = burst_result(&s, &arrivals, overcommitted, timed_out);
    result.ready_timed_out = ready_timed_out;
    clean(client, &ns).await;
    result
}

fn burst_result(
    s: &Seen,
    arrivals: &HashMap<String, Instant>,
    overcommitted: Vec<String>,
    timed_out: bool,
) -> Burst {
    let bind: Vec<f64> = ascending(
        s.bound
            .iter()
            .filter_map(|(n, (_, at))| Some(ms(*at - *arrivals.get(n)?)))
            .collect(),
    );
    // A preemptor: nominated to a node (both schedulers nominate only when preempting). Its
    // eviction: the first placeholder on that node seen going, not already matched to an
    // earlier preemptor, from a second before the nomination was seen on (kube-scheduler
    // deletes its victims before it writes the nomination; hubpack after).
    let mut preemptors: Vec<(&String, &(String, Instant))> = s.nominated.iter().collect();
    preemptors.sort_by_key(|(_, (_, at))| *at);
    let mut gone: Vec<(&String, Instant)> = s
        .placeholder_gone
        .values()
        .map(|(n, at)| (n, *at))
        .collect();
    gone.sort_by_key(|(_, at)| *at);
    let mut claimed = vec![false; gone.len()];
    let preempt: Vec<f64> = preemptors
        .into_iter()
        .filter_map(|(pod, (node, nominated_at))| {
            let (_, bound_at) = s.bound.get(pod)?;
            let victim = gone.iter().enumerate().position(|(i, (n, at))| {
                !claimed[i] && *n == node && *at + Duration::from_secs(1) >= *nominated_at
            });
            let evicted_at = match victim {
                Some(i) => {
                    claimed[i] = true;
                    gone[i].1
                }
                None => *nominated_at,
            };
            Some(ms(bound_at.saturating_duration_since(evicted_at)))
        })
        .collect();
    let preempt = ascending(preempt);
    let ready: Vec<f64> = ascending(
        s.ready
            .iter()
            .filter_map(|(n, at)| Some(ms(at.saturating_duration_since(*arrivals.get(n)?))))
            .collect(),
    );
    let warm_at = |node: &str, t: Instant| s.warm_since.get(node).is_some_and(|w| *w <= t);
    let on_cold: Vec<&String> = s
        .bound
        .iter()
        .filter(|(_, (node, at))| !warm_at(node, *at))
        .map(|(pod, _)| pod)
        .collect();
    let hol_users = on_cold
        .iter()
        .filter(|pod| {
            arrivals
                .get(pod.as_str())
                .is_some_and(|t| warm_seat_existed(s, arrivals, *t))
        })
        .count();
    Burst {
        users: arrivals.len(),
        bound: s.bound.len(),
        timed_out,
        bind_p50_ms: quantile(&bind, 0.5),
        bind_p99_ms: quantile(&bind, 0.99),
        ready: ready.len(),
        ready_timed_out: false,
        ready_p50_ms: quantile(&ready, 0.5),
        ready_p99_ms: quantile(&ready, 0.99),
        preemptors: preempt.len(),
        preempt_bind_p50_ms: quantile(&preempt, 0.5),
        preempt_bind_p99_ms: quantile(&preempt, 0.99),
        on_cold: on_cold.len(),
        hol_users,
        overcommitted,
    }
}

/// Whether at `t` some warm node had a seat not taken by a user: free or held by a
/// placeholder. Users take seats once seen bound or nominated; users that arrived before `t`
/// and were not placed yet are counted as taking warm seats too (the conservative reading).
fn warm_seat_existed(s: &Seen, arrivals: &HashMap<String, Instant>, t: Instant) -> bool {
    let warm: HashSet<&String> = s
        .warm_since
        .iter()
        .filter(|(_, w)| **w <= t)
        .map(|(n, _)| n)
        .collect();
    let seats = warm.len() * SEATS_PER_NODE;
    let placed_at = |pod: &String| -> Option<(String, Instant)> {
        let b = s.bound.get(pod).cloned();
        let n = s.nominated.get(pod).cloned();
        match (b, n) {
            (Some(b), Some(n)) => Some(if n.1 <= b.1 { n } else { b }),
            (b, n) => b.or(n),
        }
    };
    let mut taken = 0;
    for (pod, arrived) in arrivals {
        if *arrived >= t {
            continue;
        }
        match placed_at(pod) {
            Some((node, at)) if at <= t => taken += usize::from(warm.contains(&node)),
            _ => taken += 1, // waiting: may take a warm seat
        }
    }
    taken < seats
}

/// Waits until `n` pods are seen Ready or `deadline`; true when it timed out.
async fn wait_ready(seen: &Shared, n: usize, deadline: Instant, tag: &str) -> bool {
    loop {
        let ready = observe::lock(seen).ready.len();
        if ready >= n {
            return false;
        }
        if Instant::now() >= deadline {
            eprintln!("[{tag}] burst: TIMED OUT with {ready} of {n} users Ready");
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub struct Backlog {
    pub pending: usize,
    pub parked: f64,
    pub burst: usize,
    pub idle_p99_ms: f64,
    pub backlog_p99_ms: f64,
    pub idle_timed_out: bool,
    pub backlog_timed_out: bool,
}

/// A user that fits no node (more cpu than any node has): Unschedulable for good.
fn unfittable(name: &str) -> Pod {
    let mut pod = user(name);
    if let Some(c) = pod.spec.as_mut().map(|s| &mut s.containers[0]) {
        c.resources = Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("64".into())),
                ("memory".to_string(), Quantity("1Gi".into())),
            ])),
            ..Default::default()
        });
    }
    pod
}

/// `burst` schedulable users created at once; their creation→bound p99.
async fn one_burst(
    client: &kube::Client,
    tag: &str,
    prefix: &str,
    burst: usize,
    limit: Duration,
) -> (f64, bool) {
    let ns = harness::create_namespace(client, prefix).await.unwrap();
    let seen: Shared = Arc::new(Mutex::new(Seen::default()));
    let watches = observe::watch(client, &ns, seen.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let start = Instant::now();
    let created = create_users(&api, burst).await;
    let timed_out = wait_bound(&seen, burst, start + limit, tag, prefix).await;
    for w in watches {
        w.abort();
    }
    let s = std::mem::take(&mut *observe::lock(&seen));
    let latencies = ascending(bind_latencies(&s, &created));
    clean(client, &ns).await;
    (quantile(&latencies, 0.99), timed_out)
}

/// The same burst of schedulable users on an idle scheduler, then with
/// `pending` unschedulable pods parked in its queue (and their status writes queued): the
/// burst's creation→bound p99 must stay within 2× of the idle one.
pub async fn backlog(
    client: &kube::Client,
    tag: &str,
    metrics_port: u16,
    pending: usize,
    burst: usize,
    limit: Duration,
) -> Backlog {
    let (idle_p99_ms, idle_timed_out) = one_burst(client, tag, "idle", burst, limit).await;
    let ns = harness::create_namespace(client, "backlog").await.unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let t0 = Instant::now();
    futures::stream::iter(0..pending)
        .map(|i| {
            let api = api.clone();
            async move { create(&api, &unfittable(&format!("stuck-{i}"))).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    // Every one of them tried and parked.
    let sample = "hubpack_scheduler_queue_depth{queue=\"unschedulable\"}";
    let parked = hubpack_e2e::wait::until("the backlog parked", limit, || async {
        let n = crate::setup::gauge(&crate::setup::metrics_text(metrics_port).await, sample);
        (n >= pending as f64).then_some(n)
    })
    .await
    .unwrap_or(f64::NAN);
    eprintln!(
        "[{tag}] backlog: {pending} unschedulable pods created and parked ({parked}) in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    let (backlog_p99_ms, backlog_timed_out) =
        one_burst(client, tag, "with-backlog", burst, limit).await;
    clean(client, &ns).await;
    Backlog {
        pending,
        parked,
        burst,
        idle_p99_ms,
        backlog_p99_ms,
        idle_timed_out,
        backlog_timed_out,
    }
}

/// Waits until `n` pods are seen bound or `deadline`; true when it timed out.
pub async fn wait_bound(
    seen: &Shared,
    n: usize,
    deadline: Instant,
    tag: &str,
    phase: &str,
) -> bool {
    loop {
        let bound = observe::lock(seen).bound.len();
        if bound >= n {
            return false;
        }
        if Instant::now() >= deadline {
            eprintln!("[{tag}] {phase}: TIMED OUT with {bound} of {n} pods bound");
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes every pod of the namespace at once (grace 0) and waits until they are gone.
pub async fn clean(client: &kube::Client, ns: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let _ = api
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await;
    let _ = hubpack_e2e::wait::until("bench pods deleted", Duration::from_secs(300), || {
        let api = api.clone();
        async move {
            let left = api.list(&ListParams::default().limit(1)).await.ok()?;
            left.items.is_empty().then_some(())
        }
    })
    .await;
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
