//! Policy behavior on small hand-built clusters; every case also checks that the indexed
//! `decide` agrees with the full scan.

use super::*;
use crate::model::{
    ImageName, Node, NodeSelectorTerm, Pod, PodKey, PodRole, PreemptionPolicy, PreferredTerm,
    Resources, SelectorOperator, SelectorRequirement, Taint, TaintEffect,
};
use std::collections::BTreeMap;

const GI: i64 = 1 << 30;
const NOW: i64 = 1_000_000;

fn cfg() -> PolicyConfig {
    PolicyConfig::default()
}

fn node(name: &str, cpu: i64, mem_gi: i64) -> Node {
    let mut n = Node::new(name, Resources::new(cpu, mem_gi * GI).with_pods(110));
    n.ready_since = Some(0);
    n
}

fn user(name: &str, cpu: i64, mem_gi: i64) -> Pod {
    Pod::simple(
        &format!("u/{name}"),
        PodRole::User,
        0,
        Resources::new(cpu, mem_gi * GI),
        0,
    )
}

fn placeholder(name: &str, cpu: i64, mem_gi: i64, created: i64) -> Pod {
    Pod::simple(
        &format!("p/{name}"),
        PodRole::Placeholder,
        -10,
        Resources::new(cpu, mem_gi * GI),
        created,
    )
}

fn on(mut p: Pod, node: &str) -> Pod {
    p.node_name = Some(node.into());
    p
}

fn both(s: &Snapshot, p: &Pod) -> Decision {
    let fast = decide(s, p, NOW, &cfg());
    let full = decide_full_scan(s, p, NOW, &cfg());
    assert_eq!(fast, full, "indexed and full scan disagree for {}", p.key);
    fast
}

fn bind(node: &str) -> Decision {
    Decision::Bind { node: node.into() }
}

#[test]
fn diagnosis_message_is_kube_format() {
    let d = Diagnosis {
        nodes: 12,
        reasons: BTreeMap::from([
            ("Insufficient memory".to_string(), 8),
            (
                "node(s) had untolerated taint {hub.jupyter.org/dedicated: core}".to_string(),
                4,
            ),
        ]),
    };
    assert_eq!(
        d.message(),
        "0/12 nodes are available: 4 node(s) had untolerated taint {hub.jupyter.org/dedicated: core}, 8 Insufficient memory."
    );
    // Go's sort.Strings: "10 …" sorts before "9 …".
    let d = Diagnosis {
        nodes: 19,
        reasons: BTreeMap::from([
            ("Insufficient cpu".to_string(), 9),
            ("Too many pods".to_string(), 10),
        ]),
    };
    assert_eq!(
        d.message(),
        "0/19 nodes are available: 10 Too many pods, 9 Insufficient cpu."
    );
    assert_eq!(Diagnosis::default().message(), "0/0 nodes are available:");
}

#[test]
fn unschedulable_aggregates_first_failing_filter_per_node() {
    let mut s = Snapshot::new();
    let mut tainted = node("core-1", 4000, 16);
    tainted.taints.push(Taint {
        key: "hub.jupyter.org/dedicated".into(),
        value: "core".into(),
        effect: TaintEffect::NoSchedule,
    });
    s.upsert_node(tainted);
    s.upsert_node(node("small-1", 500, 1));
    s.upsert_node(node("small-2", 500, 1));
    let d = both(&s, &user("a", 1000, 2));
    let Decision::Unschedulable(diag) = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        diag.message(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {hub.jupyter.org/dedicated: core}, 2 Insufficient cpu, 2 Insufficient memory."
    );
}

#[test]
fn skips() {
    let mut s = Snapshot::new();
    s.upsert_node(node("n", 4000, 16));
    let mut p = user("a", 100, 1);
    p.scheduling_gated = true;
    assert_eq!(both(&s, &p), Decision::Skip(SkipReason::SchedulingGated));
    p.deleting = true;
    assert_eq!(both(&s, &p), Decision::Skip(SkipReason::Deleting));
    let p = user("b", 100, 1);
    s.upsert_pod(p.clone());
    s.assume(&p.key, "n");
    assert_eq!(both(&s, &p), Decision::Skip(SkipReason::AlreadyBound));
    s.forget(&p.key);
    assert_eq!(both(&s, &p), bind("n"));
}

#[test]
fn unsupported_constraints_are_unschedulable_everywhere() {
    let mut s = Snapshot::new();
    s.upsert_node(node("n1", 4000, 16));
    s.upsert_node(node("n2", 4000, 16));
    let mut p = user("a", 100, 1);
    p.unsupported = vec!["topologySpreadConstraints".into()];
    let Decision::Unschedulable(d) = both(&s, &p) else {
        panic!()
    };
    assert_eq!(
        d.message(),
        "0/2 nodes are available: 2 not supported by hubpack-scheduler: topologySpreadConstraints."
    );
}

