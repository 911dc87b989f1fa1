//! Whether this replica may write: a deadline from the Lease it last saw itself holding.

use super::config::SAFETY_MARGIN_MS;
use k8s_openapi::api::coordination::v1::Lease;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::watch;

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

pub(super) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
