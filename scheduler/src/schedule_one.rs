//! One scheduling attempt for one queued pod: refresh it from the cache, continue what is
//! in flight for it (a preemption waiting for its victims' DELETEs, claims being
//! provisioned), or ask `hubpack_core::policy::decide` and carry the decision out.
//!
//! Decisions are made one at a time under the state lock and applied to the snapshot at
//! once (`assume`, `nominate`), so the next decision already sees them; the API writes run
//! in spawned tasks (`tasks.rs`), and a failed write undoes its snapshot change and
//! requeues the pod.

use crate::actions::condition::NotScheduled;
use crate::actions::events::pod_ref;
use crate::actions::status_lane::StatusWrite;
use crate::actions::volumes::{ClaimCheck, VolumeStep, check_step, plan};
use crate::context::Context;
use crate::in_flight::InFlight;
use crate::metrics::AttemptResult;
use crate::pod_fields::{priority_and_created, split};
use hubpack_core::model::{Millis, Pod, PodKey, PodRole, PodVolume};
use hubpack_core::policy::{Decision, Diagnosis, decide};
use hubpack_kube::convert::pod_from_k8s;
use k8s_openapi::api::core::v1::Pod as K8sPod;
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeSet;
use std::sync::Arc;
use tasks::{abandon_nomination, spawn_bind, spawn_preemption, start_provisioning, unselect_nodes};

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
    /// A fresh placeholder that does not fit: its Unschedulable condition is held back
    /// until `until` (`placeholderUnschedulableGraceSeconds` after its creation).
    HeldBack {
        until: Millis,
    },
    Skipped,
    /// The pod could not be converted: reported, parked.
    Invalid {
        message: String,
    },
    /// The decision named something not a placeholder as a victim: refused.
    Refused,
}

/// One attempt, in named steps: look the pod up, continue what is in flight for it,
/// convert it, decide, and carry the decision out.
pub async fn schedule_one(ctx: &Arc<Context>, key: PodKey) -> Attempt {
    let q = match look_up(ctx, key) {
        Ok(q) => q,
        Err(attempt) => return attempt,
    };
    if let Some(attempt) = continue_in_flight(ctx, &q) {
        return attempt;
    }
    let pod = match convert(ctx, &q) {
        Ok(pod) => pod,
        Err(attempt) => return attempt,
    };
    match decide_now(ctx, &q, &pod) {
        Decision::Skip(reason) => {
            tracing::debug!(pod = %q.key, ?reason, "skipped");
            ctx.queue().remove(&q.key);
            ctx.metrics.attempt(AttemptResult::Skipped);
            Attempt::Skipped
        }
        Decision::Bind { node } => bind(ctx, q, &pod, node),
        Decision::Preempt { node, victims } => preempt(ctx, q, node, victims),
        Decision::Unschedulable(diagnosis) => unschedulable(ctx, q, &pod, &diagnosis),
    }
}

/// The queued pod as the cache has it now, and the attempt's clock.
struct Queued {
    key: PodKey,
    ns: String,
    raw: Arc<K8sPod>,
    priority: i32,
    created: Millis,
    now: Millis,
}

impl Queued {
    /// Back in the queue, to be looked at again after its backoff.
    fn retry(&self, ctx: &Context) {
        ctx.queue()
            .retry(self.key.clone(), self.priority, self.created, self.now);
    }

    /// Parked until a cluster change may help it.
    fn park(&self, ctx: &Context) {
        ctx.queue()
            .park(self.key.clone(), self.priority, self.created, self.now);
    }
}

