//! One version for the workspace, the image and the chart: the crates' `[workspace.package]
//! version`, the chart's `version` and `appVersion` (the image tag the chart defaults to) and
//! the CHANGELOG's newest released entry must be the same.

use crate::run::root;
use anyhow::Context;

/// The versions that must agree, each with where it was read.
#[derive(Debug, PartialEq, Eq)]
pub struct Versions {
    pub workspace: String,
    pub chart: String,
    pub chart_app: String,
    pub changelog: String,
}

impl Versions {
    /// Reads them from the repository's files.
    pub fn read() -> anyhow::Result<Versions> {
        let read = |path: &str| {
            std::fs::read_to_string(root().join(path)).with_context(|| format!("reading {path}"))
        };
        let cargo = read("Cargo.toml")?;
        let chart = read("charts/hubpack/Chart.yaml")?;
        let changelog = read("CHANGELOG.md")?;
        Ok(Versions {
            workspace: workspace_version(&cargo)
                .context("Cargo.toml: no [workspace.package] version")?,
            chart: yaml_field(&chart, "version").context("Chart.yaml: no version")?,
            chart_app: yaml_field(&chart, "appVersion").context("Chart.yaml: no appVersion")?,
            changelog: changelog_version(&changelog)
                .context("CHANGELOG.md: no released entry (`## [X.Y.Z] - date`)")?,
        })
    }

    /// Ok with the one version, or an error naming each source and what it says.
    pub fn agree(&self) -> anyhow::Result<&str> {
        let all = [&self.chart, &self.chart_app, &self.changelog];
        if all.iter().all(|v| **v == self.workspace) {
            return Ok(&self.workspace);
        }
        anyhow::bail!(
            "versions disagree: Cargo.toml [workspace.package] {}, Chart.yaml version {} and \
             appVersion {}, CHANGELOG.md newest entry {}; a release changes all four together",
            self.workspace,
            self.chart,
            self.chart_app,
            self.changelog
        )
    }
}

fn unquote(value: &str) -> String {
    value
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string()
}

/// `version = "…"` in the `[workspace.package]` table.
fn workspace_version(cargo_toml: &str) -> Option<String> {
    let mut in_table = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[workspace.package]";
        } else if in_table
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "version"
        {
            return Some(unquote(value));
        }
    }
    None
}

/// A top-level `key: value` of a YAML file (Chart.yaml's fields are top-level scalars).
fn yaml_field(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        let v = v.split(" #").next().unwrap_or(v);
        (k == key).then(|| unquote(v))
    })
}

/// The newest released entry: the first `## [X.Y.Z]` heading (Keep a Changelog's
/// `## [Unreleased]` above it holds no version).
fn changelog_version(changelog: &str) -> Option<String> {
    changelog.lines().find_map(|line| {
        let rest = line.strip_prefix("## [")?;
        let (version, _) = rest.split_once(']')?;
        (!version.eq_ignore_ascii_case("unreleased")).then(|| version.to_string())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CARGO: &str = "[workspace]\nmembers = [\"core\"]\n\n[workspace.package]\nversion = \"0.2.0\"\nedition = \"2024\"\n\n[workspace.dependencies]\nclap = { version = \"4.5\" }\n";
    const CHART: &str = "apiVersion: v2\nname: hubpack\nversion: 0.2.0\nappVersion: \"0.2.0\"\nkubeVersion: \">=1.33.0-0\"\n";
    const CHANGELOG: &str = "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2027-01-10\n\n### Added\n\n## [0.1.0] - 2026-12-06\n";

    fn versions(cargo: &str, chart: &str, changelog: &str) -> Versions {
        Versions {
            workspace: workspace_version(cargo).unwrap_or_default(),
            chart: yaml_field(chart, "version").unwrap_or_default(),
            chart_app: yaml_field(chart, "appVersion").unwrap_or_default(),
            changelog: changelog_version(changelog).unwrap_or_default(),
        }
    }

    #[test]
    fn reads_each_source() {
        let v = versions(CARGO, CHART, CHANGELOG);
        assert_eq!(v.workspace, "0.2.0"); // not a dependency's `version`
        assert_eq!(v.chart_app, "0.2.0"); // quotes dropped; `apiVersion` is another key
        assert_eq!(v.changelog, "0.2.0"); // `[Unreleased]` skipped, the newest entry taken
        assert_eq!(v.agree().ok(), Some("0.2.0"));
    }

    #[test]
    fn a_version_left_behind_is_named() {
        for (cargo, chart, changelog, stale) in [
            (
                CARGO.replace("0.2.0", "0.1.0"),
                CHART.to_string(),
                CHANGELOG.to_string(),
                "Cargo.toml [workspace.package] 0.1.0",
            ),
            (
                CARGO.to_string(),
                CHART.replace("version: 0.2.0", "version: 0.1.0"),
                CHANGELOG.to_string(),
                "Chart.yaml version 0.1.0",
            ),
            (
                CARGO.to_string(),
                CHART.replace("appVersion: \"0.2.0\"", "appVersion: \"0.1.0\""),
                CHANGELOG.to_string(),
                "appVersion 0.1.0",
            ),
            (
                CARGO.to_string(),
                CHART.to_string(),
                CHANGELOG.replace("## [0.2.0] - 2027-01-10\n", ""),
                "CHANGELOG.md newest entry 0.1.0",
            ),
        ] {
            let err = versions(&cargo, &chart, &changelog)
                .agree()
                .unwrap_err()
                .to_string();
            assert!(err.contains(stale), "{stale}: {err}");
        }
    }

    #[test]
    fn the_repository_agrees() {
        let v = Versions::read().unwrap_or_else(|e| panic!("{e:#}"));
        v.agree().unwrap_or_else(|e| panic!("{e}"));
    }
}
