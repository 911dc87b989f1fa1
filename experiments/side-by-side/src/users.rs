//! The hub, as the users see it: each user arrives at their (compressed) time; JupyterHub
//! refuses a spawn beyond its concurrent spawn limit with a 429 whose Retry-After is drawn
//! from its retry range, and the user clicks again then; a spawn creates the pod after the
//! spawn overhead and fails after the start timeout (the pod is deleted, the user tries again
//! up to `max_attempts`); once Ready the session runs, then the idle culler (every
//! `cull_interval`, idle longer than `cull_timeout`) deletes the pod. The same rules as
//! hubpack-sim's hub model.

use crate::observe::Shared;
use crate::plan::{Plan, Stack};
use crate::stacks::{NAMESPACE, user_pod};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A small deterministic generator for the 429 retry draws (the sessions come from the
/// simulator's seeded arrival model).
fn unit(user: usize, n: u32) -> f64 {
    let mut x = (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(n).wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Starts one task per user; each ends when its server is culled or the user gives up.
pub fn start(
    client: &kube::Client,
    plan: &Plan,
    stack: Stack,
    sessions: &[(Duration, Duration)],
    obs: Shared,
) -> Vec<JoinHandle<()>> {
    let active = Arc::new(AtomicUsize::new(0));
    let t0 = obs.t0;
    sessions
        .iter()
        .enumerate()
        .map(|(user, &(arrival, session))| {
            let (client, plan, obs, active) =
                (client.clone(), plan.clone(), obs.clone(), active.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until((t0 + arrival).into()).await;
                user_life(&client, &plan, stack, user, session, &obs, &active).await;
            })
        })
        .collect()
}

async fn user_life(
    client: &kube::Client,
    plan: &Plan,
    stack: Stack,
    user: usize,
    session: Duration,
    obs: &Shared,
    active: &AtomicUsize,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    obs.arrive(user);
    let mut attempt = 0u32;
    let mut refusals = 0u32;
    loop {
        // The hub's concurrent spawn limit: a 429, the user clicks again after Retry-After.
        let admitted = active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| {
                (a < plan.spawn_limit).then_some(a + 1)
            })
            .is_ok();
        if !admitted {
            refusals += 1;
            let [lo, hi] = plan.throttle_retry;
            let wait = lo + (hi.saturating_sub(lo)).mul_f64(unit(user, refusals));
            tokio::time::sleep(wait).await;
            continue;
        }
        attempt += 1;
        let started = Instant::now();
        tokio::time::sleep(plan.spawn_overhead).await;
        let pod = user_pod(plan, stack, user, attempt);
        let name = pod.metadata.name.clone().unwrap_or_default();
        obs.created(user, attempt);
        if let Err(e) = pods.create(&PostParams::default(), &pod).await {
            eprintln!("creating {name}: {e}");
        }
        let ready = wait_ready(obs, user, started + plan.start_timeout).await;
        active.fetch_sub(1, Ordering::SeqCst);
        if ready {
            break;
        }
        // A failed spawn: the hub deletes the pod; the user tries again, or gives up.
        let _ = pods.delete(&name, &DeleteParams::default()).await;
        if attempt >= plan.max_attempts {
            obs.gave_up(user);
            return;
        }
        tokio::time::sleep(plan.spawn_retry).await;
    }
    // The session, then the culler's first run after the idle timeout.
    let ready_at = Instant::now();
    let due = (ready_at + session + plan.cull_timeout).duration_since(obs.t0);
    let every = plan.cull_interval.max(Duration::from_millis(100));
    let runs = due.as_secs_f64() / every.as_secs_f64();
    let at = obs.t0 + every.mul_f64(runs.ceil());
    tokio::time::sleep_until(at.into()).await;
    let name = format!("jupyter-user-{user}-{attempt}");
    let _ = pods
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await;
}

/// Polls the observer until the user's current pod is Ready or `deadline` passes.
async fn wait_ready(obs: &Shared, user: usize, deadline: Instant) -> bool {
    loop {
        if obs.lock().users[user].ready_s.is_some() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
