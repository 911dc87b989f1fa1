//! cluster-autoscaler (1.36.1, kwok provider) for the e2e cluster: node groups are made from
//! [`NodeTemplate`]s held in a ConfigMap (one group per pool, grouped by the
//! `e2e.hubpack.dev/nodegroup` label); the nodes it adds are kwok nodes that boot like any other.
//!
//! Facts from the provider's source (cloudprovider/kwok at 1.36.1): templates are read from the
//! data key `templates` as a `kind: List`; every template needs an annotation; group sizes come
//! from `cluster-autoscaler.kwok.nodegroup/{min,max}-count`; it ignores `--kubeconfig` in local
//! mode and reads `KUBECONFIG`; `POD_NAMESPACE` names the ConfigMaps' namespace.

use crate::nodes::{NODE_GROUP_LABEL, NodeTemplate};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;
use std::path::Path;

pub const NAMESPACE: &str = "kube-system";
pub const CONFIG_MAP: &str = "kwok-provider-config";
pub const TEMPLATES_CONFIG_MAP: &str = "kwok-provider-templates";
pub const MIN_COUNT_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/min-count";
pub const MAX_COUNT_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/max-count";

/// One node group: a pool's template and its size bounds.
#[derive(Clone, Debug)]
pub struct NodeGroup {
    pub template: NodeTemplate,
    pub min: u32,
    pub max: u32,
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
            let mut node = group.template.group_template();
            node.metadata.name = Some(format!("{}-template", group.template.pool.name()));
            let annotations = node.metadata.annotations.get_or_insert_default();
            annotations.insert(MIN_COUNT_ANNOTATION.into(), group.min.to_string());
            annotations.insert(MAX_COUNT_ANNOTATION.into(), group.max.to_string());
            let mut value = serde_json::to_value(&node).unwrap_or_default();
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

/// The command line: fast loops so tests see scale-up within seconds.
pub fn args(kubeconfig: &Path, metrics_port: u16) -> Vec<String> {
    vec![
        "--cloud-provider=kwok".into(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--namespace={NAMESPACE}"),
        "--leader-elect=false".into(),
        format!("--address=127.0.0.1:{metrics_port}"),
        "--scan-interval=2s".into(),
        "--max-node-provision-time=5m".into(),
        "--scale-down-delay-after-add=30s".into(),
        "--scale-down-unneeded-time=30s".into(),
        "--v=2".into(),
    ]
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
    fn templates_are_a_list_of_annotated_nodes() {
        let cm = templates_config_map(&[NodeGroup {
            template: NodeTemplate::new(Pool::User),
            min: 0,
            max: 5,
        }]);
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
        assert_eq!(
            node["spec"]["taints"][0]["key"],
            "hub.jupyter.org/dedicated"
        );
    }
}
