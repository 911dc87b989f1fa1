//! Filter semantics, case by case, from Kubernetes' behavior.

use super::*;
use crate::model::{
    HostPort, Node, NodeSelector, NodeSelectorTerm, Pod, PodRole, PodVolume, PreferredTerm,
    Resources, SelectorOperator, SelectorRequirement, StaticPv, Taint, TaintEffect, Toleration,
    TolerationOperator,
};

fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect,
    }
}

fn tol(key: &str, op: TolerationOperator, value: &str, effect: Option<TaintEffect>) -> Toleration {
    Toleration {
        key: key.into(),
        operator: op,
        value: value.into(),
        effect,
    }
}

fn req(key: &str, op: SelectorOperator, values: &[&str]) -> SelectorRequirement {
    SelectorRequirement {
        key: key.into(),
        operator: op,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn term(exprs: Vec<SelectorRequirement>) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: exprs,
        match_fields: vec![],
    }
}

fn node_with(labels: &[(&str, &str)]) -> Node {
    let mut n = Node::new("n1", Resources::new(4000, 16 << 30).with_pods(110));
    for (k, v) in labels {
        n.labels.insert(k.to_string(), v.to_string());
    }
    n
}

fn pod() -> Pod {
    Pod::simple("ns/p", PodRole::User, 0, Resources::new(1000, 1 << 30), 0)
}

#[test]
fn toleration_matching_follows_tolerates_taint() {
    use TaintEffect::*;
    use TolerationOperator::*;
    let t = taint("k", "v", NoSchedule);
    let cases = [
        (tol("k", Equal, "v", Some(NoSchedule)), true),
        (tol("k", Equal, "other", Some(NoSchedule)), false),
        (tol("k", Exists, "", Some(NoSchedule)), true),
        (tol("k", Exists, "", None), true), // empty effect: all effects
        (tol("k", Exists, "", Some(NoExecute)), false), // effect mismatch
        (tol("", Exists, "", None), true),  // empty key + Exists: everything
        (tol("", Exists, "", Some(PreferNoSchedule)), false),
        (tol("other", Exists, "", None), false),
        (tol("", Equal, "v", None), true), // empty key matches any key
    ];
    for (t_, want) in cases {
        assert_eq!(tolerates(&t_, &t), want, "{t_:?}");
    }
}

#[test]
fn noschedule_and_noexecute_filter_prefernoschedule_does_not() {
    let tols = vec![];
    let pns = [taint("a", "", TaintEffect::PreferNoSchedule)];
    assert!(filter_untolerated_taint(&pns, &tols).is_none());
    let ne = [taint("b", "x", TaintEffect::NoExecute)];
    assert_eq!(
        filter_untolerated_taint(&ne, &tols).map(|t| t.key.as_str()),
        Some("b")
    );
    let both = [
        taint("a", "", TaintEffect::PreferNoSchedule),
        taint("c", "1", TaintEffect::NoSchedule),
    ];
    assert_eq!(
        filter_untolerated_taint(&both, &tols).map(|t| t.key.as_str()),
        Some("c")
    );
}

#[test]
fn prefer_no_schedule_counts_only_relevant_tolerations() {
    use TolerationOperator::*;
    let taints = [
        taint("a", "", TaintEffect::PreferNoSchedule),
        taint("b", "", TaintEffect::PreferNoSchedule),
        taint("c", "", TaintEffect::NoSchedule),
    ];
    assert_eq!(prefer_no_schedule_count(&taints, &[]), 2);
    // A NoSchedule-only toleration does not count for PreferNoSchedule taints.
    let t = [tol("a", Exists, "", Some(TaintEffect::NoSchedule))];
    assert_eq!(prefer_no_schedule_count(&taints, &t), 2);
    let t = [tol("a", Exists, "", None)];
    assert_eq!(prefer_no_schedule_count(&taints, &t), 1);
    let t = [tol("", Exists, "", Some(TaintEffect::PreferNoSchedule))];
    assert_eq!(prefer_no_schedule_count(&taints, &t), 0);
}

#[test]
fn unschedulable_node_is_tolerable() {
    let mut n = node_with(&[]);
    n.unschedulable = true;
    let mut p = pod();
    assert_eq!(static_pre(&n, &p), Some(Reason::NodeUnschedulable));
    p.tolerations.push(tol(
        "node.kubernetes.io/unschedulable",
        TolerationOperator::Exists,
        "",
        Some(TaintEffect::NoSchedule),
    ));
    assert_eq!(static_pre(&n, &p), None);
}

