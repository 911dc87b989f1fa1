//! The real Karpenter (v1.14.1, its kwok provider `sigs.k8s.io/karpenter/kwok`, built by
//! `build.sh karpenter`) for the e2e cluster: its CRDs, a `KWOKNodeClass`, and one user
//! `NodePool` per node group, nodes labelled and tainted as z2jh's user pool.
//!
//! Facts from the module's source (v1.14.1), each relied on here:
//! - `kwok/main.go` runs `operator.NewOperator()`, which reads the apiserver from `KUBECONFIG`
//!   (`ctrl.GetConfigOrDie`) and every option from flags or their environment variables
//!   (`pkg/operator/options/options.go`: `DISABLE_LEADER_ELECTION`, `METRICS_PORT`,
//!   `HEALTH_PROBE_PORT`, `BATCH_IDLE_DURATION`, `BATCH_MAX_DURATION`); no webhooks.
//! - `kwok/cloudprovider/cloudprovider.go` `Create` makes the Node itself after the
//!   `KWOKNodeClass`'s `nodeRegistrationDelay` (a machine boots before its kubelet registers),
//!   copies the NodeClaim's labels and annotations (from the NodePool template) onto it, adds
//!   kwok's `kwok.x-k8s.io/node: fake` annotation (so the cluster's kwok, which manages only
//!   annotated nodes, runs it) and the `karpenter.sh/unregistered:NoExecute` taint, which
//!   Karpenter's registration swaps for the template's taints and startup taints.
//! - A `KWOKNodeClass` has no status controller; `Create` refuses only a class whose `Ready` is
//!   `False`, but the NodePool readiness controller (`pkg/controllers/nodepool/readiness`)
//!   keeps a pool unready while the class's `Ready` is unknown: the harness sets it `True`.
//!
//! The node boot: the class's registration delay, then the node registers with the
//! [`BOOTING_TAINT`] startup taint (Karpenter's registration swaps its `unregistered` taint
//! for the pool's taints and startup taints, so no scheduler sees it untainted) and, moments
//! later, `Ready=False` ([`run_node_registration`] writes it, as a kubelet registers);
//! kube-controller-manager adds the `node.kubernetes.io/not-ready` taints for `Ready=False`;
//! kwok turns the node Ready after its boot-delay annotation, kube-controller-manager lifts
//! its taints and the model lifts the startup taint, and Karpenter counts the node
//! initialized once its startup taints are gone.

use crate::binaries::{self, Component};
use crate::cluster::{Cluster, ClusterError};
use crate::harness::{TEST_BOOT_DELAY, TEST_USER_GROUPS};
use crate::kwok::{BOOT_DELAY_ANNOTATION, go_duration};
use crate::nodes::{DEDICATED_TAINT, NODE_GROUP_LABEL, NODE_PURPOSE_LABEL};
use crate::processes;
use crate::wait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The label Karpenter puts on every node it launches: the NodePool's name.
pub const NODE_POOL_LABEL: &str = "karpenter.sh/nodepool";
/// A pod annotation that blocks Karpenter's voluntary disruption of its node.
pub const DO_NOT_DISRUPT_ANNOTATION: &str = "karpenter.sh/do-not-disrupt";
/// The one `KWOKNodeClass` every NodePool of the harness uses.
pub const NODE_CLASS: &str = "default";
/// The startup taint of the harness's NodePools: on the node from registration until the node
/// registration model sees it Ready (as an agent lifts its own startup taint in a real
/// cluster). kube-controller-manager's not-ready taint cannot serve: kwok's node is created
/// without conditions, and kube-controller-manager lifts the not-ready taint of such a node at
/// once, before anyone writes `Ready=False`.
pub const BOOTING_TAINT: &str = "e2e.hubpack.dev/booting";
/// The namespace Karpenter treats as its own (events, leases if leader election were on).
pub const NAMESPACE: &str = "kube-system";

/// `spec.disruption.consolidationPolicy` of a NodePool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsolidationPolicy {
    /// Only nodes with no (non-daemon) pods are removed.
    WhenEmpty,
    /// Also nodes whose pods fit elsewhere (they are evicted and rescheduled).
    WhenEmptyOrUnderutilized,
}

impl ConsolidationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsolidationPolicy::WhenEmpty => "WhenEmpty",
            ConsolidationPolicy::WhenEmptyOrUnderutilized => "WhenEmptyOrUnderutilized",
        }
    }

    pub fn parse(text: &str) -> Option<ConsolidationPolicy> {
        [
            ConsolidationPolicy::WhenEmpty,
            ConsolidationPolicy::WhenEmptyOrUnderutilized,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(text))
    }
}

