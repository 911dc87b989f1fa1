//! Tests of observe + decide on k8s objects built in memory.

use crate::config::Config;
use crate::decide::Controller;
use crate::observe::observe_pool;
use crate::sources::{Source, SourcedEvent};
use crate::test_objects::*;
use hubpack_core::headroom::ScheduledEvent;
use hubpack_core::model::Millis;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::collections::BTreeMap;

const S: Millis = 1000;
const MIN: Millis = 60_000;

fn cfg(extra: &str) -> Config {
    Config::parse(
        &format!(
            "namespace: hub\n\
             placeholders: {{scaleDownAfterSeconds: 300}}\n\
             leadTime: {{initialSeconds: 600, minSamples: 2, reactionSeconds: 0, minSeconds: 10}}\n\
             pools:\n\
             - name: default\n\
             \x20 nodeSelector: {{hub.jupyter.org/node-purpose: user}}\n\
             \x20 perUser: {{cpu: \"1\", memory: 2Gi}}\n\
             \x20 freshNode: {{allocatable: {{cpu: \"8\", memory: 32Gi, pods: \"110\"}}}}\n\
             \x20 images: [quay.io/jupyter/scipy-notebook:2024-12-02]\n{extra}"
        ),
        "t",
    )
    .expect("valid test config")
}

fn event(start: Millis, users: f64) -> SourcedEvent {
    SourcedEvent {
        source: Source::Config,
        pool: "default".into(),
        name: "class".into(),
        event: ScheduledEvent {
            start,
            window: 5 * MIN,
            users,
            weekly: false,
        },
    }
}

struct World {
    nodes: Vec<Node>,
    pods: Vec<Pod>,
}

impl World {
    fn step(
        &self,
        c: &Config,
        ctl: &mut Controller,
        now: Millis,
        events: &[SourcedEvent],
        replicas: usize,
    ) -> crate::decide::PoolDecision {
        let sizes = c.pool_sizes().expect("sizes");
        let nodes: Vec<&Node> = self.nodes.iter().collect();
        let pods: Vec<&Pod> = self.pods.iter().collect();
        let view = observe_pool(c, &c.pools[0], &sizes[0], &nodes, &pods);
        let current: BTreeMap<String, usize> =
            [("hubpack-placeholder-default".to_string(), replicas)].into();
        let mut d = ctl.step(now, c, &sizes, &[view], events, &current);
        d.pools.remove(0)
    }
}

#[test]
fn free_warm_seats_count_only_warm_ready_nodes_minus_everything_on_them() {
    let c = cfg("");
    let img = "quay.io/jupyter/scipy-notebook:2024-12-02";
    let w = World {
        nodes: vec![
            node("warm", 0, Some(0), &[img]),
            node("pulling", 0, Some(0), &[]),
            node("booting", 0, None, &[img]),
            node("prepulled", 0, Some(0), &[]),
        ],
        pods: vec![
            user("u1", Some("warm"), 0, Some("1")),
            placeholder("p1", Some("warm"), None, 3000),
            prepuller("prepulled", Some(0)),
        ],
    };
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    // warm: 8 - 1 - 3 = 4 seats; prepulled: floor((8000 - 1) / 1000) = 7.
    assert_eq!(d.free_warm_seats, 11);
}

/// `node` with taints, labels and cordon changed.
fn shaped(mut n: Node, taints: &[(&str, &str, &str)], purpose: &str, cordoned: bool) -> Node {
    let spec = n.spec.get_or_insert_default();
    spec.taints = Some(
        taints
            .iter()
            .map(|(key, value, effect)| k8s_openapi::api::core::v1::Taint {
                key: key.to_string(),
                value: (!value.is_empty()).then(|| value.to_string()),
                effect: effect.to_string(),
                time_added: None,
            })
            .collect(),
    );
    spec.unschedulable = Some(cordoned);
    n.metadata
        .labels
        .get_or_insert_default()
        .insert("hub.jupyter.org/node-purpose".into(), purpose.into());
    n
}

