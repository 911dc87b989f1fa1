//! The chart refuses what hubpack-placeholder-ctl refuses: for every rule of the controller's
//! config validation (`placeholder-ctl/src/config.rs`), a value breaking it is refused both by
//! the binary's config parser (naming the field) and by `helm template` (the schema, or for
//! rules that relate two fields the chart's `controller/_checks.tpl`), naming the value's
//! path. A config accepted by one is accepted by the other. Without this, a `helm install`
//! that succeeds leaves a controller in a crash loop.
//! Needs helm (`build.sh helm`, part of `cargo xtask cluster build`).

#![allow(clippy::unwrap_used)]

mod chart_support;

use chart_support::*;
use hubpack_placeholder_ctl::config::Config;

/// One pool, valid: the table's configs change one thing of it.
fn config(top: &str, pool: &str) -> String {
    format!(
        "{top}\npools:\n\
         - name: user\n\
         \x20 nodeSelector: {{hub.jupyter.org/node-purpose: user}}\n\
         \x20 perUser: {{cpu: 500m, memory: 2Gi}}\n\
         \x20 freshNode: {{allocatable: {{cpu: \"4\", memory: 16Gi, pods: \"110\"}}}}\n\
         {pool}"
    )
}

/// `controller.config` set to `config`, as a values file; `helm template`'s output.
fn helm_template(dir: &std::path::Path, config: &str) -> std::process::Output {
    let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
    let file = dir.join("values.yaml");
    std::fs::write(
        &file,
        format!("controller:\n  enabled: true\n  config:\n{indented}"),
    )
    .unwrap();
    template("schema", "jhub", &[&file], &[])
}

