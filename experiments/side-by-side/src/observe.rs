//! What the bench sees of a run through its own watches, stamped with the time it saw it
//! (seconds since the run's t0): every node's life (created, schedulable, warm, deleted),
//! every pod's node and requests, and per user: arrival, pod creation, bound, Ready, and
//! placement head-of-line blocking as the simulator defines it (bound to a cold node while
//! a warm seat, free or held by a placeholder, existed at their arrival and at bind time).

use crate::metrics::{Life, Request};
use crate::stacks::USER_LABEL;
use futures::TryStreamExt;
use hubpack_kube::convert::quantity::{parse_milli, parse_units};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::watcher;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinHandle;

#[derive(Clone, Debug, Default)]
pub struct NodeSeen {
    pub created_s: f64,
    pub schedulable_s: Option<f64>,
    pub warm_s: Option<f64>,
    pub deleted_s: Option<f64>,
    pub allocatable: Request,
    pub user_pool: bool,
}

#[derive(Clone, Debug, Default)]
struct PodSeen {
    node: Option<String>,
    requests: Request,
    placeholder: bool,
    user: bool,
    gone: bool,
}

#[derive(Clone, Debug, Default)]
pub struct UserSeen {
    pub arrival_s: f64,
    pub attempts: u32,
    /// The current attempt's pod creation.
    pub created_s: Option<f64>,
    /// The current attempt's pod first seen PodScheduled=False/Unschedulable (what the
    /// autoscaler reacts to).
    pub unschedulable_s: Option<f64>,
    pub bound_s: Option<f64>,
    pub ready_s: Option<f64>,
    pub node: Option<String>,
    pub cold_node: bool,
    pub warm_seat_at_arrival: bool,
    pub placement_hol: bool,
    pub gave_up: bool,
}

#[derive(Default)]
pub struct Seen {
    pub nodes: HashMap<String, NodeSeen>,
    /// Karpenter's NodeClaims by name: when the bench first saw each (the machine's launch;
    /// its Node registers later).
    pub node_claims: HashMap<String, f64>,
    pods: HashMap<String, PodSeen>,
    pub users: Vec<UserSeen>,
    /// Users arrived and not yet bound.
    unbound: usize,
    /// (t, user-pool nodes, of them schedulable, users bound, placeholders bound)
    pub samples: Vec<(f64, usize, usize, usize, usize)>,
}

pub struct Observer {
    pub t0: Instant,
    pub image: String,
    pub user_request: Request,
    pub seen: Mutex<Seen>,
}

pub type Shared = Arc<Observer>;

impl Observer {
    pub fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A user arrives at the hub (before any spawn limit).
    pub fn arrive(&self, user: usize) {
        let now = self.now_s();
        let mut s = self.lock();
        let seats = s.warm_seats(self.user_request);
        let unbound = s.unbound;
        let u = &mut s.users[user];
        u.arrival_s = now;
        u.warm_seat_at_arrival = seats > unbound as i64;
        s.unbound += 1;
    }

    pub fn created(&self, user: usize, attempt: u32) {
        let now = self.now_s();
        let mut s = self.lock();
        // A retry after a failed spawn: the new pod is placed afresh.
        if s.users[user].bound_s.is_some() && s.users[user].ready_s.is_none() {
            s.unbound += 1;
            let u = &mut s.users[user];
            (u.bound_s, u.node, u.cold_node) = (None, None, false);
        }
        let u = &mut s.users[user];
        u.attempts = attempt;
        u.created_s = Some(now);
        u.unschedulable_s = None;
    }

    pub fn gave_up(&self, user: usize) {
        let mut s = self.lock();
        if s.users[user].bound_s.is_none() {
            s.unbound = s.unbound.saturating_sub(1);
        }
        s.users[user].gave_up = true;
    }

    fn on_pod(&self, p: &Pod, deleted: bool) {
        let now = self.now_s();
        let Some(name) = p.metadata.name.clone() else {
            return;
        };
        let labels = p.metadata.labels.clone().unwrap_or_default();
        // z2jh's label, and hubpack's (the chart's and placeholder-ctl's).
        let placeholder = ["component", "app.kubernetes.io/component"]
            .iter()
            .any(|k| labels.get(*k).map(String::as_str) == Some("user-placeholder"));
        let user: Option<usize> = labels.get(USER_LABEL).and_then(|v| v.parse().ok());
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let gone = deleted
            || p.metadata.deletion_timestamp.is_some()
            || matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
        let mut s = self.lock();
        let before = s.pods.get(&name).and_then(|x| x.node.clone());
        s.pods.insert(
            name.clone(),
            PodSeen {
                node: node.clone(),
                requests: requests(p),
                placeholder,
                user: user.is_some(),
                gone,
            },
        );
        let Some(u) = user.filter(|u| *u < s.users.len()) else {
            return;
        };
        // Only the user's current attempt counts.
        let attempt: Option<u32> = name.rsplit('-').next().and_then(|a| a.parse().ok());
        if attempt != Some(s.users[u].attempts) || gone {
            return;
        }
        if node.is_none()
            && s.users[u].unschedulable_s.is_none()
            && hubpack_e2e::wait::pod_unschedulable(p)
        {
            s.users[u].unschedulable_s = Some(now);
        }
        if let (None, Some(node)) = (before, node.clone())
            && s.users[u].bound_s.is_none()
        {
            let cold = !s.nodes.get(&node).is_some_and(|n| is_warm(n, now));
            let seat_now = s.warm_seat_for(self.user_request);
            s.unbound = s.unbound.saturating_sub(1);
            let user = &mut s.users[u];
            user.bound_s = Some(now);
            user.node = Some(node);
            user.cold_node = cold;
            user.placement_hol = cold && user.warm_seat_at_arrival && seat_now;
        }
        if hubpack_e2e::wait::pod_ready(p) && s.users[u].ready_s.is_none() {
            s.users[u].ready_s = Some(now);
        }
    }

