//! Unit tests of the side-by-side experiment's autoscaler and stack settings: Karpenter's
//! compressed settings and NodePool, the buffer stack, the annotations each run's pods carry,
//! the controller's config, and what the report reads back. No cluster; milliseconds.

#![allow(clippy::unwrap_used)] // tests may unwrap

use hubpack_side_by_side::observe::claim_of;
use hubpack_side_by_side::plan::{
    ALL_STACKS, KARPENTER_INSTANCE_TYPE, Plan, STACKS, Stack, split_boot,
};
use hubpack_side_by_side::run_numbers::RunNumbers;
use hubpack_side_by_side::stacks::{api_writes, ctl_config, user_pod};
use hubpack_sim::scenario::{
    AutoscalerKind, Budget, ConsolidationPolicy, PlaceholderMode, Scenario,
};
use std::collections::HashMap;
use std::time::Duration;

fn class_burst(kind: AutoscalerKind) -> Scenario {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sc = Scenario::load(&root.join("sim/scenarios/side-by-side/class-burst.yaml")).unwrap();
    sc.autoscaler.kind = kind;
    sc
}

#[test]
fn a_boot_splits_into_whole_seconds_of_registration_and_the_rest_ready() {
    assert_eq!(
        split_boot(Duration::from_secs(24)),
        (Duration::from_secs(18), Duration::from_secs(6))
    );
    let (reg, ready) = split_boot(Duration::from_millis(24_500));
    assert_eq!(reg.subsec_millis(), 0);
    assert_eq!(reg + ready, Duration::from_millis(24_500));
    assert_eq!(
        split_boot(Duration::from_millis(400)),
        (Duration::ZERO, Duration::from_millis(400))
    );
}

#[test]
fn karpenter_runs_get_upstream_defaults_compressed_and_one_instance_type_of_the_node() {
    let plan = Plan::new(&class_burst(AutoscalerKind::Karpenter), 10.0).unwrap();
    assert_eq!(plan.autoscaler_kind, AutoscalerKind::Karpenter);
    let k = &plan.karpenter;
    assert_eq!(
        k.consolidation_policy,
        ConsolidationPolicy::WhenEmptyOrUnderutilized
    );
    assert_eq!(k.consolidate_after, Duration::ZERO);
    assert_eq!(k.budget_nodes, "10%");
    // 1 s and 10 s at the scenario's scale, compressed 10x like CA's timings.
    assert_eq!(k.batch_idle, Duration::from_millis(100));
    assert_eq!(k.batch_max, Duration::from_secs(1));
    // The 240 s boot, compressed: 24 s.
    assert_eq!(
        k.registration_delay + k.ready_delay,
        Duration::from_secs(24)
    );
    let opts = k.options(plan.max_nodes - plan.initial_nodes, plan.node_cpu);
    assert_eq!(opts.node_pools, vec!["user".to_string()]);
    assert_eq!(
        opts.instance_types,
        vec![KARPENTER_INSTANCE_TYPE.to_string()]
    );
    // 39 new nodes of 8 CPUs at most, as CA's node group.
    assert_eq!(opts.cpu_limit, 39 * 8);
    assert_eq!(opts.disruption_budget, "10%");
    assert_eq!(opts.batch_max_duration, Duration::from_secs(1));

    let mut sc = class_burst(AutoscalerKind::Karpenter);
    sc.autoscaler.karpenter.consolidate_after_s = 300.0;
    sc.autoscaler.karpenter.consolidation_policy = ConsolidationPolicy::WhenEmpty;
    let plan = Plan::new(&sc, 10.0).unwrap();
    assert_eq!(plan.karpenter.consolidate_after, Duration::from_secs(30));
    assert_eq!(
        plan.karpenter.consolidation_policy,
        ConsolidationPolicy::WhenEmpty
    );
    sc.autoscaler.karpenter.budget_nodes = Budget::Nodes(3);
    let plan = Plan::new(&sc, 10.0).unwrap();
    assert_eq!(plan.karpenter.budget_nodes, "3");
}