#[test]
fn user_packs_onto_most_allocated_by_users_not_placeholders() {
    let mut s = Snapshot::new();
    s.upsert_node(node("a", 4000, 16));
    s.upsert_node(node("b", 4000, 16));
    s.upsert_pod(on(user("x", 2000, 8), "a"));
    // b is fuller, but only with a placeholder: users gather with users.
    s.upsert_pod(on(placeholder("p", 3000, 12, 0), "b"));
    assert_eq!(both(&s, &user("new", 500, 2)), bind("a"));
    // A placeholder packs counting everything: b.
    assert_eq!(both(&s, &placeholder("q", 500, 2, 1)), bind("b"));
}

#[test]
fn warm_seat_held_by_placeholder_beats_free_cold_seat() {
    let mut s = Snapshot::new();
    let mut warm = node("warm", 4000, 16);
    warm.prepull_ready = true;
    let mut cold = node("cold", 4000, 16);
    cold.ready_since = Some(NOW - 1000); // Ready, not settled
    cold.prepull_ready = true;
    s.upsert_node(warm);
    s.upsert_node(cold);
    s.upsert_pod(on(placeholder("p1", 2000, 8, 1), "warm"));
    s.upsert_pod(on(placeholder("p2", 2000, 8, 2), "warm"));
    let d = both(&s, &user("u", 1000, 4));
    // The newest lowest-priority placeholder goes.
    assert_eq!(
        d,
        Decision::Preempt {
            node: "warm".into(),
            victims: vec![PodKey("p/p2".into())]
        }
    );
    // preemptionPolicy: Never takes the cold free seat.
    let mut never = user("n", 1000, 4);
    never.preemption_policy = PreemptionPolicy::Never;
    assert_eq!(both(&s, &never), bind("cold"));
    // Placeholders go to cold nodes first.
    assert_eq!(both(&s, &placeholder("p3", 100, 1, 3)), bind("cold"));
}

#[test]
fn warm_means_images_present_or_prepull_ready() {
    let mut s = Snapshot::new();
    let img = ImageName::normalize("jupyter/scipy-notebook:2024");
    let mut has = node("has", 4000, 16);
    has.images.insert(img.clone());
    let lacks = node("lacks", 4000, 16);
    s.upsert_node(has);
    s.upsert_node(lacks.clone());
    // lacks is fuller, but has the image missing.
    s.upsert_pod(on(user("x", 1000, 4), "lacks"));
    let mut u = user("u", 500, 1);
    u.images = vec![img];
    assert_eq!(both(&s, &u), bind("has"));
    let mut lacks = lacks;
    lacks.prepull_ready = true;
    s.upsert_node(lacks);
    assert_eq!(both(&s, &u), bind("lacks"));
}

#[test]
fn preferred_affinity_dominates_and_prefer_no_schedule_breaks_ties() {
    let mut s = Snapshot::new();
    let mut user_pool = node("user-1", 4000, 16);
    user_pool
        .labels
        .insert("hub.jupyter.org/node-purpose".into(), "user".into());
    let mut user_pool_2 = user_pool.clone();
    user_pool_2.name = "user-2".into();
    user_pool_2.taints.push(Taint {
        key: "DeletionCandidateOfClusterAutoscaler".into(),
        value: "1".into(),
        effect: TaintEffect::PreferNoSchedule,
    });
    s.upsert_node(user_pool);
    s.upsert_node(user_pool_2);
    s.upsert_node(node("other", 4000, 16));
    s.upsert_pod(on(user("x", 3000, 12), "other"));
    s.upsert_pod(on(user("y", 3000, 12), "user-2"));
    let mut u = user("u", 500, 2);
    u.preferred_affinity = vec![PreferredTerm {
        weight: 100,
        term: NodeSelectorTerm {
            match_expressions: vec![SelectorRequirement {
                key: "hub.jupyter.org/node-purpose".into(),
                operator: SelectorOperator::In,
                values: vec!["user".into()],
            }],
            match_fields: vec![],
        },
    }];
    // user-2 is fuller but carries an untolerated PreferNoSchedule taint.
    assert_eq!(both(&s, &u), bind("user-1"));
}

