//! The scale-up model's decisions, pure: which pending pods trigger scale-up, how many nodes of
//! which group they need (CA-style filter-out-schedulable, then first-fit onto new template
//! nodes), which group nodes are empty, and what a new node looks like.

use super::ScaleUpError;
use crate::autoscaler::{MAX_COUNT_ANNOTATION, MIN_COUNT_ANNOTATION};
use crate::nodes::NODE_GROUP_LABEL;
use crate::placement::{requests_by_node, selects, tolerates};
use crate::resources::{Resources, allocatable, pod_request};
use crate::wait::{NOT_READY_TAINT, node_ready, node_schedulable};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Taint};
use kube::api::ObjectMeta;
use std::collections::{BTreeMap, HashMap};

/// Pods with a priority below this never trigger scale-up (CA's default cutoff).
pub const EXPENDABLE_PRIORITY_CUTOFF: i32 = -10;
/// Annotation CA's kwok provider puts on the nodes it makes.
pub const NODE_GROUP_NAME_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/name";

/// A node group: its template node and size bounds.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub template: Node,
    pub min: u32,
    pub max: u32,
}

/// Parses the templates ConfigMap's `templates` (a JSON or YAML-as-JSON `kind: List` of Nodes).
pub fn parse_groups(config_map: &ConfigMap) -> Result<Vec<Group>, ScaleUpError> {
    let text = config_map
        .data
        .as_ref()
        .and_then(|d| d.get("templates"))
        .ok_or_else(|| ScaleUpError::Templates("no `templates` key".into()))?;
    let list: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ScaleUpError::Templates(e.to_string()))?;
    let items = list["items"]
        .as_array()
        .ok_or_else(|| ScaleUpError::Templates("not a List".into()))?;
    items
        .iter()
        .map(|item| {
            let template: Node = serde_json::from_value(item.clone())
                .map_err(|e| ScaleUpError::Templates(e.to_string()))?;
            let labels = template.metadata.labels.clone().unwrap_or_default();
            let annotations = template.metadata.annotations.clone().unwrap_or_default();
            let name = labels.get(NODE_GROUP_LABEL).cloned().ok_or_else(|| {
                ScaleUpError::Templates(format!("a template lacks the {NODE_GROUP_LABEL} label"))
            })?;
            let count = |key: &str, default: u32| {
                annotations
                    .get(key)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            Ok(Group {
                min: count(MIN_COUNT_ANNOTATION, 0),
                max: count(MAX_COUNT_ANNOTATION, 200),
                name,
                template,
            })
        })
        .collect()
}

/// The group a node belongs to, if the autoscaler (model or CA) made it.
pub fn group_of(node: &Node) -> Option<&str> {
    let made_by_autoscaler = node
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .is_some_and(|id| id.starts_with("kwok:"));
    if !made_by_autoscaler {
        return None;
    }
    node.metadata
        .labels
        .as_ref()?
        .get(NODE_GROUP_LABEL)
        .map(String::as_str)
}

/// Whether the scheduler gave up on this pod in a way CA acts on.
pub fn triggers_scale_up(pod: &Pod) -> bool {
    let spec_ok = pod.spec.as_ref().is_some_and(|s| {
        s.node_name.is_none() && s.priority.unwrap_or(0) >= EXPENDABLE_PRIORITY_CUTOFF
    });
    let status = pod.status.as_ref();
    let nominated = status
        .and_then(|s| s.nominated_node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    spec_ok && !nominated && unschedulable && pod.metadata.deletion_timestamp.is_none()
}

/// A node in the scale-up simulation.
struct SimNode {
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    free: Resources,
}

impl SimNode {
    fn from_node(node: &Node, used: Resources) -> SimNode {
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            // An upcoming node loses its not-ready taint once Ready, as CA assumes.
            .filter(|t| {
                t.key != NOT_READY_TAINT && (t.effect == "NoSchedule" || t.effect == "NoExecute")
            })
            .collect();
        SimNode {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints,
            free: allocatable(node) - used,
        }
    }

    fn accepts(&self, pod: &Pod, request: &Resources) -> bool {
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        self.free.fits(request)
            && selects(pod, &self.labels)
            && self.taints.iter().all(|t| tolerates(&tolerations, t))
    }
}

/// What to add: per group name, how many nodes, and which pods (namespace, name) triggered it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScaleUpPlan {
    pub add: BTreeMap<String, u32>,
    pub triggered_by: BTreeMap<String, Vec<(String, String)>>,
    /// Pods no group's template fits (or all fitting groups are at their max).
    pub no_fit: Vec<(String, String)>,
}