#[test]
fn karpenters_wall_clock_loops_take_the_compression_factor_longer_in_the_simulator() {
    let mut sc = class_burst(AutoscalerKind::Karpenter);
    let before = sc.autoscaler.karpenter.clone();
    hubpack_side_by_side::plan::karpenter_loops_at_scale(&mut sc, 10.0);
    let k = &sc.autoscaler.karpenter;
    assert_eq!(k.disruption_poll_s, before.disruption_poll_s * 10.0);
    assert_eq!(k.validation_delay_s, before.validation_delay_s * 10.0);
    assert_eq!(k.nomination_min_s, before.nomination_min_s * 10.0);
    // The settings of a real cluster stay as the scenario has them.
    assert_eq!(k.batch_max_s, before.batch_max_s);
    assert_eq!(k.consolidate_after_s, before.consolidate_after_s);
    k.validate().unwrap();
}

#[test]
fn the_buffer_stack_is_opt_in_simulated_as_predictive_buffer_and_refused_on_karpenter() {
    let buffer = Stack::parse("hubpack_predictive_buffer").unwrap();
    assert_eq!(buffer, Stack::HubpackPredictiveBuffer);
    assert!(!STACKS.contains(&buffer) && ALL_STACKS.contains(&buffer));
    assert!(buffer.is_hubpack() && buffer.is_predictive() && buffer.uses_capacity_buffers());
    assert!(
        buffer
            .refused_on(AutoscalerKind::ClusterAutoscaler)
            .is_none()
    );
    let why = buffer.refused_on(AutoscalerKind::Karpenter).unwrap();
    assert!(why.contains("feature gate"), "{why}");
    for s in STACKS {
        assert!(s.refused_on(AutoscalerKind::Karpenter).is_none());
        assert!(!s.uses_capacity_buffers());
    }
    let sc = class_burst(AutoscalerKind::ClusterAutoscaler);
    let plan = Plan::new(&sc, 10.0).unwrap();
    let policy = hubpack_side_by_side::simulate::policy(&sc, &plan, buffer);
    assert_eq!(policy.placeholders, PlaceholderMode::PredictiveBuffer);
}

#[test]
fn user_pods_carry_do_not_disrupt_on_karpenter_only() {
    let annotation = |plan: &Plan| {
        user_pod(plan, Stack::Z2jh, 3, 1)
            .metadata
            .annotations
            .unwrap_or_default()
            .get("karpenter.sh/do-not-disrupt")
            .cloned()
    };
    let ca = Plan::new(&class_burst(AutoscalerKind::ClusterAutoscaler), 10.0).unwrap();
    assert_eq!(annotation(&ca), None);
    let mut sc = class_burst(AutoscalerKind::Karpenter);
    let karpenter = Plan::new(&sc, 10.0).unwrap();
    assert_eq!(annotation(&karpenter).as_deref(), Some("true"));
    sc.autoscaler.karpenter.user_pods_do_not_disrupt = false;
    let unset = Plan::new(&sc, 10.0).unwrap();
    assert_eq!(annotation(&unset), None);
}

