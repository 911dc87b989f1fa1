//! `decide` over the snapshot index. NOT YET INDEXED: delegates to the full scan.

use super::{Decision, PolicyConfig};
use crate::model::{Millis, Pod};
use crate::snapshot::Snapshot;

pub(super) fn decide(snap: &Snapshot, pod: &Pod, now: Millis, cfg: &PolicyConfig) -> Decision {
    super::oracle::decide(snap, pod, now, cfg)
}
