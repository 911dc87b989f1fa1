//! One scheduling attempt for one queued pod: refresh it from the cache, continue what is
//! in flight for it (a preemption waiting for its victims' DELETEs, claims being
//! provisioned), or ask `hubpack_core::policy::decide` and carry the decision out.
//!
//! Decisions are made one at a time under the state lock and applied to the snapshot at
//! once (`assume`, `nominate`), so the next decision already sees them; the API writes run
//! in spawned tasks (`tasks.rs`), and a failed write undoes its snapshot change and
//! requeues the pod.

use crate::actions::condition::NotScheduled;
use crate::actions::status_lane::StatusWrite;
use crate::actions::volumes::{claim_is_bound, plan};
use crate::context::Context;
use crate::flight::InFlight;
use crate::metrics::AttemptResult;
use crate::pod_fields::{priority_and_created, split};
use hubpack_core::model::{Millis, PodKey, PodRole, PodVolume};
use hubpack_core::policy::{Decision, decide};
use hubpack_kube::convert::pod_from_k8s;
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
            ctx.metrics.preemption_timeouts.inc();
            abandon_nomination(ctx, &key);
        }
        // Every victim is gone: decide again below; the nomination still reserves the
        // seat against equal or lower priority pods meanwhile.
        Some(InFlight::Preempting { .. }) => {}
        Some(flight @ InFlight::Provisioning { .. }) => {
            let InFlight::Provisioning {
                node,
                steps,
                deadline,
            } = &flight
            else {
                unreachable!("matched above")
            };
            let (node, deadline) = (node.clone(), *deadline);
            let all_bound = flight.claims().all(|c| {
                ctx.stores
                    .claims
                    .get(&ObjectRef::new(c).within(&ns))
                    .is_some_and(|pvc| claim_is_bound(&pvc))
            });
            if all_bound {
                ctx.state().in_flight.end(&key);
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
                st.in_flight.end(&key);
                st.snapshot.forget(&key);
            }
            unselect_nodes(ctx, &ns, &node, steps);
            ctx.queue().retry(key, priority, created, now);
            ctx.metrics.attempt(AttemptResult::Error);
            return Attempt::Waiting;
        }
        None => {}
    }

    // Fresh conversion: claims and classes may have changed since the last pod event.
    let converted = pod_from_k8s(&raw, &ctx.classifier.pod_context(&ctx.stores));
    let pod = match converted {
        Ok(mut p) => {
            if let Some(owner) = ctx.state().anti_affinity_against(&raw) {
                p.unsupported.push(format!(
                    "the required pod anti-affinity of {owner} may select this pod"
                ));
            }
            p
        }
        Err(e) => {
            let message = format!("hubpack-scheduler cannot read this pod: {e}");
            tracing::warn!(pod = %key, error = %e, "invalid pod");
            ctx.queue().park(key.clone(), priority, created, now);
            ctx.metrics.attempt(AttemptResult::Error);
            // No node would help: not a case for the autoscaler.
            ctx.status_lane.push(
                key,
                StatusWrite::NotScheduled {
                    reason: NotScheduled::SchedulerError,
                    message: message.clone(),
                },
            );
            return Attempt::Invalid { message };
        }
    };

    let decision = {
        let mut st = ctx.state();
        let nominated = st.in_flight.nominated_node(&key).map(str::to_string);
        let mut pod = pod.clone();
        if nominated.is_some() {
            pod.nominated_node = nominated;
        }
        // Static volumes another pod's decision is pre-binding are not there for this one.
        let reserved = st.in_flight.reserved_volumes(&key);
        if !reserved.is_empty() {
            for v in &mut pod.volumes {
                if let PodVolume::WaitForFirstConsumer { static_pvs, .. } = v {
                    static_pvs.retain(|pv| !reserved.contains(pv.name.as_str()));
                }
            }
        }
        st.snapshot.upsert_pod(pod.clone());
        let started = std::time::Instant::now();
        let d = decide(&st.snapshot, &pod, now, &ctx.policy);
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
                st.in_flight.end(&key);
                let steps = st.snapshot.node(&node).map(|n| plan(&pod.volumes, n));
                if let Some(Ok(_)) = &steps {
                    st.snapshot.assume(&key, &node);
                }
                steps
            };
            match steps {
                Some(Ok(steps)) if steps.is_empty() => {
                    ctx.status_lane.cancel(&key);
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
            // A status write still pending would clear the nomination made now.
            ctx.status_lane.cancel(&key);
            {
                let mut st = ctx.state();
                st.snapshot.nominate(&key, &node);
                st.in_flight.preempt(
                    key.clone(),
                    node.clone(),
                    victims.iter().cloned().collect::<BTreeSet<_>>(),
                    now + i64::try_from(ctx.config.preemption.timeout_seconds)
                        .unwrap_or(i64::MAX / 2)
                        .saturating_mul(1000),
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
                if let Some(flight) = st.in_flight.end(&key) {
                    st.snapshot.clear_nomination(&key);
                    drop(st);
                    crate::requeue::node_changed(ctx, flight.node());
                }
            }
            ctx.metrics.attempt(AttemptResult::Unschedulable);
            // A fresh placeholder (typically the replacement of one a user just evicted)
            // gets a grace before the autoscaler hears of it: the placeholder controller
            // may lower its Deployment's replicas meanwhile if it is surplus, and a node
            // added for a surplus placeholder is waste. After the grace, decided afresh.
            let until = created.saturating_add(ctx.config.placeholder_grace_ms());
            if pod.role == PodRole::Placeholder && now < until {
                tracing::debug!(pod = %key, until, "placeholder does not fit; condition held back");
                ctx.queue().defer(key, priority, created, until);
                return Attempt::HeldBack { until };
            }
            ctx.queue().park(key.clone(), priority, created, now);
            let reason = if diagnosis.refused_by_hubpack_only() {
                NotScheduled::SchedulerError
            } else {
                NotScheduled::Unschedulable
            };
            ctx.status_lane.push(
                key,
                StatusWrite::NotScheduled {
                    reason,
                    message: message.clone(),
                },
            );
            Attempt::Unschedulable { message }
        }
    }
}

mod tasks;

#[cfg(test)]
mod tests;
