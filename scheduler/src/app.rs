//! The whole scheduler as one async function: watches, leader election, HTTP endpoints and
//! the scheduling loop, until `shutdown` is cancelled; then in-flight binds finish and the
//! lease is released. The binary wraps it with signal handling; end-to-end tests run it
//! in-process.

use crate::config::Config;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::http::{HttpState, serve};
use crate::leader::{self, LeaderGate};
use crate::metrics::Metrics;
use crate::{scheduler_loop, watch};
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
    let (stores, writers) = watch::stores();
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        stores,
        gate,
        metrics,
        Some(identity.clone()),
    ));
    let watchers = watch::spawn_all(&ctx, writers);

    let http = tokio::spawn(serve(
        config.metrics_address,
        HttpState {
            registry: Arc::new(registry),
            synced: ctx.synced.clone(),
            kinds: watch::WATCHED_KINDS,
        },
        shutdown.clone(),
    ));
    // The election stops only after the binds have drained: stopping it releases the lease,
    // and a bind written after that could race a new leader's.
    let election_stop = CancellationToken::new();
    let election = if config.leader_election.enabled {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let election_stop = election_stop.clone();
        let namespace = config.lease_namespace();
        let identity = identity.clone();
        Some(tokio::spawn(async move {
            let res = leader::run(
                client,
                &ctx.config.leader_election,
                &namespace,
                &identity,
                &ctx.leader,
                election_stop,
            )
            .await;
            if let Err(e) = &res {
                // Without an election we can never act again: stop, and let a restart
                // begin anew.
                tracing::error!(error = %e, "leader election failed");
                shutdown.cancel();
            }
            res
        }))
    } else {
        None
    };
    let sched = tokio::spawn(scheduler_loop::run(ctx.clone(), shutdown.clone()));

    shutdown.cancelled().await;
    // First stop binding and let in-flight binds finish, then give the lease back.
    if let Err(e) = sched.await {
        tracing::error!(error = %e, "scheduling loop panicked");
    }
    election_stop.cancel();
    let mut failure = None;
    if let Some(e) = election {
        match e.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(Error::Lease(format!("election task: {e}"))),
        }
    }
    for w in watchers {
        w.abort();
    }
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failure = Some(Error::Http(e.to_string())),
        Err(e) => tracing::warn!(error = %e, "metrics server task"),
    }
    failure.map_or(Ok(()), Err)
}