/// The pod from the cache, if it is still pending ours and this replica leads; else what
/// the attempt did instead.
fn look_up(ctx: &Arc<Context>, key: PodKey) -> Result<Queued, Attempt> {
    let now = ctx.now();
    let (ns, name) = split(&key);
    let Some(raw) = ctx.stores.pods.get(&ObjectRef::new(&name).within(&ns)) else {
        // Queued from a re-list the cache has not published yet (the store swaps in a
        // re-list only at its end): look again later. A deleted pod leaves the queue on
        // its DELETE, so this cannot spin on a pod that is gone.
        let priority = ctx.state().snapshot.pod(&key).map_or(0, |p| p.priority);
        let mut queue = ctx.queue();
        // Keeps the creation time it was queued with (the oldest-pending age reads it).
        let created = queue.created_of(&key).unwrap_or(now);
        queue.retry(key, priority, created, now);
        return Err(Attempt::Waiting);
    };
    let (priority, created) = priority_and_created(&raw);
    let q = Queued {
        key,
        ns,
        raw,
        priority,
        created,
        now,
    };
    if !ctx.classifier.is_pending_ours(&q.raw) {
        ctx.queue().remove(&q.key);
        return Err(Attempt::Dropped);
    }
    if !ctx.leader.is_leading(now) {
        q.retry(ctx);
        return Err(Attempt::NotLeader);
    }
    Ok(q)
}

/// Continues a preemption or a provisioning under way for the pod; `None` when the pod is
/// to be decided (again).
fn continue_in_flight(ctx: &Arc<Context>, q: &Queued) -> Option<Attempt> {
    let in_flight = ctx.state().in_flight.get(&q.key).cloned();
    match in_flight {
        Some(InFlight::Preempting {
            victims, deadline, ..
        }) if !victims.is_empty() => {
            if q.now < deadline {
                q.retry(ctx);
                return Some(Attempt::Waiting);
            }
            tracing::info!(pod = %q.key, "preemption timed out; clearing the nomination");
            ctx.metrics.preemption_timeouts.inc();
            abandon_nomination(ctx, &q.key);
            None
        }
        // Every victim is gone: decide again; the nomination still reserves the seat
        // against equal or lower priority pods meanwhile.
        Some(InFlight::Preempting { .. }) | None => None,
        Some(flight @ InFlight::Provisioning { .. }) => {
            Some(continue_provisioning(ctx, q, &flight))
        }
    }
}

/// Binds once every claim is Bound; waits until the deadline; gives the node up at once
/// when a claim will not become usable there (upstream volumebinding's `checkBindings`:
/// the provisioner removed or moved `selected-node`, a pre-bound volume's claimRef was
/// reset, the provisioned volume's node affinity excludes the node), or at the deadline.
fn continue_provisioning(ctx: &Arc<Context>, q: &Queued, flight: &InFlight) -> Attempt {
    let InFlight::Provisioning {
        node,
        steps,
        deadline,
        writes_seen,
    } = flight
    else {
        unreachable!("called for a provisioning only")
    };
    let assumed_on = ctx.state().snapshot.node(node).cloned();
    let volume = |name: &str| ctx.stores.volumes.get(&ObjectRef::new(name));
    let mut all_bound = true;
    let mut seen_now = Vec::new();
    let mut failure = match assumed_on {
        None => Some(format!("node {node:?} is gone")),
        Some(_) => None,
    };
    for step in steps {
        let (None, Some(n)) = (&failure, &assumed_on) else {
            break;
        };
        let pvc = ctx
            .stores
            .claims
            .get(&ObjectRef::new(step.claim()).within(&q.ns));
        let seen = writes_seen.contains(step.claim());
        match check_step(step, n, pvc.as_deref(), &volume, seen) {
            ClaimCheck::Bound => {}
            ClaimCheck::Waiting { write_seen } => {
                all_bound = false;
                if write_seen && !seen {
                    seen_now.push(step.claim().to_string());
                }
            }
            ClaimCheck::Failed(why) => failure = Some(why),
        }
    }
    if let Some(why) = failure {
        return give_up_provisioning(ctx, q, node, steps, &why);
    }
    if all_bound {
        ctx.state().in_flight.end(&q.key);
        ctx.status_lane.cancel(&q.key);
        ctx.queue().binding(&q.key);
        spawn_bind(ctx, q.key.clone(), q.raw.clone(), node.clone(), q.created);
        return Attempt::Binding { node: node.clone() };
    }
    if !seen_now.is_empty() {
        ctx.state().in_flight.writes_seen(&q.key, seen_now);
    }
    if q.now < *deadline {
        q.retry(ctx);
        return Attempt::Waiting;
    }
    give_up_provisioning(ctx, q, node, steps, "claims not bound in time")
}

