//! One scheduling attempt for one queued pod: refresh it from the cache, continue what is
//! in flight for it (a preemption waiting for its victims' DELETEs, claims being
//! provisioned), or ask `hubpack_core::policy::decide` and carry the decision out.
//!
//! Decisions are made one at a time under the state lock and applied to the snapshot at
//! once (`assume`, `nominate`), so the next decision already sees them; the API writes run
//! in spawned tasks, and a failed write undoes its snapshot change and requeues the pod.

use crate::actions::bind::bind;
use crate::actions::condition::mark_unschedulable;
use crate::actions::events::pod_ref;
use crate::actions::evict::{EvictOutcome, evict};
use crate::actions::nominate::set_nomination;
use crate::actions::volumes::{VolumeStep, apply_step, claim_is_bound, plan};
use crate::cluster_state::InFlight;
use crate::context::Context;
use crate::convert::pod_from_k8s;
use crate::metrics::{AttemptResult, KindLabels};
use hubpack_core::model::{Millis, PodKey, PodRole};
use hubpack_core::policy::{Decision, decide};
use k8s_openapi::api::core::v1::Pod as K8sPod;
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeSet;
use std::sync::Arc;

/// What the attempt did (for tests and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Not leader: requeued untouched.
    NotLeader,
    /// Gone, bound, or no longer ours.
    Dropped,
    Binding {
        node: String,
    },
    Preempting {
        node: String,
        victims: Vec<PodKey>,
    },
    /// Victims not all deleted yet (or claims not Bound): waiting.
    Waiting,
    Provisioning {
        node: String,
    },
    Unschedulable {
        message: String,
    },
    Skipped,
    /// The pod could not be converted: reported, parked.
    Invalid {
        message: String,
    },
    /// The decision named something not a placeholder as a victim: refused.
    Refused,
}

fn split(key: &PodKey) -> (String, String) {
    match key.0.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => ("default".to_string(), key.0.clone()),
    }
}

fn priority_and_created(raw: &K8sPod) -> (i32, Millis) {
    (
        raw.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
        raw.metadata
            .creation_timestamp
            .as_ref()
            .map(crate::convert::time_millis)
            .unwrap_or(0),
    )
}

