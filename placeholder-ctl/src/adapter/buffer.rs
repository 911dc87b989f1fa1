//! The `capacityBuffer` backend at the edge: whether the cluster serves CapacityBuffers
//! (checked at start: a pool asking for them on a cluster without the API is refused),
//! writing each buffer pool's PodTemplate and CapacityBuffer, and reading the buffer back:
//! its `spec.replicas` (the current count the next decision starts from) and its status
//! conditions, reported as Events on the buffer (one per distinct message) and as the
//! `buffer_condition` metric.

use super::events::reference;
use super::reconcile::{Context, now_ms};
use crate::buffer::{self, BUFFER_API_VERSION, BUFFER_KIND, BUFFER_PLURAL, BufferCondition};
use crate::config::{Backend, Config, ConfigError, PoolConfig, PoolSizes};
use crate::decide::{PoolDecision, placement_caps};
use crate::error::{Error, Result};
use crate::prune::{Found, OwnedKind};
use hubpack_core::model::Millis;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the controller knows of its buffers across reconciles.
#[derive(Debug, Default)]
pub struct Buffers {
    /// The API server serves `capacitybuffers` (found at start).
    served: AtomicBool,
    /// Buffer name → its `spec.replicas` as last read.
    replicas: Mutex<BTreeMap<String, usize>>,
    /// Buffer name → (pool, its status conditions as last read).
    conditions: Mutex<BTreeMap<String, (String, Vec<BufferCondition>)>>,
    /// Buffer name → since when a raise has been held back (see [`buffer::hold_raise`]).
    raising_since: Mutex<BTreeMap<String, Millis>>,
    /// (buffer, type, status, message) already reported as an Event.
    reported: Mutex<BTreeSet<(String, String, String, String)>>,
}

impl Buffers {
    pub fn served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    pub fn set_served(&self, served: bool) {
        self.served.store(served, Ordering::Release);
    }

    /// Each buffer's `spec.replicas` as last read (the decision's current count).
    pub fn replicas(&self) -> BTreeMap<String, usize> {
        self.replicas.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn record(&self, name: &str, pool: &str, b: &buffer::CapacityBuffer) {
        let replicas = b
            .spec
            .replicas
            .and_then(|r| usize::try_from(r).ok())
            .unwrap_or(0);
        if let Ok(mut r) = self.replicas.lock() {
            r.insert(name.to_string(), replicas);
        }
        let conditions = b
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        if let Ok(mut c) = self.conditions.lock() {
            c.insert(name.to_string(), (pool.to_string(), conditions));
        }
    }

    /// The count to write for `decided` chunks, `current` being written: a raise only
    /// after it has been wanted for `grace` (`placeholders.bufferRaiseGraceSeconds`).
    pub fn hold_raise(
        &self,
        name: &str,
        current: Option<usize>,
        decided: usize,
        now: Millis,
        grace: Millis,
    ) -> usize {
        let Ok(mut since) = self.raising_since.lock() else {
            return decided;
        };
        let (written, held) = buffer::hold_raise(
            current.unwrap_or(0),
            decided,
            since.get(name).copied(),
            now,
            grace,
        );
        match held {
            Some(t) => since.insert(name.to_string(), t),
            None => since.remove(name),
        };
        written
    }

    /// Forget Events already written (on gaining leadership).
    pub fn forget_reported(&self) {
        if let Ok(mut r) = self.reported.lock() {
            r.clear();
        }
    }
}

/// Whether the API server serves CapacityBuffers at `autoscaling.x-k8s.io/v1beta1`.
pub async fn served(client: &kube::Client) -> Result<bool> {
    match client.list_api_group_resources(BUFFER_API_VERSION).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == BUFFER_PLURAL)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The error for a `capacityBuffer` pool on a cluster without the API: names the pool
/// and the fix. None when no pool asks for buffers or the API is served.
pub fn refusal(cfg: &Config, served: bool) -> Option<ConfigError> {
    if served {
        return None;
    }
    let (i, pool) = cfg
        .pools
        .iter()
        .enumerate()
        .find(|(_, p)| p.backend == Backend::CapacityBuffer)?;
    Some(ConfigError::Invalid {
        field: format!("pools[{i}] ({}).backend", pool.name),
        problem: format!(
            "is capacityBuffer, but this cluster does not serve CapacityBuffers ({BUFFER_PLURAL}.{BUFFER_API_VERSION} not found)"
        ),
        fix: "install the CapacityBuffer CRD (autoscaling.x-k8s.io, v1beta1; shipped with cluster-autoscaler 1.36+ and Karpenter) and run the autoscaler with --capacity-buffer-controller-enabled --capacity-buffer-pod-injection-enabled, or set the pool's backend to placeholders".into(),
    })
}

/// At start: refuses a `capacityBuffer` pool when the API is absent; else records whether
/// it is served and reads the existing buffers' replicas (so the first decision's
/// hysteresis starts from what the cluster has).
pub async fn start(ctx: &Context) -> Result<()> {
    let wanted = ctx
        .config
        .pools
        .iter()
        .any(|p| p.backend == Backend::CapacityBuffer);
    let served = match served(&ctx.applier.client()).await {
        Ok(s) => s,
        Err(e) if wanted => return Err(e),
        // Without buffer pools only the prune of a former buffer pool's objects needs it.
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether CapacityBuffers are served; not looking for old ones");
            false
        }
    };
    if let Some(e) = refusal(&ctx.config, served) {
        return Err(Error::Config(e));
    }
    ctx.buffers.set_served(served);
    for pool in &ctx.config.pools {
        if pool.backend != Backend::CapacityBuffer {
            continue;
        }
        for (name, _) in buffer::placements(pool) {
            if let Some(b) = ctx.applier.get_capacity_buffer(&name).await? {
                ctx.buffers.record(&name, &pool.name, &b);
            }
        }
    }
    Ok(())
}

