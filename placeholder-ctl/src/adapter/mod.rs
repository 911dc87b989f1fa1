//! The Kubernetes adapter: watches, calendar fetching, writes, events, metrics, and the
//! reconcile loop that feeds [`crate::decide`] and carries out its decision.

pub mod app;
pub mod apply;
pub mod buffer;
pub mod calendar;
pub mod checkpoint;
pub mod events;
pub mod metrics;
pub mod reconcile;
pub mod watch;
