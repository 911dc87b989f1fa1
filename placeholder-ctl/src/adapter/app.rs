//! The whole controller as one async function: watches, leader election, calendar
//! fetching, HTTP endpoints and the reconcile loop, each supervised (see
//! [`hubpack_kube::supervise`]), until `shutdown` is cancelled or one of them ends; then the
//! lease is released. The binary wraps it with signal handling; e2e tests run it in-process.

use super::apply::Applier;
use super::events::Events;
use super::metrics::Metrics;
use super::reconcile::{self, Context};
use super::watch::{self, WATCHED_KINDS};
use crate::config::Config;
use crate::error::{Error, Result};
use hubpack_kube::http::{HttpState, serve};
use hubpack_kube::leader::{self, LeaderGate};
use hubpack_kube::reflect::Signals;
use hubpack_kube::supervise::Supervisor;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
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
    let supervisor = Supervisor::<Error>::new(shutdown.clone());
    // Watches stop after the reconcile loop.
    let background_stop = CancellationToken::new();
    let (stores, watchers) = watch::spawn_all(
        &client,
        &namespace,
        config.event_config_maps.enabled,
        Signals {
            synced: synced.clone(),
            wake: wake.clone(),
        },
        &supervisor,
        &background_stop,
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
        owner: Default::default(),
        pruned_at: AtomicI64::new(0),
        buffers: Default::default(),
        stores,
        sizes,
        namespace: namespace.clone(),
        config: config.clone(),
    });
    registry
        .sub_registry_with_prefix("hubpack_placeholder_ctl")
        .register(
            "api_writes",
            "Writes sent to the API server by kind (applies, deletes, deletion costs)",
            ctx.applier.writes(),
        );
    super::buffer::start(&ctx).await?;
    let http = {
        let state = HttpState {
            registry: Arc::new(registry),
            synced: synced.clone(),
            kinds: WATCHED_KINDS,
            heartbeat,
        };
        let serving = serve(config.metrics_address, state, shutdown.clone());
        supervisor.spawn("http", async move {
            serving
                .await
                .map_err(|e| Error::from(hubpack_kube::Error::Http(e.to_string())))
        })
    };
    let election_stop = CancellationToken::new();
    let election = config.leader_election.enabled.then(|| {
        let stop = election_stop.clone();
        let lease_ns = config.lease_namespace();
        let election_cfg = config.leader_election.clone();
        let client = client.clone();
        let identity = identity.clone();
        let synced = synced.clone();
        supervisor.spawn("leader election", async move {
            // The election starts once every cache is filled: a replica started while the
            // API server is unreachable waits for it with the watches' backoff.
            if !wait_synced(&synced, &stop).await {
                return Ok(());
            }
            leader::run(
                client,
                &election_cfg,
                &lease_ns,
                &identity,
                "hubpack-placeholder-ctl",
                &gate,
                stop,
            )
            .await?;
            Ok(())
        })
    });
    let calendars = supervisor.spawn("calendars", {
        let run = reconcile::calendars(ctx.clone(), shutdown.clone());
        async move {
            run.await;
            Ok(())
        }
    });
    let reconciler = supervisor.spawn("reconcile loop", {
        let run = reconcile::run(ctx.clone(), identity.clone(), shutdown.clone());
        async move {
            run.await;
            Ok(())
        }
    });

    shutdown.cancelled().await;
    let _ = reconciler.await;
    calendars.abort();
    election_stop.cancel();
    if let Some(e) = election {
        let _ = e.await;
    }
    background_stop.cancel();
    for w in watchers {
        let _ = w.await;
    }
    let _ = http.await;
    supervisor.take_failure().map_or(Ok(()), Err)
}

/// Waits until every watched kind has listed once (false: `stop` came first).
async fn wait_synced(synced: &AtomicUsize, stop: &CancellationToken) -> bool {
    let mut logged = false;
    loop {
        if synced.load(Ordering::Acquire) >= WATCHED_KINDS {
            return true;
        }
        if !logged {
            tracing::info!(
                "waiting for the API server (every watch's first list) before the election"
            );
            logged = true;
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_election_waits_for_every_cache_and_gives_up_on_stop() {
        let synced = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let waiting = tokio::spawn({
            let (synced, stop) = (synced.clone(), stop.clone());
            async move { wait_synced(&synced, &stop).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "started before the caches were filled"
        );
        synced.store(WATCHED_KINDS, Ordering::Release);
        assert!(waiting.await.unwrap_or(false));
        let never = Arc::new(AtomicUsize::new(WATCHED_KINDS - 1));
        stop.cancel();
        assert!(!wait_synced(&never, &stop).await);
    }
}
