//! The real cluster-autoscaler (1.36.1, kwok provider, built by `build.sh ca` from the upstream
//! source in `../shared/upstream/`) for the e2e cluster. Node groups are made from
//! [`NodeTemplate`]s held in a ConfigMap; the nodes CA adds are kwok nodes that boot like any
//! other (the cluster's boot delay, the image model's pulls).
//!
//! Facts from the provider's source (cloudprovider/kwok at 1.36.1), each relied on here:
//! - templates are read from the data key `templates` (a `kind: List`); every template needs an
//!   annotation map; group bounds come from `cluster-autoscaler.kwok.nodegroup/{min,max}-count`;
//! - a node belongs to a group by its `cluster-autoscaler.kwok.nodegroup/name` annotation (else
//!   the `fromNodeLabelKey` label) and a `kwok:` providerID; new nodes are named
//!   `<group>-<5 chars>` and copy the template, taints included;
//! - in local mode it reads `KUBECONFIG` (the core honours `--kubeconfig`), `POD_NAMESPACE`
//!   names the ConfigMaps' namespace;
//! - on SIGTERM it deletes every node of its groups (`Cleanup`): stop it first, only when the
//!   whole cluster goes (the harness's teardown order does).
//!
//! Templates carry `node.kubernetes.io/not-ready:NoSchedule`, as a kubelet registers a node:
//! kube-controller-manager lifts it once kwok reports the node Ready, so no scheduler can bind
//! to a node still booting. CA strips that taint from templates when it simulates a new node
//! (`taints.SanitizeTaints`: node-condition taints), so scale-up is unaffected.

use crate::nodes::{NODE_GROUP_LABEL, NodeTemplate};
use crate::wait::NOT_READY_TAINT;
use k8s_openapi::api::core::v1::{ConfigMap, Taint};
use kube::api::ObjectMeta;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub const NAMESPACE: &str = "kube-system";
pub const CONFIG_MAP: &str = "kwok-provider-config";
pub const TEMPLATES_CONFIG_MAP: &str = "kwok-provider-templates";
pub const MIN_COUNT_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/min-count";
pub const MAX_COUNT_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/max-count";
/// Pods below this priority are expendable: CA neither scales up for them nor keeps nodes for
/// them. z2jh's placeholders sit exactly at −10, so they still trigger scale-up.
pub const EXPENDABLE_PRIORITY_CUTOFF: i32 = -10;

/// One node group: its name (the value of the node-group label on its nodes), the pool
/// template its nodes are made from, and its size bounds.
#[derive(Clone, Debug)]
pub struct NodeGroup {
    pub name: String,
    pub template: NodeTemplate,
    pub min: u32,
    pub max: u32,
}

impl NodeGroup {
    /// A group named after its template's pool.
    pub fn of_pool(template: NodeTemplate, min: u32, max: u32) -> NodeGroup {
        NodeGroup {
            name: template.pool.name().to_string(),
            template,
            min,
            max,
        }
    }

    /// The group's template as CA's kwok provider reads it.
    pub fn template_node(&self) -> k8s_openapi::api::core::v1::Node {
        let mut node = self.template.group_template(&self.name);
        node.metadata.name = Some(format!("{}-template", self.name));
        let annotations = node.metadata.annotations.get_or_insert_default();
        annotations.insert(MIN_COUNT_ANNOTATION.into(), self.min.to_string());
        annotations.insert(MAX_COUNT_ANNOTATION.into(), self.max.to_string());
        node.spec
            .get_or_insert_default()
            .taints
            .get_or_insert_default()
            .push(Taint {
                key: NOT_READY_TAINT.into(),
                effect: "NoSchedule".into(),
                value: None,
                time_added: None,
            });
        node
    }
}

/// CA's timings. Upstream defaults in the comments; the harness compresses them, keeping
/// their meaning (a scan, an unneeded period, cluster-wide delays after add/delete/failure).
#[derive(Clone, Debug)]
pub struct AutoscalerTimings {
    /// `--scan-interval` (10s).
    pub scan_interval: Duration,
    /// `--scale-down-unneeded-time` (10m): how long a node must be unneeded before removal.
    pub scale_down_unneeded_time: Duration,
    /// `--scale-down-delay-after-add` (10m): no scale-down anywhere this long after a scale-up.
    pub scale_down_delay_after_add: Duration,
    /// `--scale-down-delay-after-delete` (the scan interval).
    pub scale_down_delay_after_delete: Duration,
    /// `--scale-down-delay-after-failure` (3m).
    pub scale_down_delay_after_failure: Duration,
    /// `--unremovable-node-recheck-timeout` (5m): a node that failed a removal simulation is
    /// not looked at again for this long.
    pub unremovable_node_recheck_timeout: Duration,
    /// `--max-node-provision-time` (15m): a node not Ready by then is given up and deleted.
    pub max_node_provision_time: Duration,
    /// `--expendable-pods-priority-cutoff` (−10).
    pub expendable_pods_priority_cutoff: i32,
}

impl Default for AutoscalerTimings {
    /// Timings for a person trying things by hand (`cargo xtask cluster up --autoscaler`).
    fn default() -> Self {
        AutoscalerTimings {
            scan_interval: Duration::from_secs(2),
            scale_down_unneeded_time: Duration::from_secs(30),
            scale_down_delay_after_add: Duration::from_secs(30),
            scale_down_delay_after_delete: Duration::from_secs(2),
            scale_down_delay_after_failure: Duration::from_secs(30),
            unremovable_node_recheck_timeout: Duration::from_secs(30),
            max_node_provision_time: Duration::from_secs(300),
            expendable_pods_priority_cutoff: EXPENDABLE_PRIORITY_CUTOFF,
        }
    }
}