/// The pod's volumes will not be ready on `node`: forget the assumption, take back our
/// `selected-node`s, say why on the pod (an Event naming the claim), and decide again.
fn give_up_provisioning(
    ctx: &Arc<Context>,
    q: &Queued,
    node: &str,
    steps: &[VolumeStep],
    why: &str,
) -> Attempt {
    tracing::warn!(pod = %q.key, %node, reason = why, "volumes not ready on the node; rescheduling");
    {
        let mut st = ctx.state();
        st.in_flight.end(&q.key);
        st.snapshot.forget(&q.key);
    }
    unselect_nodes(ctx, &q.ns, node, steps);
    let message = format!("volumes on node {node} failed: {why}; scheduling again");
    let events = ctx.clone();
    let pod = pod_ref(&q.raw);
    tokio::spawn(async move { events.events.failed_scheduling(&pod, &message).await });
    q.retry(ctx);
    ctx.metrics.attempt(AttemptResult::Error);
    Attempt::Waiting
}

/// A fresh conversion (claims and classes may have changed since the last pod event); a
/// pod that cannot be read is parked and reported.
fn convert(ctx: &Arc<Context>, q: &Queued) -> Result<Pod, Attempt> {
    match pod_from_k8s(&q.raw, &ctx.classifier.pod_context(&ctx.stores)) {
        Ok(mut p) => {
            if let Some(owner) = ctx.state().anti_affinity_against(&q.raw) {
                p.unsupported.push(format!(
                    "the required pod anti-affinity of {owner} may select this pod"
                ));
            }
            Ok(p)
        }
        Err(e) => {
            let message = format!("hubpack-scheduler cannot read this pod: {e}");
            tracing::warn!(pod = %q.key, error = %e, "invalid pod");
            q.park(ctx);
            ctx.metrics.attempt(AttemptResult::Error);
            // No node would help: not a case for the autoscaler.
            ctx.status_lane.push(
                q.key.clone(),
                StatusWrite::NotScheduled {
                    reason: NotScheduled::SchedulerError,
                    message: message.clone(),
                },
            );
            Err(Attempt::Invalid { message })
        }
    }
}

/// The core's decision on the current snapshot, under the state lock.
fn decide_now(ctx: &Arc<Context>, q: &Queued, pod: &Pod) -> Decision {
    let mut st = ctx.state();
    let nominated = st.in_flight.nominated_node(&q.key).map(str::to_string);
    let mut pod = pod.clone();
    if nominated.is_some() {
        pod.nominated_node = nominated;
    }
    // Static volumes another pod's decision is pre-binding are not there for this one.
    let reserved = st.in_flight.reserved_volumes(&q.key);
    if !reserved.is_empty() {
        for v in &mut pod.volumes {
            if let PodVolume::WaitForFirstConsumer { static_pvs, .. } = v {
                static_pvs.retain(|pv| !reserved.contains(pv.name.as_str()));
            }
        }
    }
    st.snapshot.upsert_pod(pod.clone());
    let started = std::time::Instant::now();
    let d = decide(&st.snapshot, &pod, q.now, &ctx.policy);
    ctx.metrics
        .decision_seconds
        .observe(started.elapsed().as_secs_f64());
    d
}

/// Assumes the pod on `node` and binds it, or first provisions its claims there.
fn bind(ctx: &Arc<Context>, q: Queued, pod: &Pod, node: String) -> Attempt {
    let steps = {
        let mut st = ctx.state();
        st.in_flight.end(&q.key);
        let steps = st.snapshot.node(&node).map(|n| plan(&pod.volumes, n));
        if let Some(Ok(_)) = &steps {
            st.snapshot.assume(&q.key, &node);
        }
        steps
    };
    match steps {
        Some(Ok(steps)) if steps.is_empty() => {
            ctx.status_lane.cancel(&q.key);
            ctx.queue().binding(&q.key);
            spawn_bind(ctx, q.key, q.raw, node.clone(), q.created);
            Attempt::Binding { node }
        }
        Some(Ok(steps)) => {
            // Silent otherwise (kube-scheduler is): the user sees why the pod waits.
            let claims: Vec<_> = steps.iter().map(|s| format!("{:?}", s.claim())).collect();
            ctx.status_lane.push(
                q.key.clone(),
                StatusWrite::NotScheduled {
                    reason: NotScheduled::WaitingForVolumes,
                    message: format!(
                        "waiting for claim(s) {} to be bound on node {node}",
                        claims.join(", ")
                    ),
                },
            );
            start_provisioning(ctx, q.key.clone(), &q.ns, node.clone(), steps, q.now);
            ctx.queue()
                .retry(pod.key.clone(), q.priority, q.created, q.now);
            Attempt::Provisioning { node }
        }
        _ => {
            // The node vanished or its volumes no longer fit: try again.
            q.retry(ctx);
            ctx.metrics.attempt(AttemptResult::Error);
            Attempt::Waiting
        }
    }
}

