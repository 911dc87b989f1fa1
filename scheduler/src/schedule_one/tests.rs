//! schedule_one against a mock API server: the exact writes for bind, preemption and
//! Unschedulable, and no bind before the victims' DELETEs are seen.

use super::*;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::stores::Writers;
use crate::watch;
use hubpack_kube::leader::LeaderGate;
use hubpack_kube::reflect::Change;
use hubpack_kube::test_support::*;
use k8s_openapi::api::core::v1::Node as K8sNode;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use std::time::Duration;

struct Env {
    ctx: Arc<Context>,
    writers: Writers,
    handle: Handle,
}

fn env(leading: bool) -> Env {
    env_with_gate(if leading {
        LeaderGate::always()
    } else {
        LeaderGate::new()
    })
}

fn env_with_gate(gate: LeaderGate) -> Env {
    env_with(gate, |_| {})
}

fn env_with(gate: LeaderGate, tune: impl FnOnce(&mut Config)) -> Env {
    let (client, handle) = mock_client();
    let (stores, writers) = crate::stores::stores();
    let mut reg = prometheus_client::registry::Registry::default();
    let mut config = Config::default();
    config.policy.warm_settle_seconds = 0;
    tune(&mut config);
    let ctx = Arc::new(Context::new(
        client,
        config,
        stores,
        gate,
        Metrics::new(&mut reg),
        None,
    ));
    // The status lane's worker, as `app` runs it.
    tokio::spawn(crate::status_worker::run(
        ctx.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    Env {
        ctx,
        writers,
        handle,
    }
}

impl Env {
    fn node(&mut self, name: &str, cpu: &str) {
        let n: K8sNode = serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
        .unwrap();
        self.writers
            .nodes
            .apply_watcher_event(&Event::Apply(n.clone()));
        watch::on_node(&self.ctx, Change::Applied(&n));
    }

    fn pod(&mut self, v: Value) -> K8sPod {
        let p: K8sPod = serde_json::from_value(v).unwrap();
        self.writers
            .pods
            .apply_watcher_event(&Event::Apply(p.clone()));
        watch::on_pod(&self.ctx, Change::Applied(&p));
        p
    }

    fn delete(&mut self, p: &K8sPod) {
        self.writers
            .pods
            .apply_watcher_event(&Event::Delete(p.clone()));
        watch::on_pod(&self.ctx, Change::Deleted(p));
    }

    /// Asserts that no request arrives within a second.
    async fn silent(&mut self) {
        let got = tokio::time::timeout(Duration::from_secs(1), self.handle.next_request()).await;
        assert!(
            got.is_err(),
            "unexpected request: {:?}",
            got.map(|r| r.map(|(req, _)| req.uri().clone()))
        );
    }
}

fn user(name: &str, cpu: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "hub", "uid": format!("uid-{name}"),
                     "labels": {"component": "singleuser-server"},
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"schedulerName": "hubpack-scheduler", "priority": 0,
                 "containers": [{"name": "notebook", "image": "jupyter/base",
                                 "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
    })
}

fn placeholder(name: &str, cpu: &str, node: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "hub", "uid": format!("uid-{name}"),
                     "labels": {"component": "user-placeholder"},
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"schedulerName": "hubpack-scheduler", "priority": -10, "preemptionPolicy": "Never",
                 "nodeName": node,
                 "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
        "status": {"phase": "Running"},
    })
}

fn event_reply() -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
           "metadata": {"name": "e", "namespace": "hub"}, "eventTime": "2026-01-01T00:00:00.000000Z"})
}

/// The four writes of a preemption with one victim.
struct PreemptionWrites {
    nominate: Seen,
    eviction: Seen,
    events: Vec<Seen>,
}

impl PreemptionWrites {
    fn event(&self, reason: &str) -> &Seen {
        self.events
            .iter()
            .find(|e| e.body["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} event in {:?}", self.events))
    }
}

async fn preemption_writes(e: &mut Env) -> PreemptionWrites {
    let (mut nominate, mut eviction, mut events) = (None, None, Vec::new());
    for _ in 0..4 {
        let seen = next_with(&mut e.handle, |path| {
            if path.ends_with("/status") {
                (200, pod_json("hub", "alice"))
            } else if path.ends_with("/events") {
                (201, event_reply())
            } else {
                (201, status_ok())
            }
        })
        .await;
        if seen.path.ends_with("/status") {
            nominate = Some(seen);
        } else if seen.path.ends_with("/eviction") {
            eviction = Some(seen);
        } else {
            events.push(seen);
        }
    }
    PreemptionWrites {
        nominate: nominate.expect("a nomination"),
        eviction: eviction.expect("an eviction"),
        events,
    }
}

