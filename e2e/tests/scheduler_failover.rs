//! Two hubpack-scheduler replicas with leader election; the leader crashes in the middle of a
//! burst. The standby must take over within lease duration + retry period + 5 s, nobody may
//! bind while the dead leader's lease is still valid, and when the burst settles every pod
//! that fits is bound, no node is over its allocatable, and no pod is bound twice or where it
//! does not fit. And a graceful stop mid-burst hands over without overlap.

#![allow(clippy::unwrap_used)] // a test binary

mod common;
#[path = "common/replica.rs"]
mod replica;

use common::{Burst, DISRUPT_AFTER, FITTING, LEASE_DURATION, WAIT};
use hubpack_e2e::harness;
use k8s_openapi::api::coordination::v1::Lease;
use replica::Replica;
use std::time::{Duration, Instant};

/// A standby looks again when the lease it last read expires (or after half the renew grace,
/// whichever is first) and takes it then; this plays client-go's retry period, with room for
/// a loaded machine.
const RETRY_PERIOD: Duration = Duration::from_secs(1);
/// The bound on a takeover, from the crash to the standby's first bind.
const TAKEOVER_BOUND: Duration = LEASE_DURATION
    .saturating_add(RETRY_PERIOD)
    .saturating_add(Duration::from_secs(5));
/// A killed process's requests already on the wire land within this; after it, any new bind
/// is the standby's. Shorter than the dead lease's remaining life (at least the renew
/// grace), so the standby cannot have taken over yet.
const IN_FLIGHT_SETTLE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_crashes_mid_burst_and_the_burst_ends_consistent() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let burst = Burst::setup(&client, "failover").await;
    let lease = harness::unique_name("lease");
    let config = burst.config(&lease);
    let a = Replica::start(cluster, config.clone(), format!("{}-a", burst.scheduler));
    let b = Replica::start(cluster, config, format!("{}-b", burst.scheduler));

    // A leader first, so that the burst is being bound when the crash comes.
    let leader = hubpack_e2e::wait::until("a lease holder", WAIT, || async {
        let lease = common::read_lease(&client, &burst.ns, &lease)
            .await
            .ok()??;
        common::holder(&lease).map(str::to_string)
    })
    .await
    .unwrap();
    burst.create_all().await;
    burst.wait_bound_at_least(DISRUPT_AFTER).await;
    let (dead_replica, standby) = if leader == a.identity { (a, b) } else { (b, a) };
    assert_eq!(
        dead_replica.identity, leader,
        "holder {leader} is neither replica"
    );
    let before = common::read_lease(&client, &burst.ns, &lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        common::holder(&before),
        Some(leader.as_str()),
        "leadership moved before the crash (the leader: {}; the standby: {})",
        dead_replica.exited().unwrap_or_else(|| "running".into()),
        standby.exited().unwrap_or_else(|| "running".into()),
    );
    let standby_id = standby.identity.clone();
    let dead = leader.clone();

    let crashed_at = Instant::now();
    dead_replica.crash().unwrap();
    tokio::time::sleep(IN_FLIGHT_SETTLE).await;
    let bound_after_crash = burst.bound().await.unwrap();
    assert!(
        bound_after_crash < FITTING,
        "the burst was over before the crash ({bound_after_crash} bound): nothing left to take over"
    );

    // Until the standby binds: the dead leader's lease must stand until it expires (a crash
    // releases nothing), and nobody may bind without the lease.
    let mut dead_renewed = renewed(&before);
    let first_bind = loop {
        assert!(
            crashed_at.elapsed() <= TAKEOVER_BOUND,
            "no bind by the standby within lease + retry + 5 s ({TAKEOVER_BOUND:?}) of the crash{}",
            standby
                .exited()
                .map(|how| format!(" (the standby {how})"))
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Pods first, then the lease: a bind seen here happened before the lease is read.
        let Ok(bound) = burst.bound().await else {
            continue;
        };
        let Ok(Some(lease)) = common::read_lease(&client, &burst.ns, &lease).await else {
            continue;
        };
        let holder = common::holder(&lease);
        if holder == Some(dead.as_str()) {
            // A renewal that was in flight at the crash may land: the lease lasts from it.
            dead_renewed = dead_renewed.max(renewed(&lease));
        }
        if holder.is_none() {
            // The standby clears an expired lease before it takes it; before the expiry an
            // empty holder can only be the dead leader's release.
            assert!(
                jiff::Timestamp::now() >= dead_renewed + LEASE_DURATION,
                "the lease was released before it expired: the crash ran a shutdown path"
            );
        }
        if bound > bound_after_crash {
            assert_eq!(
                holder,
                Some(standby_id.as_str()),
                "pods were bound while the standby did not hold the lease"
            );
            break crashed_at.elapsed();
        }
    };
    assert!(
        first_bind <= TAKEOVER_BOUND,
        "first bind {first_bind:?} after the crash"
    );

    eprintln!(
        "crash with {bound_after_crash}/{FITTING} bound; the standby's first bind {first_bind:?} after it"
    );
    burst.check_end_state().await;
    let stopped = tokio::task::spawn_blocking(move || standby.stop()).await;
    stopped.unwrap().unwrap();
}

