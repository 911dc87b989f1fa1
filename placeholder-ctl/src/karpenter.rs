//! Karpenter: which user pods sit on a node Karpenter may consolidate away mid-session (pure).
//!
//! Karpenter's consolidation evicts the pods of a node it judges underused or replaceable
//! (`WhenEmptyOrUnderutilized`) and its drift and expiry replace nodes; for a Jupyter server
//! that is a lost session. It leaves a node alone while a running pod on it carries
//! `karpenter.sh/do-not-disrupt: "true"` (or a duration it has not yet run for:
//! `pkg/utils/pod/scheduling.go` `IsDoNotDisruptActive`), so the hub must set it on user pods
//! (z2jh: `singleuser.extraAnnotations`). The controller warns about every user pod on a
//! Karpenter node (one with the `karpenter.sh/nodepool` label) without it.

use crate::objects::KARPENTER_DO_NOT_DISRUPT;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::collections::BTreeMap;

/// The label Karpenter puts on each node it launches: the NodePool's name.
pub const NODE_POOL_LABEL: &str = "karpenter.sh/nodepool";

/// A running user pod Karpenter may disrupt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnprotectedUser {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub node_pool: String,
}

/// The user pods (the caller chose them) bound to Karpenter nodes, not finished or
/// terminating, whose `karpenter.sh/do-not-disrupt` is absent or not a value Karpenter honours.
pub fn unprotected_user_pods<'a>(
    nodes: &[&Node],
    users: impl IntoIterator<Item = &'a Pod>,
) -> Vec<UnprotectedUser> {
    let node_pools: BTreeMap<&str, &str> = nodes
        .iter()
        .filter_map(|n| {
            let pool = n.metadata.labels.as_ref()?.get(NODE_POOL_LABEL)?;
            Some((n.metadata.name.as_deref()?, pool.as_str()))
        })
        .collect();
    users
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !is_finished(p))
        .filter(|p| !protected(p))
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.as_deref()?;
            let node_pool = node_pools.get(node)?;
            Some(UnprotectedUser {
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                name: p.metadata.name.clone()?,
                node: node.to_string(),
                node_pool: (*node_pool).to_string(),
            })
        })
        .collect()
}

fn is_finished(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether Karpenter honours the pod's do-not-disrupt annotation: `"true"`, or a Go duration
/// (protection for that long after the pod started; a hub may use its longest session).
fn protected(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(KARPENTER_DO_NOT_DISRUPT))
        .is_some_and(|v| v == "true" || is_go_duration(v))
}

/// `<number><unit>` repeated, units as Go's `time.ParseDuration` knows them.
fn is_go_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use kube::api::ObjectMeta;

    fn node(name: &str, pool: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: pool.map(|p| [(NODE_POOL_LABEL.to_string(), p.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn user(name: &str, node: Option<&str>, do_not_disrupt: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("hub".into()),
                annotations: do_not_disrupt
                    .map(|v| [(KARPENTER_DO_NOT_DISRUPT.to_string(), v.to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_user_on_a_karpenter_node_without_the_annotation_is_named_with_its_node_pool() {
        let nodes = [node("k-1", Some("user")), node("static-1", None)];
        let refs: Vec<&Node> = nodes.iter().collect();
        let pods = [
            user("bare", Some("k-1"), None),
            user("on-static", Some("static-1"), None),
            user("pending", None, None),
            user("protected", Some("k-1"), Some("true")),
            user("for-a-day", Some("k-1"), Some("24h")),
            user("typo", Some("k-1"), Some("yes")),
            user("false", Some("k-1"), Some("false")),
        ];
        let found = unprotected_user_pods(&refs, &pods);
        let names: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["bare", "typo", "false"]);
        assert_eq!(
            found[0],
            UnprotectedUser {
                namespace: "hub".into(),
                name: "bare".into(),
                node: "k-1".into(),
                node_pool: "user".into(),
            }
        );
    }

    #[test]
    fn finished_and_terminating_users_are_not_at_risk() {
        let nodes = [node("k-1", Some("user"))];
        let refs: Vec<&Node> = nodes.iter().collect();
        let mut done = user("done", Some("k-1"), None);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let mut leaving = user("leaving", Some("k-1"), None);
        leaving.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert!(unprotected_user_pods(&refs, &[done, leaving]).is_empty());
    }

    #[test]
    fn go_durations_are_recognised() {
        for ok in ["10m", "1h30m", "90s", "1.5h", "500ms"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "true", "10", "h", "1d", "-5m"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
