//! The chart as a release installs it: rendered as release `hubpack`, its objects are named by
//! Helm's convention (`hubpack-scheduler`, not `hubpack-hubpack-scheduler`), `nameOverride`
//! and `fullnameOverride` do what values.yaml says, and the `helm test` hook's pod asks both
//! components' health ports and is admitted, by a server-side dry-run against the real API
//! server, in a namespace that enforces PodSecurity `restricted` (these machines run no
//! containers, so the hook itself is not run here).
//! Needs helm (`build.sh helm`) and the control plane (`cargo xtask cluster build`).

#![allow(clippy::unwrap_used)]

mod chart_support;

use chart_support::*;
use hubpack_e2e::harness;
use serde_json::Value;
use std::path::PathBuf;

/// The example with both components: the scheduler and the controller with one pool.
fn one_pool() -> PathBuf {
    chart_dir().join("examples/one-pool.yaml")
}

fn render_docs(release: &str, namespace: &str, sets: &[&str]) -> Vec<Value> {
    let file = one_pool();
    documents(&render(release, namespace, &[&file], sets))
}

fn names_of(docs: &[Value], k: &str) -> Vec<String> {
    of_kind(docs, k)
        .into_iter()
        .map(|d| name(d).to_string())
        .collect()
}

/// The `helm test` hook: the one Pod annotated `helm.sh/hook: test`.
fn test_hook(docs: &[Value]) -> &Value {
    let hooks: Vec<&Value> = of_kind(docs, "Pod")
        .into_iter()
        .filter(|d| d["metadata"]["annotations"]["helm.sh/hook"] == "test")
        .collect();
    assert_eq!(hooks.len(), 1, "test hooks: {hooks:?}");
    hooks[0]
}

#[test]
fn release_hubpack_names_objects_without_repeating_the_chart_name() {
    let docs = render_docs("hubpack", "jhub", &[]);
    assert!(docs.len() >= 15, "rendered only {} objects", docs.len());
    for doc in &docs {
        let n = name(doc);
        assert!(
            n.starts_with("hubpack-") && !n.starts_with("hubpack-hubpack"),
            "{} {n}: not named hubpack-<component>",
            kind(doc)
        );
    }
    for (k, expected) in [
        ("Deployment", "hubpack-scheduler"),
        ("Deployment", "hubpack-placeholder-ctl"),
        ("Service", "hubpack-scheduler-metrics"),
        ("Service", "hubpack-placeholder-ctl-metrics"),
        ("ServiceAccount", "hubpack-scheduler"),
        ("ServiceAccount", "hubpack-placeholder-ctl"),
        ("ConfigMap", "hubpack-scheduler"),
        ("ConfigMap", "hubpack-placeholder-ctl"),
        ("ConfigMap", "hubpack-dashboard"),
        ("PodDisruptionBudget", "hubpack-scheduler"),
        ("Pod", "hubpack-test-health"),
    ] {
        assert!(
            names_of(&docs, k).iter().any(|n| n == expected),
            "no {k} {expected}: {:?}",
            names_of(&docs, k)
        );
    }
    // The controller is told the PriorityClass names of this release.
    let ctl = find(&docs, "ConfigMap", "hubpack-placeholder-ctl");
    let config = ctl["data"]["config.yaml"].as_str().unwrap();
    assert!(
        config.contains("hubpack-placeholder"),
        "controller config names no hubpack-placeholder PriorityClass:\n{config}"
    );
}

#[test]
fn name_overrides_follow_helms_convention() {
    for (release, sets, scheduler) in [
        // A release name without the chart's name is prefixed to it.
        ("hub", vec![], "hub-hubpack-scheduler"),
        // A release name that contains it is the prefix alone.
        ("prod-hubpack", vec![], "prod-hubpack-scheduler"),
        ("hub", vec!["nameOverride=packer"], "hub-packer-scheduler"),
        (
            "packer-a",
            vec!["nameOverride=packer"],
            "packer-a-scheduler",
        ),
        (
            "hub",
            vec!["fullnameOverride=warm", "nameOverride=packer"],
            "warm-scheduler",
        ),
    ] {
        let docs = render_docs(release, "jhub", &sets);
        assert!(
            names_of(&docs, "Deployment").contains(&scheduler.to_string()),
            "release {release} {sets:?}: Deployments {:?}, expected {scheduler}",
            names_of(&docs, "Deployment")
        );
    }
}

#[test]
fn image_defaults_to_the_published_one_at_the_charts_app_version() {
    let chart = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    let app_version = chart
        .lines()
        .find_map(|l| l.strip_prefix("appVersion:"))
        .unwrap()
        .trim()
        .trim_matches('"');
    let docs = render_docs("hubpack", "jhub", &[]);
    for d in of_kind(&docs, "Deployment")
        .into_iter()
        .filter(|d| !name(d).ends_with("user-placeholder"))
    {
        let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert_eq!(
            image,
            format!("ghcr.io/hubpack/hubpack:{app_version}"),
            "{}",
            name(d)
        );
    }
}

#[test]
fn test_hook_asks_both_components_health_ports() {
    let docs = render_docs("hubpack", "jhub", &[]);
    let pod = test_hook(&docs);
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    let container = &spec["containers"][0];
    let image = container["image"].as_str().unwrap();
    assert!(image.contains("@sha256:"), "test image not pinned: {image}");
    let script = strings(&container["args"]).join("\n");
    for url in [
        "http://hubpack-scheduler-metrics.jhub.svc:9090/healthz",
        "http://hubpack-placeholder-ctl-metrics.jhub.svc:9091/healthz",
    ] {
        assert!(script.contains(url), "the test asks no {url}:\n{script}");
    }
    // With the controller off, only the scheduler is asked.
    let docs = render_docs("hubpack", "jhub", &["controller.enabled=false"]);
    let script = strings(&test_hook(&docs)["spec"]["containers"][0]["args"]).join("\n");
    assert!(script.contains("hubpack-scheduler-metrics"), "{script}");
    assert!(!script.contains("placeholder-ctl-metrics"), "{script}");
    // And `helmTest.enabled: false` renders none.
    let docs = render_docs("hubpack", "jhub", &["helmTest.enabled=false"]);
    assert!(of_kind(&docs, "Pod").is_empty());
}

/// The hook's pod is admitted where PodSecurity `restricted` is enforced; a copy without its
/// hardening is refused there, so the namespace does enforce it.
#[tokio::test]
async fn test_hook_pod_passes_pod_security_restricted_on_the_real_api_server() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap();
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "chart-release")
        .await
        .unwrap();
    let kc = &cluster.kubeconfig;
    kubectl_ok(
        kc,
        &[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        ],
        "",
    );
    let docs = render_docs("hubpack", &ns, &[]);
    let pod = test_hook(&docs).clone();
    let dry_run = [
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        &ns,
        "-f",
        "-",
    ];
    let out = kubectl_ok(kc, &dry_run, &to_stream(&[&pod]));
    assert!(out.contains("(server dry run)"), "{out}");

    // Without `capabilities: {drop: [ALL]}` the same pod breaks `restricted`.
    let mut unhardened = pod.clone();
    unhardened["spec"]["containers"][0]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    let out = kubectl(kc, &dry_run, &to_stream(&[&unhardened]));
    assert!(
        !out.status.success() && stderr(&out).contains("violates PodSecurity"),
        "an unhardened pod was not refused:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}
