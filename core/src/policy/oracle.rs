//! The single pass: filter every node, rank every candidate.

use super::evaluate::{Mode, Outcome, evaluate, static_verdict};
use super::rank::{RankKey, rank_key};
use super::{Decision, Diagnosis, PolicyConfig, to_decision};
use crate::model::{Millis, Pod};
use crate::snapshot::Snapshot;
use std::collections::HashMap;

pub(super) fn decide(snap: &Snapshot, pod: &Pod, now: Millis, cfg: &PolicyConfig) -> Decision {
    let mut best: Option<(RankKey, Outcome)> = None;
    let mut counts = HashMap::new();
    for node in snap.nodes() {
        let sv = static_verdict(node, pod);
        match evaluate(snap, node, pod, &sv, Mode::Full) {
            Outcome::Fail(reasons) => {
                for r in reasons {
                    *counts.entry(r).or_insert(0) += 1;
                }
            }
            outcome => {
                let key = rank_key(node, snap.usage(&node.name), pod, &sv, &outcome, now, cfg);
                if best.as_ref().is_none_or(|(b, _)| key > *b) {
                    best = Some((key, outcome));
                }
            }
        }
    }
    match best {
        Some((key, outcome)) => to_decision(key.name.0, outcome),
        None => Decision::Unschedulable(Diagnosis::from_counts(snap.node_count(), counts)),
    }
}
