//! Warmth: whether a node is warm for a pod (docs/design.md, "Warm-first packing": Ready for a settle time, and the
//! pod's images there or the pre-puller Ready). Ranking's second key; the placeholder
//! controller and the simulator count free warm seats with [`images_warm`] too.

use super::PolicyConfig;
use crate::model::{Millis, Node, Pod, PodRole};

/// Warm for this pod: Ready for at least `warm_settle_ms`, and the images the pod needs
/// present (or the node's pre-pull pod Ready). A placeholder's own image is `pause`; its
/// `images` are those of the users it stands for (`hubpack.io/user-images`), and without
/// them only the pre-puller's readiness says a node is warm for it.
pub(crate) fn node_is_warm(n: &Node, pod: &Pod, now: Millis, cfg: &PolicyConfig) -> bool {
    is_settled(n.ready_since, now, cfg)
        && images_warm(n.prepull_ready, pod.role, &pod.images, |i| {
            n.images.contains(i)
        })
}

/// Whether a Ready node is warm, as far as images go, for a pod of `role` that needs
/// `needed`: the node's pre-puller is Ready, or every needed image is `present`. A user
/// that needs no image is warm anywhere; a placeholder without its users' images cannot
/// tell a pulling node from a warm one, so only the pre-puller counts.
pub fn images_warm<T>(
    prepull_ready: bool,
    role: PodRole,
    needed: &[T],
    present: impl FnMut(&T) -> bool,
) -> bool {
    warm_without_images(prepull_ready, role, needed.is_empty())
        .unwrap_or_else(|| needed.iter().all(present))
}

/// Ready for at least the settle time.
pub(crate) fn is_settled(ready_since: Option<Millis>, now: Millis, cfg: &PolicyConfig) -> bool {
    ready_since.is_some_and(|t| t.saturating_add(cfg.warm_settle_ms) <= now)
}

/// Whether a settled node is warm for the pod when that does not depend on the node's
/// image list; `None` when the pod's images must be looked up there.
pub(crate) fn warm_without_lookup(prepull_ready: bool, pod: &Pod) -> Option<bool> {
    warm_without_images(prepull_ready, pod.role, pod.images.is_empty())
}

fn warm_without_images(prepull_ready: bool, role: PodRole, needs_none: bool) -> Option<bool> {
    if prepull_ready {
        Some(true)
    } else if needs_none {
        Some(role != PodRole::Placeholder)
    } else {
        None
    }
}