/// The next request to `path`, answering first the status lane's writes (a condition
/// patch, its Event) that may go out before it.
async fn next_to(e: &mut Env, path: &str, status: u16, reply: Value) -> Seen {
    loop {
        let seen = next_with(&mut e.handle, |p| {
            if p == path {
                (status, reply.clone())
            } else if p.ends_with("/status") {
                (200, pod_json("hub", "alice"))
            } else if p.ends_with("/events") {
                (201, event_reply())
            } else {
                (404, status_err(404, "NotFound"))
            }
        })
        .await;
        if seen.path == path {
            return seen;
        }
    }
}

fn pop(ctx: &Context) -> PodKey {
    ctx.queue().pop(i64::MAX / 2).expect("a queued pod")
}

#[tokio::test(start_paused = true)]
async fn a_free_seat_is_bound_with_the_pods_uid_then_a_scheduled_event() {
    let mut e = env(true);
    e.node("n1", "8");
    e.pod(user("alice", "1"));
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert_eq!(attempt, Attempt::Binding { node: "n1".into() });
    let bind = next(&mut e.handle, 201, status_ok()).await;
    assert_eq!(bind.path, "/api/v1/namespaces/hub/pods/alice/binding");
    assert_eq!(bind.body["metadata"]["uid"], "uid-alice");
    assert_eq!(bind.body["target"]["name"], "n1");
    let ev = next(&mut e.handle, 201, event_reply()).await;
    assert_eq!(ev.body["reason"], "Scheduled");
    // Assumed at once: the node's requests already count alice.
    assert_eq!(e.ctx.state().snapshot.requested("n1").cpu_milli, 1000);
}

#[tokio::test(start_paused = true)]
async fn a_failed_bind_forgets_the_assumption_and_requeues() {
    let mut e = env(true);
    e.node("n1", "8");
    e.pod(user("alice", "1"));
    schedule_one(&e.ctx, pop(&e.ctx)).await;
    next(&mut e.handle, 409, status_err(409, "Conflict")).await;
    // Let the bind task handle the answer.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(e.ctx.state().snapshot.requested("n1").cpu_milli, 0);
    assert!(e.ctx.queue().contains(&PodKey::new("hub", "alice")));
}

#[tokio::test(start_paused = true)]
async fn a_pod_deleted_while_its_bind_is_in_flight_is_not_retried() {
    let mut e = env(true);
    e.node("n1", "8");
    let alice = e.pod(user("alice", "1"));
    schedule_one(&e.ctx, pop(&e.ctx)).await;
    // An update while the bind is out does not queue it a second time.
    e.pod(user("alice", "1"));
    assert_eq!(e.ctx.queue().pop(i64::MAX / 2), None);
    e.delete(&alice);
    next(&mut e.handle, 404, status_err(404, "NotFound")).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let key = PodKey::new("hub", "alice");
    assert!(!e.ctx.queue().contains(&key), "gone: not retried");
    assert_eq!(e.ctx.queue().oldest_created(), None);
}

#[tokio::test(start_paused = true)]
async fn a_failed_bind_of_a_pod_already_bound_elsewhere_is_dropped() {
    let mut e = env(true);
    e.node("n1", "8");
    e.pod(user("alice", "1"));
    schedule_one(&e.ctx, pop(&e.ctx)).await;
    let mut bound = user("alice", "1");
    bound["spec"]["nodeName"] = json!("n1");
    e.pod(bound);
    next(&mut e.handle, 409, status_err(409, "Conflict")).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!e.ctx.queue().contains(&PodKey::new("hub", "alice")));
    assert_eq!(
        e.ctx.state().snapshot.requested("n1").cpu_milli,
        1000,
        "the confirmed placement stays counted"
    );
}