#[test]
fn nominated_pods_reserve_against_equal_or_lower_priority() {
    let mut s = Snapshot::new();
    s.upsert_node(node("n", 2000, 8));
    let mut waiting = user("w", 1500, 6);
    waiting.priority = 5;
    s.upsert_pod(waiting.clone());
    s.nominate(&waiting.key, "n");
    // Lower or equal priority: the seat is reserved.
    let Decision::Unschedulable(d) = both(&s, &user("u", 1000, 1)) else {
        panic!()
    };
    assert_eq!(d.message(), "0/1 nodes are available: 1 Insufficient cpu.");
    // The nominated pod itself is not blocked by its own reservation.
    assert_eq!(both(&s, &s.pod(&waiting.key).unwrap().clone()), bind("n"));
    // Higher priority ignores the reservation.
    let mut high = user("h", 1000, 1);
    high.priority = 10;
    assert_eq!(both(&s, &high), bind("n"));
    s.clear_nomination(&waiting.key);
    assert_eq!(both(&s, &user("u", 1000, 1)), bind("n"));
}

#[test]
fn victims_are_the_fewest_lowest_priority_newest() {
    let mut s = Snapshot::new();
    s.upsert_node(node("n", 4000, 16));
    s.upsert_pod(on(user("x", 1000, 4), "n"));
    s.upsert_pod(on(placeholder("small-old", 500, 2, 1), "n"));
    s.upsert_pod(on(placeholder("small-new", 500, 2, 2), "n"));
    s.upsert_pod(on(placeholder("big", 2000, 8, 0), "n"));
    // 1500m needed: two small ones would do, but the big one alone is fewer.
    let d = both(&s, &user("u", 1500, 1));
    assert_eq!(
        d,
        Decision::Preempt {
            node: "n".into(),
            victims: vec![PodKey("p/big".into())]
        }
    );
    // 2500m: big + one small; the newer small goes. Victims are listed least important
    // first.
    let d = both(&s, &user("v", 2500, 1));
    assert_eq!(
        d,
        Decision::Preempt {
            node: "n".into(),
            victims: vec![PodKey("p/small-new".into()), PodKey("p/big".into())]
        }
    );
    // Never a user, never a placeholder of equal or higher priority.
    let mut low = user("low", 2500, 1);
    low.priority = -10;
    assert!(matches!(both(&s, &low), Decision::Unschedulable(_)));
}

#[test]
fn free_seat_beats_preemption_on_equally_warm_nodes() {
    let mut s = Snapshot::new();
    s.upsert_node(node("full", 4000, 16));
    s.upsert_node(node("free", 4000, 16));
    s.upsert_pod(on(placeholder("p", 4000, 16, 0), "full"));
    assert_eq!(both(&s, &user("u", 1000, 1)), bind("free"));
}

#[test]
fn assumed_pods_count_until_confirmed_or_forgotten() {
    let mut s = Snapshot::new();
    s.upsert_node(node("n", 2000, 8));
    let a = user("a", 1500, 1);
    s.upsert_pod(a.clone());
    s.assume(&a.key, "n");
    assert_eq!(s.requested("n").cpu_milli, 1500);
    // A stale pending update does not undo the assumption.
    s.upsert_pod(a.clone());
    assert_eq!(s.requested("n").cpu_milli, 1500);
    s.forget(&a.key);
    assert_eq!(s.requested("n").cpu_milli, 0);
    s.assume(&a.key, "n");
    s.upsert_pod(on(a.clone(), "n"));
    s.forget(&a.key); // confirmed: forget does nothing
    assert_eq!(s.requested("n").cpu_milli, 1500);
    assert_eq!(s.remove_pod(&a.key).map(|p| p.key), Some(a.key));
    assert_eq!(s.requested("n"), Resources::default());
}

#[test]
fn scoring_counts_default_requests_of_pods_without_requests() {
    // Node a holds pods without requests (scored as 100m/200Mi each), node b pods with
    // small real requests. a scores higher after placement and must win even though its
    // fit-free fraction is larger (the index bound has to include the excess).
    const MI: i64 = 1 << 20;
    let mut s = Snapshot::new();
    for name in ["a", "b"] {
        let mut n = Node::new(name, Resources::new(1000, 1000 * MI).with_pods(110));
        n.ready_since = Some(0);
        s.upsert_node(n);
    }
    for i in 0..4 {
        let mut p = Pod::simple(
            &format!("u/bare{i}"),
            PodRole::User,
            0,
            Resources::default(),
            0,
        );
        p.score_requests.cpu_milli = 100;
        p.score_requests.memory = 200 * MI;
        s.upsert_pod(on(p, "a"));
    }
    let p = Pod::simple("u/real", PodRole::User, 0, Resources::new(300, 300 * MI), 0);
    s.upsert_pod(on(p, "b"));
    let new = Pod::simple("u/new", PodRole::User, 0, Resources::new(100, 100 * MI), 0);
    assert_eq!(both(&s, &new), bind("a"));
}

