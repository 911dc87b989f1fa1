//! nodeSelector and node affinity, as component-helpers/scheduling/corev1/nodeaffinity
//! evaluates them: terms are ORed, the requirements of a term ANDed, an empty term matches
//! nothing, and a term with an invalid requirement (e.g. `Gt` with a non-integer value,
//! `In` without values) matches nothing while the other terms still count.

use crate::model::{
    Node, NodeSelector, NodeSelectorTerm, PreferredTerm, SelectorOperator, SelectorRequirement,
};
use std::collections::BTreeMap;

/// `spec.nodeSelector`: every pair must equal the node's label.
pub fn matches_node_selector(node: &Node, selector: &BTreeMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(k, v)| node.labels.get(k).is_some_and(|l| l == v))
}

/// Required node affinity; `None` matches every node.
pub fn matches_required_affinity(node: &Node, required: Option<&NodeSelector>) -> bool {
    required.is_none_or(|s| selector_matches(node, s))
}

/// A NodeSelector: true when any term matches.
pub fn selector_matches(node: &Node, selector: &NodeSelector) -> bool {
    selector.terms.iter().any(|t| term_matches(node, t))
}

/// Sum of the weights of the preferred terms the node matches (NodeAffinity's score).
pub fn preferred_weight(node: &Node, preferred: &[PreferredTerm]) -> i64 {
    preferred
        .iter()
        .filter(|p| term_matches(node, &p.term))
        .map(|p| i64::from(p.weight))
        .sum()
}

pub fn term_matches(node: &Node, term: &NodeSelectorTerm) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    term.match_expressions
        .iter()
        .all(|r| label_requirement(r, node.labels.get(&r.key).map(String::as_str)) == Some(true))
        && term
            .match_fields
            .iter()
            .all(|r| field_requirement(r, &node.name) == Some(true))
}

/// One label requirement: `None` when the requirement is invalid (the whole term then
/// matches nothing), else whether the label value satisfies it
/// (apimachinery labels.NewRequirement / Requirement.Matches).
fn label_requirement(r: &SelectorRequirement, label: Option<&str>) -> Option<bool> {
    use SelectorOperator::*;
    match r.operator {
        In | NotIn if r.values.is_empty() => None,
        Exists | DoesNotExist if !r.values.is_empty() => None,
        In => Some(label.is_some_and(|l| r.values.iter().any(|v| v == l))),
        NotIn => Some(label.is_none_or(|l| r.values.iter().all(|v| v != l))),
        Exists => Some(label.is_some()),
        DoesNotExist => Some(label.is_none()),
        Gt | Lt => {
            let [v] = r.values.as_slice() else {
                return None;
            };
            let bound: i64 = v.parse().ok()?;
            // A label that is not an integer does not match (it is not an error).
            let Some(Ok(have)) = label.map(str::parse::<i64>) else {
                return Some(false);
            };
            Some(if r.operator == Gt {
                have > bound
            } else {
                have < bound
            })
        }
    }
}

/// matchFields: only `metadata.name` with In/NotIn and exactly one value is valid.
fn field_requirement(r: &SelectorRequirement, node_name: &str) -> Option<bool> {
    if r.key != "metadata.name" || r.values.len() != 1 {
        return None;
    }
    match r.operator {
        SelectorOperator::In => Some(r.values[0] == node_name),
        SelectorOperator::NotIn => Some(r.values[0] != node_name),
        _ => None,
    }
}