#[test]
fn warm_seats_count_only_where_a_user_pod_of_the_pool_would_be_scheduled() {
    let img = "quay.io/jupyter/scipy-notebook:2024-12-02";
    let nodes = || {
        vec![
            // Tainted for users, and the pool tolerates it: counted (8 seats).
            shaped(
                node("user", 0, Some(0), &[img]),
                &[("hub.jupyter.org/dedicated", "user", "NoSchedule")],
                "user",
                false,
            ),
            // The hub's core node, labelled like a user node by mistake: its taint keeps
            // users off.
            shaped(
                node("core", 0, Some(0), &[img]),
                &[("hub.jupyter.org/dedicated", "core", "NoSchedule")],
                "user",
                false,
            ),
            // Being removed by the cluster autoscaler.
            shaped(
                node("leaving", 0, Some(0), &[img]),
                &[("ToBeDeletedByClusterAutoscaler", "1733480000", "NoSchedule")],
                "user",
                false,
            ),
            shaped(node("cordoned", 0, Some(0), &[img]), &[], "user", true),
            // A PreferNoSchedule taint does not keep users off.
            shaped(
                node("preferred", 0, Some(0), &[img]),
                &[("example.com/busy", "", "PreferNoSchedule")],
                "user",
                false,
            ),
        ]
    };
    let c = cfg(
        "  tolerations: [{key: hub.jupyter.org/dedicated, operator: Equal, value: user, effect: NoSchedule}]
",
    );
    let w = World {
        nodes: nodes(),
        pods: vec![],
    };
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    assert_eq!(d.free_warm_seats, 16, "user + preferred: 8 seats each");

    // The same pool without the toleration: only the untainted-for-users node counts.
    let c = cfg("");
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    assert_eq!(d.free_warm_seats, 8, "preferred only");

    // Required node affinity excludes the nodes it does not select.
    let c = cfg(
        "  tolerations: [{key: hub.jupyter.org/dedicated, operator: Exists}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: NotIn, values: [user]}]}]}}}
",
    );
    let mut w = World {
        nodes: nodes(),
        pods: vec![],
    };
    for n in &mut w.nodes {
        let name = n.metadata.name.clone().unwrap();
        n.metadata
            .labels
            .get_or_insert_default()
            .insert("kubernetes.io/hostname".into(), name);
    }
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    assert_eq!(
        d.free_warm_seats, 16,
        "core (tolerated by Exists) + preferred; user excluded by affinity"
    );
}

#[test]
fn a_user_nominated_to_a_node_already_takes_its_seat() {
    let c = cfg("");
    let img = "quay.io/jupyter/scipy-notebook:2024-12-02";
    let mut waiting = user("u1", None, 0, Some("4"));
    waiting.status.get_or_insert_default().nominated_node_name = Some("warm".into());
    let w = World {
        nodes: vec![node("warm", 0, Some(0), &[img])],
        pods: vec![waiting],
    };
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    assert_eq!(d.free_warm_seats, 4, "8 cpu minus the nominated user's 4");
}

#[test]
fn a_class_that_arrived_at_once_wants_no_more_placeholders() {
    let c = cfg("  usersPerPlaceholder: 4\n  lead: 600\n");
    let mut ctl = Controller::new(&c);
    let ev = [event(10 * MIN, 40.0)];
    let empty = World {
        nodes: vec![],
        pods: vec![],
    };
    empty.step(&c, &mut ctl, 9 * MIN, &ev, 0);
    // All 40 arrived within seconds of the start, some a little early.
    let w = World {
        nodes: vec![],
        pods: (0..40)
            .map(|i| {
                user(
                    &format!("u{i}"),
                    None,
                    10 * MIN - 2 * S + i * 300,
                    Some("1"),
                )
            })
            .collect(),
    };
    let d = w.step(&c, &mut ctl, 10 * MIN + 30 * S, &ev, 13);
    assert_eq!(d.forecast.expected, 0.0);
    assert_eq!(d.placements[0].target, 0);
}

#[test]
fn an_event_raises_the_target_a_lead_time_ahead_and_surplus_pending_go_at_once() {
    let c = cfg("  usersPerPlaceholder: 4\n  lead: 600\n");
    let w = World {
        nodes: vec![],
        pods: vec![],
    };
    let mut ctl = Controller::new(&c);
    let ev = [event(30 * MIN, 40.0)];
    // 25 min before: nothing expected within the 10 min lead.
    let d = w.step(&c, &mut ctl, 5 * MIN, &ev, 0);
    assert_eq!(d.placements[0].replicas, 0);
    // [20, 30) ends where the event starts.
    let d = w.step(&c, &mut ctl, 20 * MIN, &ev, 0);
    assert_eq!(d.placements[0].replicas, 0);
    // 5 min before: the whole window [30, 35) is inside the 10 min lead:
    // 40 + 1.64·√40 = 50.4 → 13 of 4.
    let d = w.step(&c, &mut ctl, 25 * MIN, &ev, 0);
    assert_eq!(d.placements[0].target, 13);
    assert_eq!(d.placements[0].replicas, 13);
    assert!(
        d.placements[0].reason.contains("expected 40.0 users"),
        "{}",
        d.placements[0].reason
    );
    // After the event: the target drops; pending placeholders above it go at once...
    let pending = World {
        nodes: vec![],
        pods: (0..13)
            .map(|i| placeholder(&format!("p{i}"), None, Some(21 * MIN), 4000))
            .collect(),
    };
    let d = pending.step(&c, &mut ctl, 40 * MIN, &ev, 13);
    assert_eq!(d.placements[0].target, 0);
    assert_eq!(d.placements[0].replicas, 0);
}

