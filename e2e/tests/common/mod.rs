//! What the resilience tests share: a burst of user pods for a scheduler under test, on nodes
//! of their own with room for all but a few of them, and the end-state checks the issue asks
//! for (every pod that fits is bound; no node over its allocatable; no pod bound twice or where
//! it does not fit).

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use futures::{StreamExt, TryStreamExt};
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_e2e::{checks, harness};
use hubpack_scheduler::config::Config;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{ListParams, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const IMAGE: &str = "jupyter/base-notebook:2024";
pub const IMAGE_FULL: &str = "docker.io/jupyter/base-notebook:2024";
/// Node label (and pod nodeSelector) that keeps a test's pods on the test's nodes.
pub const TEST_LABEL: &str = "e2e.hubpack.dev/test";
pub const WAIT: Duration = Duration::from_secs(60);

/// The burst's shape: `NODES` nodes of `NODE_CPU` cores take exactly `FITTING` pods of
/// `POD_CPU` each; `EXTRA` more find no room. Full nodes make double-booking show as overcommit,
/// and the extra pods make "every pod that fits is bound" more than "every pod is bound".
pub const NODES: usize = 3;
pub const NODE_CPU: &str = "10";
pub const POD_CPU: &str = "500m";
pub const FITTING: usize = 60;
pub const EXTRA: usize = 2;
/// The disruption comes once this many pods are bound, so it lands mid-burst.
pub const DISRUPT_AFTER: usize = 10;

/// One test's burst: its namespace, scheduler name (also the nodes' test label) and nodes.
pub struct Burst {
    pub client: kube::Client,
    pub ns: String,
    pub scheduler: String,
    pub nodes: Vec<String>,
}

impl Burst {
    /// A namespace and `NODES` warm, schedulable nodes labelled for this test.
    pub async fn setup(client: &kube::Client, prefix: &str) -> Burst {
        let ns = harness::create_namespace(client, prefix).await.unwrap();
        let scheduler = harness::unique_name("hubpack");
        let mut template = NodeTemplate::new(Pool::User)
            .with_images([IMAGE_FULL])
            .with_boot_delay(Duration::ZERO)
            .with_resources(NODE_CPU, "32Gi", 110);
        template
            .extra_labels
            .insert(TEST_LABEL.into(), scheduler.clone());
        let mut nodes = Vec::new();
        for _ in 0..NODES {
            let name = harness::unique_name(prefix);
            harness::create_node(client, &name, &template)
                .await
                .unwrap();
            nodes.push(name);
        }
        for name in &nodes {
            harness::wait_node_schedulable(client, name, WAIT)
                .await
                .unwrap();
        }
        Burst {
            client: client.clone(),
            ns,
            scheduler,
            nodes,
        }
    }

    /// The scheduler's config for this burst: leader election on a lease of the test's
    /// namespace with a short duration, and a low write rate so that a burst lasts seconds
    /// and a disruption can land in the middle of it.
    pub fn config(&self, lease: &str) -> Config {
        let mut config = Config {
            scheduler_name: self.scheduler.clone(),
            metrics_address: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        // kwok nodes turn Ready seconds before the burst.
        config.policy.warm_settle_seconds = 0;
        config.leader_election.enabled = true;
        config.leader_election.lease_name = lease.to_string();
        config.leader_election.namespace = Some(self.ns.clone());
        config.leader_election.lease_duration_seconds = LEASE_DURATION.as_secs();
        config.leader_election.renew_grace_seconds = RENEW_GRACE.as_secs();
        config.api.qps = 10.0;
        config.api.burst = 1;
        config.validate().unwrap();
        config
    }

    fn pod(&self, name: &str) -> Pod {
        let mut pod = harness::user_pod(name, IMAGE);
        let spec = pod.spec.as_mut().unwrap();
        spec.scheduler_name = Some(self.scheduler.clone());
        spec.node_selector
            .get_or_insert_default()
            .insert(TEST_LABEL.into(), self.scheduler.clone());
        spec.containers[0].resources = Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(POD_CPU.into())),
                ("memory".to_string(), Quantity("512Mi".into())),
            ])),
            ..Default::default()
        });
        pod
    }

    /// Creates the `FITTING + EXTRA` pods, many requests in flight at once, as a class of
    /// students logging in together would.
    pub async fn create_all(&self) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        futures::stream::iter(0..FITTING + EXTRA)
            .map(|i| {
                let pods = pods.clone();
                let pod = self.pod(&format!("user-{i}"));
                async move { pods.create(&PostParams::default(), &pod).await }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
    }

    /// How many of the burst's pods are bound.
    pub async fn bound(&self) -> Result<usize, kube::Error> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await?;
        Ok(pods
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count())
    }

    /// The names of the burst's bound pods.
    pub async fn bound_names(&self) -> Result<BTreeSet<String>, kube::Error> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await?;
        Ok(pods
            .items
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .filter_map(|p| p.metadata.name)
            .collect())
    }

    /// The pods a replica's `Scheduled` events say it bound.
    pub async fn scheduled_by(&self, identity: &str) -> BTreeSet<String> {
        let events = Api::<K8sEvent>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        events
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .filter(|e| e.reporting_instance.as_deref() == Some(identity))
            .filter_map(|e| e.regarding?.name)
            .collect()
    }

    pub async fn wait_bound_at_least(&self, n: usize) -> usize {
        hubpack_e2e::wait::until(&format!("{n} pods bound"), WAIT, || async {
            self.bound().await.ok().filter(|&b| b >= n)
        })
        .await
        .unwrap()
    }

    /// Waits (up to [`WAIT`]) until no pending pod of the burst fits a node, then checks the
    /// end state from the API objects: no node over its allocatable, no pod where it may not
    /// run, exactly `FITTING` pods bound (the nodes are full), and no pod bound twice.
    pub async fn check_end_state(&self) {
        let ours = |p: &Pod| p.metadata.namespace.as_deref() == Some(self.ns.as_str());
        let settled = hubpack_e2e::wait::until("no pending pod that fits", WAIT, || async {
            let (nodes, pods) = checks::list_all(&self.client).await.ok()?;
            checks::pending_that_fit(&nodes, &pods, ours)
                .is_empty()
                .then_some((nodes, pods))
        })
        .await;
        let (nodes, pods) = match settled {
            Ok(listed) => listed,
            Err(timeout) => {
                let (nodes, pods) = checks::list_all(&self.client).await.unwrap();
                panic!(
                    "{timeout}: {:?}",
                    checks::pending_that_fit(&nodes, &pods, ours)
                );
            }
        };
        let over = checks::overcommitted(&nodes, &pods);
        assert!(over.is_empty(), "nodes over their allocatable: {over:?}");
        let misplaced = checks::misplaced(&nodes, &pods);
        assert!(
            misplaced.is_empty(),
            "pods where they may not run: {misplaced:?}"
        );
        let ours: Vec<&Pod> = pods.iter().filter(|p| ours(p)).collect();
        let bound: Vec<&Pod> = ours
            .iter()
            .copied()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .collect();
        assert_eq!(ours.len(), FITTING + EXTRA, "pods of the burst");
        assert_eq!(
            bound.len(),
            FITTING,
            "bound pods (the nodes hold {FITTING})"
        );
        assert!(
            bound.iter().all(|p| self
                .nodes
                .contains(p.spec.as_ref().unwrap().node_name.as_ref().unwrap())),
            "a pod left the test's nodes"
        );
        self.check_bound_once(&bound).await;
    }

    /// The API server refuses a second binding, so a double bind shows only in the scheduler
    /// believing it bound a pod twice, or to another node: at most one `Scheduled` event per
    /// pod (a repeated one is folded into a series: count it), naming the pod's node. Events
    /// may be missing (a crashed replica dies between bind and event): that is allowed.
    async fn check_bound_once(&self, bound: &[&Pod]) {
        let events = Api::<K8sEvent>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        let mut scheduled: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
        for e in events
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
        {
            let pod = e.regarding.as_ref().and_then(|r| r.name.clone());
            let count = e.series.as_ref().map_or(1, |s| s.count);
            scheduled
                .entry(pod.unwrap_or_default())
                .or_default()
                .push((e.note.clone().unwrap_or_default(), count));
        }
        for pod in bound {
            let name = pod.metadata.name.as_deref().unwrap();
            let node = pod.spec.as_ref().unwrap().node_name.as_deref().unwrap();
            let notes = scheduled.remove(name).unwrap_or_default();
            let total: i32 = notes.iter().map(|(_, c)| c).sum();
            assert!(total <= 1, "{name} was bound {total} times: {notes:?}");
            assert!(
                notes
                    .iter()
                    .all(|(note, _)| note.ends_with(&format!(" to {node}"))),
                "{name} is on {node}, its Scheduled event says {notes:?}"
            );
        }
        assert!(
            scheduled.is_empty(),
            "Scheduled events for pods that are not bound: {scheduled:?}"
        );
    }
}

/// Lease duration of the replicas under test: short, so that a takeover comes quickly, with
/// a renewal [`RENEW_GRACE`] before its end (CI once saw a leader's 6 s lease with a 2 s
/// grace end empty mid-burst, on two busy cores).
pub const LEASE_DURATION: Duration = Duration::from_secs(10);
pub const RENEW_GRACE: Duration = Duration::from_secs(4);

/// The lease's holder, if any (an empty holder is a released lease).
pub fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

pub async fn read_lease(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<Lease>, kube::Error> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
}
