//! The API writes of a decision, each in its own task so the next decision need not wait:
//! a failed write undoes its snapshot change and requeues the pod.

use crate::actions::bind::bind;
use crate::actions::events::pod_ref;
use crate::actions::evict::{EvictOutcome, evict};
use crate::actions::nominate::{nominate_preemptor, preempting_message};
use crate::actions::status_lane::StatusWrite;
use crate::actions::volumes::{VolumeStep, apply_step, unselect_node};
use crate::context::Context;
use crate::metrics::{AttemptResult, ReasonLabels};
use crate::pod_fields::{priority_and_created, split};
use hubpack_core::model::{Millis, PodKey};
use k8s_openapi::api::core::v1::Pod as K8sPod;
use kube::runtime::reflector::ObjectRef;
use std::sync::Arc;

/// Clears a nomination that did not work out, in the snapshot at once and, through the
/// status lane, on the pod (the autoscaler never scales up for a nominated pod).
pub(super) fn abandon_nomination(ctx: &Arc<Context>, key: &PodKey) {
    let flight = {
        let mut st = ctx.state();
        st.snapshot.clear_nomination(key);
        st.in_flight.end(key)
    };
    // The reserved seat is free again for parked pods that could use it.
    if let Some(flight) = flight {
        crate::requeue::node_changed(ctx, flight.node());
    }
    ctx.status_lane
        .push(key.clone(), StatusWrite::ClearNomination);
}

pub(super) fn spawn_bind(
    ctx: &Arc<Context>,
    key: PodKey,
    raw: Arc<K8sPod>,
    node: String,
    created: Millis,
) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let Ok(permit) = ctx.bind_slots.clone().acquire_owned().await else {
            return; // closed: shutting down
        };
        let (ns, name) = split(&key);
        let uid = raw.metadata.uid.clone().unwrap_or_default();
        let (priority, _) = priority_and_created(&raw);
        // Leadership is checked again once a slot is free (it may have lapsed while this
        // bind waited), and the limiter checks it once more after the write's turn comes.
        let result = if ctx.may_write() {
            bind(&ctx.client, &ctx.limiter, &ns, &name, &uid, &node).await
        } else {
            Err(crate::error::Error::NotLeader)
        };
        // The slot bounds binds in flight, not the event write that follows.
        drop(permit);
        match result {
            Ok(()) => {
                ctx.queue().done(&key);
                tracing::info!(pod = %key, %node, "bound");
                ctx.metrics.attempt(AttemptResult::Scheduled);
                let e2e_ms = (ctx.now() - created).max(0);
                ctx.metrics.e2e_seconds.observe(e2e_ms as f64 / 1000.0);
                ctx.events.scheduled(&pod_ref(&raw), &node).await;
            }
            Err(e) => {
                let reason = crate::metrics::write_error_label(&e);
                tracing::warn!(pod = %key, %node, error = %e, "bind failed");
                ctx.metrics
                    .bind_errors
                    .get_or_create(&ReasonLabels { reason })
                    .inc();
                ctx.metrics.attempt(AttemptResult::Error);
                ctx.state().snapshot.forget(&key);
                // The seat it was assumed on is free again.
                crate::requeue::node_changed(&ctx, &node);
                after_failed_bind(&ctx, key, &uid, priority, created);
            }
        }
    });
}

/// A failed bind retries the pod only if the cache still has it pending ours, the same
/// pod (same UID): one deleted meanwhile (its DELETE already took it out of the queue) or
/// bound (the bind went through after all) is dropped, and a pod created anew under the
/// name is queued as itself. kube-scheduler's `handleSchedulingFailure`
/// (pkg/scheduler/schedule_one.go) re-reads its informer the same way.
fn after_failed_bind(ctx: &Context, key: PodKey, uid: &str, priority: i32, created: Millis) {
    let (ns, name) = split(&key);
    let cached = ctx.stores.pods.get(&ObjectRef::new(&name).within(&ns));
    let Some(cached) = cached.filter(|p| ctx.classifier.is_pending_ours(p)) else {
        tracing::debug!(pod = %key, "gone or bound meanwhile; not retried");
        ctx.queue().remove(&key);
        return;
    };
    if cached.metadata.uid.as_deref().unwrap_or_default() != uid {
        let (priority, created) = priority_and_created(&cached);
        let mut q = ctx.queue();
        q.remove(&key);
        q.add(key, priority, created);
    } else {
        let now = ctx.now();
        ctx.queue().retry(key, priority, created, now);
    }
    ctx.wake.notify_one();
}

