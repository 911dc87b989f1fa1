//! NodeResourcesFit's filter (pkg/scheduler/framework/plugins/noderesources/fit.go
//! `fitsRequest`): pod slots first, then cpu, memory, ephemeral storage and extended
//! resources; a resource the pod requests 0 of never fails, even on an overcommitted node.
//! Every insufficient resource is reported, as kube does.

use super::Reason;
use crate::model::{ResourceName, Resources};

/// What is already taken on a node, as the filter sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLoad {
    pub requested: Resources,
    pub pod_count: i64,
}

pub fn fit_reasons(allocatable: &Resources, load: &NodeLoad, req: &Resources) -> Vec<Reason> {
    let mut out = Vec::new();
    for_each_fit_reason(allocatable, load, req, |r| out.push(r));
    out
}

/// `fit_reasons` without allocating: calls `f` with each reason, in the same order.
pub fn for_each_fit_reason(
    allocatable: &Resources,
    load: &NodeLoad,
    req: &Resources,
    mut f: impl FnMut(Reason),
) {
    if load.pod_count + 1 > allocatable.pods {
        f(Reason::TooManyPods);
    }
    let short = |want: i64, alloc: i64, used: i64| want > 0 && want > alloc - used;
    let used = &load.requested;
    if short(req.cpu_milli, allocatable.cpu_milli, used.cpu_milli) {
        f(Reason::Insufficient(ResourceName::Cpu));
    }
    if short(req.memory, allocatable.memory, used.memory) {
        f(Reason::Insufficient(ResourceName::Memory));
    }
    if short(
        req.ephemeral_storage,
        allocatable.ephemeral_storage,
        used.ephemeral_storage,
    ) {
        f(Reason::Insufficient(ResourceName::EphemeralStorage));
    }
    for (name, want) in &req.extended {
        if short(*want, allocatable.extended(name), used.extended(name)) {
            f(Reason::Insufficient(ResourceName::Extended(name.clone())));
        }
    }
}
