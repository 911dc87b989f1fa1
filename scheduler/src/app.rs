//! The whole scheduler as one async function: watches, leader election, HTTP endpoints and
//! the scheduling loop, each supervised (see [`hubpack_kube::supervise`]), until `shutdown` is
//! cancelled or one of them ends; then in-flight binds finish and the lease is released.
//! The binary wraps it with signal handling; end-to-end tests run it in-process.
//!
//! Fail-stop, like kube-scheduler: losing the lease to another replica ends the election
//! task with [`hubpack_kube::Error::LeaseLost`], which stops the replica with an error (the Deployment
//! restarts it, with empty caches and no assumptions left over from its term).

use crate::config::Config;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::{scheduler_loop, watch};
use hubpack_kube::http::{HttpState, serve};
use hubpack_kube::leader::{self, LeaderGate};
use hubpack_kube::supervise::Supervisor;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn run(
    client: kube::Client,
    config: Config,
    identity: String,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    let gate = if config.leader_election.enabled {
        LeaderGate::new()
    } else {
        LeaderGate::always()
    };
    let (stores, writers) = crate::stores::stores();
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        stores,
        gate,
        metrics,
        Some(identity.clone()),
    ));
    let supervisor = Supervisor::<Error>::new(shutdown.clone());
    // Watches and the write lanes stop last: the loop's drain needs neither, but a write
    // still queued may need the lanes.
    let background_stop = CancellationToken::new();
    let watchers = watch::spawn_all(&ctx, writers, &supervisor, &background_stop);
    let lanes = [supervisor.spawn(
        "status lane",
        crate::status_worker::run(ctx.clone(), background_stop.clone()),
    )];

    let http = {
        let state = HttpState {
            registry: Arc::new(registry),
            synced: ctx.synced.clone(),
            kinds: crate::stores::WATCHED_KINDS,
            heartbeat: ctx.heartbeat.clone(),
        };
        let serving = serve(config.metrics_address, state, shutdown.clone());
        supervisor.spawn("http", async move {
            serving
                .await
                .map_err(|e| Error::from(hubpack_kube::Error::Http(e.to_string())))
        })
    };
    // The election stops only after the binds have drained: stopping it releases the lease,
    // and a bind written after that could race a new leader's.
    let election_stop = CancellationToken::new();
    let election = config.leader_election.enabled.then(|| {
        let ctx = ctx.clone();
        let election_stop = election_stop.clone();
        let namespace = config.lease_namespace();
        let identity = identity.clone();
        supervisor.spawn("leader election", async move {
            leader::run(
                client,
                &ctx.config.leader_election,
                &namespace,
                &identity,
                "hubpack-scheduler",
                &ctx.leader,
                election_stop,
            )
            .await?;
            Ok(())
        })
    });
    let sched = supervisor.spawn("scheduling loop", {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        async move {
            scheduler_loop::run(ctx, shutdown).await;
            Ok(())
        }
    });

    shutdown.cancelled().await;
    // First stop deciding and let in-flight binds finish, then give the lease back.
    let _ = sched.await;
    scheduler_loop::drain_binds(&ctx).await;
    election_stop.cancel();
    if let Some(e) = election {
        let _ = e.await;
    }
    ctx.leader.revoke();
    background_stop.cancel();
    for t in watchers.into_iter().chain(lanes) {
        let _ = t.await;
    }
    let _ = http.await;
    supervisor.take_failure().map_or(Ok(()), Err)
}
