//! Taints and tolerations (k8s.io/api/core/v1/toleration.go `ToleratesTaint`;
//! pkg/scheduler/framework/plugins/tainttoleration/taint_toleration.go).

use crate::model::{Taint, TaintEffect, Toleration, TolerationOperator};

/// `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key
/// matches every key, `Exists` ignores the value, `Equal` compares it.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect
        && e != taint.effect
    {
        return false;
    }
    if !t.key.is_empty() && t.key != taint.key {
        return false;
    }
    match t.operator {
        TolerationOperator::Exists => true,
        TolerationOperator::Equal => t.value == taint.value,
    }
}

/// The first NoSchedule/NoExecute taint (in node order) no toleration tolerates:
/// kube's `FindMatchingUntoleratedTaint` with `DoNotScheduleTaintsFilterFunc`.
/// PreferNoSchedule never filters.
pub fn filter_untolerated_taint<'a>(taints: &'a [Taint], tols: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        matches!(
            taint.effect,
            TaintEffect::NoSchedule | TaintEffect::NoExecute
        ) && !tols.iter().any(|t| tolerates(t, taint))
    })
}

/// TaintToleration's score input: untolerated PreferNoSchedule taints, counting only the
/// tolerations whose effect is empty or PreferNoSchedule.
pub fn prefer_no_schedule_count(taints: &[Taint], tols: &[Toleration]) -> i64 {
    taints
        .iter()
        .filter(|taint| taint.effect == TaintEffect::PreferNoSchedule)
        .filter(|taint| {
            !tols.iter().any(|t| {
                matches!(t.effect, None | Some(TaintEffect::PreferNoSchedule))
                    && tolerates(t, taint)
            })
        })
        .count() as i64
}

/// nodeunschedulable: the pod tolerates `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn tolerates_unschedulable(tols: &[Toleration]) -> bool {
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".to_string(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
    };
    tols.iter().any(|t| tolerates(t, &taint))
}