#[test]
fn placed_placeholders_go_only_after_the_minimum_time_fewest_users_first() {
    let c = cfg("  usersPerPlaceholder: 2\n  lead: 600\n");
    let img = "quay.io/jupyter/scipy-notebook:2024-12-02";
    let w = World {
        nodes: vec![node("a", 0, Some(0), &[img]), node("b", 0, Some(0), &[img])],
        pods: vec![
            placeholder("pa", Some("a"), None, 2000),
            placeholder("pb", Some("b"), None, 2000),
            user("u1", Some("b"), 0, Some("1")),
            user("u2", Some("b"), 0, Some("1")),
        ],
    };
    let mut ctl = Controller::new(&c);
    let d = w.step(&c, &mut ctl, 0, &[], 2);
    assert_eq!(d.placements[0].target, 0);
    assert_eq!(d.placements[0].replicas, 2, "held");
    let costs: BTreeMap<_, _> = d.placements[0].deletion_costs.iter().cloned().collect();
    assert_eq!(costs["pa"], 0);
    assert_eq!(costs["pb"], 2);
    assert_eq!(
        w.step(&c, &mut ctl, 4 * MIN, &[], 2).placements[0].replicas,
        2
    );
    assert_eq!(
        w.step(&c, &mut ctl, 5 * MIN, &[], 2).placements[0].replicas,
        0
    );
}

#[test]
fn lead_auto_learns_unschedulable_to_warm_on_new_nodes_only() {
    let c = cfg("");
    let mut ctl = Controller::new(&c);
    assert_eq!(ctl.lead_of(&c, "default"), 600 * S);
    // p1 waits from t=10 s; node n1 is created at 60 s and its pre-puller is Ready at 250 s.
    let mut w = World {
        nodes: vec![node("old", 0, Some(0), &[])],
        pods: vec![
            placeholder("p1", None, Some(10 * S), 1000),
            placeholder("p2", None, Some(20 * S), 1000),
        ],
    };
    w.step(&c, &mut ctl, 30 * S, &[], 2);
    w.nodes.push(node("n1", 60 * S, Some(120 * S), &[]));
    w.pods = vec![
        placeholder("p1", Some("n1"), None, 1000),
        placeholder("p2", Some("old"), None, 1000), // an existing node: no sample
        prepuller("n1", None),
    ];
    let d = w.step(&c, &mut ctl, 130 * S, &[], 2);
    assert!(d.new_lead_samples.is_empty(), "not warm yet");
    w.pods[2] = prepuller("n1", Some(250 * S));
    let d = w.step(&c, &mut ctl, 260 * S, &[], 2);
    assert_eq!(d.new_lead_samples, vec![240 * S]);
    assert!(!d.lead_learned, "one sample of the two needed");
    assert_eq!(ctl.lead_of(&c, "default"), 600 * S);
    // A second scale-up: 300 s. Learned p90 of {240, 300} = 300 s.
    w.nodes.push(node("n2", 400 * S, Some(450 * S), &[]));
    w.pods.push(placeholder("p3", None, Some(380 * S), 1000));
    w.step(&c, &mut ctl, 390 * S, &[], 3);
    w.pods.pop();
    w.pods.push(placeholder("p3", Some("n2"), None, 1000));
    w.pods.push(prepuller("n2", Some(680 * S)));
    let d = w.step(&c, &mut ctl, 700 * S, &[], 3);
    assert_eq!(d.new_lead_samples, vec![300 * S]);
    assert!(d.lead_learned);
    assert_eq!(ctl.lead_of(&c, "default"), 300 * S);
}