#[tokio::test(start_paused = true)]
async fn preemption_nominates_evicts_and_binds_only_after_the_victims_delete() {
    let mut e = env(true);
    e.node("n1", "4");
    let ph = e.pod(placeholder("ph-0", "4", "n1"));
    e.pod(user("alice", "2"));

    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert_eq!(
        attempt,
        Attempt::Preempting {
            node: "n1".into(),
            victims: vec![PodKey::new("hub", "ph-0")]
        }
    );
    // The nomination (with the condition saying what the pod waits for) and the eviction
    // go out together, then an event on each pod, in any order.
    let w = preemption_writes(&mut e).await;
    let nominate = &w.nominate;
    assert_eq!(nominate.path, "/api/v1/namespaces/hub/pods/alice/status");
    assert_eq!(
        nominate.content_type,
        "application/strategic-merge-patch+json"
    );
    assert_eq!(nominate.body["status"]["nominatedNodeName"], "n1");
    let cond = &nominate.body["status"]["conditions"][0];
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(
        cond["message"],
        "preempting 1 placeholder on node n1: the pod binds there once they are gone"
    );
    let eviction = &w.eviction;
    assert_eq!(eviction.path, "/api/v1/namespaces/hub/pods/ph-0/eviction");
    assert_eq!(
        eviction.body["deleteOptions"]["preconditions"]["uid"],
        "uid-ph-0"
    );
    assert_eq!(eviction.body["deleteOptions"]["gracePeriodSeconds"], 0);
    let preempted = w.event("Preempted");
    assert_eq!(preempted.body["regarding"]["name"], "ph-0");
    let waiting = w.event("FailedScheduling");
    assert_eq!(waiting.body["regarding"]["name"], "alice");
    assert_eq!(waiting.body["note"], cond["message"]);

    // The seat is reserved: a replacement placeholder must not take it.
    {
        let st = e.ctx.state();
        let nominated: Vec<_> = st
            .snapshot
            .nominated_on("n1")
            .map(|p| p.key.clone())
            .collect();
        assert_eq!(nominated, vec![PodKey::new("hub", "alice")]);
    }

    // The victim is terminating: deletionTimestamp alone must not lead to a bind.
    let mut terminating = ph.clone();
    terminating.metadata.deletion_timestamp = ph.metadata.creation_timestamp.clone();
    let terminating_json = serde_json::to_value(&terminating).unwrap();
    e.pod(terminating_json);
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert_eq!(attempt, Attempt::Waiting);
    e.silent().await;

    // DELETE seen: the preemptor is woken and binds to the nominated node.
    e.delete(&terminating);
    let key = e
        .ctx
        .queue()
        .pop(e.ctx.now())
        .expect("woken without waiting out the backoff");
    let attempt = schedule_one(&e.ctx, key).await;
    assert_eq!(attempt, Attempt::Binding { node: "n1".into() });
    let bind = next(&mut e.handle, 201, status_ok()).await;
    assert_eq!(bind.path, "/api/v1/namespaces/hub/pods/alice/binding");
    assert_eq!(bind.body["target"]["name"], "n1");
}

