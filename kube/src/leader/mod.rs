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

mod campaign;
mod config;
mod gate;
#[cfg(test)]
mod tests;

pub use campaign::{Campaign, run};
pub use config::{InvalidElection, LeaderElectionConfig, SAFETY_MARGIN_MS};
pub use gate::{LeaderGate, lease_valid_until};