/// Karpenter's timings and its user NodePools. Upstream defaults in the comments; every one
/// is a knob.
#[derive(Clone, Debug)]
pub struct KarpenterOptions {
    /// NodePool names; each pool's nodes carry [`NODE_GROUP_LABEL`] = its name, so a pod asks
    /// for a pool with a nodeSelector (as with cluster-autoscaler's node groups).
    pub node_pools: Vec<String>,
    /// `consolidationPolicy` (WhenEmptyOrUnderutilized).
    pub consolidation_policy: ConsolidationPolicy,
    /// `consolidateAfter` (0s): how long a node must have had no pod come or go before it may
    /// be consolidated. Whole seconds (the CRD's pattern has no `ms`).
    pub consolidate_after: Duration,
    /// `disruption.budgets[].nodes` ("10%").
    pub disruption_budget: String,
    /// `BATCH_IDLE_DURATION` (1s): a provisioning batch ends after this long without a new
    /// pending pod.
    pub batch_idle_duration: Duration,
    /// `BATCH_MAX_DURATION` (10s): the longest a batch lasts.
    pub batch_max_duration: Duration,
    /// The `KWOKNodeClass`'s `nodeRegistrationDelay`: a launched machine's time before its
    /// Node object exists.
    pub registration_delay: Duration,
    /// The node's boot-delay annotation: from registration (NotReady, not-ready taint) to Ready.
    pub ready_delay: Duration,
    /// Instance types the pools may launch (kwok's `instance_types.json` names; `c-4x-amd64-linux`
    /// has 4 CPUs).
    pub instance_types: Vec<String>,
    /// `limits.cpu` of each pool.
    pub cpu_limit: u32,
    /// Karpenter's `CapacityBuffer` feature gate (off upstream): its buffer controller turns
    /// CapacityBuffers (`autoscaling.x-k8s.io/v1beta1`, CRD installed with the others) into
    /// virtual pods for its provisioner.
    pub capacity_buffers: bool,
}

impl Default for KarpenterOptions {
    /// Settings for a person trying things by hand (`cargo xtask cluster up --karpenter`).
    fn default() -> Self {
        KarpenterOptions {
            node_pools: vec!["user".into()],
            consolidation_policy: ConsolidationPolicy::WhenEmptyOrUnderutilized,
            consolidate_after: Duration::from_secs(30),
            disruption_budget: "100%".into(),
            batch_idle_duration: Duration::from_secs(1),
            batch_max_duration: Duration::from_secs(10),
            registration_delay: Duration::from_secs(20),
            ready_delay: Duration::from_secs(10),
            instance_types: vec!["c-4x-amd64-linux".into()],
            cpu_limit: 1000,
            capacity_buffers: false,
        }
    }
}

/// Karpenter in the shared test cluster: a `user` pool and one per [`TEST_USER_GROUPS`] name
/// (so tests never count each other's nodes), `WhenEmptyOrUnderutilized` after 5 s, every
/// node disruptable at once, upstream batch windows, and nodes that boot in
/// [`TEST_BOOT_DELAY`] (3 s to register, 2 s more to turn Ready). Karpenter's own loops are
/// not knobs and run at upstream pace: a disruption pass every 10 s
/// (`pkg/controllers/disruption/controller.go` `pollingPeriod`), a 15 s re-validation before a
/// non-empty node goes (`consolidation.go` `commandValidationDelay`).
pub fn test_options() -> KarpenterOptions {
    let mut node_pools = vec!["user".to_string()];
    node_pools.extend(TEST_USER_GROUPS.iter().map(|g| (*g).to_string()));
    KarpenterOptions {
        node_pools,
        consolidation_policy: ConsolidationPolicy::WhenEmptyOrUnderutilized,
        consolidate_after: Duration::from_secs(5),
        disruption_budget: "100%".into(),
        batch_idle_duration: Duration::from_secs(1),
        batch_max_duration: Duration::from_secs(10),
        registration_delay: TEST_BOOT_DELAY - Duration::from_secs(2),
        ready_delay: Duration::from_secs(2),
        instance_types: vec!["c-4x-amd64-linux".into()],
        cpu_limit: 1000,
        // Only a test that creates a CapacityBuffer on this cluster is affected.
        capacity_buffers: true,
    }
}