/// When the lease was last renewed (or acquired).
fn renewed(lease: &Lease) -> jiff::Timestamp {
    let spec = lease.spec.as_ref().unwrap();
    let time = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
    time.unwrap().0
}

/// A graceful stop mid-burst (SIGTERM's path) hands over without overlap: the old leader
/// finishes its in-flight binds while it still holds the lease and releases it only then, so
/// none of its binds lands after the standby took the lease. The write rate is low enough that
/// the burst outlasts the 10 s bind drain, so the standby has pods left to bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_mid_burst_binds_nothing_once_the_standby_holds_the_lease() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let burst = Burst::setup(&client, "handover").await;
    let lease = harness::unique_name("lease");
    let mut config = burst.config(&lease);
    config.api.qps = 3.0;
    let a = Replica::start(cluster, config.clone(), format!("{}-a", burst.scheduler));
    let b = Replica::start(cluster, config, format!("{}-b", burst.scheduler));
    let leader = hubpack_e2e::wait::until("a lease holder", WAIT, || async {
        let lease = common::read_lease(&client, &burst.ns, &lease)
            .await
            .ok()??;
        common::holder(&lease).map(str::to_string)
    })
    .await
    .unwrap();
    let (old, standby) = if leader == a.identity { (a, b) } else { (b, a) };
    burst.create_all().await;
    burst.wait_bound_at_least(DISRUPT_AFTER).await;
    let stopping = tokio::task::spawn_blocking(move || old.stop());

    // The pods bound when the standby is first seen holding the lease (lease first, then
    // pods: every bind before the takeover is in this set).
    let bound_at_takeover =
        hubpack_e2e::wait::until("the standby holds the lease", WAIT, || async {
            if let Some(how) = standby.exited() {
                panic!("the standby {} {how}", standby.identity);
            }
            let lease = common::read_lease(&client, &burst.ns, &lease)
                .await
                .ok()??;
            if common::holder(&lease) != Some(standby.identity.as_str()) {
                return None;
            }
            burst.bound_names().await.ok()
        })
        .await
        .unwrap();
    stopping.await.unwrap().unwrap();
    assert!(
        bound_at_takeover.len() < FITTING,
        "the old leader finished the burst: nothing shows an overlap"
    );
    burst.check_end_state().await;
    let late = burst
        .scheduled_by(&leader)
        .await
        .into_iter()
        .filter(|pod| !bound_at_takeover.contains(pod))
        .collect::<Vec<_>>();
    assert!(
        late.is_empty(),
        "the old leader bound {late:?} after the standby took the lease"
    );
    tokio::task::spawn_blocking(move || standby.stop())
        .await
        .unwrap()
        .unwrap();
}