#[test]
fn the_controller_gets_its_backend_and_the_autoscalers_fresh_node() {
    use hubpack_placeholder_ctl::config::{Backend, Config};
    let ca = Plan::new(&class_burst(AutoscalerKind::ClusterAutoscaler), 10.0).unwrap();
    let yaml = ctl_config(&ca, 0, 9100, "capacityBuffer").unwrap();
    let config = Config::parse(&yaml, "t").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(config.pools[0].backend, Backend::CapacityBuffer);
    assert!(
        yaml.contains("cpu: \"8000m\"") && yaml.contains("cpu: 200m"),
        "{yaml}"
    );
    let placeholders = ctl_config(&ca, 0, 9100, "placeholders").unwrap();
    let config = Config::parse(&placeholders, "t").unwrap();
    assert_eq!(config.pools[0].backend, Backend::Placeholders);

    // On Karpenter: kwok's instance type less its kubeReserved, only the DaemonSet's
    // kube-proxy (Karpenter adds no pod of its own to a node it plans).
    let k = Plan::new(&class_burst(AutoscalerKind::Karpenter), 10.0).unwrap();
    let yaml = ctl_config(&k, 0, 9100, "placeholders").unwrap();
    Config::parse(&yaml, "t").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert!(
        yaml.contains("cpu: \"7900m\"") && yaml.contains("memory: 32758Mi"),
        "{yaml}"
    );
    assert!(yaml.contains("cpu: 100m"), "{yaml}");
}

#[test]
fn api_writes_sum_every_kind_of_the_counter_only() {
    let text = "# HELP hubpack_placeholder_ctl_api_writes_total Writes\n\
        # TYPE hubpack_placeholder_ctl_api_writes_total counter\n\
        hubpack_placeholder_ctl_api_writes_total{kind=\"apply\"} 12\n\
        hubpack_placeholder_ctl_api_writes_total{kind=\"delete\"} 3\n\
        hubpack_placeholder_ctl_reconciles_total 40\n";
    assert_eq!(api_writes(text), 15.0);
    assert_eq!(api_writes(""), 0.0);
}

#[test]
fn a_kwok_node_lives_from_its_node_claim() {
    let claims = HashMap::from([("user-abc".to_string(), 5.0), ("user-ab".to_string(), 3.0)]);
    assert_eq!(claim_of("kwok-user-abc-quiet-otter-42", &claims), Some(5.0));
    assert_eq!(claim_of("kwok-user-ab-bold-fox-7", &claims), Some(3.0));
    assert_eq!(claim_of("kwok-user-abcd-bold-fox-7", &claims), None);
    assert_eq!(claim_of("user-initial-0", &claims), None);
}

#[test]
fn runs_of_earlier_reports_read_without_the_new_numbers() {
    let old = r#"{"scenario":"s","stack":"hubpack_predictive","kind":"real","seed":0,
        "users":1,"unfinished":0,"p50_start_s":1,"p95_start_s":2,"p95_create_to_bound_s":null,
        "p95_create_to_ready_s":3,"node_hours":4,"peak_nodes":1,"nodes_removed_after_peak":0,
        "placement_hol_users":0,"waits_s":[1],"nodes":[[0,1]]}"#;
    let r: RunNumbers = serde_json::from_str(old).unwrap();
    assert!(r.p99_create_to_ready_s.is_nan());
    assert_eq!(r.api_writes, None);
    let new = serde_json::to_string(&RunNumbers {
        api_writes: Some(7.0),
        p99_create_to_ready_s: 9.0,
        ..r
    })
    .unwrap();
    let back: RunNumbers = serde_json::from_str(&new).unwrap();
    assert_eq!(
        (back.api_writes, back.p99_create_to_ready_s),
        (Some(7.0), 9.0)
    );
}

#[test]
fn an_earlier_report_names_its_autoscaler() {
    let report = |summary: &str| -> hubpack_side_by_side::report::Earlier {
        serde_json::from_str(&format!(
            r#"{{"runs":[],"container_start_s":5.0{summary}}}"#
        ))
        .unwrap()
    };
    assert_eq!(report("").autoscaler(), Ok(None));
    assert_eq!(
        report(r#","summary":{"autoscaler":"karpenter"}"#).autoscaler(),
        Ok(Some(AutoscalerKind::Karpenter))
    );
    assert_eq!(
        report(r#","summary":{"bench":"side-by-side"}"#).autoscaler(),
        Ok(None)
    );
    assert!(
        report(r#","summary":{"autoscaler":"nomad"}"#)
            .autoscaler()
            .is_err()
    );
}