#[test]
fn arrivals_raise_the_background_and_only_recent_existing_users_are_arrivals() {
    let c = cfg("  lead: 600\n");
    let mut ctl = Controller::new(&c);
    let mut w = World {
        nodes: vec![],
        pods: (0..50)
            .map(|i| user(&format!("old{i}"), None, 0, Some("1")))
            .collect(),
    };
    // Started 10 min after they logged in: older than the 5-min window, so no rate.
    let d = w.step(&c, &mut ctl, 10 * MIN, &[], 0);
    assert_eq!(
        d.forecast.expected, 0.0,
        "users older than the window at start are not arrivals"
    );
    for i in 0..10 {
        w.pods
            .push(user(&format!("new{i}"), None, 10 * MIN + 30 * S, Some("1")));
    }
    let d = w.step(&c, &mut ctl, 11 * MIN, &[], 0);
    // 10 arrivals in the one minute watched: 100 over the 10 min lead (the background's
    // first minute, and the live rate over the minute watched, not the 5 min window).
    assert!(
        (d.forecast.expected - 100.0).abs() < 1e-6,
        "{}",
        d.forecast.expected
    );
    // A restart (a fresh controller) then sees those 10, created 30 s before it, as a
    // controller watching the whole 5-min window would: 2 a minute, 20 over the lead,
    // instead of starting from nothing.
    let mut restarted = Controller::new(&c);
    let d = w.step(&c, &mut restarted, 11 * MIN, &[], 0);
    assert!(
        (d.forecast.expected - 20.0).abs() < 1e-6,
        "10 users in the window: {}",
        d.forecast.expected
    );
}

#[test]
fn a_pool_node_smaller_than_the_configured_fresh_node_is_reported() {
    // N = 8 users of 1 cpu on the configured 8-cpu node; the real node has 4 cpu.
    let c = cfg("  usersPerPlaceholder: 7\n");
    let mut small = node("small", 0, Some(0), &[]);
    if let Some(s) = small.status.as_mut() {
        s.allocatable.get_or_insert_default().insert(
            "cpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("4".into()),
        );
    }
    let w = World {
        nodes: vec![small, node("big", 0, Some(0), &[])],
        pods: vec![],
    };
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    assert_eq!(d.misfits.len(), 1);
    assert_eq!(d.misfits[0].0, "small");
    assert!(
        d.misfits[0].1.contains("does not fit"),
        "{}",
        d.misfits[0].1
    );
}

#[test]
fn a_user_pod_without_requests_is_reported() {
    let c = cfg("");
    let w = World {
        nodes: vec![],
        pods: vec![user("bare", None, 0, None)],
    };
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    assert_eq!(d.problems.len(), 1);
    assert_eq!(d.problems[0].name, "bare");
    assert!(d.problems[0].field.contains("requests"));
}

#[test]
fn prepull_images_are_configured_then_most_used_and_change_rarely() {
    let c = cfg("");
    let mut ctl = Controller::new(&c);
    let mut pods: Vec<Pod> = Vec::new();
    for (i, img) in [
        "x/a:1", "x/a:1", "x/b:1", "x/c:1", "x/c:1", "x/c:1", "x/d:1",
    ]
    .iter()
    .enumerate()
    {
        let mut p = user(&format!("u{i}"), Some("n"), 0, Some("1"));
        if let Some(s) = p.spec.as_mut() {
            s.containers[0].image = Some(img.to_string());
        }
        pods.push(p);
    }
    let w = World {
        nodes: vec![],
        pods,
    };
    let d = w.step(&c, &mut ctl, 0, &[], 0);
    assert_eq!(
        d.prepull_images[0],
        "quay.io/jupyter/scipy-notebook:2024-12-02"
    );
    // Top 3 by use (c ×3, a ×2, then b/d tie → b), kept in name order.
    assert_eq!(
        &d.prepull_images[1..],
        &["docker.io/x/a:1", "docker.io/x/b:1", "docker.io/x/c:1"]
    );
}

#[test]
fn the_cost_guard_caps_the_target_at_max_nodes_and_says_from_what() {
    // auto: 7 users per placeholder (8 cpu, 1 for DaemonSets and the pre-puller); maxNodes 2
    // → at most 2 placeholders however large the event.
    let c = cfg("  lead: 600\n  maxNodes: 2\n");
    let w = World {
        nodes: vec![],
        pods: vec![],
    };
    let mut ctl = Controller::new(&c);
    let ev = [event(30 * MIN, 200.0)];
    let d = w.step(&c, &mut ctl, 25 * MIN, &ev, 0);
    let pl = &d.placements[0];
    assert_eq!(pl.replicas, 2);
    assert_eq!(pl.target, 2);
    let wanted = pl.capped_from.expect("capped");
    assert!(wanted > 2, "{wanted}");
    assert!(pl.reason.contains("maxNodes"), "{}", pl.reason);
    // A small event stays under the cap: not capped.
    let mut ctl = Controller::new(&c);
    let d = w.step(&c, &mut ctl, 25 * MIN, &[event(30 * MIN, 3.0)], 0);
    assert_eq!(d.placements[0].capped_from, None);
    assert!(d.placements[0].replicas <= 2);
}

