use super::*;

const POOL: &str = "pools:\n\
    - name: default\n\
    \x20 allNodes: true\n\
    \x20 perUser: {cpu: 500m, memory: 2Gi}\n\
    \x20 freshNode: {allocatable: {cpu: \"4\", memory: 16Gi, pods: \"110\"}}\n";

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    Config::parse(yaml, "t")
}

#[test]
fn empty_file_is_all_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.scheduler_name, "hubpack-scheduler");
    assert_eq!(c.placeholders.priority, -10);
    assert_eq!(c.pre_puller.priority, -5);
    assert_eq!(c.leader_election.lease_name, "hubpack-placeholder-ctl");
    assert!(c.pools.is_empty());
    let c = parse("leaderElection: {leaseDurationSeconds: 20}").unwrap();
    assert_eq!(c.leader_election.lease_name, "hubpack-placeholder-ctl");
    assert_eq!(c.leader_election.lease_duration_seconds, 20);
}

#[test]
fn auto_n_is_what_fits_a_fresh_node_after_daemonsets() {
    let c = parse(POOL).unwrap();
    let s = c.pool_sizes().unwrap();
    // cpu: (4000 - 1) / 500 = 7; memory: (16Gi - 8Mi) / 2Gi = 7.
    assert_eq!(s[0].seats_each, 7);
    assert_eq!(s[0].placeholder_request.cpu_milli, 3500);
    assert_eq!(s[0].placeholder_request.pods, 1);
    assert_eq!(c.pools[0].lead, Lead::Auto);
}

#[test]
fn a_fixed_n_that_does_not_fit_is_refused_naming_the_pool() {
    let yaml = format!("{POOL}  usersPerPlaceholder: 8\n");
    match parse(&yaml) {
        Err(ConfigError::Invalid { field, .. }) => {
            assert_eq!(field, "pools[0] (default).usersPerPlaceholder")
        }
        other => panic!("{other:?}"),
    }
    let ok = format!("{POOL}  usersPerPlaceholder: 7\n  lead: 300\n");
    let c = parse(&ok).unwrap();
    assert_eq!(c.pools[0].lead, Lead::Seconds(300.0));
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let e = parse("schedulerNmae: x\n").unwrap_err();
    assert!(e.to_string().contains("schedulerNmae"), "{e}");
    let e = parse(&format!("{POOL}  headroom: {{zz: 1}}\n")).unwrap_err();
    assert!(e.to_string().contains("zz"), "{e}");
    let e = parse(&format!("{POOL}  lead: soon\n")).unwrap_err();
    assert!(e.to_string().contains("lead must be"), "{e}");
}

#[test]
fn invalid_values_name_the_field_and_the_fix() {
    let ev = |s: &str| format!("{POOL}events:\n- {{name: a, pool: default, users: 10, {s}}}\n");
    let cases = [
        (
            "placeholders: {priority: -20}".to_string(),
            "placeholders.priority",
        ),
        ("prePuller: {priority: -12}".into(), "prePuller.priority"),
        ("leadTime: {quantile: 1.5}".into(), "leadTime.quantile"),
        (
            "leaderElection: {renewGraceSeconds: 20}".into(),
            "leaderElection.renewGraceSeconds",
        ),
        (
            "leaderElection: {leaseDurationSeconds: 2, renewGraceSeconds: 1}".into(),
            "leaderElection.leaseDurationSeconds",
        ),
        (
            format!("{POOL}  headroom: {{minUsers: 5, maxUsers: 1}}\n"),
            "pools[0].headroom.maxUsers",
        ),
        (POOL.replace("default", "Bad_Name"), "pools[0].name"),
        (
            ev("start: \"2026-12-01T09:00:00Z\", schedule: \"0 9 * * *\""),
            "events[0].start",
        ),
        (ev("start: tomorrow"), "events[0].start"),
        (ev("schedule: \"61 9 * * *\""), "events[0].schedule"),
        (
            ev("schedule: \"0 9 * * *\", timeZone: Mars/Olympus"),
            "events[0].timeZone",
        ),
        (
            format!(
                "{POOL}events:\n- {{name: a, pool: gpu, users: 1, start: \"2026-12-01T09:00:00Z\"}}\n"
            ),
            "events[0].pool",
        ),
        (
            format!("{POOL}calendars:\n- {{name: c, pool: default, defaultUsers: 1}}\n"),
            "calendars[0].url",
        ),
        (POOL.replace("500m", "lots"), "pools[0] (default).perUser"),
        (
            format!(
                "{POOL}calendars:\n- {{name: c, pool: default, defaultUsers: 1, file: c.ics, allDayArrival: \"9am\"}}\n"
            ),
            "calendars[0].allDayArrival",
        ),
        ("instance: \"-hub\"".into(), "instance"),
        (
            POOL.replace("  allNodes: true\n", ""),
            "pools[0].nodeSelector",
        ),
        ("ownerConfigMap: Not_A_Name".into(), "ownerConfigMap"),
    ];
    for (yaml, field) in cases {
        match parse(&yaml) {
            Err(ConfigError::Invalid { field: f, fix, .. }) => {
                assert_eq!(f, field, "{yaml}");
                assert!(!fix.is_empty());
            }
            other => panic!("{yaml}: expected an Invalid error, got {other:?}"),
        }
    }
}

#[test]
fn a_pool_needs_a_selector_a_required_affinity_or_all_nodes() {
    let bare = POOL.replace("  allNodes: true\n", "");
    let e = parse(&bare).unwrap_err().to_string();
    assert!(
        e.contains("pools[0].nodeSelector") && e.contains("allNodes: true"),
        "{e}"
    );
    parse(&format!("{bare}  nodeSelector: {{pool: user}}\n")).unwrap();
    let required = "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [user]}]}]}}}\n";
    parse(&format!("{bare}{required}")).unwrap();
    let preferred = "  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, preference: {matchExpressions: [{key: pool, operator: In, values: [user]}]}}]}}\n";
    assert!(parse(&format!("{bare}{preferred}")).is_err());
}

#[test]
fn the_example_file_is_valid() {
    let text = include_str!("../../config.example.yaml");
    let c = parse(text).unwrap();
    assert!(!c.pools.is_empty());
    assert!(!c.events.is_empty());
    c.pool_sizes().unwrap();
}

#[test]
fn max_nodes_defaults_and_zero_and_bad_pull_secrets_are_refused() {
    let c = parse(POOL).unwrap();
    assert_eq!(c.pools[0].max_nodes, DEFAULT_MAX_NODES);
    // auto: a placeholder is a node, so the guard is maxNodes placeholders.
    assert_eq!(c.pool_sizes().unwrap()[0].max_placeholders, 10);
    match parse(&format!("{POOL}  maxNodes: 0\n")) {
        Err(ConfigError::Invalid { field, .. }) => assert_eq!(field, "pools[0].maxNodes"),
        other => panic!("{other:?}"),
    }
    assert!(parse(&format!("{POOL}  maxNodes: -1\n")).is_err());
    let c = parse(&format!("{POOL}  imagePullSecrets: [registry]\n")).unwrap();
    assert_eq!(c.pools[0].image_pull_secrets, vec!["registry".to_string()]);
    match parse(&format!("{POOL}  imagePullSecrets: [\"Not A Name\"]\n")) {
        Err(ConfigError::Invalid { field, .. }) => {
            assert_eq!(field, "pools[0].imagePullSecrets[0]")
        }
        other => panic!("{other:?}"),
    }
}
