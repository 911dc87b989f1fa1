//! hubpack-placeholder-ctl: keeps enough warm seats for the users predicted to arrive
//! within the time a new node needs to become warm, in as few N-user placeholder pods as
//! possible, and keeps the users' images pre-pulled. Forecast arithmetic, sizing,
//! hysteresis and the lead-time estimator live in `hubpack_core::headroom` (shared with
//! the simulator); this crate reads the config and the arrival sources, and is the
//! Kubernetes adapter.
//!
//! Layout, in the order data flows:
//! - [`config`]: the YAML config and its validation (exit 2 naming field and fix);
//!   [`resources`]: quantities in it;
//! - [`sources`]: configured events (one-off, cron), iCalendar feeds, event ConfigMaps →
//!   core `ScheduledEvent`s tagged by source (pure);
//! - [`forecast`]: one pool's forecast and placeholder target at one time (pure), used by
//!   the live reconcile and by `hubpack-placeholder-ctl plan` ([`forecast_cli`]);
//! - [`observe`]: the cluster as one pool sees it (free warm seats, placeholders, users);
//! - [`decide`]: the controller's memory (each pool's core `PoolReconciler`, learned
//!   images) and its decision per reconcile, a value; [`objects`]: the objects it owns, as values
//!   ([`buffer`]: the `capacityBuffer` backend's PodTemplate and CapacityBuffer);
//!   [`prune`]: which owned objects no configured pool wants (deleted); [`checkpoint`]:
//!   what it has learned and the calendars' last good copies as one bounded, versioned
//!   document (state ⇄ text), which the leader keeps in a ConfigMap across restarts;
//! - [`adapter`]: watches, calendar fetching, server-side apply, Events, metrics, the
//!   reconcile loop, leader election and `/metrics` `/healthz` `/readyz` ([`adapter::app`]).

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod config;
pub mod decide;
pub mod forecast;
pub mod karpenter;
pub mod objects;
pub mod observe;
pub mod prune;
pub mod resources;
pub mod sources;

pub mod adapter;
pub mod buffer;
pub mod error;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod decide_tests;
pub mod forecast_cli;
#[cfg(test)]
mod test_objects;
