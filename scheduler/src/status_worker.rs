//! The status lane's worker ([`crate::actions::status_lane`]): sends its writes one at a
//! time, each on a token nobody reserved, so binds and evictions go first.

use crate::actions::condition::mark_unschedulable;
use crate::actions::events::pod_ref;
use crate::actions::nominate::set_nomination;
use crate::actions::status_lane::StatusWrite;
use crate::context::Context;
use crate::pod_fields::split;
use hubpack_core::model::PodKey;
use kube::runtime::reflector::ObjectRef;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The lane's worker, until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) -> crate::error::Result<()> {
    let mut leadership = ctx.leader.subscribe();
    loop {
        let lane = &ctx.status_lane;
        if !ctx.may_write() {
            // A standby (or a leader whose lease lapsed) writes nothing. What it queued is
            // stale by the time it leads (the leader of the meantime wrote its own, so a
            // replay would duplicate Events); dropped. It sleeps until leadership changes
            // (or a second passes: a lapsed deadline is not signalled) instead of spinning
            // on a limiter that refuses it.
            lane.clear();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = leadership.changed() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
            continue;
        }
        // Registered before looking, so a push between the look and the wait is not missed.
        let ready = lane.notified();
        if lane.is_empty() {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = ready => continue,
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            acquired = ctx.limiter.acquire_spare() => {
                if acquired.is_err() {
                    // Not leading: what is pending is the next leader's to decide again.
                    continue;
                }
            }
        }
        let Some((key, write)) = lane.pop() else {
            continue;
        };
        send(&ctx, &key, write).await;
    }
}

/// Sends one write; a status write only if the pod is still pending ours.
async fn send(ctx: &Arc<Context>, key: &PodKey, write: StatusWrite) {
    if let StatusWrite::KubeletRejected { pod, reason, node } = &write {
        ctx.events.kubelet_rejected(pod, reason, node).await;
        return;
    }
    let (ns, name) = split(key);
    let Some(raw) = ctx.stores.pods.get(&ObjectRef::new(&name).within(&ns)) else {
        return;
    };
    if !ctx.classifier.is_pending_ours(&raw) {
        return;
    }
    match write {
        StatusWrite::NotScheduled { reason, message } => {
            match mark_unschedulable(&ctx.client, &raw, reason, &message).await {
                Ok(true) => {
                    // Events have a budget of their own; the lane does not wait for them.
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        ctx.events.failed_scheduling(&pod_ref(&raw), &message).await;
                    });
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e, "could not set the PodScheduled condition")
                }
            }
        }
        StatusWrite::KubeletRejected { .. } => {}
        StatusWrite::ClearNomination => {
            let nominated = raw
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref())
                .is_some_and(|n| !n.is_empty());
            if nominated && let Err(e) = set_nomination(&ctx.client, &ns, &name, None).await {
                tracing::warn!(pod = %key, error = %e, "could not clear the nomination");
            }
        }
    }
}
