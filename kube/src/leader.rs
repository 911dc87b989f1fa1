//! Leader election on a Lease, with our own deadline: the campaign reports only changes of
//! leadership and keeps believing it leads while the API server is unreachable (see
//! docs/design.md), so the gate trusts leadership only until the lease's last observed
//! renewal plus its duration, minus a safety margin, and re-reads the Lease to extend that. A
//! replica that is not leader keeps its caches warm and never writes.
//!
//! Every Lease write is a compare-and-swap: a merge patch carrying the `resourceVersion` it
//! was decided on, so a write decided on a stale read (a standby taking a lease the leader
//! just renewed, a release after another replica took over) fails with a conflict instead of
//! clearing someone else's lease. Merge patches are Update operations: they never conflict
//! with fields another field manager owns, so each binary writes under its own manager.
//!
//! [`LeaderElectionConfig`] is the one config both binaries embed (under their own key) and
//! [`LeaderElectionConfig::validate`] its one validation.

use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde::{Deserialize, Deserializer};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Stop acting this long before the lease could expire: time for an in-flight bind to
/// leave, and for clock drift between renewals.
pub const SAFETY_MARGIN_MS: i64 = 2_000;

/// Longest lease duration accepted: longer ones are mistakes (and would overflow
/// millisecond arithmetic).
const MAX_LEASE_DURATION_SECONDS: u64 = 86_400;

/// Leader election settings (YAML, camelCase keys, unknown keys rejected). Each binary has
/// its own default Lease name: it deserializes the field with
/// [`LeaderElectionConfig::deserialize_named`] and defaults it with
/// [`LeaderElectionConfig::named`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub lease_name: String,
    /// The Lease's namespace; when unset, the binary's default (e.g. `$POD_NAMESPACE`).
    pub namespace: Option<String>,
    pub lease_duration_seconds: u64,
    /// Renew this long before the lease expires; writes stop this long before expiry too.
    pub renew_grace_seconds: u64,
}

/// The keys a config file may set; missing ones keep the binary's defaults.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LeaderElectionFields {
    enabled: Option<bool>,
    lease_name: Option<String>,
    namespace: Option<String>,
    lease_duration_seconds: Option<u64>,
    renew_grace_seconds: Option<u64>,
}

/// Why a [`LeaderElectionConfig`] is refused: the field (its full path in the binary's
/// config), the problem, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config field `{field}` {problem}; fix: {fix}")]
pub struct InvalidElection {
    pub field: String,
    pub problem: String,
    pub fix: &'static str,
}

impl LeaderElectionConfig {
    /// Enabled, on the Lease `lease_name`, 15 s long, renewed 5 s before it expires
    /// (kube-scheduler's defaults).
    pub fn named(lease_name: &str) -> Self {
        LeaderElectionConfig {
            enabled: true,
            lease_name: lease_name.into(),
            namespace: None,
            lease_duration_seconds: 15,
            renew_grace_seconds: 5,
        }
    }