pub(super) fn spawn_preemption(
    ctx: &Arc<Context>,
    key: PodKey,
    node: String,
    victims: Vec<PodKey>,
) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let (ns, name) = split(&key);
        if !ctx.may_write() {
            return; // leadership lapsed: the preemption times out and is redone by the next leader
        }
        // The nomination and the evictions go out together: neither needs the other (the
        // seat is already reserved in the snapshot, and the bind still waits for every
        // victim's DELETE), and in sequence they put a second API round trip on every
        // preempting user's path.
        let message = preempting_message(victims.len(), &node);
        let nominate = async {
            if ctx.limiter.acquire().await.is_err() {
                return;
            }
            match nominate_preemptor(&ctx.client, &ns, &name, &node, &message).await {
                Ok(()) => {
                    if let Some(raw) = ctx.stores.pods.get(&ObjectRef::new(&name).within(&ns)) {
                        ctx.events.failed_scheduling(&pod_ref(&raw), &message).await;
                    }
                }
                Err(e) => tracing::warn!(pod = %key, error = %e, "could not set nominatedNodeName"),
            }
        };
        futures::join!(nominate, evict_all(&ctx, &key, &node, victims));
    });
}

/// Evicts each victim (still in the cache) in turn, with a `Preempted` event on each.
async fn evict_all(ctx: &Arc<Context>, key: &PodKey, node: &str, victims: Vec<PodKey>) {
    for victim in victims {
        let (vns, vname) = split(&victim);
        let Some(vraw) = ctx.stores.pods.get(&ObjectRef::new(&vname).within(&vns)) else {
            continue; // already gone from the cache: its DELETE was seen
        };
        let uid = vraw.metadata.uid.clone().unwrap_or_default();
        if !ctx.may_write() {
            return;
        }
        match evict(&ctx.client, &ctx.limiter, &vns, &vname, &uid).await {
            Ok(EvictOutcome::Accepted) => {
                ctx.metrics.victims.inc();
                ctx.events.preempted(&pod_ref(&vraw), &key.0, node).await;
            }
            Ok(EvictOutcome::AlreadyGone) => {}
            Ok(EvictOutcome::Blocked) => {
                // A PodDisruptionBudget refuses it after every retry: waiting out the whole
                // preemption timeout would only delay the user; decide again now.
                tracing::warn!(pod = %key, %victim, "eviction still refused (429) after retries; deciding again");
                ctx.metrics.evictions_refused.inc();
                ctx.state().in_flight.expire(key);
                ctx.queue().wake(key);
                ctx.wake.notify_one();
                return;
            }
            Err(e) => {
                tracing::warn!(victim = %victim, error = %e, "eviction failed; preemption will time out");
            }
        }
    }
}

pub(super) fn start_provisioning(
    ctx: &Arc<Context>,
    key: PodKey,
    ns: &str,
    node: String,
    mut steps: Vec<VolumeStep>,
    now: Millis,
) {
    // Pre-bind a static volume only as the decision saw it.
    for step in &mut steps {
        if let VolumeStep::BindVolume {
            volume,
            resource_version,
            ..
        } = step
        {
            *resource_version = ctx
                .stores
                .volumes
                .get(&ObjectRef::new(volume))
                .and_then(|pv| pv.metadata.resource_version.clone());
        }
    }
    let deadline = now
        + i64::try_from(ctx.config.volumes.bind_timeout_seconds)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
    ctx.state()
        .in_flight
        .provision(key.clone(), node.clone(), steps.clone(), deadline);
    let ctx = ctx.clone();
    let ns = ns.to_string();
    tokio::spawn(async move {
        for step in &steps {
            // Not leading: `apply_step` refuses (the limiter checks the lease after the
            // wait), and the pod is decided afresh once the lease is back.
            if let Err(e) = apply_step(&ctx.client, &ctx.limiter, &ns, &node, step).await {
                tracing::warn!(pod = %key, ?step, error = %e, "volume preparation failed; rescheduling");
                {
                    let mut st = ctx.state();
                    st.in_flight.end(&key);
                    st.snapshot.forget(&key);
                }
                ctx.queue().wake(&key);
                ctx.wake.notify_one();
                return;
            }
        }
    });
}

/// After a provisioning timeout: takes back the `selected-node` we set on each claim still
/// unbound, so the claim is free to be provisioned where the pod goes next.
pub(super) fn unselect_nodes(ctx: &Arc<Context>, ns: &str, node: &str, steps: &[VolumeStep]) {
    let claims: Vec<_> = steps
        .iter()
        .filter(|s| matches!(s, VolumeStep::SelectNode { .. }))
        .filter_map(|s| ctx.stores.claims.get(&ObjectRef::new(s.claim()).within(ns)))
        .collect();
    if claims.is_empty() {
        return;
    }
    let ctx = ctx.clone();
    let node = node.to_string();
    tokio::spawn(async move {
        for claim in claims {
            if let Err(e) = unselect_node(&ctx.client, &ctx.limiter, &claim, &node).await {
                tracing::warn!(claim = ?claim.metadata.name, error = %e, "could not take back selected-node");
            }
        }
    });
}