/// (what, controller config, the binary's field, the path helm names).
fn refused() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let top = |t: &str| config(t, "");
    let pool = |p: &str| config("", p);
    let event = |e: &str| {
        config(
            &format!("events:\n- {{name: lab, pool: user, users: 10, {e}}}"),
            "",
        )
    };
    let calendar = |c: &str| {
        config(
            &format!("calendars:\n- {{name: course, pool: user, defaultUsers: 10, {c}}}"),
            "",
        )
    };
    let start = "start: \"2026-12-01T09:00:00Z\"";
    vec![
        (
            "reconcile interval 0",
            top("reconcileIntervalSeconds: 0"),
            "reconcileIntervalSeconds",
            "/controller/config/reconcileIntervalSeconds",
        ),
        (
            "reconcile interval 60 (/healthz calls 30 s idle stuck)",
            top("reconcileIntervalSeconds: 60"),
            "reconcileIntervalSeconds",
            "/controller/config/reconcileIntervalSeconds",
        ),
        (
            "blank scheduler name",
            top("schedulerName: \" \""),
            "schedulerName",
            "/controller/config/schedulerName",
        ),
        (
            "empty user pod selector",
            top("userPods: {selector: {}}"),
            "userPods.selector",
            "/controller/config/userPods/selector",
        ),
        (
            "placeholder priority -5",
            top("placeholders: {priority: -5}"),
            "placeholders.priority",
            "/controller/config/placeholders/priority",
        ),
        (
            "placeholder priority -11",
            top("placeholders: {priority: -11}"),
            "placeholders.priority",
            "/controller/config/placeholders/priority",
        ),
        (
            "empty placeholder image",
            top("placeholders: {image: \"\"}"),
            "placeholders.image",
            "/controller/config/placeholders/image",
        ),
        (
            "negative scale-down delay",
            top("placeholders: {scaleDownAfterSeconds: -1}"),
            "placeholders.scaleDownAfterSeconds",
            "/controller/config/placeholders/scaleDownAfterSeconds",
        ),
        (
            "pre-puller at the placeholders' priority",
            top("prePuller: {priority: -10}"),
            "prePuller.priority",
            "/controller/config/prePuller/priority",
        ),
        (
            "pre-puller at priority 0",
            top("prePuller: {priority: 0}"),
            "prePuller.priority",
            "/controller/config/prePuller/priority",
        ),
        (
            "pre-puller without a command",
            top("prePuller: {command: []}"),
            "prePuller.command",
            "/controller/config/prePuller/command",
        ),
        (
            "lead-time quantile 0",
            top("leadTime: {quantile: 0}"),
            "leadTime.quantile",
            "/controller/config/leadTime/quantile",
        ),
        (
            "lead-time quantile 1.5",
            top("leadTime: {quantile: 1.5}"),
            "leadTime.quantile",
            "/controller/config/leadTime/quantile",
        ),
        (
            "initial lead 0",
            top("leadTime: {initialSeconds: 0}"),
            "leadTime.initialSeconds",
            "/controller/config/leadTime/initialSeconds",
        ),
        (
            "no lead samples needed",
            top("leadTime: {minSamples: 0}"),
            "leadTime.minSamples",
            "/controller/config/leadTime/minSamples",
        ),
        (
            "more lead samples needed than kept",
            top("leadTime: {minSamples: 60, windowSamples: 50}"),
            "leadTime.minSamples",
            "controller.config.leadTime.minSamples",
        ),
        (
            "negative reaction time",
            top("leadTime: {reactionSeconds: -1}"),
            "leadTime.reactionSeconds",
            "/controller/config/leadTime/reactionSeconds",
        ),
        (
            "minimum lead 0",
            top("leadTime: {minSeconds: 0}"),
            "leadTime.minSeconds",
            "/controller/config/leadTime/minSeconds",
        ),
        (
            "maximum lead below the minimum",
            top("leadTime: {minSeconds: 600, maxSeconds: 60}"),
            "leadTime.maxSeconds",
            "controller.config.leadTime.maxSeconds",
        ),
        (
            "background half-life 0",
            top("background: {halfLifeSeconds: 0}"),
            "background.halfLifeSeconds",
            "/controller/config/background/halfLifeSeconds",
        ),
        (
            "observed window 0",
            top("background: {observedWindowSeconds: 0}"),
            "background.observedWindowSeconds",
            "/controller/config/background/observedWindowSeconds",
        ),
        (
            "lease within the safety margin",
            top("leaderElection: {leaseDurationSeconds: 2, renewGraceSeconds: 1}"),
            "leaderElection.leaseDurationSeconds",
            "/controller/config/leaderElection/leaseDurationSeconds",
        ),
        (
            "lease over a day",
            top("leaderElection: {leaseDurationSeconds: 100000}"),
            "leaderElection.leaseDurationSeconds",
            "/controller/config/leaderElection/leaseDurationSeconds",
        ),
        (
            "renew grace as long as the lease",
            top("leaderElection: {leaseDurationSeconds: 15, renewGraceSeconds: 15}"),
            "leaderElection.renewGraceSeconds",
            "controller.config.leaderElection.renewGraceSeconds",
        ),
        (
            "instance not a label value",
            top("instance: \"-hub\""),
            "instance",
            "/controller/config/instance",
        ),
        (
            "owner ConfigMap not a name",
            top("ownerConfigMap: Not_A_Name"),
            "ownerConfigMap",
            "/controller/config/ownerConfigMap",
        ),
        (
            "pool name not a DNS label",
            config("", "").replace("name: user", "name: User_1"),
            "pools[0].name",
            "/controller/config/pools/0/name",
        ),
        (
            "two pools of one name",
            format!(
                "{}{}",
                config("", ""),
                config("", "").replace("\npools:\n", "")
            ),
            "pools[1].name",
            "controller.config.pools[1].name",
        ),
        (
            "pool without a node selector",
            config("", "").replace("  nodeSelector: {hub.jupyter.org/node-purpose: user}\n", ""),
            "pools[0].nodeSelector",
            "controller.config.pools[0].nodeSelector",
        ),
        (
            "headroom maximum below its minimum",
            pool("  headroom: {minUsers: 5, maxUsers: 1}\n"),
            "pools[0].headroom.maxUsers",
            "controller.config.pools[0].headroom.maxUsers",
        ),
        (
            "negative z",
            pool("  headroom: {z: -1}\n"),
            "pools[0].headroom.z",
            "/controller/config/pools/0/headroom/z",
        ),
        (
            "lead 0",
            pool("  lead: 0\n"),
            "lead must be",
            "/controller/config/pools/0/lead",
        ),
        (
            "zones without values",
            pool("  zones: {key: topology.kubernetes.io/zone, values: []}\n"),
            "pools[0].zones",
            "/controller/config/pools/0/zones/values",
        ),
        (
            "a zone not usable in a name",
            pool("  zones: {key: topology.kubernetes.io/zone, values: [Zone_A]}\n"),
            "pools[0].zones.values",
            "/controller/config/pools/0/zones/values/0",
        ),
        (
            "an empty image",
            pool("  images: [\"\"]\n"),
            "pools[0].images[0]",
            "/controller/config/pools/0/images/0",
        ),
        (
            "an event with start and schedule",
            event(&format!("{start}, schedule: \"0 9 * * *\"")),
            "events[0].start",
            "/controller/config/events/0",
        ),
        (
            "an event with neither start nor schedule",
            event("arrivalWindowSeconds: 600"),
            "events[0].start",
            "/controller/config/events/0",
        ),
        (
            "a six-field cron (seconds first: every second)",
            event("schedule: \"* * * * * *\""),
            "events[0].schedule",
            "/controller/config/events/0/schedule",
        ),
        (
            "an event of an unknown pool",
            event(start).replace("pool: user, users", "pool: gpu, users"),
            "events[0].pool",
            "controller.config.events[0].pool",
        ),
        (
            "an event of negative users",
            event(start).replace("users: 10", "users: -1"),
            "events[0].users",
            "/controller/config/events/0/users",
        ),
        (
            "an event arriving over 0 s",
            event(&format!("{start}, arrivalWindowSeconds: 0")),
            "events[0].arrivalWindowSeconds",
            "/controller/config/events/0/arrivalWindowSeconds",
        ),
        (
            "a calendar without a source",
            calendar("refreshSeconds: 300"),
            "calendars[0].url",
            "/controller/config/calendars/0",
        ),
        (
            "a calendar URL that is not http(s)",
            calendar("url: \"ftp://calendar.example/c.ics\""),
            "calendars[0].url",
            "/controller/config/calendars/0/url",
        ),
        (
            "a calendar refreshed every 0 s",
            calendar("url: \"https://calendar.example/c.ics\", refreshSeconds: 0"),
            "calendars[0].refreshSeconds",
            "/controller/config/calendars/0/refreshSeconds",
        ),
        (
            "an all-day arrival that is not HH:MM",
            calendar("url: \"https://calendar.example/c.ics\", allDayArrival: \"9am\""),
            "calendars[0].allDayArrival",
            "/controller/config/calendars/0/allDayArrival",
        ),
        (
            "a calendar of an unknown pool",
            calendar("url: \"https://calendar.example/c.ics\"")
                .replace("pool: user, defaultUsers", "pool: gpu, defaultUsers"),
            "calendars[0].pool",
            "controller.config.calendars[0].pool",
        ),
        (
            "a calendar of negative users",
            calendar("url: \"https://calendar.example/c.ics\"")
                .replace("defaultUsers: 10", "defaultUsers: -1"),
            "calendars[0].defaultUsers",
            "/controller/config/calendars/0/defaultUsers",
        ),
        (
            "a cost guard of 0 nodes",
            pool("  maxNodes: 0\n"),
            "pools[0].maxNodes",
            "/controller/config/pools/0/maxNodes",
        ),
        (
            "a cost guard of a fraction of a node",
            pool("  maxNodes: 1.5\n"),
            "maxNodes",
            "/controller/config/pools/0/maxNodes",
        ),
        (
            "a backend that is neither placeholders nor capacityBuffer",
            pool("  backend: buffers\n"),
            "backend",
            "/controller/config/pools/0/backend",
        ),
        (
            "a pull Secret that is not a Secret name",
            pool("  imagePullSecrets: [\"My Registry\"]\n"),
            "pools[0].imagePullSecrets[0]",
            "/controller/config/pools/0/imagePullSecrets/0",
        ),
        (
            "a negative initial background rate",
            pool("  background: {initialUsersPerHour: -1}\n"),
            "pools[0].background.initialUsersPerHour",
            "/controller/config/pools/0/background/initialUsersPerHour",
        ),
        (
            "a checkpoint ConfigMap name that is not a name",
            top("checkpoint: {configMapName: Hub_State}"),
            "checkpoint.configMapName",
            "/controller/config/checkpoint/configMapName",
        ),
        (
            "a checkpoint every 0 s",
            top("checkpoint: {intervalSeconds: 0}"),
            "checkpoint.intervalSeconds",
            "/controller/config/checkpoint/intervalSeconds",
        ),
    ]
}