    fn on_node(&self, n: &Node, deleted: bool) {
        let now = self.now_s();
        let Some(name) = n.metadata.name.clone() else {
            return;
        };
        let user_pool = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(hubpack_e2e::nodes::NODE_PURPOSE_LABEL))
            .is_some_and(|v| v == "user");
        let has_image = n
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .is_some_and(|imgs| {
                imgs.iter().any(|i| {
                    i.names.as_ref().is_some_and(|ns| {
                        ns.iter().any(|x| {
                            x == &self.image || x.strip_prefix("docker.io/") == Some(&self.image)
                        })
                    })
                })
            });
        let alloc = n
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(|a| Request {
                cpu_m: a
                    .get("cpu")
                    .and_then(|q| parse_milli(&q.0).ok())
                    .unwrap_or(0),
                mem: a
                    .get("memory")
                    .and_then(|q| parse_units(&q.0).ok())
                    .unwrap_or(0),
                pods: a
                    .get("pods")
                    .and_then(|q| parse_units(&q.0).ok())
                    .unwrap_or(0),
            })
            .unwrap_or_default();
        let schedulable = hubpack_e2e::wait::node_schedulable(n);
        let mut s = self.lock();
        // A node Karpenter launched lives from its NodeClaim (the machine), not from its
        // registration.
        let created_s = claim_of(&name, &s.node_claims).unwrap_or(now);
        let e = s.nodes.entry(name).or_insert_with(|| NodeSeen {
            created_s,
            ..Default::default()
        });
        e.user_pool = user_pool;
        e.allocatable = alloc;
        if schedulable && e.schedulable_s.is_none() {
            e.schedulable_s = Some(now);
        }
        if has_image && e.warm_s.is_none() {
            e.warm_s = Some(now);
        }
        if deleted && e.deleted_s.is_none() {
            e.deleted_s = Some(now);
        }
    }

    /// A Karpenter NodeClaim seen (first sight is its launch).
    pub fn on_node_claim(&self, name: &str) {
        let now = self.now_s();
        self.lock()
            .node_claims
            .entry(name.to_string())
            .or_insert(now);
    }

    /// Per-user and per-node rows (scenario seconds: compressed × `f`), tab-separated, for
    /// reading a run's timeline next to the simulator's.
    pub fn timeline_tsv(&self, f: f64) -> (String, String) {
        let s = self.lock();
        let t = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.0}", v * f));
        let mut users = String::from(
            "user\tarrival\tcreated\tunschedulable\tbound\tready\tnode\tcold\tattempts\n",
        );
        for (i, u) in s.users.iter().enumerate() {
            users += &format!(
                "{i}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                t(Some(u.arrival_s)),
                t(u.created_s),
                t(u.unschedulable_s),
                t(u.bound_s),
                t(u.ready_s),
                u.node.as_deref().unwrap_or("-"),
                u.cold_node,
                u.attempts
            );
        }
        let mut rows: Vec<(&String, &NodeSeen)> =
            s.nodes.iter().filter(|(_, n)| n.user_pool).collect();
        rows.sort_by(|a, b| a.1.created_s.total_cmp(&b.1.created_s));
        let mut nodes = String::from("node\tcreated\tschedulable\twarm\tdeleted\n");
        for (name, n) in rows {
            nodes += &format!(
                "{name}\t{}\t{}\t{}\t{}\n",
                t(Some(n.created_s)),
                t(n.schedulable_s),
                t(n.warm_s),
                t(n.deleted_s)
            );
        }
        (users, nodes)
    }

    /// Samples the node and pod counts (every call; the bench calls it once a second).
    pub fn sample(&self) {
        let now = self.now_s();
        let mut s = self.lock();
        let alive: Vec<&NodeSeen> = s
            .nodes
            .values()
            .filter(|n| n.user_pool && n.deleted_s.is_none())
            .collect();
        let nodes = alive.len();
        let ready = alive.iter().filter(|n| n.schedulable_s.is_some()).count();
        let bound = |f: fn(&PodSeen) -> bool| {
            s.pods
                .values()
                .filter(|p| !p.gone && p.node.is_some() && f(p))
                .count()
        };
        let (users, placeholders) = (bound(|p| p.user), bound(|p| p.placeholder));
        s.samples.push((now, nodes, ready, users, placeholders));
    }

    /// Per user-pool node added during the run (compressed seconds): created → schedulable
    /// (Ready, not-ready taint gone) and schedulable → warm (the users' image on it).
    pub fn node_timings(&self) -> (Vec<f64>, Vec<f64>) {
        let s = self.lock();
        let added = s
            .nodes
            .values()
            .filter(|n| n.user_pool && n.created_s > 1.0);
        let boot = added
            .clone()
            .filter_map(|n| Some(n.schedulable_s? - n.created_s))
            .collect();
        let pull = added
            .filter_map(|n| Some(n.warm_s? - n.schedulable_s?))
            .collect();
        (boot, pull)
    }

    pub fn user_pool_lives(&self) -> Vec<Life> {
        self.lock()
            .nodes
            .values()
            .filter(|n| n.user_pool)
            .map(|n| Life {
                created_s: n.created_s,
                deleted_s: n.deleted_s,
            })
            .collect()
    }
}