#[test]
fn readiness_is_judged_by_the_not_ready_taint_as_kube_scheduler_does() {
    let mut n = node_with(&[]);
    n.ready_since = None;
    assert_eq!(
        static_pre(&n, &pod()),
        None,
        "the Ready condition alone filters nothing"
    );
    n.taints.push(taint(
        "node.kubernetes.io/not-ready",
        "",
        TaintEffect::NoSchedule,
    ));
    assert_eq!(
        static_pre(&n, &pod()),
        Some(Reason::UntoleratedTaint {
            key: "node.kubernetes.io/not-ready".into(),
            value: "".into()
        })
    );
}

#[test]
fn label_operators() {
    use SelectorOperator::*;
    let n = node_with(&[("zone", "a"), ("gen", "5"), ("name", "x1")]);
    let cases = [
        (req("zone", In, &["a", "b"]), true),
        (req("zone", In, &["b"]), false),
        (req("zone", In, &[]), false), // invalid: In needs values
        (req("zone", NotIn, &["b"]), true),
        (req("zone", NotIn, &["a"]), false),
        (req("missing", NotIn, &["a"]), true), // absent label satisfies NotIn
        (req("zone", Exists, &[]), true),
        (req("zone", Exists, &["a"]), false), // invalid: Exists takes no values
        (req("missing", DoesNotExist, &[]), true),
        (req("zone", DoesNotExist, &[]), false),
        (req("gen", Gt, &["4"]), true),
        (req("gen", Gt, &["5"]), false),
        (req("gen", Lt, &["6"]), true),
        (req("gen", Lt, &["5"]), false),
        (req("gen", Gt, &["4.5"]), false), // non-integer bound: invalid
        (req("gen", Gt, &["1", "2"]), false), // exactly one value
        (req("name", Gt, &["1"]), false),  // non-integer label: no match
        (req("missing", Lt, &["100"]), false),
        (req("gen", Gt, &["-1"]), true),
    ];
    for (r, want) in cases {
        let sel = NodeSelector {
            terms: vec![term(vec![r.clone()])],
        };
        assert_eq!(selector_matches(&n, &sel), want, "{r:?}");
    }
}

#[test]
fn terms_or_requirements_and_empty_term_matches_nothing() {
    use SelectorOperator::*;
    let n = node_with(&[("zone", "a"), ("pool", "user")]);
    let and_fail = term(vec![req("zone", In, &["a"]), req("pool", In, &["core"])]);
    let and_ok = term(vec![req("zone", In, &["a"]), req("pool", In, &["user"])]);
    assert!(!term_matches(&n, &and_fail));
    assert!(term_matches(&n, &and_ok));
    let or = NodeSelector {
        terms: vec![and_fail.clone(), and_ok],
    };
    assert!(selector_matches(&n, &or));
    let empty = NodeSelector {
        terms: vec![NodeSelectorTerm::default()],
    };
    assert!(!selector_matches(&n, &empty));
    // An invalid term matches nothing but does not spoil a valid one.
    let invalid_then_valid = NodeSelector {
        terms: vec![
            term(vec![req("x", Gt, &["nope"])]),
            term(vec![req("zone", Exists, &[])]),
        ],
    };
    assert!(selector_matches(&n, &invalid_then_valid));
    assert!(!matches_required_affinity(
        &n,
        Some(&NodeSelector { terms: vec![] })
    ));
    assert!(matches_required_affinity(&n, None));
}

#[test]
fn match_fields_on_metadata_name() {
    use SelectorOperator::*;
    let n = node_with(&[]);
    let f = |r| NodeSelector {
        terms: vec![NodeSelectorTerm {
            match_expressions: vec![],
            match_fields: vec![r],
        }],
    };
    assert!(selector_matches(&n, &f(req("metadata.name", In, &["n1"]))));
    assert!(!selector_matches(&n, &f(req("metadata.name", In, &["n2"]))));
    assert!(selector_matches(
        &n,
        &f(req("metadata.name", NotIn, &["n2"]))
    ));
    assert!(!selector_matches(&n, &f(req("metadata.uid", In, &["n1"]))));
    assert!(!selector_matches(
        &n,
        &f(req("metadata.name", In, &["n1", "n2"]))
    ));
    assert!(!selector_matches(&n, &f(req("metadata.name", Exists, &[]))));
}

#[test]
fn node_selector_and_preferred_weights() {
    use SelectorOperator::*;
    let n = node_with(&[("pool", "user")]);
    let mut p = pod();
    p.node_selector.insert("pool".into(), "user".into());
    assert_eq!(static_pre(&n, &p), None);
    p.node_selector.insert("pool".into(), "core".into());
    assert_eq!(static_pre(&n, &p), Some(Reason::NodeAffinity));
    let prefs = [
        PreferredTerm {
            weight: 100,
            term: term(vec![req("pool", In, &["user"])]),
        },
        PreferredTerm {
            weight: 7,
            term: term(vec![req("pool", Exists, &[])]),
        },
        PreferredTerm {
            weight: 50,
            term: NodeSelectorTerm::default(), // empty preference: no match
        },
        PreferredTerm {
            weight: 3,
            term: term(vec![req("pool", In, &["core"])]),
        },
    ];
    assert_eq!(preferred_weight(&n, &prefs), 107);
}