#[test]
fn fewer_victims_win_a_tie_even_against_an_earlier_name() {
    let mut s = Snapshot::new();
    s.upsert_node(node("a", 4000, 16));
    s.upsert_node(node("b", 4000, 16));
    for n in ["a", "b"] {
        s.upsert_pod(on(user(&format!("x-{n}"), 1000, 4), n));
    }
    s.upsert_pod(on(placeholder("a1", 1500, 6, 0), "a"));
    s.upsert_pod(on(placeholder("a2", 1500, 6, 0), "a"));
    s.upsert_pod(on(placeholder("b1", 3000, 12, 0), "b"));
    assert_eq!(
        both(&s, &user("new", 2000, 8)),
        Decision::Preempt {
            node: "b".into(),
            victims: vec![PodKey("p/b1".into())]
        }
    );
}

#[test]
fn a_placeholder_is_judged_by_its_users_images_not_its_own() {
    // Both nodes Ready and settled; "pulling" has not got the user image yet.
    let user_image = ImageName::normalize("jupyter/scipy-notebook:2024");
    let pause = ImageName::normalize("registry.k8s.io/pause:3.10");
    let mut warm = node("warm", 4000, 16);
    warm.images.insert(user_image.clone());
    warm.images.insert(pause.clone());
    let mut pulling = node("pulling", 4000, 16);
    pulling.images.insert(pause);
    let mut s = Snapshot::new();
    s.upsert_node(warm);
    s.upsert_node(pulling);
    // "warm" is fuller: packing alone would send the placeholder there.
    s.upsert_pod(on(user("x", 1000, 4), "warm"));
    let mut p = placeholder("p", 1000, 4, 1);
    p.images = vec![user_image];
    assert_eq!(both(&s, &p), bind("pulling"));
    // A user takes the warm seat.
    let mut u = user("u", 1000, 4);
    u.images = p.images.clone();
    assert_eq!(both(&s, &u), bind("warm"));

    // Without its users' images only the pre-puller tells: neither node's pre-puller is
    // Ready, so both are cold for it and packing decides, whatever images they list...
    let mut bare = placeholder("bare", 1000, 4, 2);
    bare.images = vec![];
    assert_eq!(both(&s, &bare), bind("warm"));
    // ...and once the pre-puller is Ready on "warm", it leaves that node to users.
    let mut warm = s.node("warm").unwrap().clone();
    warm.prepull_ready = true;
    s.upsert_node(warm);
    assert_eq!(both(&s, &bare), bind("pulling"));
}

#[test]
fn an_unsupported_constraint_is_a_refusal_only_hubpack_makes() {
    let mut s = Snapshot::new();
    s.upsert_node(node("n", 4000, 16));
    let mut u = user("u", 100, 1);
    u.unsupported = vec!["required pod anti-affinity".into()];
    let Decision::Unschedulable(d) = both(&s, &u) else {
        panic!("refused")
    };
    assert!(d.refused_by_hubpack_only(), "{}", d.message());
    let big = user("big", 8000, 1);
    let Decision::Unschedulable(d) = both(&s, &big) else {
        panic!("too big")
    };
    assert!(!d.refused_by_hubpack_only(), "{}", d.message());
}

#[test]
fn with_no_warm_seat_a_user_waits_on_the_cold_node_ready_longest_whatever_its_name() {
    // Three nodes still pulling the user's image, each with one placeholder: the names run
    // against the Ready times (as a cloud's random names do). The user goes where the pull
    // began first; packing still comes before it (a cold node with users already is fuller).
    let img = ImageName::normalize("jupyter/scipy-notebook:2024");
    let mut s = Snapshot::new();
    for (name, ready) in [
        ("a-latest", NOW - 60_000),
        ("m-later", NOW - 120_000),
        ("z-first", NOW - 180_000),
    ] {
        let mut n = node(name, 4000, 16);
        n.ready_since = Some(ready);
        s.upsert_node(n);
        s.upsert_pod(on(placeholder(&format!("p-{name}"), 3500, 14, 0), name));
    }
    let mut u = user("u", 1000, 4);
    u.images = vec![img.clone()];
    assert_eq!(
        both(&s, &u),
        Decision::Preempt {
            node: "z-first".into(),
            victims: vec![PodKey("p/p-z-first".into())]
        }
    );
    // Free seats too: the placeholders gone, still the node Ready longest.
    for name in ["a-latest", "m-later", "z-first"] {
        s.remove_pod(&PodKey(format!("p/p-{name}")));
    }
    assert_eq!(both(&s, &u), bind("z-first"));
    // A user already waiting on m-later makes it the fuller cold node: packing first.
    let mut waiting = user("w", 1000, 4);
    waiting.images = vec![img];
    s.upsert_pod(on(waiting, "m-later"));
    assert_eq!(both(&s, &u), bind("m-later"));
}
