//! Headroom sizing for placeholders (docs/design.md, "Headroom sizing"), shared by
//! `hubpack-placeholder-ctl` and `hubpack-sim`. Pure functions over numbers the caller
//! gathers:
//!
//! - [`learn`]: what is learned from the users seen arriving (background rate, weekly
//!   shape, live rate), fed once per reconcile;
//! - [`forecast`]: the arrival forecast λ(t) (scheduled events added to a learned background,
//!   raised by the live observed rate) and μ = ∫ λ over the lead time;
//! - [`sizing`]: H = μ + z·√μ clamped, free warm seats F, seats per placeholder N, and the
//!   placeholder target ceil(max(0, H − F) / N);
//! - [`lead_time`]: the lead time L learned as an upper quantile of observed scale-ups;
//! - [`hysteresis`]: add at once, remove only after the target stayed lower for a while, and
//!   which placeholders to remove first;
//! - [`reconciler`]: the chain above as one step per reconcile of one pool, with its memory
//!   (the one the controller and the simulator both run);
//! - [`state`]: what a reconciler has learned, as plain data, for a controller to keep
//!   across restarts.

pub mod buffer;
pub mod forecast;
pub mod hysteresis;
pub mod lead_time;
pub mod learn;
pub mod reconciler;
pub mod sizing;
pub mod state;

#[cfg(test)]
mod props;

pub use forecast::{
    ArrivalForecast, LearnedArrivals, PLANNED_NOISE_SIGMAS, ScheduledEvent, WEEK_MS, WeeklyProfile,
};
pub use hysteresis::{Hysteresis, removal_order, trim_pending_above_target};
pub use lead_time::{LeadTimeConfig, LeadTimeEstimator, quantile};
pub use learn::{
    ArrivalLearner, EARLY_ARRIVALS, Ewma, LearnerConfig, WeeklyLearner, arrived_since,
};
pub use reconciler::{
    PlaceholderObservation, PlacementObservation, PlacementStep, PoolObservation, PoolReconciler,
    PoolStep, ReconcilerConfig, TargetForecast, forecast_targets,
};
pub use sizing::{
    HeadroomConfig, HeadroomError, Misfit, headroom_seats, placeholder_request, placeholder_target,
    seats_in, seats_per_placeholder, validate_placeholder,
};
pub use state::{LandedPlaceholder, LearnerState, ReconcilerState};