#[test]
fn host_port_conflicts() {
    let hp = |port, proto: &str, ip: &str| HostPort {
        port,
        protocol: proto.into(),
        host_ip: ip.into(),
    };
    let mut used = HostPortSet::default();
    used.add(&[
        hp(8080, "TCP", "10.0.0.1"),
        hp(53, "UDP", ""),
        hp(0, "TCP", ""),
    ]);
    assert!(used.conflicts(&hp(8080, "TCP", "10.0.0.1")));
    assert!(used.conflicts(&hp(8080, "", "0.0.0.0"))); // wildcard overlaps, "" is TCP
    assert!(!used.conflicts(&hp(8080, "TCP", "10.0.0.2")));
    assert!(!used.conflicts(&hp(8080, "UDP", "10.0.0.1")));
    assert!(used.conflicts(&hp(53, "UDP", "10.0.0.9"))); // used wildcard overlaps
    assert!(!used.conflicts(&hp(53, "TCP", "")));
    assert!(!used.conflicts(&hp(0, "TCP", ""))); // port 0: no host port
}

#[test]
fn resource_fit_reports_every_shortfall_and_ignores_zero_requests() {
    let alloc = Resources::new(4000, 8 << 30)
        .with_pods(2)
        .with_extended("nvidia.com/gpu", 1);
    let load = NodeLoad {
        requested: Resources::new(3500, 7 << 30),
        pod_count: 2,
    };
    let want = Resources::new(1000, 2 << 30)
        .with_pods(1)
        .with_extended("nvidia.com/gpu", 2);
    let got: Vec<String> = fit_reasons(&alloc, &load, &want)
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "Too many pods",
            "Insufficient cpu",
            "Insufficient memory",
            "Insufficient nvidia.com/gpu"
        ]
    );
    // Overcommitted node, pod asks for no cpu: cpu is not a reason.
    let over = NodeLoad {
        requested: Resources::new(5000, 0),
        pod_count: 0,
    };
    assert!(fit_reasons(&alloc, &over, &Resources::new(0, 1 << 30)).is_empty());
    let gpu0 = Resources::new(0, 0).with_extended("example.com/foo", 0);
    assert!(fit_reasons(&alloc, &over, &gpu0).is_empty());
    // Exactly full fits.
    let exact = NodeLoad {
        requested: Resources::new(3000, 6 << 30),
        pod_count: 1,
    };
    assert!(fit_reasons(&alloc, &exact, &Resources::new(1000, 2 << 30)).is_empty());
}

#[test]
fn pod_request_math_matches_kubernetes() {
    use crate::model::{ContainerRequest, PodRequest};
    let c = |cpu, mem| ContainerRequest::new(Resources::new(cpu, mem));
    let sidecar = |cpu, mem| ContainerRequest {
        restartable: true,
        ..c(cpu, mem)
    };
    // containers 500+300; init 1000 (plain); sidecar 100 before a plain init of 200.
    let r = PodRequest {
        containers: vec![c(500, 100), c(300, 100)],
        init_containers: vec![sidecar(100, 50), c(1000, 10), c(200, 900)],
        overhead: Resources::new(10, 1),
        ..Default::default()
    };
    // sum = 800+100 (sidecar) = 900 cpu; init peaks: 100 (sidecar alone), 1000+100,
    // 200+100 → 1100 cpu; memory: 200+50=250 vs 900+50=950 → 950.
    let e = r.effective();
    assert_eq!((e.cpu_milli, e.memory, e.pods), (1110, 951, 1));
    // Pod-level resources override cpu/memory, overhead still added.
    let r2 = PodRequest {
        pod_level_cpu_milli: Some(2000),
        ..r.clone()
    };
    assert_eq!(r2.effective().cpu_milli, 2010);
    // Pod-level hugepages override the containers' too.
    let r3 = PodRequest {
        containers: vec![ContainerRequest::new(
            Resources::new(500, 100).with_extended("hugepages-2Mi", 1 << 21),
        )],
        pod_level_hugepages: [("hugepages-2Mi".to_string(), 4 << 21)].into(),
        ..Default::default()
    };
    assert_eq!(r3.effective().extended("hugepages-2Mi"), 4 << 21);
    // A container without requests scores as 100m / 200Mi.
    let bare = PodRequest {
        containers: vec![ContainerRequest {
            has_cpu: false,
            has_memory: false,
            ..Default::default()
        }],
        ..Default::default()
    };
    let s = bare.for_scoring();
    assert_eq!((s.cpu_milli, s.memory), (100, 200 * 1024 * 1024));
    assert_eq!(bare.effective().cpu_milli, 0);
}