/// The `KWOKNodeClass` all pools use.
pub fn node_class(opts: &KarpenterOptions) -> Value {
    json!({
        "apiVersion": "karpenter.kwok.sh/v1alpha1",
        "kind": "KWOKNodeClass",
        "metadata": {"name": NODE_CLASS},
        "spec": {"nodeRegistrationDelay": go_seconds(opts.registration_delay)},
    })
}

/// The status the class needs for its pools to be ready (nothing else sets it).
pub fn node_class_ready_status() -> Value {
    json!({"status": {"conditions": [{
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }]}})
}

/// A user NodePool named `name`: z2jh's user-pool label and taint, the node-group label, the
/// not-ready startup taint, the harness's boot delay, and the disruption settings.
pub fn node_pool(name: &str, opts: &KarpenterOptions) -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {
                    "labels": {NODE_PURPOSE_LABEL: "user", NODE_GROUP_LABEL: name},
                    "annotations": {BOOT_DELAY_ANNOTATION: go_duration(opts.ready_delay)},
                },
                "spec": {
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In",
                         "values": opts.instance_types},
                        {"key": "karpenter.sh/capacity-type", "operator": "In",
                         "values": ["on-demand"]},
                        {"key": "topology.kubernetes.io/zone", "operator": "In",
                         "values": ["test-zone-a"]},
                    ],
                    "taints": [{"key": DEDICATED_TAINT, "value": "user", "effect": "NoSchedule"}],
                    "startupTaints": [{"key": BOOTING_TAINT, "effect": "NoSchedule"}],
                    "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass",
                                     "name": NODE_CLASS},
                    "expireAfter": "Never",
                },
            },
            "disruption": {
                "consolidationPolicy": opts.consolidation_policy.as_str(),
                "consolidateAfter": go_seconds(opts.consolidate_after),
                "budgets": [{"nodes": opts.disruption_budget}],
            },
            "limits": {"cpu": opts.cpu_limit.to_string()},
        },
    })
}

/// Whole seconds, as the NodePool CRD's duration pattern wants (`"10s"`).
fn go_seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// Karpenter's environment: the apiserver, leader election off, its ports, its batch windows.
pub fn env(
    kubeconfig: &Path,
    metrics_port: u16,
    health_port: u16,
    opts: &KarpenterOptions,
) -> Vec<(&'static str, String)> {
    vec![
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("DISABLE_LEADER_ELECTION", "true".into()),
        ("SYSTEM_NAMESPACE", NAMESPACE.into()),
        ("METRICS_PORT", metrics_port.to_string()),
        ("HEALTH_PROBE_PORT", health_port.to_string()),
        ("BATCH_IDLE_DURATION", go_duration(opts.batch_idle_duration)),
        ("BATCH_MAX_DURATION", go_duration(opts.batch_max_duration)),
        ("LOG_LEVEL", log_level()),
        ("FEATURE_GATES", feature_gates(opts)),
    ]
}

/// Karpenter v1.14.1's gates at their defaults (`pkg/operator/options/options.go`), but
/// `CapacityBuffer` as asked.
fn feature_gates(opts: &KarpenterOptions) -> String {
    format!(
        "NodeRepair=false,ReservedCapacity=true,SpotToSpotConsolidation=false,NodeOverlay=false,\
         StaticCapacity=false,CapacityBuffer={}",
        opts.capacity_buffers
    )
}

/// Karpenter's log level: `info`, or `HUBPACK_KARPENTER_LOG_LEVEL` (`debug` shows each
/// disruption decision).
fn log_level() -> String {
    std::env::var("HUBPACK_KARPENTER_LOG_LEVEL").unwrap_or_else(|_| "info".into())
}

/// The CRDs next to the binary (`build.sh` copies them from the module).
pub fn crds_dir(binary: &Path) -> PathBuf {
    binary
        .parent()
        .map(|dir| dir.join("crds"))
        .unwrap_or_else(|| PathBuf::from("crds"))
}

#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct InstallError {
    pub what: String,
    pub reason: String,
}

