//! Which parked (Unschedulable) pods a cluster change can help, after kube-scheduler's
//! queueing hints: a node added or changed, or resources freed on it, helps only pods that
//! could ever fit that node ([`hubpack_core::filter::may_ever_fit`]); a claim that changed
//! helps only the pods using it. Waking every parked pod on every change made each
//! deletion re-decide thousands of pods that could not use the seat.
//!
//! Lock order: the state, then the queue (as everywhere else).

use crate::context::Context;
use hubpack_core::filter::may_ever_fit;
use hubpack_core::model::PodKey;

/// Something on `node` changed or was freed.
pub fn node_changed(ctx: &Context, node: &str) {
    let st = ctx.state();
    let Some(n) = st.snapshot.node(node) else {
        return;
    };
    let woken = ctx
        .queue()
        .unpark_where(|k| st.snapshot.pod(k).is_none_or(|p| may_ever_fit(n, p)));
    if woken > 0 {
        tracing::debug!(node, woken, "parked pods woken");
    }
}

/// A claim in `namespace` changed (`None`: a volume or class changed, which may matter to
/// any pod with a claim).
pub fn claim_changed(ctx: &Context, namespace: &str, claim: Option<&str>) {
    let st = ctx.state();
    let prefix = format!("{namespace}/");
    ctx.queue().unpark_where(|k: &PodKey| {
        // A pod we could not convert is not in the snapshot: the change may fix it.
        (claim.is_none() || k.0.starts_with(&prefix))
            && st.snapshot.pod(k).is_none_or(|p| {
                p.volumes
                    .iter()
                    .any(|v| claim.is_none_or(|c| v.claim() == c))
            })
    });
}
