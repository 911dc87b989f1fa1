//! The campaign: every Lease write a compare-and-swap on the `resourceVersion` it read.

use super::config::LeaderElectionConfig;
use super::gate::{LeaderGate, lease_valid_until, now_ms};
use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Who campaigns for which Lease, on which terms, and under which field manager (each
/// binary its own, e.g. its name).
#[derive(Debug, Clone)]
pub struct Campaign {
    pub lease_name: String,
    pub identity: String,
    pub duration_seconds: u64,
    pub renew_grace_seconds: u64,
    pub field_manager: String,
}

impl Campaign {
    /// How often the Lease is looked at, at most: twice per renewal window.
    fn period(&self) -> Duration {
        Duration::from_millis((self.renew_grace_seconds * 1000 / 2).max(500))
    }

    fn duration_ms(&self) -> i64 {
        i64::try_from(self.duration_seconds * 1000).unwrap_or(i64::MAX)
    }

    fn grace_ms(&self) -> i64 {
        i64::try_from(self.renew_grace_seconds * 1000).unwrap_or(i64::MAX)
    }
}

/// Runs the election until `shutdown`, keeping `gate` current; releases the lease on exit
/// (only if it is still ours). `field_manager` names this binary's Lease writes.
pub async fn run(
    client: kube::Client,
    cfg: &LeaderElectionConfig,
    namespace: &str,
    identity: &str,
    field_manager: &str,
    gate: &LeaderGate,
    shutdown: CancellationToken,
) -> Result<()> {
    let campaign = Campaign {
        lease_name: cfg.lease_name.clone(),
        identity: identity.to_string(),
        duration_seconds: cfg.lease_duration_seconds,
        renew_grace_seconds: cfg.renew_grace_seconds,
        field_manager: field_manager.to_string(),
    };
    let leases: Api<Lease> = Api::namespaced(client, namespace);
    let (signal, mut leading) = watch::channel(false);
    let stop_campaign = CancellationToken::new();
    let task = tokio::spawn(campaign_loop(
        leases.clone(),
        campaign.clone(),
        signal,
        stop_campaign.clone(),
    ));
    // Re-read the Lease twice per renewal window so a renewal is seen well before the
    // previous deadline passes.
    let poll = campaign.period();
    let mut tenure = Tenure::default();
    let outcome = loop {
        let held = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            changed = leading.changed() => {
                if changed.is_err() {
                    break Err(Error::Lease("the lease campaign ended".into()));
                }
                let now_leading = *leading.borrow_and_update();
                tracing::info!(leading = now_leading, "leadership changed");
                if now_leading {
                    refresh(&leases, &cfg.lease_name, identity, gate, &mut tenure).await
                } else {
                    // The campaign says so only when another replica holds the lease (on
                    // API errors it keeps trying and says nothing).
                    Held::ByOther
                }
            }
            _ = tokio::time::sleep(poll) => {
                if *leading.borrow() {
                    refresh(&leases, &cfg.lease_name, identity, gate, &mut tenure).await
                } else {
                    Held::Unknown
                }
            }
        };
        if held == Held::Reacquired {
            // Lost and won again between two looks (the campaign's channel keeps only its
            // latest value, so a false→true flip can pass unseen): another replica may have
            // acted meanwhile, so what this replica has in flight is stale.
            break Err(Error::LeaseLost(format!(
                "lease {}/{} was acquired anew since this replica last saw it",
                namespace, cfg.lease_name
            )));
        }
        if held == Held::ByOther && gate.leading_until() > 0 {
            // We led, and another replica leads now: fail-stop. What this replica assumed
            // or started is not to be finished by it; a restart begins from fresh caches.
            break Err(Error::LeaseLost(format!(
                "lease {}/{} is held by another replica",
                namespace, cfg.lease_name
            )));
        }
        if held == Held::ByOther {
            gate.revoke();
        }
    };
    // However it ends, the campaign ends with it: a replica that fail-stops must not go on
    // renewing (or retaking) the lease in the background, or its successor never leads.
    gate.revoke();
    stop_campaign.cancel();
    if let Err(e) = task.await {
        tracing::warn!(error = %e, "lease campaign panicked");
    }
    if outcome.is_ok() {
        match release(&leases, &campaign).await {
            Ok(true) => tracing::info!("lease released"),
            Ok(false) => tracing::info!("lease not ours any more: left as it is"),
            Err(e) => tracing::warn!(error = %e, "lease release failed"),
        }
    }
    outcome
}

