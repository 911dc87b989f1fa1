//! Karpenter's rules as the model applies them, each on a hand-built cluster.

use crate::cluster_state::{NodePhase, PodKind};
use crate::scenario::{PlaceholderMode, SchedulerKind};
use crate::test_support::{put, scenario, sim, warm_node};

const S: i64 = 1000;
const MIN: i64 = 60 * S;

fn karpenter(settings: &str) -> crate::scenario::Scenario {
    scenario(&format!(
        "autoscaler: {{kind: karpenter, karpenter: {{{settings}}}}}"
    ))
}

fn alive(s: &crate::models::Sim<'_>) -> usize {
    s.cluster
        .nodes
        .iter()
        .filter(|n| n.phase != NodePhase::Deleted)
        .count()
}

#[test]
fn karpenter_provisions_for_a_placeholder_below_the_autoscalers_expendable_cutoff() {
    // cluster-autoscaler skips pods below its cutoff; Karpenter's IsProvisionable has none.
    let ca = scenario("autoscaler: {expendable_pods_priority_cutoff: 0}");
    let k = karpenter("");
    let mut ups = Vec::new();
    for sc in [&ca, &k] {
        let mut s = sim(
            sc,
            SchedulerKind::Z2jh,
            PlaceholderMode::NUser { n: None, k: 1 },
        );
        s.run_until(2 * MIN);
        ups.push(s.autoscaler.scale_ups);
    }
    assert_eq!(ups, vec![0, 1]);
}

#[test]
fn a_batch_closes_one_idle_second_after_its_last_pod_or_ten_seconds_after_its_first() {
    let sc = karpenter("");
    let mut s = sim(&sc, SchedulerKind::Hubpack, PlaceholderMode::None);
    s.karpenter_saw_unschedulable(0);
    s.karpenter_saw_unschedulable(500);
    assert_eq!(s.batch_end(), 1_500);
    for t in (1_000..20_000).step_by(900) {
        s.karpenter_saw_unschedulable(t);
    }
    assert_eq!(
        s.batch_end(),
        10_000,
        "the max caps a batch that keeps growing"
    );
}

#[test]
fn an_empty_node_goes_after_consolidate_after_and_the_validation_delay() {
    let sc = karpenter("consolidate_after_s: 30");
    let mut s = sim(&sc, SchedulerKind::Hubpack, PlaceholderMode::None);
    let node = warm_node(&mut s, 0);
    let user = put(&mut s, node, PodKind::User(0), 1.0, 0);
    s.run_until(MIN);
    s.cluster.delete_pod(user, MIN);
    // Consolidatable from 90 s; found at the 90 s poll, carried out 15 s later.
    s.run_until(MIN + 30 * S - 1);
    assert_eq!(s.cluster.nodes[node].phase, NodePhase::Ready);
    s.run_until(MIN + 30 * S + 14 * S);
    assert_eq!(s.cluster.nodes[node].phase, NodePhase::Ready);
    s.run_until(MIN + 30 * S + 16 * S);
    assert_eq!(s.cluster.nodes[node].phase, NodePhase::Deleted);
    assert_eq!(s.karpenter.empty_removed, 1);
}

#[test]
fn a_pod_arriving_during_the_validation_delay_keeps_the_node() {
    let sc = karpenter("");
    let mut s = sim(&sc, SchedulerKind::Hubpack, PlaceholderMode::None);
    let node = warm_node(&mut s, 0);
    s.run_until(5 * S);
    put(&mut s, node, PodKind::User(0), 1.0, 5 * S);
    s.run_until(MIN);
    assert_eq!(s.cluster.nodes[node].phase, NodePhase::Ready);
    assert_eq!(s.karpenter.empty_removed, 0);
}

/// Two nodes, each with one 1-CPU user: either user fits beside the other.
fn two_light_nodes(protected: bool) -> (usize, usize, usize) {
    let sc = karpenter(&format!("user_pods_do_not_disrupt: {protected}"));
    let mut s = sim(&sc, SchedulerKind::Hubpack, PlaceholderMode::None);
    for u in 0..2 {
        let n = warm_node(&mut s, 0);
        put(&mut s, n, PodKind::User(u), 1.0, 0);
    }
    s.run_until(10 * MIN);
    (
        alive(&s),
        s.karpenter.consolidated,
        s.karpenter.users_evicted,
    )
}

#[test]
fn a_protected_users_node_is_never_consolidated_an_unprotected_one_is() {
    assert_eq!(two_light_nodes(true), (2, 0, 0));
    assert_eq!(two_light_nodes(false), (1, 1, 1));
}