/// Installs the CRDs (waiting until they are served), the node class (Ready) and the pools,
/// with `kubectl`; manifests are written to `state_dir` for people to read.
pub fn install(
    kubectl: &Path,
    kubeconfig: &Path,
    crds: &Path,
    state_dir: &Path,
    opts: &KarpenterOptions,
) -> Result<(), InstallError> {
    let run = |what: &str, args: &[&str]| -> Result<(), InstallError> {
        let out = Command::new(kubectl)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .output()
            .map_err(|e| InstallError {
                what: what.into(),
                reason: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(InstallError {
            what: what.into(),
            reason: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    };
    let crds = crds.display().to_string();
    run(
        "installing Karpenter's CRDs",
        &["apply", "--server-side", "-f", &crds],
    )?;
    run(
        "waiting for Karpenter's CRDs",
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "-f",
            &crds,
        ],
    )?;
    let mut objects = vec![node_class(opts)];
    objects.extend(opts.node_pools.iter().map(|name| node_pool(name, opts)));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let manifest = state_dir.join("karpenter-objects.json");
    std::fs::write(&manifest, list.to_string()).map_err(|e| InstallError {
        what: format!("writing {}", manifest.display()),
        reason: e.to_string(),
    })?;
    let manifest = manifest.display().to_string();
    run(
        "creating the KWOKNodeClass and NodePools",
        &["apply", "-f", &manifest],
    )?;
    let status = node_class_ready_status().to_string();
    run(
        "marking the KWOKNodeClass Ready",
        &[
            "patch",
            "kwoknodeclass",
            NODE_CLASS,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
    )
}

/// Whether `node` is one Karpenter launched (it carries its NodePool's name).
fn launched(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(NODE_POOL_LABEL))
}

/// Whether a node Karpenter launched still lacks the status a kubelet registers with
/// (`Ready=False`): kwok's node has no conditions until it boots.
pub fn needs_registering(node: &Node) -> bool {
    let has_conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| !c.is_empty());
    launched(node) && !has_conditions
}

/// The taints a launched node keeps once it is Ready, if its [`BOOTING_TAINT`] must go.
pub fn taints_after_boot(node: &Node) -> Option<Vec<Taint>> {
    let taints = node.spec.as_ref()?.taints.as_ref()?;
    let booting = taints.iter().any(|t| t.key == BOOTING_TAINT);
    (launched(node) && booting && wait::node_ready(node)).then(|| {
        taints
            .iter()
            .filter(|t| t.key != BOOTING_TAINT)
            .cloned()
            .collect()
    })
}

/// The model of a kubelet (and a startup agent) on each node Karpenter launches: it registers
/// `Ready=False` until kwok turns it Ready after its boot delay, then the [`BOOTING_TAINT`]
/// goes (`hubpack-e2e-model karpenter-nodes`). Runs until the watch ends.
pub async fn run_node_registration(client: kube::Client) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client);
    let mut events = watcher(
        nodes.clone(),
        watcher::Config::default().labels(NODE_POOL_LABEL),
    )
    .default_backoff()
    .applied_objects()
    .boxed();
    tracing::info!("Karpenter node registration model running");
    while let Some(event) = events.next().await {
        let node = match event {
            Ok(node) => node,
            Err(error) => {
                tracing::warn!(%error, "node watch error (retrying)");
                continue;
            }
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        if needs_registering(&node) {
            let now = jiff::Timestamp::now().to_string();
            let patch = json!({"status": {"conditions": [{
                "type": "Ready",
                "status": "False",
                "reason": "KubeletNotReady",
                "message": "kubelet is starting (kwok turns the node Ready after its boot delay)",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }]}});
            match nodes
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => tracing::info!(node = %name, "registered NotReady"),
                Err(error) => tracing::warn!(%error, node = %name, "registering failed"),
            }
        }
        if let Some(taints) = taints_after_boot(&node) {
            // The resourceVersion makes it a compare-and-swap: a concurrent taint change
            // fails it, and the node's next event tries again.
            let patch = json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": taints},
            });
            match nodes
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => tracing::info!(node = %name, "booted: startup taint lifted"),
                Err(error) => {
                    tracing::warn!(%error, node = %name, "lifting the startup taint failed")
                }
            }
        }
    }
    Ok(())
}

