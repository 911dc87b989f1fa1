//! What a pool reconciler has learned, as plain data: what a controller keeps across
//! restarts (the learned lead-time samples, the background rate and its weekly shape, the
//! live window, the hysteresis timers and the placeholders still waiting for a node). Times
//! are on the caller's clock (wall-clock ms in the live controller), so a timer restored
//! after a restart keeps running from when it started. Values read back are checked: a
//! non-finite or negative rate, or a weekly profile of the wrong length, is dropped, never
//! trusted.

use crate::model::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An [`ArrivalLearner`](super::ArrivalLearner)'s memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LearnerState {
    /// The background EWMA: decayed arrivals and decayed observed time (ms).
    pub background_arrivals: f64,
    pub background_observed_ms: f64,
    /// Decayed arrivals per hour of the week (168), when the weekly profile is learned.
    pub weekly_hourly: Option<Vec<f64>>,
    pub weekly_last: Option<Millis>,
    /// Creation times of the users seen within the live window.
    pub recent: Vec<Millis>,
    /// Since when arrivals have been counted.
    pub started: Option<Millis>,
    /// The last step.
    pub last: Option<Millis>,
}

/// A placeholder that waited for a new node and was bound to it before the node was warm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LandedPlaceholder {
    pub node: String,
    /// When it was marked Unschedulable.
    pub since: Millis,
}

/// A [`PoolReconciler`](super::PoolReconciler)'s memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReconcilerState {
    pub learner: LearnerState,
    /// The lead-time samples in the window (ms), oldest first.
    pub lead_samples: Vec<Millis>,
    /// Per placement (zone, or none): since when the target has been lower than the count.
    pub lower_since: Vec<(Option<String>, Millis)>,
    /// Pending placeholder uid → when it was marked Unschedulable.
    pub waiting: BTreeMap<String, Millis>,
    /// Placeholder uid → the new node it landed on, until that node is warm.
    pub landed: BTreeMap<String, LandedPlaceholder>,
    /// Placeholders whose wait has been sampled or judged not a scale-up.
    pub judged: BTreeSet<String>,
    /// Node → when it was first seen warm.
    pub first_seen_warm: BTreeMap<String, Millis>,
}

/// A count or a span read back: finite and ≥ 0, else 0.
pub(crate) fn sane(v: f64) -> f64 {
    if v.is_finite() && v >= 0.0 { v } else { 0.0 }
}