#[test]
fn the_cost_guard_counts_nodes_worth_of_seats_with_smaller_placeholders() {
    // 2 users per placeholder; a fresh node seats 7: 3 nodes' worth = 21 seats = 10.
    let c = cfg("  usersPerPlaceholder: 2\n  lead: 600\n  maxNodes: 3\n");
    let sizes = c.pool_sizes().unwrap();
    assert_eq!(sizes[0].max_placeholders, 3 * 7 / 2);
    let w = World {
        nodes: vec![],
        pods: vec![],
    };
    let d = w.step(
        &c,
        &mut Controller::new(&c),
        25 * MIN,
        &[event(30 * MIN, 200.0)],
        0,
    );
    assert_eq!(d.placements[0].replicas, 10);
}

#[test]
fn the_cost_guard_is_shared_over_zones_without_exceeding_it() {
    assert_eq!(crate::decide::placement_caps(5, 2), vec![3, 2]);
    assert_eq!(crate::decide::placement_caps(1, 3), vec![1, 0, 0]);
    assert_eq!(crate::decide::placement_caps(10, 1), vec![10]);
}

/// Two scale-ups (240 s and 300 s) and ten users arriving: what a checkpoint has to carry.
fn learned_world(c: &Config, ctl: &mut Controller) -> World {
    let mut w = World {
        nodes: vec![],
        pods: vec![
            placeholder("p1", None, Some(10 * S), 1000),
            placeholder("p2", None, Some(20 * S), 1000),
        ],
    };
    w.step(c, ctl, 30 * S, &[], 2);
    w.nodes.push(node("n1", 60 * S, Some(120 * S), &[]));
    w.nodes.push(node("n2", 60 * S, Some(120 * S), &[]));
    w.pods = vec![
        placeholder("p1", Some("n1"), None, 1000),
        placeholder("p2", Some("n2"), None, 1000),
        prepuller("n1", Some(250 * S)),
        prepuller("n2", Some(320 * S)),
    ];
    for i in 0..10 {
        w.pods
            .push(user(&format!("u{i}"), None, 200 * S + i * S, Some("1")));
    }
    w.step(c, ctl, 330 * S, &[], 2);
    w
}

#[test]
fn a_controller_restored_from_a_checkpoint_decides_as_the_one_that_wrote_it() {
    let c = cfg("");
    let mut first = Controller::new(&c);
    let w = learned_world(&c, &mut first);
    assert_eq!(first.lead_of(&c, "default"), 300 * S, "learned, not 600 s");
    let text = crate::checkpoint::encode(&crate::checkpoint::Checkpoint {
        pools: first.checkpoint(),
        ..Default::default()
    })
    .unwrap()
    .text;
    let mut second = Controller::new(&c);
    let saved = crate::checkpoint::decode(&text).unwrap();
    assert_eq!(second.restore(&saved.pools), vec!["default".to_string()]);
    assert_eq!(second.lead_of(&c, "default"), 300 * S);
    // Both see the same cluster from here on: the same decision, the users the first had
    // already counted not counted again by the second.
    for now in [340 * S, 400 * S, 900 * S] {
        let a = w.step(&c, &mut first, now, &[], 2);
        let b = w.step(&c, &mut second, now, &[], 2);
        assert_eq!(a, b, "at {now}");
    }
    // Without the checkpoint, a fresh controller starts from the configured lead.
    let mut fresh = Controller::new(&c);
    let d = w.step(&c, &mut fresh, 900 * S, &[], 2);
    assert_eq!(d.forecast.lead, 600 * S);
}

#[test]
fn a_checkpoint_of_another_pool_is_ignored() {
    let c = cfg("");
    let mut first = Controller::new(&c);
    learned_world(&c, &mut first);
    let mut pools = first.checkpoint();
    let saved = pools.remove("default").unwrap();
    pools.insert("renamed".into(), saved);
    let mut second = Controller::new(&c);
    assert!(second.restore(&pools).is_empty());
    assert_eq!(second.lead_of(&c, "default"), 600 * S);
}