impl Cluster {
    /// Installs Karpenter's objects, starts the node registration model (`model_bin`) and
    /// Karpenter; ready once its health probe answers.
    pub(crate) async fn start_karpenter(
        &self,
        bin: &Path,
        opts: &KarpenterOptions,
        model_bin: &Path,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let kubectl = binaries::find(Component::K8s, "kubectl")?;
        install(
            &kubectl,
            &self.kubeconfig,
            &crds_dir(bin),
            &self.state_dir,
            opts,
        )?;
        let model_args = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "karpenter-nodes".into(),
        ];
        self.start_process(
            "karpenter-node-model",
            model_bin,
            &model_args,
            &[("RUST_LOG", "info".into())],
        )?;
        let metrics_port = processes::free_port()?;
        let health_port = processes::free_port()?;
        self.start_process(
            "karpenter",
            bin,
            &[],
            &env(&self.kubeconfig, metrics_port, health_port, opts),
        )?;
        let addr = format!("127.0.0.1:{health_port}");
        self.wait_ready("karpenter", timeout, || wait::http_ok(&addr, "/healthz"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_z2jh_s_user_pool_with_every_knob() {
        let opts = KarpenterOptions {
            consolidation_policy: ConsolidationPolicy::WhenEmpty,
            consolidate_after: Duration::from_secs(7),
            ready_delay: Duration::from_millis(1500),
            ..KarpenterOptions::default()
        };
        let pool = node_pool("user-a", &opts);
        let template = &pool["spec"]["template"];
        assert_eq!(template["metadata"]["labels"][NODE_PURPOSE_LABEL], "user");
        assert_eq!(template["metadata"]["labels"][NODE_GROUP_LABEL], "user-a");
        assert_eq!(
            template["metadata"]["annotations"][BOOT_DELAY_ANNOTATION],
            "1500ms"
        );
        assert_eq!(template["spec"]["taints"][0]["key"], DEDICATED_TAINT);
        assert_eq!(template["spec"]["taints"][0]["value"], "user");
        assert_eq!(template["spec"]["startupTaints"][0]["key"], BOOTING_TAINT);
        assert_eq!(template["spec"]["nodeClassRef"]["name"], NODE_CLASS);
        let disruption = &pool["spec"]["disruption"];
        assert_eq!(disruption["consolidationPolicy"], "WhenEmpty");
        assert_eq!(disruption["consolidateAfter"], "7s");
    }

    #[test]
    fn the_environment_turns_leader_election_off_and_carries_the_batch_windows() {
        let opts = KarpenterOptions {
            batch_idle_duration: Duration::from_millis(500),
            ..KarpenterOptions::default()
        };
        let env = env(Path::new("/k"), 1, 2, &opts);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("KUBECONFIG").as_deref(), Some("/k"));
        assert_eq!(get("DISABLE_LEADER_ELECTION").as_deref(), Some("true"));
        assert_eq!(get("BATCH_IDLE_DURATION").as_deref(), Some("500ms"));
        assert_eq!(get("BATCH_MAX_DURATION").as_deref(), Some("10000ms"));
        assert_eq!(get("HEALTH_PROBE_PORT").as_deref(), Some("2"));
    }

    #[test]
    fn only_launched_nodes_without_conditions_need_registering() {
        let node = |labels: serde_json::Value, status: serde_json::Value| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n", "labels": labels},
                                          "status": status}))
            .unwrap()
        };
        assert!(needs_registering(&node(
            json!({NODE_POOL_LABEL: "user"}),
            json!({})
        )));
        assert!(!needs_registering(&node(
            json!({NODE_POOL_LABEL: "user"}),
            json!({"conditions": [{"type": "Ready", "status": "False"}]})
        )));
        assert!(!needs_registering(&node(json!({}), json!({}))));
    }

    #[test]
    fn the_booting_taint_goes_once_the_node_is_ready_and_only_it() {
        let node = |ready: &str| -> Node {
            serde_json::from_value(json!({
                "metadata": {"name": "n", "labels": {NODE_POOL_LABEL: "user"}},
                "spec": {"taints": [
                    {"key": DEDICATED_TAINT, "value": "user", "effect": "NoSchedule"},
                    {"key": BOOTING_TAINT, "effect": "NoSchedule"},
                ]},
                "status": {"conditions": [{"type": "Ready", "status": ready}]},
            }))
            .unwrap()
        };
        assert_eq!(taints_after_boot(&node("False")), None);
        let kept = taints_after_boot(&node("True")).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].key, DEDICATED_TAINT);
    }

    #[test]
    fn policies_parse_by_name() {
        assert_eq!(
            ConsolidationPolicy::parse("whenempty"),
            Some(ConsolidationPolicy::WhenEmpty)
        );
        assert_eq!(
            ConsolidationPolicy::parse("WhenEmptyOrUnderutilized"),
            Some(ConsolidationPolicy::WhenEmptyOrUnderutilized)
        );
        assert_eq!(ConsolidationPolicy::parse("Never"), None);
    }
}