pub async fn schedule_one(ctx: &Arc<Context>, key: PodKey) -> Attempt {
    let now = ctx.now();
    let (ns, name) = split(&key);
    let Some(raw) = ctx.stores.pods.get(&ObjectRef::new(&name).within(&ns)) else {
        // Queued from a re-list the cache has not published yet (the store swaps in a
        // re-list only at its end): look again later. A deleted pod leaves the queue on
        // its DELETE, so this cannot spin on a pod that is gone.
        let (priority, created) = ctx
            .state()
            .snapshot
            .pod(&key)
            .map_or((0, 0), |p| (p.priority, p.created));
        ctx.queue().retry(key, priority, created, now);
        return Attempt::Waiting;
    };
    let (priority, created) = priority_and_created(&raw);
    if !ctx.classifier.is_pending_ours(&raw) {
        ctx.queue().remove(&key);
        return Attempt::Dropped;
    }
    if !ctx.leader.is_leading(now) {
        ctx.queue().retry(key, priority, created, now);
        return Attempt::NotLeader;
    }

    let in_flight = ctx.state().in_flight.get(&key).cloned();
    match in_flight {
        Some(InFlight::Preempting {
            victims, deadline, ..
        }) if !victims.is_empty() => {
            if now < deadline {
                ctx.queue().retry(key, priority, created, now);
                return Attempt::Waiting;
            }
            tracing::info!(pod = %key, "preemption timed out; clearing the nomination");
            abandon_nomination(ctx, &key, &ns, &name).await;
        }
        // Every victim is gone: decide again below; the nomination still reserves the
        // seat against equal or lower priority pods meanwhile.
        Some(InFlight::Preempting { .. }) => {}
        Some(InFlight::Provisioning {
            node,
            claims,
            deadline,
        }) => {
            let all_bound = claims.iter().all(|c| {
                ctx.stores
                    .claims
                    .get(&ObjectRef::new(c).within(&ns))
                    .is_some_and(|pvc| claim_is_bound(&pvc))
            });
            if all_bound {
                ctx.state().in_flight.remove(&key);
                ctx.queue().done(&key);
                spawn_bind(ctx, key, raw, node.clone(), created);
                return Attempt::Binding { node };
            }
            if now < deadline {
                ctx.queue().retry(key, priority, created, now);
                return Attempt::Waiting;
            }
            tracing::warn!(pod = %key, %node, "claims not bound in time; rescheduling");
            {
                let mut st = ctx.state();
                st.in_flight.remove(&key);
                st.snapshot.forget(&key);
            }
            ctx.queue().retry(key, priority, created, now);
            ctx.metrics.attempt(AttemptResult::Error);
            return Attempt::Waiting;
        }
        None => {}
    }

    // Fresh conversion: claims and classes may have changed since the last pod event.
    let converted = pod_from_k8s(&raw, &ctx.classifier.pod_context(&ctx.stores));
    let pod = match converted {
        Ok(p) => p,
        Err(e) => {
            let message = format!("hubpack-scheduler cannot read this pod: {e}");
            tracing::warn!(pod = %key, error = %e, "invalid pod");
            ctx.queue().park(key, priority, created, now);
            ctx.metrics.attempt(AttemptResult::Error);
            spawn_report_unschedulable(ctx, raw, message.clone());
            return Attempt::Invalid { message };
        }
    };

    let decision = {
        let mut st = ctx.state();
        let nominated = match st.in_flight.get(&key) {
            Some(InFlight::Preempting { node, .. }) => Some(node.clone()),
            _ => None,
        };
        let mut pod = pod.clone();
        if nominated.is_some() {
            pod.nominated_node = nominated;
        }
        st.snapshot.upsert_pod(pod.clone());
        let started = std::time::Instant::now();
        let d = decide(&st.snapshot, &pod, now, &ctx.config.policy);
        ctx.metrics
            .decision_seconds
            .observe(started.elapsed().as_secs_f64());
        d
    };

    match decision {
        Decision::Skip(reason) => {
            tracing::debug!(pod = %key, ?reason, "skipped");
            ctx.queue().remove(&key);
            ctx.metrics.attempt(AttemptResult::Skipped);
            Attempt::Skipped
        }
        Decision::Bind { node } => {
            let steps = {
                let mut st = ctx.state();
                st.in_flight.remove(&key);
                let steps = st.snapshot.node(&node).map(|n| plan(&pod.volumes, n));
                if let Some(Ok(_)) = &steps {
                    st.snapshot.assume(&key, &node);
                }
                steps
            };
            match steps {
                Some(Ok(steps)) if steps.is_empty() => {
                    ctx.queue().done(&key);
                    spawn_bind(ctx, key, raw, node.clone(), created);
                    Attempt::Binding { node }
                }
                Some(Ok(steps)) => {
                    start_provisioning(ctx, key, &ns, node.clone(), steps, now);
                    ctx.queue().retry(pod.key.clone(), priority, created, now);
                    Attempt::Provisioning { node }
                }
                _ => {
                    // The node vanished or its volumes no longer fit: try again.
                    ctx.queue().retry(key, priority, created, now);
                    ctx.metrics.attempt(AttemptResult::Error);
                    Attempt::Waiting
                }
            }
        }
        Decision::Preempt { node, victims } => {
            let all_placeholders = {
                let st = ctx.state();
                victims.iter().all(|v| {
                    st.snapshot
                        .pod(v)
                        .is_some_and(|p| p.role == PodRole::Placeholder)
                })
            };
            if !all_placeholders || victims.is_empty() {
                tracing::error!(pod = %key, ?victims, "refusing to preempt a pod that is not a placeholder");
                ctx.queue().park(key, priority, created, now);
                ctx.metrics.attempt(AttemptResult::Error);
                return Attempt::Refused;
            }
            {
                let mut st = ctx.state();
                st.snapshot.nominate(&key, &node);
                st.in_flight.insert(
                    key.clone(),
                    InFlight::Preempting {
                        node: node.clone(),
                        victims: victims.iter().cloned().collect::<BTreeSet<_>>(),
                        deadline: now
                            + i64::try_from(ctx.config.preemption.timeout_seconds)
                                .unwrap_or(i64::MAX / 2)
                                .saturating_mul(1000),
                    },
                );
            }
            ctx.queue().retry(key.clone(), priority, created, now);
            ctx.metrics.preemptions.inc();
            ctx.metrics.attempt(AttemptResult::Preempting);
            spawn_preemption(ctx, key, node.clone(), victims.clone());
            Attempt::Preempting { node, victims }
        }
        Decision::Unschedulable(diagnosis) => {
            let message = diagnosis.message();
            {
                // A nomination that led nowhere must go: the condition patch clears it on
                // the pod too.
                let mut st = ctx.state();
                if st.in_flight.remove(&key).is_some() {
                    st.snapshot.clear_nomination(&key);
                }
            }
            ctx.queue().park(key, priority, created, now);
            ctx.metrics.attempt(AttemptResult::Unschedulable);
            spawn_report_unschedulable(ctx, raw, message.clone());
            Attempt::Unschedulable { message }
        }
    }
}

/// Clears a nomination that did not work out, in the snapshot at once and on the pod (the
/// autoscaler never scales up for a nominated pod).
async fn abandon_nomination(ctx: &Arc<Context>, key: &PodKey, ns: &str, name: &str) {
    {
        let mut st = ctx.state();
        st.in_flight.remove(key);
        st.snapshot.clear_nomination(key);
    }
    if ctx.may_write()
        && let Err(e) = set_nomination(&ctx.client, &ctx.limiter, ns, name, None).await
    {
        tracing::warn!(pod = %key, error = %e, "could not clear the nomination");
    }
}