fn wffc(static_pvs: Vec<StaticPv>, topo: Option<NodeSelector>, none: bool) -> PodVolume {
    PodVolume::WaitForFirstConsumer {
        claim: "home".into(),
        static_pvs,
        allowed_topologies: topo,
        provisioner_none: none,
        csi_driver: None,
    }
}

#[test]
fn volume_binding() {
    use SelectorOperator::*;
    let n = node_with(&[("zone", "a")]);
    let zone = |z: &str| NodeSelector {
        terms: vec![term(vec![req("zone", In, &[z])])],
    };
    let mut p = pod();
    p.volumes = vec![PodVolume::Bound {
        claim: "c".into(),
        node_affinity: Some(zone("b")),
        csi_driver: None,
        volume_id: "pv1".into(),
    }];
    assert_eq!(static_post(&n, &p), vec![Reason::VolumeNodeConflict]);
    p.volumes = vec![wffc(vec![], Some(zone("a")), false)];
    assert!(static_post(&n, &p).is_empty());
    p.volumes = vec![wffc(vec![], Some(zone("b")), false)];
    assert_eq!(static_post(&n, &p), vec![Reason::VolumeBindConflict]);
    p.volumes = vec![wffc(vec![], None, true)]; // no provisioner, no PV
    assert_eq!(static_post(&n, &p), vec![Reason::VolumeBindConflict]);
    let pv = StaticPv {
        name: "local".into(),
        node_affinity: Some(zone("a")),
    };
    p.volumes = vec![wffc(vec![pv], None, true)]; // a static PV on this node
    assert!(static_post(&n, &p).is_empty());
    p.volumes = vec![PodVolume::UnboundImmediate { claim: "x".into() }];
    assert_eq!(
        pre_filter(&p).map(|r| r.to_string()).as_deref(),
        Some("pod has unbound immediate PersistentVolumeClaims")
    );
    p.volumes.push(PodVolume::MissingClaim {
        claim: "gone".into(),
    });
    assert_eq!(
        pre_filter(&p).map(|r| r.to_string()).as_deref(),
        Some("persistentvolumeclaim \"gone\" not found")
    );
    p.unsupported = vec!["pod anti-affinity".into()];
    assert_eq!(
        pre_filter(&p).map(|r| r.to_string()).as_deref(),
        Some("not supported by hubpack-scheduler: pod anti-affinity")
    );
}

#[test]
fn attach_limits_count_distinct_volumes_per_driver() {
    let mut n = node_with(&[]);
    n.attach_limits.insert("ebs.csi.aws.com".into(), 2);
    let bound = |id: &str| PodVolume::Bound {
        claim: id.into(),
        node_affinity: None,
        csi_driver: Some("ebs.csi.aws.com".into()),
        volume_id: id.into(),
    };
    let mut a = pod();
    a.volumes = vec![bound("v1"), bound("v2")];
    let mut on_node = VolumeIds::default();
    on_node.add_pod(&a);
    let mut b = pod();
    b.key = crate::model::PodKey::new("ns", "b");
    b.volumes = vec![bound("v1")]; // shared with a: not new
    assert!(attach_limit_ok(&n, &on_node, &b));
    b.volumes = vec![bound("v3")];
    assert!(!attach_limit_ok(&n, &on_node, &b));
    // Another driver without a limit is unconstrained.
    b.volumes = vec![PodVolume::Bound {
        claim: "x".into(),
        node_affinity: None,
        csi_driver: Some("other".into()),
        volume_id: "x".into(),
    }];
    assert!(attach_limit_ok(&n, &on_node, &b));
    // A WaitForFirstConsumer claim counts as one new volume.
    b.volumes = vec![PodVolume::WaitForFirstConsumer {
        claim: "home".into(),
        static_pvs: vec![],
        allowed_topologies: None,
        provisioner_none: false,
        csi_driver: Some("ebs.csi.aws.com".into()),
    }];
    assert!(!attach_limit_ok(&n, &on_node, &b));
}

#[test]
fn may_ever_fit_is_static_filters_and_the_whole_allocatable() {
    let mut node = Node::new("n", Resources::new(4000, 16 << 30).with_pods(110));
    node.labels.insert("pool".into(), "user".into());
    let pod = |cpu| Pod::simple("u/p", PodRole::User, 0, Resources::new(cpu, 1 << 30), 0);
    assert!(may_ever_fit(&node, &pod(4000)));
    assert!(!may_ever_fit(&node, &pod(4001)), "more than the node has");
    let mut elsewhere = pod(100);
    elsewhere.node_selector.insert("pool".into(), "core".into());
    assert!(!may_ever_fit(&node, &elsewhere), "selects another pool");
    node.taints
        .push(taint("dedicated", "gpu", TaintEffect::NoSchedule));
    assert!(!may_ever_fit(&node, &pod(100)), "untolerated taint");
}