#[test]
fn seen_users_are_forgotten_when_gone_and_bounded() {
    let c = cfg("  lead: 600\n");
    let mut ctl = Controller::new(&c).with_max_seen_users(5);
    let mut w = World {
        nodes: vec![],
        pods: (0..3)
            .map(|i| user(&format!("a{i}"), None, 0, Some("1")))
            .collect(),
    };
    w.step(&c, &mut ctl, MIN, &[], 0);
    assert_eq!(ctl.seen_user_count(), 3);
    // Gone: remembered for a while (a relisting watch), then forgotten.
    w.pods.clear();
    w.step(&c, &mut ctl, 30 * MIN, &[], 0);
    assert_eq!(ctl.seen_user_count(), 3);
    w.step(
        &c,
        &mut ctl,
        MIN + crate::decide::FORGET_USERS_AFTER + 1,
        &[],
        0,
    );
    assert_eq!(ctl.seen_user_count(), 0);
    // Never more than the cap, however many exist.
    w.pods = (0..8)
        .map(|i| user(&format!("b{i}"), None, 2 * 60 * MIN, Some("1")))
        .collect();
    w.step(&c, &mut ctl, 2 * 60 * MIN + 1, &[], 0);
    assert_eq!(ctl.seen_user_count(), 5);
}

#[test]
fn initial_users_per_hour_is_the_background_until_there_is_history() {
    let c = cfg("  lead: 600\n  background: {initialUsersPerHour: 60}\n");
    let mut ctl = Controller::new(&c);
    let w = World {
        nodes: vec![],
        pods: vec![],
    };
    // No user seen yet: 60 an hour, 10 over the 10-min lead.
    let d = w.step(&c, &mut ctl, 0, &[], 0);
    assert!(
        (d.forecast.expected - 10.0).abs() < 1e-9,
        "{}",
        d.forecast.expected
    );
    // Hours of a quiet hub bring it down.
    let d = w.step(&c, &mut ctl, 3 * 60 * MIN, &[], 0);
    assert!(d.forecast.expected < 2.0, "{}", d.forecast.expected);
    // Without it, nothing until users are seen.
    let c = cfg("  lead: 600\n");
    let d = w.step(&c, &mut Controller::new(&c), 0, &[], 0);
    assert_eq!(d.forecast.expected, 0.0);
}

#[test]
fn a_buffers_chunks_on_warm_nodes_hold_their_seats_and_go_only_after_the_minimum_time() {
    // No placeholder pod: the buffer's 2 chunks of 4 sit in the autoscaler's simulation on
    // the warm node's 8 free seats. The forecast must not see those seats as free (or it
    // would drop the buffer the moment its nodes come up), and the chunks on warm nodes
    // are held like placed placeholders.
    let c = cfg("  usersPerPlaceholder: 4\n  lead: 600\n  backend: capacityBuffer\n");
    let img = "quay.io/jupyter/scipy-notebook:2024-12-02";
    let w = World {
        nodes: vec![node("warm", 0, Some(0), &[img])],
        pods: vec![],
    };
    let mut ctl = Controller::new(&c);
    let ev = [event(30 * MIN, 6.0)];
    // 6 + 1.64·√6 = 10.0 → 3 chunks of 4 with nothing free; 8 seats held by the 2
    // current chunks, so still 3 (not 1: the warm seats are the buffer's).
    let d = w.step(&c, &mut ctl, 25 * MIN, &ev, 2);
    assert_eq!(d.free_warm_seats, 0, "the chunks' seats are not free");
    assert_eq!(d.placements[0].target, 3);
    assert_eq!(d.placements[0].replicas, 3);
    assert_eq!(d.placements[0].placed, 2);
    assert_eq!(d.placements[0].pending, 0, "0 of the 2 current chunks wait");
    // After the event: the 2 chunks on the warm node are held for scaleDownAfter, then go.
    let d = w.step(&c, &mut ctl, 40 * MIN, &ev, 2);
    assert_eq!(d.placements[0].target, 0);
    assert_eq!(d.placements[0].replicas, 2, "held");
    assert_eq!(
        w.step(&c, &mut ctl, 45 * MIN, &ev, 2).placements[0].replicas,
        0
    );
    // With the placeholder backend the same warm node's seats are free: target 1.
    let p = cfg("  usersPerPlaceholder: 4\n  lead: 600\n");
    let d = w.step(&p, &mut Controller::new(&p), 25 * MIN, &ev, 2);
    assert_eq!(d.free_warm_seats, 8);
    assert_eq!(d.placements[0].target, 1);
}