/// What one look at the Lease decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Ours (renewed if it was due); look again after this long.
    Leading(Duration),
    /// Another replica's, valid; look again after this long (when it expires, at most the
    /// campaign's period).
    NotLeading(Duration),
    /// Not read, or a write lost a race: look again soon, leadership unchanged.
    Unknown,
}

/// Acquires or renews the Lease until `stop`, saying on `leading` whether this replica holds it.
pub(super) async fn campaign_loop(
    leases: Api<Lease>,
    campaign: Campaign,
    leading: watch::Sender<bool>,
    stop: CancellationToken,
) {
    loop {
        let step = campaign_step(&leases, &campaign, now_ms()).await;
        let wait = match step {
            Step::Leading(wait) => {
                leading.send_if_modified(|l| !std::mem::replace(l, true));
                wait
            }
            Step::NotLeading(wait) => {
                leading.send_if_modified(|l| std::mem::replace(l, false));
                wait
            }
            Step::Unknown => campaign.period(),
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait.min(campaign.period())) => {}
        }
    }
}

/// One look at the Lease at `now` (ms): create it, renew it when due, or take it when free or
/// expired, each write conditional on what was read.
pub(super) async fn campaign_step(leases: &Api<Lease>, c: &Campaign, now: i64) -> Step {
    let lease = match leases.get_opt(&c.lease_name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return create_lease(leases, c, now).await,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the lease");
            return Step::Unknown;
        }
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0.as_millisecond());
    let expires = match (renewed, spec.lease_duration_seconds) {
        (Some(r), Some(d)) => r + i64::from(d) * 1000,
        _ => i64::MIN,
    };
    let until = |t: i64| Duration::from_millis(u64::try_from(t - now).unwrap_or(0));
    if holder == Some(c.identity.as_str()) {
        let renew_at = expires.saturating_sub(c.grace_ms());
        if now < renew_at {
            return Step::Leading(until(renew_at));
        }
        let body = serde_json::json!({"spec": {
            "renewTime": micro_time(now),
            "leaseDurationSeconds": c.duration_seconds,
        }});
        return match cas_patch(leases, c, &lease, body).await {
            Ok(()) => Step::Leading(until(now + c.duration_ms() - c.grace_ms())),
            Err(e) => {
                tracing::warn!(error = %e, "renewing the lease failed");
                Step::Unknown
            }
        };
    }
    if holder.is_some() && now < expires {
        return Step::NotLeading(until(expires));
    }
    // Free, or its holder let it expire: take it, unless it changed since read.
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(holder.is_some());
    let body = serde_json::json!({"spec": {
        "holderIdentity": c.identity,
        "acquireTime": micro_time(now),
        "renewTime": micro_time(now),
        "leaseDurationSeconds": c.duration_seconds,
        "leaseTransitions": transitions,
    }});
    match cas_patch(leases, c, &lease, body).await {
        Ok(()) => {
            tracing::info!(previous = ?holder, "lease acquired");
            Step::Leading(until(now + c.duration_ms() - c.grace_ms()))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Step::NotLeading(Duration::ZERO),
        Err(e) => {
            tracing::warn!(error = %e, "taking the lease failed");
            Step::Unknown
        }
    }
}

pub(super) async fn create_lease(leases: &Api<Lease>, c: &Campaign, now: i64) -> Step {
    let spec = serde_json::json!({
        "holderIdentity": c.identity,
        "acquireTime": micro_time(now),
        "renewTime": micro_time(now),
        "leaseDurationSeconds": c.duration_seconds,
        "leaseTransitions": 0,
    });
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(c.lease_name.clone()),
            ..Default::default()
        },
        spec: serde_json::from_value(spec).ok(),
    };
    let params = PostParams {
        field_manager: Some(c.field_manager.clone()),
        ..Default::default()
    };
    match leases.create(&params, &lease).await {
        Ok(_) => {
            tracing::info!("lease created and acquired");
            Step::Leading(Duration::ZERO)
        }
        // Another replica created it first: read it next time.
        Err(kube::Error::Api(s)) if s.code == 409 => Step::NotLeading(Duration::ZERO),
        Err(e) => {
            tracing::warn!(error = %e, "creating the lease failed");
            Step::Unknown
        }
    }
}