    /// Deserializes the settings a config file gives; the others are those of
    /// [`Self::named`]`(default_lease_name)`. For a `#[serde(deserialize_with)]` helper.
    pub fn deserialize_named<'de, D>(
        deserializer: D,
        default_lease_name: &str,
    ) -> std::result::Result<Self, D::Error>
    where
        D: Deserializer<'de>,
    {
        let f = LeaderElectionFields::deserialize(deserializer)?;
        let d = Self::named(default_lease_name);
        Ok(LeaderElectionConfig {
            enabled: f.enabled.unwrap_or(d.enabled),
            lease_name: f.lease_name.unwrap_or(d.lease_name),
            namespace: f.namespace.or(d.namespace),
            lease_duration_seconds: f.lease_duration_seconds.unwrap_or(d.lease_duration_seconds),
            renew_grace_seconds: f.renew_grace_seconds.unwrap_or(d.renew_grace_seconds),
        })
    }

    /// Checks the settings; `key` is where they sit in the binary's config (e.g.
    /// `leaderElection`), so errors name the field as the operator wrote it.
    pub fn validate(&self, key: &str) -> std::result::Result<(), InvalidElection> {
        let invalid = |field: &str, problem: String, fix| {
            Err(InvalidElection {
                field: format!("{key}.{field}"),
                problem,
                fix,
            })
        };
        if self.lease_duration_seconds > MAX_LEASE_DURATION_SECONDS {
            return invalid(
                "leaseDurationSeconds",
                format!(
                    "({}) is above a day ({MAX_LEASE_DURATION_SECONDS} s)",
                    self.lease_duration_seconds
                ),
                "use a duration in seconds below a day",
            );
        }
        if !self.enabled {
            return Ok(());
        }
        if self.lease_name.trim().is_empty() {
            return invalid(
                "leaseName",
                "is empty".into(),
                "name the Lease object, e.g. the binary's name",
            );
        }
        let margin = u64::try_from(SAFETY_MARGIN_MS / 1000).unwrap_or(2);
        if self.lease_duration_seconds <= margin {
            return invalid(
                "leaseDurationSeconds",
                format!(
                    "({}) is {margin} s or less: the lease would be past its safety margin as soon as it is renewed",
                    self.lease_duration_seconds
                ),
                "use e.g. 15 (kube-scheduler's default)",
            );
        }
        if self.renew_grace_seconds >= self.lease_duration_seconds {
            return invalid(
                "renewGraceSeconds",
                format!(
                    "({}) is not below leaseDurationSeconds ({})",
                    self.renew_grace_seconds, self.lease_duration_seconds
                ),
                "make renewGraceSeconds smaller than leaseDurationSeconds, e.g. 5 and 15",
            );
        }
        if self.renew_grace_seconds == 0 {
            return invalid(
                "renewGraceSeconds",
                "is 0: the lease would expire before it is renewed".into(),
                "use at least 1, e.g. 5",
            );
        }
        Ok(())
    }
}

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
    loop {
        let held = tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = leading.changed() => {
                if changed.is_err() {
                    gate.revoke();
                    return Err(Error::Lease("the lease campaign ended".into()));
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
            gate.revoke();
            return Err(Error::LeaseLost(format!(
                "lease {}/{} was acquired anew since this replica last saw it",
                namespace, cfg.lease_name
            )));
        }
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
    stop_campaign.cancel();
    if let Err(e) = task.await {
        tracing::warn!(error = %e, "lease campaign panicked");
    }
    match release(&leases, &campaign).await {
        Ok(true) => tracing::info!("lease released"),
        Ok(false) => tracing::info!("lease not ours any more: left as it is"),
        Err(e) => tracing::warn!(error = %e, "lease release failed"),
    }
    Ok(())
}

/// What one look at the Lease decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Ours (renewed if it was due); look again after this long.
    Leading(Duration),
    /// Another replica's, valid; look again after this long (when it expires, at most the
    /// campaign's period).
    NotLeading(Duration),
    /// Not read, or a write lost a race: look again soon, leadership unchanged.
    Unknown,
}