/// A user's node with room, and a node holding only a 2-CPU placeholder.
fn placeholder_beside_room(scheduler: SchedulerKind, policy: &str) -> (usize, usize) {
    let sc = karpenter(&format!("consolidation_policy: {policy}"));
    let mut s = sim(&sc, scheduler, PlaceholderMode::None);
    let a = warm_node(&mut s, 0);
    put(&mut s, a, PodKind::User(0), 8.0, 0);
    let b = warm_node(&mut s, 0);
    put(&mut s, b, PodKind::Placeholder, 2.0, 0);
    s.run_until(10 * MIN);
    (alive(&s), s.autoscaler.scale_ups + s.autoscaler.scale_downs)
}

#[test]
fn hubpacks_placeholders_keep_their_node_z2jhs_are_consolidated_onto_the_users_room() {
    // hubpack's placeholders carry karpenter.sh/do-not-disrupt: no node comes or goes.
    assert_eq!(
        placeholder_beside_room(SchedulerKind::Hubpack, "WhenEmptyOrUnderutilized"),
        (2, 0)
    );
    // z2jh's do not: their node is consolidated (the upstream churn's first half)…
    assert_eq!(
        placeholder_beside_room(SchedulerKind::Z2jh, "WhenEmptyOrUnderutilized"),
        (1, 1)
    );
    // …unless only empty nodes may go.
    assert_eq!(
        placeholder_beside_room(SchedulerKind::Z2jh, "WhenEmpty"),
        (2, 0)
    );
}

/// Two half-full nodes that one new node could replace: Karpenter never replaces nodes by
/// one of their own type (`filterOutSameInstanceType`: not cheaper than keeping one), so it
/// removes them one by one where their pods fit, and launches nothing.
#[test]
fn nodes_are_removed_one_by_one_never_replaced_by_one_of_their_own_type() {
    let sc = karpenter("budget_nodes: \"100%\"");
    let mut s = sim(&sc, SchedulerKind::Z2jh, PlaceholderMode::None);
    let a = warm_node(&mut s, 0);
    let b = warm_node(&mut s, 0);
    for n in [a, b] {
        put(&mut s, n, PodKind::Placeholder, 3.5, 0);
        put(&mut s, n, PodKind::Placeholder, 3.5, 0);
    }
    // A protected user's node with room for two of the four placeholders.
    let c = warm_node(&mut s, 0);
    put(&mut s, c, PodKind::User(0), 8.5, 0);
    // Found at 0 s, carried out at 15 s: a alone (its pods fit on b).
    s.run_until(16 * S);
    assert_eq!(s.cluster.nodes[a].phase, NodePhase::Deleted);
    assert_eq!(s.cluster.nodes[b].phase, NodePhase::Ready);
    // Then b, beside the user (a's placeholders had no controller to come back).
    s.run_until(120 * S);
    assert_eq!(s.cluster.nodes[b].phase, NodePhase::Deleted);
    assert_eq!(s.autoscaler.scale_ups, 0);
    assert_eq!(s.karpenter.consolidated, 2);
}

/// Single-node consolidation tries every candidate, not only the cheapest: the first
/// (fewest pods) cannot move, the second can, and goes.
#[test]
fn single_node_consolidation_takes_the_first_candidate_that_fits_elsewhere() {
    let sc = karpenter("budget_nodes: \"100%\"");
    let mut s = sim(&sc, SchedulerKind::Z2jh, PlaceholderMode::None);
    // Fewest pods, but one big pod that fits nowhere else.
    let big = warm_node(&mut s, 0);
    put(&mut s, big, PodKind::Placeholder, 12.0, 0);
    // Two small pods that fit beside the protected user.
    let small = warm_node(&mut s, 0);
    put(&mut s, small, PodKind::Placeholder, 2.0, 0);
    put(&mut s, small, PodKind::Placeholder, 2.0, 0);
    let user = warm_node(&mut s, 0);
    put(&mut s, user, PodKind::User(0), 8.0, 0);
    s.run_until(20 * S);
    assert_eq!(s.cluster.nodes[small].phase, NodePhase::Deleted);
    assert_eq!(s.cluster.nodes[big].phase, NodePhase::Ready);
    assert_eq!(s.karpenter.consolidated, 1);
}

#[test]
fn the_budget_limits_nodes_disrupted_at_once_rounding_up() {
    let removed_by_first_command = |budget: &str| {
        let sc = karpenter(&format!("budget_nodes: \"{budget}\""));
        let mut s = sim(&sc, SchedulerKind::Hubpack, PlaceholderMode::None);
        for _ in 0..10 {
            warm_node(&mut s, 0);
        }
        s.run_until(15 * S);
        10 - alive(&s)
    };
    assert_eq!(removed_by_first_command("10%"), 1);
    assert_eq!(removed_by_first_command("25%"), 3);
    assert_eq!(removed_by_first_command("100%"), 10);
    assert_eq!(removed_by_first_command("0"), 0);
}
