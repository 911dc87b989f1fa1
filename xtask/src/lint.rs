//! Linters for what these machines cannot run: the GitHub workflows (actionlint, with
//! shellcheck for their scripts) and the image's Dockerfile (hadolint, plus the pinning rules
//! below that hadolint does not check). The tools are built or installed and cached by the
//! control-plane build script.

use crate::run::{root, step};
use anyhow::{Context, bail};
use hubpack_e2e::binaries;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Runs actionlint over `.github/workflows` and hadolint plus [`dockerfile_findings`] over the
/// Dockerfile.
pub fn run() -> anyhow::Result<()> {
    let actionlint = tool("actionlint")?;
    // actionlint checks each `run:` script with the shellcheck it finds on PATH.
    let shellcheck = tool("shellcheck")?;
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = shellcheck.parent() {
        let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
        path = std::env::join_paths(dirs.collect::<Vec<_>>())?;
    }
    step(
        "actionlint (.github/workflows, run: scripts through shellcheck)",
        Command::new(actionlint)
            .env("PATH", path)
            .current_dir(root()),
    )?;
    let hadolint = tool("hadolint")?;
    step(
        "hadolint Dockerfile",
        Command::new(hadolint).arg("Dockerfile").current_dir(root()),
    )?;
    eprintln!("==> Dockerfile pinning and hardening");
    let dockerfile =
        std::fs::read_to_string(root().join("Dockerfile")).context("reading Dockerfile")?;
    let findings = dockerfile_findings(&dockerfile);
    if !findings.is_empty() {
        bail!("Dockerfile:\n  {}", findings.join("\n  "));
    }
    Ok(())
}

/// The path of a linter `build.sh` provides (it prints `NAME=DIR`), building it on first use.
fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let script = binaries::build_script();
    let out = Command::new("bash")
        .arg(&script)
        .arg(name)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} {name} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .with_context(|| format!("{} {name} printed no {name}=DIR", script.display()))?;
    Ok(PathBuf::from(dir).join(name))
}

/// What the image's Dockerfile must hold beyond hadolint's rules: every base image pinned by
/// digest (a tag can be moved under a release), none tagged `latest`, a non-root final USER,
/// and release binaries built stripped.
pub fn dockerfile_findings(dockerfile: &str) -> Vec<String> {
    let mut findings = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut last_user: Option<String> = None;
    for (n, line) in dockerfile.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(instruction) = words.first() else {
            continue;
        };
        let at = n + 1;
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => {
                let image = words
                    .iter()
                    .skip(1)
                    .find(|w| !w.starts_with("--"))
                    .copied()
                    .unwrap_or_default();
                if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("AS"))
                    && let Some(stage) = words.get(pos + 1)
                {
                    stages.push(stage.to_ascii_lowercase());
                }
                if stages[..stages.len().saturating_sub(1)].contains(&image.to_ascii_lowercase())
                    || image == "scratch"
                {
                    continue; // an earlier stage, not a base image
                }
                if !image.contains("@sha256:") {
                    findings.push(format!(
                        "line {at}: base image {image} is not pinned by @sha256: digest"
                    ));
                }
                if image
                    .split('@')
                    .next()
                    .unwrap_or(image)
                    .ends_with(":latest")
                {
                    findings.push(format!("line {at}: base image {image} is tagged latest"));
                }
            }
            "USER" => last_user = words.get(1).map(|u| u.to_string()),
            _ => {}
        }
    }
    match last_user.as_deref() {
        None => findings.push("no USER: the image would run as root".into()),
        Some(user) => {
            let name = user.split(':').next().unwrap_or(user);
            if name == "root" || name == "0" {
                findings.push(format!("the final USER is {user}, root"));
            }
        }
    }
    let stripped = dockerfile.contains("CARGO_PROFILE_RELEASE_STRIP=symbols")
        || dockerfile.contains("CARGO_PROFILE_RELEASE_STRIP=true")
        || dockerfile
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == "strip"));
    if !stripped {
        findings.push(
            "release binaries are not stripped (CARGO_PROFILE_RELEASE_STRIP=symbols or strip)"
                .into(),
        );
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
FROM docker.io/library/rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
RUN CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release
FROM build AS again
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /out/x /usr/local/bin/
USER 65532:65532
";

    #[test]
    fn the_pinned_hardened_dockerfile_passes() {
        assert_eq!(dockerfile_findings(GOOD), Vec::<String>::new());
    }

    #[test]
    fn the_repository_dockerfile_passes() {
        let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap_or_default();
        assert!(
            text.contains("FROM"),
            "no Dockerfile at the repository root"
        );
        assert_eq!(dockerfile_findings(&text), Vec::<String>::new());
    }

    #[test]
    fn each_rule_names_its_line() {
        let cases = [
            (
                GOOD.replace(
                    "@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082",
                    "",
                ),
                "line 1: base image docker.io/library/rust:1.95-slim-bookworm is not pinned",
            ),
            (
                GOOD.replace("cc-debian12:nonroot@", "cc-debian12:latest@"),
                "line 4: base image gcr.io/distroless/cc-debian12:latest@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f is tagged latest",
            ),
            (
                GOOD.replace("USER 65532:65532", "USER root"),
                "the final USER is root, root",
            ),
            (GOOD.replace("USER 65532:65532\n", ""), "no USER"),
            (
                GOOD.replace("CARGO_PROFILE_RELEASE_STRIP=symbols ", ""),
                "not stripped",
            ),
        ];
        for (text, expected) in cases {
            let findings = dockerfile_findings(&text);
            assert!(
                findings.len() == 1 && findings[0].contains(expected),
                "{expected}: {findings:?}"
            );
        }
    }
}
