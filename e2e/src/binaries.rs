//! Where the control-plane binaries live: `e2e/controlplane/build.sh` builds them from their Go
//! modules into `$HUBPACK_CACHE/bin/<component>-<version>-<go version>-<platform>/` (default cache
//! `~/.cache/hubpack/k8s`). This module finds them, or runs the build script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A component built by `build.sh`, with the binaries it provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Etcd,
    Kwok,
    /// kube-apiserver, kube-controller-manager, kube-scheduler, kubectl.
    K8s,
    /// cluster-autoscaler with its kwok provider.
    Autoscaler,
    Helm,
    /// Karpenter with its kwok provider (its CRDs sit next to it in `crds/`).
    Karpenter,
}

impl Component {
    /// The name `build.sh` takes on its command line.
    pub fn script_name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::Kwok => "kwok",
            Component::K8s => "k8s",
            Component::Autoscaler => "ca",
            Component::Helm => "helm",
            Component::Karpenter => "karpenter",
        }
    }

    /// The prefix of its cache directory name (`<prefix>-<version>…`).
    fn dir_prefix(self) -> &'static str {
        match self {
            Component::Etcd => "etcd-",
            Component::Kwok => "kwok-",
            Component::K8s => "k8s-",
            Component::Autoscaler => "ca-",
            Component::Helm => "helm-",
            Component::Karpenter => "karpenter-",
        }
    }

    pub fn binaries(self) -> &'static [&'static str] {
        match self {
            Component::Etcd => &["etcd"],
            Component::Kwok => &["kwok"],
            Component::K8s => &[
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kubectl",
            ],
            Component::Autoscaler => &["cluster-autoscaler"],
            Component::Helm => &["helm"],
            Component::Karpenter => &["karpenter"],
        }
    }

    pub fn parse(name: &str) -> Option<Component> {
        [
            Component::Etcd,
            Component::Kwok,
            Component::K8s,
            Component::Autoscaler,
            Component::Helm,
            Component::Karpenter,
        ]
        .into_iter()
        .find(|c| {
            c.script_name() == name || (name == "cluster-autoscaler" && *c == Component::Autoscaler)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error(
        "control-plane binary `{binary}` ({component}) is not built in {cache}: run `cargo xtask cluster build {component}` first"
    )]
    Missing {
        binary: String,
        component: &'static str,
        cache: PathBuf,
    },
    #[error("could not run the control-plane build script {script}: {source}")]
    Spawn {
        script: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "building control-plane component(s) {components} failed ({status}); the script's output above names the component"
    )]
    BuildFailed {
        components: String,
        status: std::process::ExitStatus,
    },
}

/// The cache root: `$HUBPACK_CACHE`, else `~/.cache/hubpack/k8s` (the same rule as build.sh).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HUBPACK_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/hubpack/k8s")
}

/// The build script, found relative to this crate's sources.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("controlplane/build.sh")
}

/// The path of `binary` from `component`, or an error telling how to build it.
///
/// The newest finished directory wins when several versions are cached (unfinished builds
/// end in `.tmp` and are never used).
pub fn find(component: Component, binary: &str) -> Result<PathBuf, BinaryError> {
    let bin_root = cache_dir().join("bin");
    let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&bin_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(component.dir_prefix()) || name.ends_with(".tmp") {
                return None;
            }
            let path = entry.path().join(binary);
            let modified = path.metadata().ok()?.modified().ok()?;
            Some((modified, path))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, path)| path)
        .ok_or_else(|| BinaryError::Missing {
            binary: binary.to_string(),
            component: component.script_name(),
            cache: bin_root,
        })
}

/// The helm binary (`build.sh helm`), or an error telling how to build it.
pub fn helm() -> Result<PathBuf, BinaryError> {
    find(Component::Helm, "helm")
}

/// Runs `build.sh` for `components` (it skips cached ones in seconds), output passed through.
pub fn build(components: &[Component]) -> Result<(), BinaryError> {
    let script = build_script();
    let names: Vec<&str> = components.iter().map(|c| c.script_name()).collect();
    let status = Command::new("bash")
        .arg(&script)
        .args(&names)
        .status()
        .map_err(|source| BinaryError::Spawn {
            script: script.clone(),
            source,
        })?;
    if !status.success() {
        return Err(BinaryError::BuildFailed {
            components: names.join(" "),
            status,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_round_trip() {
        for c in [
            Component::Etcd,
            Component::Kwok,
            Component::K8s,
            Component::Autoscaler,
            Component::Helm,
            Component::Karpenter,
        ] {
            assert_eq!(Component::parse(c.script_name()), Some(c));
        }
        assert_eq!(
            Component::parse("cluster-autoscaler"),
            Some(Component::Autoscaler)
        );
        assert_eq!(Component::parse("kubelet"), None);
    }
}
