//! Leader election on a Lease (kube-lease-manager), with our own deadline: the crate reports
//! only changes of leadership and keeps believing it leads while the API server is
//! unreachable (see docs/design.md), so the gate trusts leadership only until the lease's
//! last observed renewal plus its duration, minus a safety margin, and re-reads the Lease to
//! extend that. A replica that is not leader keeps its caches warm and never writes.
//!
//! [`LeaderElectionConfig`] is the one config both binaries embed (under their own key) and
//! [`LeaderElectionConfig::validate`] its one validation.

use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::LeaseManagerBuilder;
use serde::{Deserialize, Deserializer};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Stop acting this long before the lease could expire: time for an in-flight bind to
/// leave, and for clock drift between renewals.
pub const SAFETY_MARGIN_MS: i64 = 2_000;

/// The field manager of every hubpack Lease write (both binaries use the same one: a
/// different name would own the Lease's fields apart from the existing owner's).
pub const LEASE_FIELD_MANAGER: &str = "hubpack-scheduler";

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
        .with_field_manager(LEASE_FIELD_MANAGER)
        .build()
        .await
        .map_err(|e| Error::Lease(e.to_string()))?;
    let (mut leading, task) = manager.watch().await;
    let leases: Api<Lease> = Api::namespaced(client, namespace);
    // Re-read the Lease twice per renewal window so a renewal is seen well before the
    // previous deadline passes.
    let poll = Duration::from_millis((cfg.renew_grace_seconds * 1000 / 2).max(500));
    let mut tenure = Tenure::default();
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
                    refresh(&leases, &cfg.lease_name, identity, gate, &mut tenure).await
                } else {
                    // The manager says so only when another replica holds the lease (on
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
            // Lost and won again between two looks (the manager's channel keeps only its
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
    /// Ours, but acquired anew since we led: the tenure changed.
    Reacquired,
    /// Not read (API unreachable) or not asked.
    Unknown,
}

/// The Lease's `acquireTime` of the tenure this replica leads in: set on every
/// acquisition and never on renewal (kube-lease-manager's `state.rs` `lock`), so it is the
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