/// Decides which nodes to add for the pending pods (pure: the cluster as listed).
pub fn plan_scale_up(groups: &[Group], nodes: &[Node], pods: &[Pod]) -> ScaleUpPlan {
    let used = requests_by_node(pods);
    let mut group_size: HashMap<&str, u32> = HashMap::new();
    let mut sim: Vec<SimNode> = vec![];
    for node in nodes {
        let group = group_of(node);
        if let Some(g) = group {
            *group_size.entry(g).or_default() += 1;
        }
        let deleting = node.metadata.deletion_timestamp.is_some();
        let cordoned = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        let upcoming = group.is_some() && !node_ready(node);
        if !deleting && !cordoned && (node_schedulable(node) || upcoming) {
            let name = node.metadata.name.as_deref().unwrap_or_default();
            sim.push(SimNode::from_node(
                node,
                used.get(name).copied().unwrap_or_default(),
            ));
        }
    }
    let mut pending: Vec<&Pod> = pods.iter().filter(|p| triggers_scale_up(p)).collect();
    pending.sort_by_key(|p| {
        (
            std::cmp::Reverse(pod_request(p).cpu_millis),
            p.metadata.name.clone(),
        )
    });

    let mut plan = ScaleUpPlan::default();
    for pod in pending {
        let request = pod_request(pod);
        let id = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        if let Some(node) = sim.iter_mut().find(|n| n.accepts(pod, &request)) {
            node.free = node.free - request;
            continue;
        }
        let chosen = groups.iter().find(|g| {
            let size = group_size.get(g.name.as_str()).copied().unwrap_or(0)
                + plan.add.get(&g.name).copied().unwrap_or(0);
            size < g.max
                && SimNode::from_node(&g.template, Resources::default()).accepts(pod, &request)
        });
        match chosen {
            Some(group) => {
                let mut node = SimNode::from_node(&group.template, Resources::default());
                node.free = node.free - request;
                sim.push(node);
                *plan.add.entry(group.name.clone()).or_default() += 1;
                plan.triggered_by
                    .entry(group.name.clone())
                    .or_default()
                    .push(id);
            }
            None => plan.no_fit.push(id),
        }
    }
    plan
}

/// Group nodes that hold no pods but DaemonSet pods (candidates for scale-down).
pub fn empty_group_nodes(nodes: &[Node], pods: &[Pod]) -> Vec<String> {
    let busy: std::collections::HashSet<&str> = pods
        .iter()
        .filter(|p| {
            let daemon = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "DaemonSet");
            let done = matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            );
            !daemon && !done
        })
        .filter_map(|p| p.spec.as_ref()?.node_name.as_deref())
        .collect();
    nodes
        .iter()
        .filter(|n| group_of(n).is_some() && n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| n.metadata.name.clone())
        .filter(|name| !busy.contains(name.as_str()))
        .collect()
}