/// Acquires or renews the Lease until `stop`, saying on `leading` whether this replica holds it.
async fn campaign_loop(
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
async fn campaign_step(leases: &Api<Lease>, c: &Campaign, now: i64) -> Step {
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

async fn create_lease(leases: &Api<Lease>, c: &Campaign, now: i64) -> Step {
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
async fn release(leases: &Api<Lease>, c: &Campaign) -> std::result::Result<bool, kube::Error> {
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
async fn cas_patch(
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

fn micro_time(ms: i64) -> serde_json::Value {
    let t = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    serde_json::to_value(MicroTime(t)).unwrap_or(serde_json::Value::Null)
}

/// What a re-read of the Lease says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
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
struct Tenure {
    acquired: Option<i64>,
}

impl Tenure {
    /// Records the acquisition seen on re-read while leading; `false` if it is not the
    /// one recorded before (a new tenure).
    fn same(&mut self, acquired: Option<i64>) -> bool {
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
    fn reset(&mut self) {
        self.acquired = None;
    }
}

async fn refresh(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lease(holder: &str, renew: &str) -> Lease {
        serde_json::from_value(json!({"metadata": {"name": "l"},
            "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": 15}}))
        .unwrap()
    }

    use crate::test_support::{mock_client, next, status_err};

    fn campaign(identity: &str, field_manager: &str) -> Campaign {
        Campaign {
            lease_name: "l".into(),
            identity: identity.into(),
            duration_seconds: 15,
            renew_grace_seconds: 5,
            field_manager: field_manager.into(),
        }
    }

    /// The Lease as the API server returns it: `holder`, renewed at `renewed_ms`, at `rv`.
    fn stored(holder: Option<&str>, renewed_ms: i64, rv: &str) -> serde_json::Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "ns", "resourceVersion": rv},
            "spec": {"holderIdentity": holder, "renewTime": micro_time(renewed_ms),
                     "acquireTime": micro_time(renewed_ms), "leaseDurationSeconds": 15,
                     "leaseTransitions": 1}})
    }

    #[tokio::test]
    async fn a_release_after_another_replica_renewed_leaves_the_lease_alone() {
        let (client, mut handle) = mock_client();
        let leases: Api<Lease> = Api::namespaced(client, "ns");
        let c = campaign("me", "hubpack-scheduler");
        // Held by another replica by the time we read it: no write at all.
        let releasing = tokio::spawn({
            let (leases, c) = (leases.clone(), c.clone());
            async move { release(&leases, &c).await }
        });
        let get = next(&mut handle, 200, stored(Some("other"), now_ms(), "7")).await;
        assert_eq!(get.method, "GET");
        assert!(!releasing.await.unwrap().unwrap(), "not ours: not released");

        // Ours when read, renewed by another replica before our write: the write is
        // conditional on what was read, so it loses and nothing is retried.
        let releasing = tokio::spawn({
            let (leases, c) = (leases.clone(), c.clone());
            async move { release(&leases, &c).await }
        });
        next(&mut handle, 200, stored(Some("me"), now_ms(), "7")).await;
        let patch = next(&mut handle, 409, status_err(409, "Conflict")).await;
        assert_eq!(patch.method, "PATCH");
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert_eq!(patch.body["metadata"]["resourceVersion"], "7");
        assert_eq!(
            patch.body["spec"]["holderIdentity"],
            serde_json::Value::Null
        );
        assert!(
            !releasing.await.unwrap().unwrap(),
            "lost the race: not released"
        );
    }

    #[tokio::test]
    async fn a_standby_takes_an_expired_lease_only_as_it_read_it() {
        let (client, mut handle) = mock_client();
        let leases: Api<Lease> = Api::namespaced(client, "ns");
        let c = campaign("standby", "hubpack-scheduler");
        let now = now_ms();
        // Valid: left alone, and looked at again when it expires.
        let stepping = tokio::spawn({
            let (leases, c) = (leases.clone(), c.clone());
            async move { campaign_step(&leases, &c, now).await }
        });
        next(&mut handle, 200, stored(Some("leader"), now - 1_000, "3")).await;
        assert_eq!(
            stepping.await.unwrap(),
            Step::NotLeading(Duration::from_millis(14_000))
        );
        // Expired as read; the leader renews before our write lands: we lose, it keeps it.
        let stepping = tokio::spawn({
            let (leases, c) = (leases.clone(), c.clone());
            async move { campaign_step(&leases, &c, now).await }
        });
        next(&mut handle, 200, stored(Some("leader"), now - 20_000, "4")).await;
        let patch = next(&mut handle, 409, status_err(409, "Conflict")).await;
        assert_eq!(patch.body["metadata"]["resourceVersion"], "4");
        assert_eq!(patch.body["spec"]["holderIdentity"], "standby");
        assert_eq!(patch.body["spec"]["leaseTransitions"], 2);
        assert!(matches!(stepping.await.unwrap(), Step::NotLeading(_)));
    }

    #[tokio::test]
    async fn the_holder_renews_when_due_under_its_own_field_manager() {
        let (client, mut handle) = mock_client();
        let leases: Api<Lease> = Api::namespaced(client, "ns");
        let c = campaign("ctl-0", "hubpack-placeholder-ctl");
        let now = now_ms();
        // Renewed by the scheduler's field manager (e.g. before an upgrade), as an apply:
        // a merge patch is an Update, which never conflicts with another manager's fields.
        let mut lease = stored(Some("ctl-0"), now - 11_000, "9");
        lease["metadata"]["managedFields"] = json!([{"manager": "hubpack-scheduler",
            "operation": "Apply", "apiVersion": "coordination.k8s.io/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:holderIdentity": {}}}}]);
        let stepping = tokio::spawn({
            let (leases, c) = (leases.clone(), c.clone());
            async move { campaign_step(&leases, &c, now).await }
        });
        next(&mut handle, 200, lease.clone()).await;
        let patch = next(&mut handle, 200, lease).await;
        assert_eq!(patch.method, "PATCH");
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert!(
            patch.query.contains("fieldManager=hubpack-placeholder-ctl"),
            "{}",
            patch.query
        );
        assert_eq!(patch.body["metadata"]["resourceVersion"], "9");
        assert_eq!(patch.body["spec"]["renewTime"], micro_time(now));
        assert!(
            patch.body["spec"].get("holderIdentity").is_none(),
            "a renewal keeps the holder and acquireTime"
        );
        assert_eq!(
            stepping.await.unwrap(),
            Step::Leading(Duration::from_millis(10_000))
        );
        // Not due yet: no write.
        let stepping = tokio::spawn({
            let (leases, c) = (leases.clone(), c.clone());
            async move { campaign_step(&leases, &c, now).await }
        });
        next(&mut handle, 200, stored(Some("ctl-0"), now - 2_000, "10")).await;
        assert_eq!(
            stepping.await.unwrap(),
            Step::Leading(Duration::from_millis(8_000))
        );
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_by_its_field_manager() {
        let (client, mut handle) = mock_client();
        let leases: Api<Lease> = Api::namespaced(client, "ns");
        let c = campaign("ctl-0", "hubpack-placeholder-ctl");
        let stepping = tokio::spawn({
            let (leases, c) = (leases.clone(), c.clone());
            async move { campaign_step(&leases, &c, now_ms()).await }
        });
        next(&mut handle, 404, status_err(404, "NotFound")).await;
        let create = next(&mut handle, 201, stored(Some("ctl-0"), now_ms(), "1")).await;
        assert_eq!(create.method, "POST");
        assert!(
            create
                .query
                .contains("fieldManager=hubpack-placeholder-ctl")
        );
        assert_eq!(create.body["spec"]["holderIdentity"], "ctl-0");
        assert!(matches!(stepping.await.unwrap(), Step::Leading(_)));
    }

    #[test]
    fn a_lease_acquired_anew_is_a_new_tenure_however_the_signal_read() {
        let mut t = Tenure::default();
        assert!(t.same(Some(1_000)), "the first tenure seen");
        assert!(t.same(Some(1_000)), "renewals keep acquireTime");
        assert!(t.same(None), "not said: nothing to compare");
        assert!(!t.same(Some(9_000)), "lost and won again in between");
        t.reset();
        assert!(
            t.same(Some(9_000)),
            "after a reset, the next tenure is recorded"
        );
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

    fn parse(yaml: &str) -> std::result::Result<LeaderElectionConfig, serde_saphyr::Error> {
        struct Named(LeaderElectionConfig);
        impl<'de> Deserialize<'de> for Named {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                LeaderElectionConfig::deserialize_named(d, "my-lease").map(Named)
            }
        }
        serde_saphyr::from_str::<Named>(yaml).map(|n| n.0)
    }

    #[test]
    fn missing_keys_keep_the_binarys_defaults_and_unknown_keys_are_refused() {
        let c = parse("{leaseDurationSeconds: 20}").unwrap();
        assert_eq!(
            c,
            LeaderElectionConfig {
                lease_duration_seconds: 20,
                ..LeaderElectionConfig::named("my-lease")
            }
        );
        let e = parse("{leaseNmae: x}").unwrap_err();
        assert!(e.to_string().contains("leaseNmae"), "{e}");
    }

    #[test]
    fn invalid_settings_name_the_field_under_the_binarys_key() {
        let base = LeaderElectionConfig::named("l");
        let cases = [
            (
                LeaderElectionConfig {
                    lease_name: " ".into(),
                    ..base.clone()
                },
                "election.leaseName",
            ),
            (
                LeaderElectionConfig {
                    lease_duration_seconds: 2,
                    renew_grace_seconds: 1,
                    ..base.clone()
                },
                "election.leaseDurationSeconds",
            ),
            (
                LeaderElectionConfig {
                    lease_duration_seconds: 5,
                    ..base.clone()
                },
                "election.renewGraceSeconds",
            ),
            (
                LeaderElectionConfig {
                    renew_grace_seconds: 0,
                    ..base.clone()
                },
                "election.renewGraceSeconds",
            ),
            (
                LeaderElectionConfig {
                    enabled: false,
                    lease_duration_seconds: 86_401,
                    ..base.clone()
                },
                "election.leaseDurationSeconds",
            ),
        ];
        for (config, field) in cases {
            let e = config.validate("election").unwrap_err();
            assert_eq!(e.field, field, "{config:?}");
            assert!(!e.fix.is_empty());
        }
        assert!(base.validate("election").is_ok());
        let off = LeaderElectionConfig {
            enabled: false,
            lease_name: String::new(),
            ..base
        };
        assert!(off.validate("election").is_ok(), "disabled: not checked");
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
