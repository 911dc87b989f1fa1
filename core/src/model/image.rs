//! Container image names normalized to the fully-qualified form the kubelet reports in
//! `node.status.images` (`docker.io/library/python:3.12`), so a pod's `python:3.12` and the
//! node's list compare equal.

use serde::{Deserialize, Serialize};

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageName(String);

impl ImageName {
    /// Normalizes like the container runtime's reference parsing: a missing registry is
    /// `docker.io`, a single-segment Docker Hub path gets `library/`, a missing tag (and no
    /// digest) is `:latest`. With a digest the tag is dropped (`repo:tag@sha256:…` →
    /// `repo@sha256:…`): the runtime pulls by digest and ignores the tag, and the kubelet
    /// lists the image in `status.images` as `repo@sha256:…` and `repo:tag`, never both
    /// together.
    pub fn normalize(raw: &str) -> ImageName {
        let raw = raw.trim();
        let (name, digest) = match raw.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (raw, None),
        };
        // A tag is a ':' after the last '/', so a registry port is not mistaken for one.
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repo, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        let first = repo.split('/').next().unwrap_or("");
        let has_registry = repo.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        // Docker Hub under its own or its legacy name: the runtime (and so the kubelet's
        // `status.images`) says `docker.io`, with `library/` for an official image
        // (github.com/distribution/reference normalize.go `splitDockerDomain`).
        let hub_path = if has_registry {
            repo.split_once('/')
                .filter(|(registry, _)| *registry == "docker.io" || *registry == "index.docker.io")
                .map(|(_, path)| path)
        } else {
            None
        };
        let mut full = if let Some(path) = hub_path {
            if path.contains('/') {
                format!("docker.io/{path}")
            } else {
                format!("docker.io/library/{path}")
            }
        } else if has_registry {
            repo.to_string()
        } else if repo.contains('/') {
            format!("docker.io/{repo}")
        } else {
            format!("docker.io/library/{repo}")
        };
        match (tag, digest) {
            (_, Some(d)) => {
                full.push('@');
                full.push_str(d);
            }
            (Some(t), None) => {
                full.push(':');
                full.push_str(t);
            }
            (None, None) => full.push_str(":latest"),
        }
        ImageName(full)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ImageName;

    #[test]
    fn normalizes_like_the_runtime() {
        let cases = [
            ("python", "docker.io/library/python:latest"),
            ("python:3.12", "docker.io/library/python:3.12"),
            ("docker.io/python:3.12", "docker.io/library/python:3.12"),
            (
                "index.docker.io/python:3.12",
                "docker.io/library/python:3.12",
            ),
            (
                "index.docker.io/jupyter/base-notebook:x",
                "docker.io/jupyter/base-notebook:x",
            ),
            (
                "docker.io/library/python",
                "docker.io/library/python:latest",
            ),
            (
                "jupyter/scipy-notebook:2024",
                "docker.io/jupyter/scipy-notebook:2024",
            ),
            (
                "quay.io/jupyter/base-notebook",
                "quay.io/jupyter/base-notebook:latest",
            ),
            ("localhost:5000/x:1", "localhost:5000/x:1"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
            // Tag and digest: compared by digest, as the kubelet lists it.
            (
                "quay.io/jupyter/scipy-notebook:2024-01@sha256:abc",
                "quay.io/jupyter/scipy-notebook@sha256:abc",
            ),
            (
                "localhost:5000/x:1@sha256:def",
                "localhost:5000/x@sha256:def",
            ),
            (
                "docker.io/library/python:3.12",
                "docker.io/library/python:3.12",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(ImageName::normalize(raw).as_str(), want, "{raw}");
        }
    }
}
