//! Every policy on every shipped scenario runs to the end with the simulator's accounting
//! and the policy's view in agreement: no bind where the pod does not fit.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::runner::grid;

#[test]
fn policies_never_overcommit_a_node() {
    for name in [
        "class-burst.yaml",
        "2i2c-event.yaml",
        "binder-steady.yaml",
        "university-week.yaml",
    ] {
        let sc = common::shipped(name);
        for policy in grid(&sc) {
            let r = common::run(&sc, policy.scheduler, policy.placeholders.clone(), 0);
            assert_eq!(r.misfits, 0, "{name}: {}", policy.label());
            assert!(!r.users.is_empty());
        }
    }
}
