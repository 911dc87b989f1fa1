//! Warmth: whether a node is warm for a pod (DESIGN.md: Ready for a settle time, and the
//! pod's images there or the pre-puller Ready). Ranking's second key.

use super::PolicyConfig;
use crate::model::{Millis, Node, Pod, PodRole};

/// Warm for this pod: Ready for at least `warm_settle_ms`, and the images the pod needs
/// present (or the node's pre-pull pod Ready). A placeholder's own image is `pause`; its
/// `images` are those of the users it stands for (`hubpack.io/user-images`), and without
/// them only the pre-puller's readiness says a node is warm for it.
pub(crate) fn node_is_warm(n: &Node, pod: &Pod, now: Millis, cfg: &PolicyConfig) -> bool {
    is_settled(n.ready_since, now, cfg)
        && warm_without_lookup(n.prepull_ready, pod)
            .unwrap_or_else(|| pod.images.iter().all(|i| n.images.contains(i)))
}

/// Ready for at least the settle time.
pub(crate) fn is_settled(ready_since: Option<Millis>, now: Millis, cfg: &PolicyConfig) -> bool {
    ready_since.is_some_and(|t| t.saturating_add(cfg.warm_settle_ms) <= now)
}

/// Whether a settled node is warm for the pod when that does not depend on the node's
/// image list; `None` when the pod's images must be looked up there.
pub(crate) fn warm_without_lookup(prepull_ready: bool, pod: &Pod) -> Option<bool> {
    if prepull_ready {
        Some(true)
    } else if pod.images.is_empty() {
        // A user without images needs none; a placeholder without its users' images
        // cannot tell a pulling node from a warm one, so only the pre-puller counts.
        Some(pod.role != PodRole::Placeholder)
    } else {
        None
    }
}
