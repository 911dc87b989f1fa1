//! The Helm chart (`charts/hubpack`) against the real API server: `helm lint`, `helm template`
//! with placeholders and the pre-puller on, the chart's own refusal of a placeholder priority
//! below the autoscaler's cutoff, and its RBAC applied with the built kubectl and checked with
//! SubjectAccessReviews: every verb hubpack-scheduler uses is allowed to its ServiceAccount, a
//! few it must not have are denied. Needs `build.sh helm` (part of `cargo xtask cluster build`).

#![allow(clippy::unwrap_used)]

use hubpack_e2e::binaries::{self, Component};
use hubpack_e2e::harness;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The kinds applied to the cluster: the scheduler's identity and its permissions only (the
/// Deployments and DaemonSet would run pods in the cluster other tests share).
const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/hubpack")
}

fn helm(args: &[&str]) -> Output {
    let helm = binaries::helm().unwrap_or_else(|e| panic!("{e}"));
    Command::new(&helm)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", helm.display()))
}

/// `helm template` of the chart with placeholders and one pre-pulled image, plus `extra` sets.
fn render(release: &str, namespace: &str, extra: &[&str]) -> Output {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--kube-version",
        "1.33.0",
        "--namespace",
        namespace,
        "--set",
        "placeholders.enabled=true",
        "--set",
        "prePuller.enabled=true",
        "--set",
        "prePuller.images={quay.io/jupyter/scipy-notebook:2024-10-07}",
    ];
    for set in extra {
        args.extend(["--set", set]);
    }
    helm(&args)
}

/// The `kind:` of a YAML document (top-level key only).
fn kind_of(doc: &str) -> Option<&str> {
    doc.lines()
        .find_map(|line| line.strip_prefix("kind:"))
        .map(str::trim)
}

/// The documents of a multi-document YAML stream whose kind is in `kinds`.
fn documents_of_kinds<'a>(stream: &'a str, kinds: &[&str]) -> Vec<&'a str> {
    stream
        .split("\n---")
        .filter(|doc| kind_of(doc).is_some_and(|k| kinds.contains(&k)))
        .collect()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn chart_lints() {
    let out = helm(&["lint", chart_dir().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "helm lint failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn chart_refuses_placeholder_priority_below_cutoff() {
    let out = render("prio", "default", &["placeholders.priority=-20"]);
    assert!(!out.status.success(), "render passed:\n{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("placeholders.priority must be >= -10"),
        "unexpected error: {err}"
    );
}

/// One SubjectAccessReview: namespace "" for cluster-scoped resources.
async fn allowed(
    client: &kube::Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                subresource: subresource.map(str::to_string),
                namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let reply = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    reply.status.is_some_and(|s| s.allowed)
}

#[tokio::test]
async fn chart_rbac_allows_what_the_scheduler_does_and_no_more() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap();
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "chart").await.unwrap();
    let other_ns = harness::create_namespace(&client, "chart-other")
        .await
        .unwrap();
    // The ClusterRole is cluster-scoped: a release name no other run shares.
    let release = harness::unique_name("rbac");

    let out = render(&release, &ns, &[]);
    assert!(
        out.status.success(),
        "helm template failed: {}",
        stderr(&out)
    );
    let rendered = stdout(&out);
    for kind in ["Deployment", "DaemonSet", "PriorityClass", "ConfigMap"] {
        assert!(
            !documents_of_kinds(&rendered, &[kind]).is_empty(),
            "no {kind} rendered:\n{rendered}"
        );
    }
    let rbac = documents_of_kinds(&rendered, RBAC_KINDS);
    assert_eq!(rbac.len(), RBAC_KINDS.len(), "rendered RBAC: {rbac:?}");
    let manifest = rbac.join("\n---");

    let kubectl = binaries::find(Component::K8s, "kubectl").unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(&kubectl)
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .args(["apply", "--namespace", &ns, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let applied = child.wait_with_output().unwrap();
    assert!(
        applied.status.success(),
        "kubectl apply failed: {}\n{manifest}",
        stderr(&applied)
    );

    let user = format!("system:serviceaccount:{ns}:{release}-hubpack-scheduler");
    let (ns, other_ns): (&str, &str) = (&ns, &other_ns);
    // (verb, group, resource, subresource, namespace; "" = cluster-scoped)
    let must_allow: Vec<(&str, &str, &str, Option<&str>, &str)> = vec![
        ("create", "", "pods", Some("binding"), ns),
        ("create", "", "pods", Some("eviction"), ns),
        ("patch", "", "pods", Some("status"), ns),
        ("patch", "", "persistentvolumeclaims", None, ns),
        ("patch", "", "persistentvolumes", None, ""),
        ("list", "", "pods", None, ""),
        ("watch", "", "pods", None, ""),
        ("list", "", "nodes", None, ""),
        ("watch", "", "nodes", None, ""),
        ("list", "", "persistentvolumeclaims", None, ""),
        ("watch", "", "persistentvolumeclaims", None, ""),
        ("list", "", "persistentvolumes", None, ""),
        ("watch", "", "persistentvolumes", None, ""),
        ("list", "storage.k8s.io", "storageclasses", None, ""),
        ("watch", "storage.k8s.io", "storageclasses", None, ""),
        ("list", "storage.k8s.io", "csinodes", None, ""),
        ("watch", "storage.k8s.io", "csinodes", None, ""),
        ("create", "events.k8s.io", "events", None, ns),
        // kube's event Recorder patches an existing event into a series.
        ("patch", "events.k8s.io", "events", None, ns),
        ("get", "coordination.k8s.io", "leases", None, ns),
        ("create", "coordination.k8s.io", "leases", None, ns),
        ("update", "coordination.k8s.io", "leases", None, ns),
        // kube-lease-manager renews by server-side apply.
        ("patch", "coordination.k8s.io", "leases", None, ns),
    ];
    let must_deny: Vec<(&str, &str, &str, Option<&str>, &str)> = vec![
        ("delete", "", "pods", None, ns),
        ("delete", "", "nodes", None, ""),
        ("update", "", "nodes", None, ""),
        ("create", "", "pods", None, ns),
        ("get", "", "secrets", None, ns),
        ("get", "coordination.k8s.io", "leases", None, other_ns),
        ("update", "coordination.k8s.io", "leases", None, other_ns),
        ("create", "coordination.k8s.io", "leases", None, other_ns),
    ];

    // The RBAC authorizer reads informers: wait until the first grant is seen.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (verb, group, resource, sub, namespace) = must_allow[0];
    while !allowed(&client, &user, verb, group, resource, sub, namespace).await {
        assert!(
            Instant::now() < deadline,
            "RBAC never took effect for {user}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut wrong = Vec::new();
    for &(verb, group, resource, sub, namespace) in &must_allow {
        if !allowed(&client, &user, verb, group, resource, sub, namespace).await {
            wrong.push(format!(
                "DENIED but needed: {verb} {group}/{resource}{} in {namespace:?}",
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            ));
        }
    }
    for &(verb, group, resource, sub, namespace) in &must_deny {
        if allowed(&client, &user, verb, group, resource, sub, namespace).await {
            wrong.push(format!(
                "ALLOWED but must not be: {verb} {group}/{resource}{} in {namespace:?}",
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "chart RBAC for {user}:\n{}",
        wrong.join("\n")
    );
}