/// A node of `group`, as CA's kwok provider makes it.
pub fn new_node(group: &Group, suffix: &str) -> Node {
    let name = format!("{}-{suffix}", group.name);
    let mut node = group.template.clone();
    node.metadata = ObjectMeta {
        name: Some(name.clone()),
        labels: node.metadata.labels.take(),
        annotations: node.metadata.annotations.take(),
        ..Default::default()
    };
    node.metadata
        .labels
        .get_or_insert_default()
        .insert("kubernetes.io/hostname".into(), name.clone());
    node.metadata
        .annotations
        .get_or_insert_default()
        .insert(NODE_GROUP_NAME_ANNOTATION.into(), group.name.clone());
    node.spec.get_or_insert_default().provider_id = Some(format!("kwok:{name}"));
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscaler::{NodeGroup, templates_config_map};
    use crate::nodes::{NodeTemplate, Pool};

    fn groups(max: u32) -> Vec<Group> {
        let cm = templates_config_map(&[
            NodeGroup {
                template: NodeTemplate::new(Pool::User),
                min: 0,
                max,
            },
            NodeGroup {
                template: NodeTemplate::new(Pool::Core),
                min: 0,
                max,
            },
        ]);
        parse_groups(&cm).unwrap()
    }

    fn pending(name: &str, cpu: &str, user: bool) -> Pod {
        let mut pod = crate::harness::user_pod(name, "busybox");
        crate::harness::set_cpu_request(&mut pod, cpu);
        let spec = pod.spec.as_mut().unwrap();
        if !user {
            spec.node_selector = None;
            spec.tolerations = None;
        }
        pod.metadata.namespace = Some("ns".into());
        pod.status = Some(serde_json::from_value(serde_json::json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
        })).unwrap());
        pod
    }

    fn ready(mut node: Node) -> Node {
        node.status.get_or_insert_default().conditions = Some(vec![
            serde_json::from_value(serde_json::json!({"type": "Ready", "status": "True"})).unwrap(),
        ]);
        node
    }

    fn bound(mut pod: Pod, node: &str) -> Pod {
        pod.spec.as_mut().unwrap().node_name = Some(node.into());
        pod.status = None;
        pod
    }

    #[test]
    fn groups_are_read_from_the_templates_config_map() {
        let g = groups(7);
        assert_eq!(
            g.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["user", "core"]
        );
        assert_eq!((g[0].min, g[0].max), (0, 7));
    }

    #[test]
    fn an_unschedulable_user_pod_adds_one_user_node() {
        let plan = plan_scale_up(&groups(5), &[], &[pending("a", "1", true)]);
        assert_eq!(plan.add, BTreeMap::from([("user".to_string(), 1)]));
        assert_eq!(
            plan.triggered_by["user"],
            vec![("ns".to_string(), "a".to_string())]
        );
    }

    #[test]
    fn pods_are_packed_onto_new_nodes_first_fit() {
        let pods: Vec<Pod> = (0..4)
            .map(|i| pending(&format!("p{i}"), "1", true))
            .collect();
        // A 4-cpu template holds four 1-cpu pods.
        assert_eq!(plan_scale_up(&groups(5), &[], &pods).add["user"], 1);
        let big: Vec<Pod> = (0..3)
            .map(|i| pending(&format!("b{i}"), "3", true))
            .collect();
        assert_eq!(plan_scale_up(&groups(5), &[], &big).add["user"], 3);
    }

    #[test]
    fn a_pod_that_fits_an_existing_node_adds_nothing() {
        let node = ready(NodeTemplate::new(Pool::User).node("u1"));
        let plan = plan_scale_up(
            &groups(5),
            std::slice::from_ref(&node),
            &[pending("a", "1", true)],
        );
        assert!(plan.add.is_empty());
        // Unless the node is full.
        let full = bound(pending("x", "3500m", true), "u1");
        let plan = plan_scale_up(&groups(5), &[node], &[full, pending("a", "1", true)]);
        assert_eq!(plan.add["user"], 1);
    }

    #[test]
    fn an_upcoming_group_node_counts_as_capacity() {
        let upcoming = new_node(&groups(5)[0], "abcde");
        assert!(!node_ready(&upcoming));
        let plan = plan_scale_up(&groups(5), &[upcoming], &[pending("a", "1", true)]);
        assert!(plan.add.is_empty(), "{plan:?}");
    }

    #[test]
    fn pools_follow_selectors_and_taints() {
        let plan = plan_scale_up(&groups(5), &[], &[pending("core-pod", "1", false)]);
        // Without the user toleration the pod cannot go to the user pool; core fits.
        assert_eq!(plan.add, BTreeMap::from([("core".to_string(), 1)]));
        let mut gpu = pending("gpu", "1", true);
        gpu.spec
            .as_mut()
            .unwrap()
            .node_selector
            .get_or_insert_default()
            .insert("gpu".into(), "a100".into());
        let plan = plan_scale_up(&groups(5), &[], &[gpu]);
        assert!(plan.add.is_empty());
        assert_eq!(plan.no_fit.len(), 1);
    }

    #[test]
    fn a_group_at_its_max_adds_nothing() {
        let g = groups(1);
        let upcoming = new_node(&g[0], "aaaaa");
        let filler = bound(pending("x", "3", true), "user-aaaaa");
        let plan = plan_scale_up(&g, &[upcoming], &[filler, pending("a", "2", true)]);
        assert!(plan.add.is_empty(), "{plan:?}");
        assert_eq!(plan.no_fit.len(), 1);
    }

    #[test]
    fn expendable_nominated_and_unmarked_pods_do_not_trigger() {
        let mut expendable = pending("e", "1", true);
        expendable.spec.as_mut().unwrap().priority = Some(-11);
        assert!(!triggers_scale_up(&expendable));
        expendable.spec.as_mut().unwrap().priority = Some(-10);
        assert!(triggers_scale_up(&expendable));
        let mut nominated = pending("n", "1", true);
        nominated.status.as_mut().unwrap().nominated_node_name = Some("u1".into());
        assert!(!triggers_scale_up(&nominated));
        let mut unmarked = pending("u", "1", true);
        unmarked.status.as_mut().unwrap().conditions = None;
        assert!(!triggers_scale_up(&unmarked));
    }

    #[test]
    fn empty_group_nodes_ignore_daemonset_pods_and_harness_nodes() {
        let group_node = new_node(&groups(5)[0], "aaaaa");
        let harness_node = NodeTemplate::new(Pool::User).node("h1");
        let mut ds = bound(pending("ds", "100m", true), "user-aaaaa");
        ds.metadata.owner_references = Some(vec![
            serde_json::from_value(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "pre-pull", "uid": "1"
            }))
            .unwrap(),
        ]);
        let nodes = [group_node, harness_node];
        assert_eq!(
            empty_group_nodes(&nodes, &[ds.clone()]),
            vec!["user-aaaaa".to_string()]
        );
        let user = bound(pending("u", "1", true), "user-aaaaa");
        assert!(empty_group_nodes(&nodes, &[ds, user]).is_empty());
    }

    #[test]
    fn new_nodes_look_like_the_kwok_providers() {
        let node = new_node(&groups(5)[0], "xyz12");
        assert_eq!(node.metadata.name.as_deref(), Some("user-xyz12"));
        assert_eq!(
            node.spec.as_ref().unwrap().provider_id.as_deref(),
            Some("kwok:user-xyz12")
        );
        assert_eq!(group_of(&node), Some("user"));
        assert_eq!(
            node.metadata.annotations.as_ref().unwrap()[NODE_GROUP_NAME_ANNOTATION],
            "user"
        );
        assert_eq!(
            node.metadata.labels.as_ref().unwrap()["kubernetes.io/hostname"],
            "user-xyz12"
        );
    }
}
