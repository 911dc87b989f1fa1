//! Leader election on a Lease (kube-lease-manager), with our own deadline: the crate reports
//! only changes of leadership and keeps believing it leads while the API server is
//! unreachable (rust.md §2), so the gate trusts leadership only until the lease's last
//! observed renewal plus its duration, minus a safety margin, and re-reads the Lease to
//! extend that. A replica that is not leader keeps its caches warm and never writes.

use crate::config::LeaderElectionConfig;
use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::LeaseManagerBuilder;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Stop acting this long before the lease could expire: time for an in-flight bind to
/// leave, and for clock drift between renewals.
pub const SAFETY_MARGIN_MS: i64 = 2_000;

/// Whether this replica may write, as a deadline in wall-clock milliseconds.
#[derive(Debug)]
pub struct LeaderGate {
    leading_until: AtomicI64,
    changed: watch::Sender<bool>,
}

impl LeaderGate {
    pub fn new() -> Self {
        LeaderGate {
            leading_until: AtomicI64::new(0),
            changed: watch::Sender::new(false),
        }
    }

    /// Leader election disabled: always leading.
    pub fn always() -> Self {
        let g = LeaderGate::new();
        g.extend(i64::MAX);
        g
    }

    pub fn is_leading(&self, now_ms: i64) -> bool {
        now_ms < self.leading_until.load(Ordering::Acquire)
    }

    pub fn leading_until(&self) -> i64 {
        self.leading_until.load(Ordering::Acquire)
    }

    /// Trust leadership until `until` (never shortens: use [`Self::revoke`]).
    pub fn extend(&self, until: i64) {
        self.leading_until.fetch_max(until, Ordering::AcqRel);
        self.changed.send_replace(true);
    }

    pub fn revoke(&self) {
        self.leading_until.store(0, Ordering::Release);
        self.changed.send_replace(false);
    }

    /// Notified on every change (for loops that sleep while not leading).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changed.subscribe()
    }
}

impl Default for LeaderGate {
    fn default() -> Self {
        Self::new()
    }
}

/// Until when the Lease lets `identity` act: its renew time plus duration minus the margin,
/// if `identity` holds it.
pub fn lease_valid_until(lease: &Lease, identity: &str) -> Option<i64> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())?
        .0
        .as_millisecond();
    let duration = i64::from(spec.lease_duration_seconds?) * 1000;
    Some(renewed + duration - SAFETY_MARGIN_MS)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Runs the election until `shutdown`, keeping `gate` current; releases the lease on exit.
pub async fn run(
    client: kube::Client,
    cfg: &LeaderElectionConfig,
    namespace: &str,
    identity: &str,
    gate: &LeaderGate,
    shutdown: CancellationToken,
) -> Result<()> {
    let manager = LeaseManagerBuilder::new(client.clone(), &cfg.lease_name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(cfg.lease_duration_seconds)
        .with_grace(cfg.renew_grace_seconds)
        .with_field_manager("hubpack-scheduler")
        .build()
        .await
        .map_err(|e| Error::Lease(e.to_string()))?;
    let (mut leading, task) = manager.watch().await;
    let leases: Api<Lease> = Api::namespaced(client, namespace);
    // Re-read the Lease twice per renewal window so a renewal is seen well before the
    // previous deadline passes.
    let poll = Duration::from_millis((cfg.renew_grace_seconds * 1000 / 2).max(500));
    loop {
        let held = tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = leading.changed() => {
                if changed.is_err() {
                    gate.revoke();
                    return Err(Error::Lease("lease manager task ended".into()));
                }
                let now_leading = *leading.borrow_and_update();
                tracing::info!(leading = now_leading, "leadership changed");
                if now_leading {
                    refresh(&leases, &cfg.lease_name, identity, gate).await
                } else {
                    // The manager says so only when another replica holds the lease (on
                    // API errors it keeps trying and says nothing).
                    Held::ByOther
                }
            }
            _ = tokio::time::sleep(poll) => {
                if *leading.borrow() {
                    refresh(&leases, &cfg.lease_name, identity, gate).await
                } else {
                    Held::Unknown
                }
            }
        };
        if held == Held::ByOther && gate.leading_until() > 0 {
            // We led, and another replica leads now: fail-stop. What this replica assumed
            // or started is not to be finished by it; a restart begins from fresh caches.
            gate.revoke();
            return Err(Error::LeaseLost(format!(
                "lease {}/{} is held by another replica",
                namespace, cfg.lease_name
            )));
        }
        if held == Held::ByOther {
            gate.revoke();
        }
    }
    gate.revoke();
    // Dropping the receiver makes the manager release the lease and return.
    drop(leading);
    match task.await {
        Ok(Ok(_)) => tracing::info!("lease released"),
        Ok(Err(e)) => tracing::warn!(error = %e, "lease release failed"),
        Err(e) => tracing::warn!(error = %e, "lease task panicked"),
    }
    Ok(())
}

/// What a re-read of the Lease says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Ours, and the deadline was extended (or ours but expired: the manager will renew).
    ByUs,
    ByOther,
    /// Not read (API unreachable) or not asked.
    Unknown,
}

async fn refresh(leases: &Api<Lease>, name: &str, identity: &str, gate: &LeaderGate) -> Held {
    match leases.get(name).await {
        Ok(lease) => {
            let holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref());
            if holder.is_some_and(|h| h != identity) {
                tracing::warn!(?holder, "the lease is held by another replica");
                return Held::ByOther;
            }
            match lease_valid_until(&lease, identity) {
                Some(until) if until > now_ms() => gate.extend(until),
                // Ours but not renewed in time (the API was away): writes pause until the
                // manager renews it.
                _ => tracing::warn!("our lease is past its deadline on re-read; pausing"),
            }
            Held::ByUs
        }
        // Unreachable API: the old deadline stands and runs out by itself.
        Err(e) => {
            tracing::warn!(error = %e, "cannot re-read the lease");
            Held::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lease(holder: &str, renew: &str) -> Lease {
        serde_json::from_value(json!({"metadata": {"name": "l"},
            "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": 15}}))
        .unwrap()
    }

    #[test]
    fn valid_until_renewal_plus_duration_minus_margin() {
        let l = lease("me", "2026-01-01T00:00:00.000000Z");
        let t0 = "2026-01-01T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        assert_eq!(
            lease_valid_until(&l, "me"),
            Some(t0 + 15_000 - SAFETY_MARGIN_MS)
        );
        assert_eq!(lease_valid_until(&l, "other"), None);
    }

    #[test]
    fn the_gate_closes_at_its_deadline_and_on_revoke() {
        let g = LeaderGate::new();
        assert!(!g.is_leading(0));
        g.extend(1_000);
        assert!(g.is_leading(999));
        assert!(
            !g.is_leading(1_000),
            "no write once the deadline passed, even without a signal"
        );
        g.extend(500);
        assert_eq!(g.leading_until(), 1_000, "extend never shortens");
        g.revoke();
        assert!(!g.is_leading(0));
        assert!(LeaderGate::always().is_leading(i64::MAX - 1));
    }
}