/// Gives the lease up if it is still ours: clears the holder, conditional on the Lease being
/// as read. `false` when it was not ours or changed in between (another replica renewed or
/// took it: not ours to clear).
pub(super) async fn release(
    leases: &Api<Lease>,
    c: &Campaign,
) -> std::result::Result<bool, kube::Error> {
    let Some(lease) = leases.get_opt(&c.lease_name).await? else {
        return Ok(false);
    };
    let holder = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref());
    if holder != Some(c.identity.as_str()) {
        return Ok(false);
    }
    let body = serde_json::json!({"spec": {
        "holderIdentity": null,
        "acquireTime": null,
        "renewTime": null,
    }});
    match cas_patch(leases, c, &lease, body).await {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// A merge patch of `body` on `lease`, applied only if the Lease still has the
/// `resourceVersion` it was read with (else 409 Conflict).
pub(super) async fn cas_patch(
    leases: &Api<Lease>,
    c: &Campaign,
    lease: &Lease,
    mut body: serde_json::Value,
) -> std::result::Result<(), kube::Error> {
    body["metadata"] = serde_json::json!({"resourceVersion": lease.metadata.resource_version});
    let params = PatchParams {
        field_manager: Some(c.field_manager.clone()),
        ..Default::default()
    };
    leases
        .patch(&c.lease_name, &params, &Patch::Merge(&body))
        .await
        .map(|_| ())
}

pub(super) fn micro_time(ms: i64) -> serde_json::Value {
    let t = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    serde_json::to_value(MicroTime(t)).unwrap_or(serde_json::Value::Null)
}

/// What a re-read of the Lease says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// Ours, and the deadline was extended (or ours but expired: the manager will renew).
    ByUs,
    ByOther,
    /// Ours, but acquired anew since we led: the tenure changed.
    Reacquired,
    /// Not read (API unreachable) or not asked.
    Unknown,
}

/// The Lease's `acquireTime` of the tenure this replica leads in: set on every
/// acquisition and never on renewal ([`campaign_step`]), so it is the
/// lease's epoch. A different one on re-read means the lease was lost and won again in
/// between, whatever the leadership channel said.
#[derive(Debug, Default)]
pub(super) struct Tenure {
    acquired: Option<i64>,
}

impl Tenure {
    /// Records the acquisition seen on re-read while leading; `false` if it is not the
    /// one recorded before (a new tenure).
    pub(super) fn same(&mut self, acquired: Option<i64>) -> bool {
        match (self.acquired, acquired) {
            (Some(before), Some(now)) if before != now => false,
            (_, Some(now)) => {
                self.acquired = Some(now);
                true
            }
            (_, None) => true,
        }
    }

    /// Not leading: the next tenure starts afresh.
    pub(super) fn reset(&mut self) {
        self.acquired = None;
    }
}

pub(super) async fn refresh(
    leases: &Api<Lease>,
    name: &str,
    identity: &str,
    gate: &LeaderGate,
    tenure: &mut Tenure,
) -> Held {
    match leases.get(name).await {
        Ok(lease) => {
            let holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref());
            if holder.is_some_and(|h| h != identity) {
                tracing::warn!(?holder, "the lease is held by another replica");
                tenure.reset();
                return Held::ByOther;
            }
            let acquired = lease
                .spec
                .as_ref()
                .and_then(|s| s.acquire_time.as_ref())
                .map(|t| t.0.as_millisecond());
            if gate.leading_until() > 0 {
                if !tenure.same(acquired) {
                    return Held::Reacquired;
                }
            } else {
                // Not led yet (or revoked): this tenure is the one to remember.
                tenure.reset();
                tenure.same(acquired);
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