fn spawn_bind(ctx: &Arc<Context>, key: PodKey, raw: Arc<K8sPod>, node: String, created: Millis) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let Ok(permit) = ctx.bind_slots.clone().acquire_owned().await else {
            return; // closed: shutting down
        };
        let (ns, name) = split(&key);
        let uid = raw.metadata.uid.clone().unwrap_or_default();
        let (priority, _) = priority_and_created(&raw);
        // Leadership is checked again right before the write: it may have lapsed while
        // this bind waited for a slot.
        let result = if ctx.may_write() {
            bind(&ctx.client, &ctx.limiter, &ns, &name, &uid, &node)
                .await
                .map_err(crate::error::Error::from)
        } else {
            Err(crate::error::Error::NotLeader)
        };
        // The slot bounds binds in flight, not the event write that follows.
        drop(permit);
        match result {
            Ok(()) => {
                tracing::info!(pod = %key, %node, "bound");
                ctx.metrics.attempt(AttemptResult::Scheduled);
                let e2e_ms = (ctx.now() - created).max(0);
                ctx.metrics.e2e_seconds.observe(e2e_ms as f64 / 1000.0);
                ctx.events.scheduled(&pod_ref(&raw), &node).await;
            }
            Err(e) => {
                let kind = e
                    .api_code()
                    .map_or_else(|| e.metric_label().to_string(), |c| c.to_string());
                tracing::warn!(pod = %key, %node, error = %e, "bind failed");
                ctx.metrics
                    .bind_errors
                    .get_or_create(&KindLabels { kind })
                    .inc();
                ctx.metrics.attempt(AttemptResult::Error);
                ctx.state().snapshot.forget(&key);
                let now = ctx.now();
                ctx.queue().retry(key, priority, created, now);
                ctx.wake.notify_one();
            }
        }
    });
}

fn spawn_preemption(ctx: &Arc<Context>, key: PodKey, node: String, victims: Vec<PodKey>) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let (ns, name) = split(&key);
        if !ctx.may_write() {
            return; // leadership lapsed: the preemption times out and is redone by the next leader
        }
        if let Err(e) = set_nomination(&ctx.client, &ctx.limiter, &ns, &name, Some(&node)).await {
            // The in-memory reservation still holds; the annotation is for the autoscaler.
            tracing::warn!(pod = %key, error = %e, "could not set nominatedNodeName");
        }
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
                    ctx.events.preempted(&pod_ref(&vraw), &key.0, &node).await;
                }
                Ok(EvictOutcome::AlreadyGone) => {}
                Ok(EvictOutcome::Blocked) => {
                    tracing::warn!(victim = %victim, "eviction still refused (429); preemption will time out");
                }
                Err(e) => {
                    tracing::warn!(victim = %victim, error = %e, "eviction failed; preemption will time out");
                }
            }
        }
    });
}

fn start_provisioning(
    ctx: &Arc<Context>,
    key: PodKey,
    ns: &str,
    node: String,
    steps: Vec<VolumeStep>,
    now: Millis,
) {
    let claims = steps
        .iter()
        .map(|s| match s {
            VolumeStep::BindVolume { claim, .. } | VolumeStep::SelectNode { claim } => {
                claim.clone()
            }
        })
        .collect();
    let deadline = now
        + i64::try_from(ctx.config.volumes.bind_timeout_seconds)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
    ctx.state().in_flight.insert(
        key.clone(),
        InFlight::Provisioning {
            node: node.clone(),
            claims,
            deadline,
        },
    );
    let ctx = ctx.clone();
    let ns = ns.to_string();
    tokio::spawn(async move {
        for step in &steps {
            if !ctx.may_write() {
                return; // the provisioning wait times out and the pod is rescheduled
            }
            if let Err(e) = apply_step(&ctx.client, &ctx.limiter, &ns, &node, step).await {
                tracing::warn!(pod = %key, ?step, error = %e, "volume preparation failed; rescheduling");
                {
                    let mut st = ctx.state();
                    st.in_flight.remove(&key);
                    st.snapshot.forget(&key);
                }
                ctx.queue().wake(&key);
                ctx.wake.notify_one();
                return;
            }
        }
    });
}

fn spawn_report_unschedulable(ctx: &Arc<Context>, raw: Arc<K8sPod>, message: String) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if !ctx.may_write() {
            return;
        }
        // The event goes with a change of the condition, not with every retry: a parked
        // pod retried every few seconds would otherwise cost an event write each time.
        match mark_unschedulable(&ctx.client, &ctx.limiter, &raw, &message).await {
            Ok(true) => ctx.events.failed_scheduling(&pod_ref(&raw), &message).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(
                pod = ?raw.metadata.name, error = %e, "could not set the Unschedulable condition"
            ),
        }
    });
}

#[cfg(test)]
mod tests;