/// The provider's own config: node groups from our label, templates from a ConfigMap, and no
/// extra `kwok-provider` taint on the nodes.
pub fn provider_config_map() -> ConfigMap {
    let config = format!(
        "apiVersion: v1alpha1\nreadNodesFrom: configmap\nnodegroups:\n  fromNodeLabelKey: {NODE_GROUP_LABEL}\nnodes:\n  skipTaint: true\nconfigmap:\n  name: {TEMPLATES_CONFIG_MAP}\n"
    );
    config_map(CONFIG_MAP, "config", config)
}

/// The templates ConfigMap (a JSON `kind: List` of Nodes; JSON is YAML).
pub fn templates_config_map(groups: &[NodeGroup]) -> ConfigMap {
    let items: Vec<serde_json::Value> = groups
        .iter()
        .map(|group| {
            let mut value = serde_json::to_value(group.template_node()).unwrap_or_default();
            value["apiVersion"] = "v1".into();
            value["kind"] = "Node".into();
            value
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    config_map(TEMPLATES_CONFIG_MAP, "templates", list.to_string())
}

fn config_map(name: &str, key: &str, value: String) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(key.to_string(), value)])),
        ..Default::default()
    }
}

fn secs(d: Duration) -> String {
    crate::kwok::go_duration(d)
}

/// CA's command line.
pub fn args(kubeconfig: &Path, metrics_port: u16, t: &AutoscalerTimings) -> Vec<String> {
    vec![
        "--cloud-provider=kwok".into(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--namespace={NAMESPACE}"),
        "--leader-elect=false".into(),
        format!("--address=127.0.0.1:{metrics_port}"),
        format!("--scan-interval={}", secs(t.scan_interval)),
        format!(
            "--scale-down-unneeded-time={}",
            secs(t.scale_down_unneeded_time)
        ),
        format!(
            "--scale-down-delay-after-add={}",
            secs(t.scale_down_delay_after_add)
        ),
        format!(
            "--scale-down-delay-after-delete={}",
            secs(t.scale_down_delay_after_delete)
        ),
        format!(
            "--scale-down-delay-after-failure={}",
            secs(t.scale_down_delay_after_failure)
        ),
        format!(
            "--unremovable-node-recheck-timeout={}",
            secs(t.unremovable_node_recheck_timeout)
        ),
        format!(
            "--max-node-provision-time={}",
            secs(t.max_node_provision_time)
        ),
        format!(
            "--expendable-pods-priority-cutoff={}",
            t.expendable_pods_priority_cutoff
        ),
        // What blocks a drain keeps upstream defaults: bare pods (KubeSpawner's user pods),
        // kube-system pods without a PDB, pods with local storage.
        format!("--v={}", verbosity()),
    ]
}

/// CA's log verbosity: 2, or `HUBPACK_CA_VERBOSITY` (4 shows why upcoming nodes are or are
/// not counted, at a cost of large logs).
fn verbosity() -> u8 {
    std::env::var("HUBPACK_CA_VERBOSITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// The environment the kwok provider needs when run outside a cluster.
pub fn env(kubeconfig: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("POD_NAMESPACE", NAMESPACE.into()),
        ("KWOK_PROVIDER_MODE", "local".into()),
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("KWOK_PROVIDER_CONFIGMAP", CONFIG_MAP.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::Pool;

    #[test]
    fn templates_are_a_list_of_annotated_nodes_registering_not_ready() {
        let cm = templates_config_map(&[NodeGroup::of_pool(NodeTemplate::new(Pool::User), 0, 5)]);
        let text = &cm.data.unwrap()["templates"];
        let list: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(list["kind"], "List");
        let node = &list["items"][0];
        assert_eq!(node["kind"], "Node");
        assert_eq!(node["metadata"]["annotations"][MAX_COUNT_ANNOTATION], "5");
        assert_eq!(node["metadata"]["labels"][NODE_GROUP_LABEL], "user");
        assert!(
            node["metadata"]["labels"]
                .get("kubernetes.io/hostname")
                .is_none()
        );
        let taints = node["spec"]["taints"].as_array().unwrap();
        assert_eq!(taints[0]["key"], "hub.jupyter.org/dedicated");
        assert!(
            taints
                .iter()
                .any(|t| t["key"] == NOT_READY_TAINT && t["effect"] == "NoSchedule"),
            "{taints:?}"
        );
    }

    #[test]
    fn a_group_may_be_named_apart_from_its_pool() {
        let group = NodeGroup {
            name: "user-b".into(),
            template: NodeTemplate::new(Pool::User),
            min: 0,
            max: 2,
        };
        let node = group.template_node();
        assert_eq!(node.metadata.labels.unwrap()[NODE_GROUP_LABEL], "user-b");
        assert_eq!(node.metadata.name.as_deref(), Some("user-b-template"));
    }

    #[test]
    fn the_command_line_carries_every_timing_and_the_expendable_cutoff() {
        let args = args(Path::new("/k"), 8085, &AutoscalerTimings::default());
        for flag in [
            "--cloud-provider=kwok",
            "--kubeconfig=/k",
            "--scan-interval=2000ms",
            "--scale-down-unneeded-time=30000ms",
            "--scale-down-delay-after-add=30000ms",
            "--unremovable-node-recheck-timeout=30000ms",
            "--max-node-provision-time=300000ms",
            "--expendable-pods-priority-cutoff=-10",
        ] {
            assert!(args.iter().any(|a| a == flag), "missing {flag}: {args:?}");
        }
    }
}