#[test]
fn the_base_config_is_accepted_by_both() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        config("", ""),
        config(
            "events:\n- {name: lab, pool: user, users: 10, start: \"2026-12-01T09:00:00Z\"}\n\
             calendars:\n- {name: c, pool: user, defaultUsers: 1, url: \"https://calendar.example/c.ics\"}\n\
             prePuller: {enabled: false, priority: -10, command: []}\n\
             checkpoint: {enabled: false, configMapName: hub-state, intervalSeconds: 30}",
            "  allNodes: true\n  zones: {key: topology.kubernetes.io/zone, values: [a, b]}\n  maxNodes: 1\n  imagePullSecrets: [registry]\n  background: {initialUsersPerHour: 12.5}\n",
        ),
        config("", "  backend: capacityBuffer\n"),
        config("", "  backend: placeholders\n"),
    ] {
        Config::parse(&config, "base").unwrap_or_else(|e| panic!("{e}\n{config}"));
        let out = helm_template(dir.path(), &config);
        assert!(
            out.status.success(),
            "helm refused a config the binary accepts:\n{config}\n{}",
            stderr(&out)
        );
    }
}

#[test]
fn every_value_the_controller_refuses_fails_helm_template_naming_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (what, config, field, path) in refused() {
        match Config::parse(&config, "table") {
            Ok(_) => failures.push(format!("{what}: the binary accepts it\n{config}")),
            Err(e) if !e.to_string().contains(field) => failures.push(format!(
                "{what}: the binary's error does not name {field}: {e}"
            )),
            Err(_) => {}
        }
        let out = helm_template(dir.path(), &config);
        let err = stderr(&out);
        if out.status.success() {
            failures.push(format!("{what}: helm template accepts it\n{config}"));
        } else if !err.contains(path) {
            failures.push(format!("{what}: helm's error does not name {path}:\n{err}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