#[tokio::test(start_paused = true)]
async fn a_preemption_that_times_out_clears_the_nomination() {
    let mut e = env(true);
    e.node("n1", "4");
    e.pod(placeholder("ph-0", "4", "n1"));
    let mut alice = user("alice", "2");
    e.pod(alice.clone());
    schedule_one(&e.ctx, pop(&e.ctx)).await;
    preemption_writes(&mut e).await;
    // The watch shows the nomination.
    alice["status"] = json!({"nominatedNodeName": "n1"});
    e.pod(alice);

    // The victim never goes, and the node goes away: the deadline passes.
    let key = PodKey::new("hub", "alice");
    e.ctx.state().in_flight.expire(&key);
    let n1: K8sNode = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    watch::on_node(&e.ctx, Change::Deleted(&n1));
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert!(
        matches!(attempt, Attempt::Unschedulable { .. }),
        "{attempt:?}"
    );
    assert!(e.ctx.state().in_flight.get(&key).is_none());
    // One status write: the condition, which clears the nomination too.
    let patch = next(&mut e.handle, 200, pod_json("hub", "alice")).await;
    assert_eq!(patch.body["status"]["nominatedNodeName"], Value::Null);
    assert!(
        patch.body["status"]
            .as_object()
            .unwrap()
            .contains_key("nominatedNodeName")
    );
    assert_eq!(
        patch.body["status"]["conditions"][0]["reason"],
        "Unschedulable"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_preemption_whose_victims_remain_is_redone_without_clearing_in_between() {
    let mut e = env(true);
    e.node("n1", "4");
    e.pod(placeholder("ph-0", "4", "n1"));
    e.pod(user("alice", "2"));
    schedule_one(&e.ctx, pop(&e.ctx)).await;
    preemption_writes(&mut e).await;
    let key = PodKey::new("hub", "alice");
    e.ctx.state().in_flight.expire(&key);
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert!(matches!(attempt, Attempt::Preempting { .. }), "{attempt:?}");
    // Nominated again and the victim evicted again; the clear queued by the timeout was
    // dropped, or it would undo the new nomination.
    let w = preemption_writes(&mut e).await;
    assert_eq!(w.nominate.body["status"]["nominatedNodeName"], "n1");
    e.silent().await;
}

#[tokio::test(start_paused = true)]
async fn an_unfittable_pod_gets_the_unschedulable_condition_and_event() {
    let mut e = env(true);
    e.node("n1", "2");
    e.pod(user("big", "16"));
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    let Attempt::Unschedulable { message } = attempt else {
        panic!("{attempt:?}")
    };
    assert!(message.starts_with("0/1 nodes are available:"), "{message}");
    assert!(message.contains("Insufficient cpu"), "{message}");
    let patch = next(&mut e.handle, 200, pod_json("hub", "big")).await;
    assert_eq!(patch.path, "/api/v1/namespaces/hub/pods/big/status");
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    let cond = &patch.body["status"]["conditions"][0];
    assert_eq!(cond["type"], "PodScheduled");
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(cond["message"], message.as_str());
    let ev = next(&mut e.handle, 201, event_reply()).await;
    assert_eq!(ev.body["reason"], "FailedScheduling");
    assert_eq!(
        e.ctx.queue().depth(),
        (0, 0, 1),
        "parked until the cluster changes"
    );
}

/// A pending placeholder created `age_ms` ago (wall clock, the scheduler's clock).
fn pending_placeholder(name: &str, cpu: &str, age_ms: i64) -> Value {
    let mut p = placeholder(name, cpu, "");
    let created =
        jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond() - age_ms)
            .unwrap();
    p["metadata"]["creationTimestamp"] = json!(created.to_string());
    p["spec"].as_object_mut().unwrap().remove("nodeName");
    p["status"] = json!({"phase": "Pending"});
    p
}

#[tokio::test(start_paused = true)]
async fn a_fresh_placeholder_that_does_not_fit_is_marked_unschedulable_only_after_the_grace() {
    let mut e = env_with(LeaderGate::always(), |c| {
        c.placeholder_unschedulable_grace_seconds = 1;
    });
    e.node("n1", "2");
    // Within the grace: no condition, no event; back in the queue at creation + grace.
    e.pod(pending_placeholder("fresh", "16", 0));
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    let Attempt::HeldBack { until } = attempt else {
        panic!("{attempt:?}")
    };
    e.silent().await;
    assert_eq!(e.ctx.queue().depth(), (0, 1, 0), "waiting, not parked");
    assert_eq!(e.ctx.queue().next_ready_at(), Some(until));

    // The grace runs on the wall clock, as creation times do.
    std::thread::sleep(Duration::from_millis(1100));
    let key = e
        .ctx
        .queue()
        .pop(e.ctx.now())
        .expect("ready after the grace");
    let attempt = schedule_one(&e.ctx, key).await;
    assert!(
        matches!(attempt, Attempt::Unschedulable { .. }),
        "{attempt:?}"
    );
    let patch = next(&mut e.handle, 200, pod_json("hub", "fresh")).await;
    assert_eq!(patch.path, "/api/v1/namespaces/hub/pods/fresh/status");
    assert_eq!(
        patch.body["status"]["conditions"][0]["reason"],
        "Unschedulable"
    );
    next(&mut e.handle, 201, event_reply()).await;

    // Deleted within its grace (the controller lowered the replicas): nothing is written.
    // ("fresh" stays parked for queue.unschedulableRetrySeconds: pops are timed before that.)
    let gone = e.pod(pending_placeholder("surplus", "16", 0));
    let key = e.ctx.queue().pop(e.ctx.now()).expect("surplus");
    let attempt = schedule_one(&e.ctx, key).await;
    assert!(matches!(attempt, Attempt::HeldBack { .. }), "{attempt:?}");
    e.delete(&gone);
    assert_eq!(e.ctx.queue().pop(e.ctx.now() + 2_000), None);
    e.silent().await;

    // A user is never held back.
    e.pod(user("big", "16"));
    let key = e.ctx.queue().pop(e.ctx.now()).expect("big");
    let attempt = schedule_one(&e.ctx, key).await;
    assert!(
        matches!(attempt, Attempt::Unschedulable { .. }),
        "{attempt:?}"
    );
    next(&mut e.handle, 200, pod_json("hub", "big")).await;
}

#[tokio::test(start_paused = true)]
async fn a_malformed_pod_is_reported_and_skipped() {
    let mut e = env(true);
    e.node("n1", "8");
    let mut bad = user("bad", "1");
    bad["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("1 gig");
    e.pod(bad);
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    let Attempt::Invalid { message } = attempt else {
        panic!("{attempt:?}")
    };
    assert!(
        message.contains("spec.containers[0].resources.requests.memory"),
        "{message}"
    );
    let patch = next(&mut e.handle, 200, pod_json("hub", "bad")).await;
    assert_eq!(
        patch.body["status"]["conditions"][0]["message"],
        message.as_str()
    );
    // No node would help: a reason the cluster autoscaler ignores.
    assert_eq!(
        patch.body["status"]["conditions"][0]["reason"],
        "SchedulerError"
    );
    next(&mut e.handle, 201, event_reply()).await;
}

/// A constraint only hubpack refuses is reported with `SchedulerError`, so
/// the autoscaler adds no node hubpack would never use.
#[tokio::test(start_paused = true)]
async fn an_unsupported_constraint_is_a_scheduler_error_not_unschedulable() {
    let mut e = env(true);
    e.node("n1", "8");
    let mut p = user("spread", "1");
    p["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"a": "b"}}}]);
    e.pod(p);
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    let Attempt::Unschedulable { message } = attempt else {
        panic!("{attempt:?}")
    };
    assert!(
        message.contains("not supported by hubpack-scheduler"),
        "{message}"
    );
    let patch = next(&mut e.handle, 200, pod_json("hub", "spread")).await;
    assert_eq!(
        patch.body["status"]["conditions"][0]["reason"],
        "SchedulerError"
    );
}

/// A status write whose pod is no longer pending when its turn comes is
/// dropped.
#[tokio::test(start_paused = true)]
async fn a_status_write_for_a_pod_no_longer_pending_is_dropped() {
    let mut e = env(true);
    e.node("n1", "2");
    let mut big = user("big", "16");
    e.pod(big.clone());
    // Queued behind nothing but not sent yet: the pod binds elsewhere meanwhile.
    e.ctx.status_lane.push(
        PodKey::new("hub", "big"),
        crate::actions::status_lane::StatusWrite::NotScheduled {
            reason: crate::actions::condition::NotScheduled::Unschedulable,
            message: "0/1 nodes are available: 1 Insufficient cpu.".into(),
        },
    );
    big["spec"]["nodeName"] = json!("n1");
    e.pod(big);
    e.silent().await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_never_writes() {
    let mut e = env(false);
    e.node("n1", "8");
    e.pod(user("alice", "1"));
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert_eq!(attempt, Attempt::NotLeader);
    e.silent().await;
    assert!(e.ctx.queue().contains(&PodKey::new("hub", "alice")));
}

#[tokio::test(start_paused = true)]
async fn a_standby_drops_its_status_writes_without_spinning_and_does_not_replay_them() {
    let gate = LeaderGate::new();
    let mut e = env_with_gate(gate);
    let rejected = || StatusWrite::KubeletRejected {
        pod: Box::new(crate::actions::events::pod_ref(
            &serde_json::from_value::<K8sPod>(user("alice", "1")).unwrap(),
        )),
        reason: "OutOfcpu".into(),
        node: "n1".into(),
    };
    // The watch reports a rejection in the standby too (the leader writes its Event).
    e.ctx
        .status_lane
        .push(PodKey::new("hub", "alice"), rejected());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(e.ctx.status_lane.is_empty(), "dropped, not held for later");
    // Leading now: nothing stale is replayed; a new write goes out.
    e.ctx.leader.extend(i64::MAX);
    e.silent().await;
    e.ctx
        .status_lane
        .push(PodKey::new("hub", "bob"), rejected());
    let ev = next(&mut e.handle, 201, event_reply()).await;
    assert_eq!(ev.body["reason"], "RejectedByKubelet");
}

#[tokio::test(start_paused = true)]
async fn leadership_lost_before_the_bind_goes_out_means_no_bind() {
    let gate = LeaderGate::new();
    gate.extend(i64::MAX);
    let mut e = env_with_gate(gate);
    e.node("n1", "8");
    e.pod(user("alice", "1"));
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert_eq!(attempt, Attempt::Binding { node: "n1".into() });
    // The bind task has not run yet (single-threaded test runtime): lose the lease now.
    e.ctx.leader.revoke();
    e.silent().await;
    assert_eq!(
        e.ctx.state().snapshot.requested("n1").cpu_milli,
        0,
        "assumption undone"
    );
}

#[tokio::test(start_paused = true)]
async fn the_replacement_placeholder_cannot_take_the_seat_reserved_for_the_preemptor() {
    let mut e = env(true);
    e.node("n1", "4");
    let ph = e.pod(placeholder("ph-0", "4", "n1"));
    e.pod(user("alice", "2"));
    let alice = pop(&e.ctx);
    schedule_one(&e.ctx, alice).await;
    next(&mut e.handle, 200, pod_json("hub", "alice")).await;
    next(&mut e.handle, 201, status_ok()).await;
    next(&mut e.handle, 201, event_reply()).await;
    e.delete(&ph);

    // The placeholder's Deployment creates a replacement at once; it is scheduled before
    // alice gets her turn. 3 cpu would fit on the emptied node, but 2 are alice's.
    let mut replacement = placeholder("ph-1", "3", "n1");
    replacement["spec"]["nodeName"] = Value::Null;
    replacement["status"] = json!({"phase": "Pending"});
    e.pod(replacement);
    let key = PodKey::new("hub", "ph-1");
    e.ctx.queue().remove(&key);
    let attempt = schedule_one(&e.ctx, key).await;
    assert!(
        matches!(attempt, Attempt::Unschedulable { .. }),
        "{attempt:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_loop_waits_for_every_cache_before_deciding() {
    let mut e = env(true);
    e.node("n1", "8");
    e.pod(user("alice", "1"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let lp = tokio::spawn(crate::scheduler_loop::run(e.ctx.clone(), shutdown.clone()));
    // Nodes listed, pods perhaps not yet: binding now could overcommit.
    e.silent().await;
    e.ctx.synced.store(
        crate::stores::WATCHED_KINDS,
        std::sync::atomic::Ordering::Release,
    );
    e.ctx.wake.notify_one();
    let bind = next(&mut e.handle, 201, status_ok()).await;
    assert_eq!(bind.path, "/api/v1/namespaces/hub/pods/alice/binding");
    next(&mut e.handle, 201, event_reply()).await;
    shutdown.cancel();
    lp.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_retry_with_the_same_message_writes_nothing() {
    let mut e = env(true);
    e.node("n1", "2");
    let mut big = user("big", "16");
    big["status"] = json!({"conditions": [{"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient cpu.",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    e.pod(big);
    let attempt = schedule_one(&e.ctx, pop(&e.ctx)).await;
    let Attempt::Unschedulable { message } = attempt else {
        panic!("{attempt:?}")
    };
    assert_eq!(message, "0/1 nodes are available: 1 Insufficient cpu.");
    e.silent().await;
}

#[tokio::test(start_paused = true)]
async fn a_kubelet_rejection_is_an_event_and_a_metric() {
    let mut e = env(true);
    e.node("n1", "8");
    let mut rejected = user("alice", "1");
    rejected["spec"]["nodeName"] = json!("n1");
    rejected["status"] = json!({"phase": "Failed", "reason": "OutOfcpu",
                                "message": "Pod was rejected: Node didn't have enough resource: cpu"});
    e.pod(rejected);
    let ev = next(&mut e.handle, 201, event_reply()).await;
    assert_eq!(ev.body["reason"], "RejectedByKubelet");
    assert_eq!(ev.body["regarding"]["name"], "alice");
    let counted = e
        .ctx
        .metrics
        .kubelet_rejections
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: "out_of_cpu".into(),
        })
        .get();
    assert_eq!(counted, 1);
}

/// The lease lapses and comes back while a pod waits for its claim to be
/// provisioned. The pod is still assumed on its node; it must bind once the claim is Bound,
/// not be dropped as "already bound" with nothing written.
#[tokio::test(start_paused = true)]
async fn a_lease_lapse_and_renewal_mid_provisioning_still_binds_the_pod() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::api::storage::v1::StorageClass;
    let mut e = env_with_gate(LeaderGate::new());
    e.ctx.leader.extend(i64::MAX / 2);
    e.node("n1", "8");
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "wffc"}, "provisioner": "example.com/disk",
        "volumeBindingMode": "WaitForFirstConsumer"}))
    .unwrap();
    e.writers.classes.apply_watcher_event(&Event::Apply(class));
    let claim = |bound: bool| -> PersistentVolumeClaim {
        let mut c = json!({"metadata": {"name": "home", "namespace": "hub"},
            "spec": {"storageClassName": "wffc", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}});
        if bound {
            c["spec"]["volumeName"] = json!("pv-1");
            c["status"] = json!({"phase": "Bound"});
        }
        serde_json::from_value(c).unwrap()
    };
    e.writers
        .claims
        .apply_watcher_event(&Event::Apply(claim(false)));
    let mut pod = user("alice", "1");
    pod["spec"]["volumes"] =
        json!([{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}]);
    e.pod(pod);
    e.ctx.synced.store(
        crate::stores::WATCHED_KINDS,
        std::sync::atomic::Ordering::Release,
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(crate::scheduler_loop::run(e.ctx.clone(), shutdown.clone()));

    let select = next_to(
        &mut e,
        "/api/v1/namespaces/hub/persistentvolumeclaims/home",
        200,
        json!({"apiVersion": "v1",
        "kind": "PersistentVolumeClaim", "metadata": {"name": "home", "namespace": "hub"}}),
    )
    .await;
    assert_eq!(
        select.body["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
        "n1"
    );

    // The lease lapses for a few rounds of the loop, then is renewed.
    e.ctx.leader.revoke();
    tokio::time::sleep(Duration::from_secs(3)).await;
    e.ctx.leader.extend(i64::MAX / 2);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The provisioner binds the claim: the pod binds to the node it was assumed on.
    let bound = claim(true);
    e.writers
        .claims
        .apply_watcher_event(&Event::Apply(bound.clone()));
    watch::on_claim(&e.ctx, Change::Applied(&bound));
    e.ctx.wake.notify_one();
    let bind = next_to(
        &mut e,
        "/api/v1/namespaces/hub/pods/alice/binding",
        201,
        status_ok(),
    )
    .await;
    assert_eq!(bind.path, "/api/v1/namespaces/hub/pods/alice/binding");
    assert_eq!(bind.body["target"]["name"], "n1");
    shutdown.cancel();
    run.await.unwrap();
}

/// Two pods, one static volume: the first decision reserves it (and pre-binds it with the
/// PV's resourceVersion), so the second cannot take it before the watch shows the claimRef.
#[tokio::test(start_paused = true)]
async fn a_static_volume_being_pre_bound_is_reserved_for_its_pod() {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use k8s_openapi::api::storage::v1::StorageClass;
    let mut e = env(true);
    e.node("n1", "8");
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer"}))
    .unwrap();
    e.writers.classes.apply_watcher_event(&Event::Apply(class));
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": "pv-1", "resourceVersion": "5"},
        "spec": {"storageClassName": "local", "capacity": {"storage": "1Gi"},
                 "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}}}))
    .unwrap();
    e.writers.volumes.apply_watcher_event(&Event::Apply(pv));
    for name in ["home-a", "home-b"] {
        let c: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "hub"},
            "spec": {"storageClassName": "local", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap();
        e.writers.claims.apply_watcher_event(&Event::Apply(c));
    }
    for (pod, claim) in [("a", "home-a"), ("b", "home-b")] {
        let mut p = user(pod, "1");
        p["spec"]["volumes"] =
            json!([{"name": "home", "persistentVolumeClaim": {"claimName": claim}}]);
        e.pod(p);
    }
    let first = schedule_one(&e.ctx, pop(&e.ctx)).await;
    assert_eq!(first, Attempt::Provisioning { node: "n1".into() });
    let prebind = next_to(
        &mut e,
        "/api/v1/persistentvolumes/pv-1",
        200,
        json!({"apiVersion": "v1",
        "kind": "PersistentVolume", "metadata": {"name": "pv-1"}}),
    )
    .await;
    assert_eq!(prebind.path, "/api/v1/persistentvolumes/pv-1");
    assert_eq!(prebind.body["metadata"]["resourceVersion"], "5");
    let key = e.ctx.queue().pop(e.ctx.now()).expect("the second pod");
    assert_eq!(key, PodKey::new("hub", "b"));
    let second = schedule_one(&e.ctx, key).await;
    let Attempt::Unschedulable { message } = second else {
        panic!("{second:?}")
    };
    assert!(
        message.contains("didn't find available persistent volumes to bind"),
        "{message}"
    );
}

/// An eviction a PodDisruptionBudget still refuses after every retry is
/// counted, and the preemptor is decided again at once instead of waiting out the timeout.
#[tokio::test(start_paused = true)]
async fn an_eviction_refused_after_its_retries_is_counted_and_the_pod_decided_again() {
    let mut e = env(true);
    e.node("n1", "4");
    e.pod(placeholder("ph-0", "4", "n1"));
    e.pod(user("alice", "2"));
    schedule_one(&e.ctx, pop(&e.ctx)).await;
    let mut evictions = 0;
    while evictions <= crate::actions::evict::RETRIES_ON_429 {
        let seen = next_with(&mut e.handle, |path| {
            if path.ends_with("/eviction") {
                (429, status_err(429, "TooManyRequests"))
            } else if path.ends_with("/events") {
                (201, event_reply())
            } else {
                (200, pod_json("hub", "alice"))
            }
        })
        .await;
        evictions += u32::from(seen.path.ends_with("/eviction"));
    }
    // Drain the nomination's event if it came after the last eviction.
    let _ = tokio::time::timeout(Duration::from_millis(100), async {
        next(&mut e.handle, 201, event_reply()).await
    })
    .await;
    for _ in 0..100 {
        if e.ctx.metrics.evictions_refused.get() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(e.ctx.metrics.evictions_refused.get(), 1);
    let key = e
        .ctx
        .queue()
        .pop(e.ctx.now())
        .expect("woken at once, not after preemption.timeoutSeconds");
    assert_eq!(key, PodKey::new("hub", "alice"));
    let key2 = key.clone();
    let ctx = e.ctx.clone();
    let again = tokio::spawn(async move { schedule_one(&ctx, key2).await });
    // The nomination is abandoned and the pod preempts afresh (the PDB may allow it now).
    preemption_writes_answering_429(&mut e).await;
    assert!(matches!(again.await.unwrap(), Attempt::Preempting { .. }));
    assert_eq!(e.ctx.metrics.preemption_timeouts.get(), 1);
}

async fn preemption_writes_answering_429(e: &mut Env) {
    // Just the first request of the new preemption: its nomination or its eviction.
    next_with(&mut e.handle, |path| {
        if path.ends_with("/eviction") {
            (201, status_ok())
        } else {
            (200, pod_json("hub", "alice"))
        }
    })
    .await;
}

/// While its claim is provisioned the pod says so (condition and Event); when the
/// provisioner removes `selected-node` (its "retry elsewhere"), the pod gives the node up
/// at once, with an Event naming the claim, instead of waiting out the 600 s deadline.
#[tokio::test(start_paused = true)]
async fn a_provisioning_the_provisioner_gives_up_fails_at_once_with_an_event_naming_the_claim() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::api::storage::v1::StorageClass;
    let mut e = env(true);
    e.node("n1", "8");
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "wffc"}, "provisioner": "example.com/disk",
        "volumeBindingMode": "WaitForFirstConsumer"}))
    .unwrap();
    e.writers.classes.apply_watcher_event(&Event::Apply(class));
    let claim = |selected: Option<&str>| -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "home", "namespace": "hub",
                "annotations": selected.map(|n| json!({"volume.kubernetes.io/selected-node": n}))},
            "spec": {"storageClassName": "wffc", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap()
    };
    let apply = |e: &mut Env, c: PersistentVolumeClaim| {
        e.writers
            .claims
            .apply_watcher_event(&Event::Apply(c.clone()));
        watch::on_claim(&e.ctx, Change::Applied(&c));
    };
    apply(&mut e, claim(None));
    let mut pod = user("alice", "1");
    pod["spec"]["volumes"] =
        json!([{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}]);
    e.pod(pod);
    let key = PodKey::new("hub", "alice");
    assert_eq!(
        schedule_one(&e.ctx, pop(&e.ctx)).await,
        Attempt::Provisioning { node: "n1".into() }
    );
    // The select-node write, and the pod's condition saying why it waits, with its Event.
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(
            next_with(&mut e.handle, |p| {
                if p.ends_with("/status") {
                    (200, pod_json("hub", "alice"))
                } else if p.ends_with("/events") {
                    (201, event_reply())
                } else {
                    (
                        200,
                        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": "home", "namespace": "hub"}}),
                    )
                }
            })
            .await,
        );
    }
    let condition = seen
        .iter()
        .find(|s| s.path.ends_with("/status"))
        .expect("a condition");
    let conditions = condition.body["status"]["conditions"].to_string();
    assert!(conditions.contains("WaitingForVolumes"), "{conditions}");
    assert!(conditions.contains("home"), "{conditions}");
    assert!(seen.iter().any(|s| s.path.ends_with("/events")));
    // The cache shows our annotation, then the provisioner takes it away.
    apply(&mut e, claim(Some("n1")));
    assert_eq!(schedule_one(&e.ctx, key.clone()).await, Attempt::Waiting);
    assert!(e.ctx.state().in_flight.get(&key).is_some(), "still waiting");
    apply(&mut e, claim(None));
    assert_eq!(schedule_one(&e.ctx, key.clone()).await, Attempt::Waiting);
    assert!(
        e.ctx.state().in_flight.get(&key).is_none(),
        "gave the node up"
    );
    assert_eq!(e.ctx.state().snapshot.requested("n1").cpu_milli, 0);
    let event = next(&mut e.handle, 201, event_reply()).await;
    assert_eq!(event.body["reason"], "FailedScheduling");
    let note = event.body["note"].as_str().unwrap_or_default().to_string();
    assert!(
        note.contains("\"home\"") && note.contains("removed"),
        "{note}"
    );
}
