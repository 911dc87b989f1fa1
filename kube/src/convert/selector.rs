//! Taints, tolerations and node selector terms: field-by-field copies into the core shapes,
//! rejecting operator/effect strings the API does not define.

use super::ConvertError;
use hubpack_core::model::{
    NodeSelector, NodeSelectorTerm, PreferredTerm, SelectorOperator, SelectorRequirement, Taint,
    TaintEffect, Toleration, TolerationOperator,
};
use k8s_openapi::api::core::v1 as k8s;

fn unknown(field: String, value: &str) -> ConvertError {
    ConvertError::UnknownValue {
        field,
        value: value.to_string(),
    }
}

pub fn taint_effect(field: String, raw: &str) -> Result<TaintEffect, ConvertError> {
    match raw {
        "NoSchedule" => Ok(TaintEffect::NoSchedule),
        "PreferNoSchedule" => Ok(TaintEffect::PreferNoSchedule),
        "NoExecute" => Ok(TaintEffect::NoExecute),
        other => Err(unknown(field, other)),
    }
}

pub fn taint(field: String, t: &k8s::Taint) -> Result<Taint, ConvertError> {
    Ok(Taint {
        key: t.key.clone(),
        value: t.value.clone().unwrap_or_default(),
        effect: taint_effect(format!("{field}.effect"), &t.effect)?,
    })
}

pub fn toleration(field: String, t: &k8s::Toleration) -> Result<Toleration, ConvertError> {
    let operator = match t.operator.as_deref() {
        None | Some("Equal") | Some("") => TolerationOperator::Equal,
        Some("Exists") => TolerationOperator::Exists,
        Some(other) => return Err(unknown(format!("{field}.operator"), other)),
    };
    let effect = match t.effect.as_deref() {
        None | Some("") => None,
        Some(e) => Some(taint_effect(format!("{field}.effect"), e)?),
    };
    Ok(Toleration {
        key: t.key.clone().unwrap_or_default(),
        operator,
        value: t.value.clone().unwrap_or_default(),
        effect,
    })
}

fn operator(field: String, raw: &str) -> Result<SelectorOperator, ConvertError> {
    Ok(match raw {
        "In" => SelectorOperator::In,
        "NotIn" => SelectorOperator::NotIn,
        "Exists" => SelectorOperator::Exists,
        "DoesNotExist" => SelectorOperator::DoesNotExist,
        "Gt" => SelectorOperator::Gt,
        "Lt" => SelectorOperator::Lt,
        other => return Err(unknown(field, other)),
    })
}

fn requirements(
    field: &str,
    reqs: Option<&Vec<k8s::NodeSelectorRequirement>>,
) -> Result<Vec<SelectorRequirement>, ConvertError> {
    reqs.into_iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| {
            Ok(SelectorRequirement {
                key: r.key.clone(),
                operator: operator(format!("{field}[{i}].operator"), &r.operator)?,
                values: r.values.clone().unwrap_or_default(),
            })
        })
        .collect()
}

pub fn term(field: &str, t: &k8s::NodeSelectorTerm) -> Result<NodeSelectorTerm, ConvertError> {
    Ok(NodeSelectorTerm {
        match_expressions: requirements(
            &format!("{field}.matchExpressions"),
            t.match_expressions.as_ref(),
        )?,
        match_fields: requirements(&format!("{field}.matchFields"), t.match_fields.as_ref())?,
    })
}

pub fn node_selector(field: &str, s: &k8s::NodeSelector) -> Result<NodeSelector, ConvertError> {
    let terms = s
        .node_selector_terms
        .iter()
        .enumerate()
        .map(|(i, t)| term(&format!("{field}.nodeSelectorTerms[{i}]"), t))
        .collect::<Result<_, _>>()?;
    Ok(NodeSelector { terms })
}

pub fn preferred(
    field: &str,
    terms: &[k8s::PreferredSchedulingTerm],
) -> Result<Vec<PreferredTerm>, ConvertError> {
    terms
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(PreferredTerm {
                weight: p.weight,
                term: term(&format!("{field}[{i}].preference"), &p.preference)?,
            })
        })
        .collect()
}

/// A StorageClass's `allowedTopologies` as a node selector: each topology term is an ORed
/// term whose label requirements are `In` expressions.
pub fn topology_terms(terms: &[k8s::TopologySelectorTerm]) -> NodeSelector {
    NodeSelector {
        terms: terms
            .iter()
            .map(|t| NodeSelectorTerm {
                match_expressions: t
                    .match_label_expressions
                    .iter()
                    .flatten()
                    .map(|r| SelectorRequirement {
                        key: r.key.clone(),
                        operator: SelectorOperator::In,
                        values: r.values.clone(),
                    })
                    .collect(),
                match_fields: Vec::new(),
            })
            .collect(),
    }
}

/// Whether `labels` satisfy a metav1 LabelSelector (`matchLabels` and `matchExpressions`
/// with In, NotIn, Exists, DoesNotExist; an unknown operator matches nothing). An empty
/// selector matches everything, as the API defines it.
pub fn label_selector_matches(
    s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    s.match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v))
        && s.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => get(&e.key).is_some(),
                "DoesNotExist" => get(&e.key).is_none(),
                _ => false,
            }
        })
}