/// Nominates the pod on `node` and evicts the victims, which must all be placeholders.
fn preempt(ctx: &Arc<Context>, q: Queued, node: String, victims: Vec<PodKey>) -> Attempt {
    let all_placeholders = {
        let st = ctx.state();
        victims.iter().all(|v| {
            st.snapshot
                .pod(v)
                .is_some_and(|p| p.role == PodRole::Placeholder)
        })
    };
    if !all_placeholders || victims.is_empty() {
        tracing::error!(pod = %q.key, ?victims, "refusing to preempt a pod that is not a placeholder");
        q.park(ctx);
        ctx.metrics.attempt(AttemptResult::Error);
        return Attempt::Refused;
    }
    // A status write still pending would clear the nomination made now.
    ctx.status_lane.cancel(&q.key);
    {
        let mut st = ctx.state();
        st.snapshot.nominate(&q.key, &node);
        st.in_flight.preempt(
            q.key.clone(),
            node.clone(),
            victims.iter().cloned().collect::<BTreeSet<_>>(),
            q.now
                + i64::try_from(ctx.config.preemption.timeout_seconds)
                    .unwrap_or(i64::MAX / 2)
                    .saturating_mul(1000),
        );
    }
    q.retry(ctx);
    ctx.metrics.preemptions.inc();
    ctx.metrics.attempt(AttemptResult::Preempting);
    spawn_preemption(ctx, q.key, node.clone(), victims.clone());
    Attempt::Preempting { node, victims }
}

/// Nothing fits: clears a nomination that led nowhere, then reports the pod Unschedulable
/// (a fresh placeholder only after its grace) and parks it.
fn unschedulable(ctx: &Arc<Context>, q: Queued, pod: &Pod, diagnosis: &Diagnosis) -> Attempt {
    let message = diagnosis.message();
    {
        // A nomination that led nowhere must go: the condition patch clears it on the pod
        // too.
        let mut st = ctx.state();
        if let Some(flight) = st.in_flight.end(&q.key) {
            st.snapshot.clear_nomination(&q.key);
            drop(st);
            crate::requeue::node_changed(ctx, flight.node());
        }
    }
    ctx.metrics.attempt(AttemptResult::Unschedulable);
    // A fresh placeholder (typically the replacement of one a user just evicted) gets a
    // grace before the autoscaler hears of it: the placeholder controller may lower its
    // Deployment's replicas meanwhile if it is surplus, and a node added for a surplus
    // placeholder is waste. After the grace, decided afresh.
    let until = q.created.saturating_add(ctx.config.placeholder_grace_ms());
    if pod.role == PodRole::Placeholder && q.now < until {
        tracing::debug!(pod = %q.key, until, "placeholder does not fit; condition held back");
        ctx.queue().defer(q.key, q.priority, q.created, until);
        return Attempt::HeldBack { until };
    }
    q.park(ctx);
    let reason = if diagnosis.refused_by_hubpack_only() {
        NotScheduled::SchedulerError
    } else {
        NotScheduled::Unschedulable
    };
    ctx.status_lane.push(
        q.key,
        StatusWrite::NotScheduled {
            reason,
            message: message.clone(),
        },
    );
    Attempt::Unschedulable { message }
}

mod tasks;

#[cfg(test)]
mod tests;
