//! What the chart tests share: helm and kubectl runs, the chart's rendered manifests as JSON
//! values, the RBAC rules they grant, and the hubpack binaries the chart's image holds.

// Each chart test binary uses a different part of this module.
#![allow(dead_code)]

pub mod proxy;

use hubpack_e2e::binaries::{self, Component};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn chart_dir() -> PathBuf {
    repo_dir().join("charts/hubpack")
}

/// The example values files shipped with the chart.
pub fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

pub fn helm(args: &[&str]) -> Output {
    let helm = binaries::helm().unwrap_or_else(|e| panic!("{e}"));
    Command::new(&helm)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", helm.display()))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `helm template RELEASE charts/hubpack -n NAMESPACE` with `-f` files and `--set`s.
pub fn template(release: &str, namespace: &str, files: &[&Path], sets: &[&str]) -> Output {
    let chart = chart_dir();
    let mut args: Vec<String> = vec![
        "template".into(),
        release.into(),
        chart.display().to_string(),
        "--kube-version".into(),
        "1.33.0".into(),
        "--namespace".into(),
        namespace.into(),
    ];
    for f in files {
        args.extend(["-f".into(), f.display().to_string()]);
    }
    for s in sets {
        args.extend(["--set".into(), (*s).into()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    helm(&args)
}

/// Like [`template`], panicking with helm's message when it fails.
pub fn render(release: &str, namespace: &str, files: &[&Path], sets: &[&str]) -> String {
    let out = template(release, namespace, files, sets);
    assert!(
        out.status.success(),
        "helm template {files:?} {sets:?} failed:\n{}",
        stderr(&out)
    );
    stdout(&out)
}

/// The documents of a rendered stream, as JSON values (empty documents dropped).
pub fn documents(stream: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |text: &mut String| {
        if text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let v: Value = serde_saphyr::from_str(text)
                .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{text}"));
            if !v.is_null() {
                docs.push(v);
            }
        }
        text.clear();
    };
    for line in stream.lines() {
        if line == "---" {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn of_kind<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == k).collect()
}

/// The one document of this kind whose name ends with `suffix`.
pub fn find<'a>(docs: &'a [Value], k: &str, suffix: &str) -> &'a Value {
    let found: Vec<&Value> = of_kind(docs, k)
        .into_iter()
        .filter(|d| name(d).ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{k} *{suffix}: {found:?}");
    found[0]
}

/// Back to a YAML stream kubectl reads (JSON is YAML).
pub fn to_stream(docs: &[&Value]) -> String {
    docs.iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// A grant: (verb, "group/resource[/subresource]", resourceName or "").
pub type Grant = (String, String, String);

/// Every (verb, resource, name) the Roles and ClusterRoles of these documents grant; panics on
/// a wildcard, which the chart must never use.
pub fn grants(docs: &[&Value]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for doc in docs {
        for rule in doc["rules"].as_array().into_iter().flatten() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            let (groups, resources, verbs) = (list("apiGroups"), list("resources"), list("verbs"));
            let names = list("resourceNames");
            for item in groups.iter().chain(&resources).chain(&verbs).chain(&names) {
                assert!(!item.contains('*'), "wildcard in {}: {rule}", name(doc));
            }
            assert!(
                rule.get("nonResourceURLs").is_none(),
                "nonResourceURLs in {}",
                name(doc)
            );
            for g in &groups {
                for r in &resources {
                    for v in &verbs {
                        let names = if names.is_empty() {
                            vec![String::new()]
                        } else {
                            names.clone()
                        };
                        for n in names {
                            out.insert((v.clone(), format!("{g}/{r}"), n));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Runs kubectl with the cluster's admin kubeconfig, `input` on stdin.
pub fn kubectl(kubeconfig: &Path, args: &[&str], input: &str) -> Output {
    let kubectl = binaries::find(Component::K8s, "kubectl").unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(&kubectl)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn kubectl_ok(kubeconfig: &Path, args: &[&str], input: &str) -> String {
    let out = kubectl(kubeconfig, args, input);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A hubpack binary (`hubpack-scheduler`, `hubpack-placeholder-ctl`) built by cargo into the
/// workspace's target dir (debug), as the image's build stage builds it (release). An
/// integration test gets no path to another package's binary, so it asks cargo, which is
/// quick when `cargo test --workspace` already built it.
pub fn hubpack_binary(bin: &str) -> PathBuf {
    let package = bin;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .current_dir(repo_dir())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_dir().join("target"));
    target.join("debug").join(bin)
}

/// The container named `container` of a rendered Deployment.
pub fn container<'a>(deployment: &'a Value, container: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container)
        .unwrap_or_else(|| panic!("no container {container} in {}", name(deployment)))
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}
