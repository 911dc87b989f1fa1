//! kwok's configuration for the e2e cluster: which nodes it manages (annotation
//! `kwok.x-k8s.io/node=fake`) and its Stages (`e2e/controlplane/kwok/stages.yaml`): a node
//! boots for a delay before turning Ready, and a pod starts at the time the image model wrote
//! in its `e2e.hubpack.dev/ready-at` annotation.

use std::path::Path;
use std::time::Duration;

/// kwok manages only nodes with this annotation (CA's kwok provider sets it on its nodes too).
pub const MANAGED_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");
/// Per-node boot delay override, a Go duration such as `"20s"`.
pub const BOOT_DELAY_ANNOTATION: &str = "e2e.hubpack.dev/boot-delay";
/// When a bound pod may start (RFC 3339), written by the image model.
pub const READY_AT_ANNOTATION: &str = "e2e.hubpack.dev/ready-at";

const STAGES_TEMPLATE: &str = include_str!("../controlplane/kwok/stages.yaml");

/// The kwok config file text, with the default node boot delay filled in.
pub fn config_text(default_boot_delay: Duration) -> String {
    STAGES_TEMPLATE.replace(
        "@BOOT_DELAY_MS@",
        &default_boot_delay.as_millis().to_string(),
    )
}

/// Writes the kwok config to `path`.
pub fn write_config(path: &Path, default_boot_delay: Duration) -> std::io::Result<()> {
    std::fs::write(path, config_text(default_boot_delay))
}

/// kwok's command line (`--config` is explicit so `~/.kwok/kwok.yaml` is never read).
pub fn args(kubeconfig: &Path, config: &Path) -> Vec<String> {
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--config={}", config.display()),
        "--manage-all-nodes=false".into(),
        format!(
            "--manage-nodes-with-annotation-selector={}={}",
            MANAGED_ANNOTATION.0, MANAGED_ANNOTATION.1
        ),
        "--cidr=10.0.0.0/16".into(),
        "--node-ip=127.0.0.1".into(),
        "--node-lease-duration-seconds=40".into(),
    ]
}

/// A duration in Go's `time.ParseDuration` syntax for whole milliseconds (`"1500ms"`), which
/// both kwok and this crate's own parser read.
pub fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Parses the subset of Go durations the harness writes or users type: `<number><unit>`
/// repeated, units `ms`, `s`, `m`, `h` (e.g. `"90s"`, `"1m30s"`, `"250ms"`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit_secs, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return None;
        };
        rest = &rest[len..];
        total += Duration::from_secs_f64(value * unit_secs);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_fills_the_boot_delay_and_keeps_the_stages() {
        let text = config_text(Duration::from_secs(7));
        assert!(text.contains("durationMilliseconds: 7000"));
        assert!(!text.contains("@BOOT_DELAY_MS@"));
        for stage in [
            "node-initialize-delayed",
            "node-heartbeat-with-lease",
            "pod-ready",
            "pod-complete",
            "pod-delete",
        ] {
            assert!(text.contains(&format!("name: {stage}\n")), "{stage}");
        }
        assert!(text.contains(READY_AT_ANNOTATION));
        assert!(text.contains(BOOT_DELAY_ANNOTATION));
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_go_duration(&go_duration(Duration::from_millis(1500))),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("5d"), None);
    }
}