/// When the NodeClaim of a node Karpenter's kwok provider launched was first seen: kwok names
/// the node `kwok-<claim>-<random>-<n>`; the longest matching claim wins.
pub fn claim_of(node: &str, claims: &HashMap<String, f64>) -> Option<f64> {
    let rest = node.strip_prefix("kwok-")?;
    claims
        .iter()
        .filter(|(c, _)| {
            rest.strip_prefix(c.as_str())
                .is_some_and(|tail| tail.starts_with('-'))
        })
        .max_by_key(|(c, _)| c.len())
        .map(|(_, t)| *t)
}

fn is_warm(n: &NodeSeen, _now: f64) -> bool {
    n.deleted_s.is_none() && n.schedulable_s.is_some() && n.warm_s.is_some()
}

impl Seen {
    pub fn for_users(n: usize) -> Seen {
        Seen {
            users: vec![UserSeen::default(); n],
            ..Default::default()
        }
    }

    /// Per warm user-pool node: room for users (placeholders' requests count as room).
    fn warm_rooms(&self) -> Vec<Request> {
        let mut used: HashMap<&str, Request> = HashMap::new();
        for p in self.pods.values() {
            if let (Some(node), false, false) = (p.node.as_deref(), p.gone, p.placeholder) {
                let e = used.entry(node).or_default();
                *e = *e + p.requests;
            }
        }
        self.nodes
            .iter()
            .filter(|(_, n)| n.user_pool && is_warm(n, 0.0))
            .map(|(name, n)| {
                crate::metrics::room(
                    n.allocatable,
                    used.get(name.as_str()).copied().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn warm_seats(&self, req: Request) -> i64 {
        self.warm_rooms().iter().map(|r| r.seats(req)).sum()
    }

    fn warm_seat_for(&self, req: Request) -> bool {
        self.warm_rooms().iter().any(|r| req.fits_in(*r))
    }
}

fn requests(p: &Pod) -> Request {
    let mut r = Request {
        pods: 1,
        ..Default::default()
    };
    for c in p.spec.iter().flat_map(|s| s.containers.iter()) {
        if let Some(req) = c.resources.as_ref().and_then(|x| x.requests.as_ref()) {
            r.cpu_m += req
                .get("cpu")
                .and_then(|q| parse_milli(&q.0).ok())
                .unwrap_or(0);
            r.mem += req
                .get("memory")
                .and_then(|q| parse_units(&q.0).ok())
                .unwrap_or(0);
        }
    }
    r
}

/// Watches Karpenter's NodeClaims until aborted (only on a cluster that has the CRD).
pub fn watch_node_claims(client: &kube::Client, obs: Shared) -> JoinHandle<()> {
    let gvk = kube::api::GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim");
    let resource = kube::api::ApiResource::from_gvk(&gvk);
    let claims: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(claims, watcher::Config::default()));
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(c) | watcher::Event::InitApply(c))) => {
                    if let Some(name) = c.metadata.name.as_deref() {
                        obs.on_node_claim(name);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => eprintln!("nodeclaim watch: {e} (retrying)"),
            }
        }
    })
}

/// Watches every pod and node until aborted.
pub fn watch(client: &kube::Client, obs: Shared) -> Vec<JoinHandle<()>> {
    let pods: Api<Pod> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let o = obs.clone();
    let pod_task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default()));
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                    o.on_pod(&p, false)
                }
                Ok(Some(watcher::Event::Delete(p))) => o.on_pod(&p, true),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => eprintln!("pod watch: {e} (retrying)"),
            }
        }
    });
    let node_task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(nodes, watcher::Config::default()));
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => {
                    obs.on_node(&n, false)
                }
                Ok(Some(watcher::Event::Delete(n))) => obs.on_node(&n, true),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => eprintln!("node watch: {e} (retrying)"),
            }
        }
    });
    vec![pod_task, node_task]
}
