//! The whole controller as one async function: watches, leader election, calendar
//! fetching, HTTP endpoints and the reconcile loop, until `shutdown` is cancelled; then the
//! lease is released. The binary wraps it with signal handling; e2e tests run it in-process.

use super::apply::Applier;
use super::events::Events;
use super::metrics::Metrics;
use super::reconcile::{self, Context};
use super::watch::{self, WATCHED_KINDS};
use crate::config::Config;
use crate::error::{Error, Result};
use hubpack_scheduler::http::{HttpState, serve};
use hubpack_scheduler::leader::{self, LeaderGate};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub async fn run(
    client: kube::Client,
    config: Config,
    identity: String,
    shutdown: CancellationToken,
) -> Result<()> {
    let sizes = config.pool_sizes()?;
    let namespace = config.namespace();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    let gate = Arc::new(if config.leader_election.enabled {
        LeaderGate::new()
    } else {
        LeaderGate::always()
    });
    let synced = Arc::new(AtomicUsize::new(0));
    let wake = Arc::new(Notify::new());
    let heartbeat = Arc::new(AtomicI64::new(reconcile::now_ms()));
    let (stores, watchers) = watch::spawn_all(
        &client,
        &namespace,
        config.event_config_maps.enabled,
        synced.clone(),
        wake.clone(),
    );
    let ctx = Arc::new(Context {
        applier: Applier::new(client.clone(), namespace.clone()),
        events: Events::new(client.clone(), Some(identity.clone())),
        metrics,
        leader: gate.clone(),
        wake,
        synced: synced.clone(),
        heartbeat: heartbeat.clone(),
        feeds: Default::default(),
        stores,
        sizes,
        namespace: namespace.clone(),
        config: config.clone(),
    });
    let http = tokio::spawn(serve(
        config.metrics_address,
        HttpState {
            registry: Arc::new(registry),
            synced,
            kinds: WATCHED_KINDS,
            heartbeat,
        },
        shutdown.clone(),
    ));
    let election_stop = CancellationToken::new();
    let election = if config.leader_election.enabled {
        let shutdown = shutdown.clone();
        let stop = election_stop.clone();
        let lease_ns = config.lease_namespace();
        let election_cfg = config.election();
        let client = client.clone();
        let identity = identity.clone();
        Some(tokio::spawn(async move {
            let res = leader::run(client, &election_cfg, &lease_ns, &identity, &gate, stop).await;
            if let Err(e) = &res {
                tracing::error!(error = %e, "leader election failed");
                shutdown.cancel();
            }
            res
        }))
    } else {
        None
    };
    let calendars = tokio::spawn(reconcile::calendars(ctx.clone(), shutdown.clone()));
    let reconciler = tokio::spawn(reconcile::run(ctx.clone(), shutdown.clone()));

    shutdown.cancelled().await;
    if let Err(e) = reconciler.await {
        tracing::error!(error = %e, "reconcile loop panicked");
    }
    calendars.abort();
    election_stop.cancel();
    let mut failure = None;
    if let Some(e) = election {
        match e.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(Error::Lease(e.to_string())),
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