/// The owned PodTemplates and CapacityBuffers (for the prune). A release granted no right
/// on them (no pool of it uses buffers) has none to delete: refused is none found.
pub async fn list_owned(ctx: &Context, selector: &str) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for kind in [OwnedKind::PodTemplate, OwnedKind::CapacityBuffer] {
        match ctx.applier.list_owned(kind, selector).await {
            Ok(f) => found.extend(f),
            Err(Error::Kube(kube::Error::Api(e))) if e.code == 403 => {
                tracing::debug!(
                    kind = kind.as_str(),
                    "not allowed to list; none of ours to delete"
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Writes one buffer pool's PodTemplates and CapacityBuffers (per placement), then reads
/// each buffer back and reports its conditions.
pub async fn carry_out(
    ctx: &Context,
    pool: &PoolConfig,
    sizes: &PoolSizes,
    p: &PoolDecision,
    user_images: &[String],
    owner: Option<&OwnerReference>,
) {
    let cfg = &ctx.config;
    let caps = placement_caps(sizes.max_placeholders, p.placements.len());
    for (pl, cap) in p.placements.iter().zip(caps) {
        let zone = pl.zone.as_deref();
        let template = buffer::pod_template(cfg, pool, sizes, zone, user_images, owner);
        if let Err(e) = ctx.applier.pod_template(&template).await {
            failed(ctx, e, "PodTemplate");
            continue;
        }
        let grace = (cfg.placeholders.buffer_raise_grace_seconds * 1000.0).round() as Millis;
        let written = ctx
            .buffers
            .hold_raise(&pl.name, pl.previous, pl.replicas, now_ms(), grace);
        if written != pl.replicas {
            tracing::debug!(buffer = %pl.name, decided = pl.replicas, written, "buffer raise held for the grace");
        }
        let replicas = i32::try_from(written).unwrap_or(i32::MAX);
        let b = buffer::capacity_buffer(cfg, pool, sizes, zone, replicas, cap, owner);
        if let Err(e) = ctx.applier.capacity_buffer(&b).await {
            failed(ctx, e, "CapacityBuffer");
            continue;
        }
        let regarding = reference(
            BUFFER_API_VERSION,
            BUFFER_KIND,
            Some(&ctx.namespace),
            &pl.name,
        );
        if pl.previous != Some(written) {
            let mut pl = pl.clone();
            pl.replicas = written;
            let note = super::reconcile::target_changed_note(p, &pl).replacen(
                "placeholders",
                "buffer chunks",
                1,
            );
            ctx.events
                .publish(&regarding, false, "TargetChanged", note)
                .await;
        }
        match ctx.applier.get_capacity_buffer(&pl.name).await {
            Ok(Some(read)) => ctx.buffers.record(&pl.name, &pool.name, &read),
            Ok(None) => {}
            Err(e) => failed(ctx, e, "read CapacityBuffer"),
        }
        report_conditions(ctx, &pl.name).await;
    }
}

fn failed(ctx: &Context, e: Error, what: &str) {
    ctx.metrics
        .errors
        .get_or_create(&super::metrics::KindLabels {
            kind: e.metric_label().into(),
        })
        .inc();
    tracing::warn!(error = %e, what, "buffer write failed; retried next reconcile");
}

/// Whether a condition is one to warn about: the buffer cannot be provisioned, or is
/// provisioned short of what was asked.
pub fn is_warning(c: &BufferCondition) -> bool {
    matches!(
        (c.type_.as_str(), c.status.as_str()),
        ("LimitedByQuotas", "True") | ("ReadyForProvisioning", "False")
    )
}

/// The Event of one condition: reason `Buffer<Type>`, the autoscaler's reason and message.
pub fn condition_event(buffer: &str, c: &BufferCondition) -> (bool, String, String) {
    let reason = format!("Buffer{}", c.type_);
    let note = format!(
        "CapacityBuffer {buffer}: {}={} ({}): {}",
        c.type_,
        c.status,
        c.reason.as_deref().unwrap_or("no reason"),
        c.message.as_deref().unwrap_or("")
    );
    (is_warning(c), reason, note)
}

/// The buffer's conditions into the metric (every buffer's, rebuilt) and an Event for each
/// condition message not reported before.
async fn report_conditions(ctx: &Context, name: &str) {
    let all = ctx
        .buffers
        .conditions
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let family = &ctx.metrics.buffer_condition;
    family.clear();
    for (buffer, (pool, conditions)) in &all {
        for c in conditions {
            family
                .get_or_create(&super::metrics::BufferConditionLabels {
                    pool: pool.clone(),
                    buffer: buffer.clone(),
                    condition: c.type_.clone(),
                    status: c.status.clone(),
                })
                .set(1);
        }
    }
    let Some((_, conditions)) = all.get(name) else {
        return;
    };
    let regarding = reference(BUFFER_API_VERSION, BUFFER_KIND, Some(&ctx.namespace), name);
    let key = |c: &BufferCondition| {
        (
            name.to_string(),
            c.type_.clone(),
            c.status.clone(),
            c.message.clone().unwrap_or_default(),
        )
    };
    // Only the buffer's present conditions stay remembered: one that comes back is new.
    let present: BTreeSet<_> = conditions.iter().map(key).collect();
    if let Ok(mut r) = ctx.buffers.reported.lock() {
        r.retain(|k| k.0 != name || present.contains(k));
    }
    for c in conditions {
        let new = ctx
            .buffers
            .reported
            .lock()
            .map(|mut r| r.insert(key(c)))
            .unwrap_or(false);
        if !new {
            continue;
        }
        let (warning, reason, note) = condition_event(name, c);
        // A condition with nothing to say (e.g. LimitedByQuotas=False, no message) is in
        // the metric only.
        if !warning && c.message.as_deref().unwrap_or("").is_empty() {
            continue;
        }
        if warning {
            tracing::warn!(buffer = name, condition = %c.type_, message = ?c.message, "capacity buffer condition");
        }
        ctx.events.publish(&regarding, warning, &reason, note).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::parse(include_str!("../../config.example.yaml"), "t").unwrap()
    }

    #[test]
    fn a_buffer_pool_without_the_api_is_refused_naming_pool_and_fix() {
        let mut c = cfg();
        assert!(refusal(&c, false).is_none(), "placeholders need no CRD");
        c.pools[0].backend = Backend::CapacityBuffer;
        assert!(refusal(&c, true).is_none());
        let e = refusal(&c, false).unwrap().to_string();
        assert!(e.contains("pools[0] (default).backend"), "{e}");
        assert!(e.contains("capacitybuffers"), "{e}");
        assert!(e.contains("--capacity-buffer-controller-enabled"), "{e}");
        assert!(e.contains("backend to placeholders"), "{e}");
    }

    #[test]
    fn quota_limits_and_unready_buffers_warn() {
        let c = |t: &str, s: &str| BufferCondition {
            type_: t.into(),
            status: s.into(),
            reason: Some("ResourceQuotasAllocated".into()),
            message: Some("limited by quota q".into()),
        };
        assert!(is_warning(&c("LimitedByQuotas", "True")));
        assert!(!is_warning(&c("LimitedByQuotas", "False")));
        assert!(is_warning(&c("ReadyForProvisioning", "False")));
        assert!(!is_warning(&c("ReadyForProvisioning", "True")));
        // A buffer at 0 is not provisioning, as asked.
        assert!(!is_warning(&c("Provisioning", "False")));
        let (warn, reason, note) = condition_event("b", &c("LimitedByQuotas", "True"));
        assert!(warn);
        assert_eq!(reason, "BufferLimitedByQuotas");
        assert_eq!(
            note,
            "CapacityBuffer b: LimitedByQuotas=True (ResourceQuotasAllocated): limited by quota q"
        );
    }
}
