//! The command lines of the Go components (and the kube-scheduler config file), in one place:
//! flags chosen for a throwaway cluster on loopback. The comment at each flag says why it
//! is there; docs/design.md ("The real control plane in tests") has the whole picture.

use crate::pki::Pki;
use std::path::Path;

pub fn etcd_args(data_dir: &Path, client_port: u16, peer_port: u16) -> Vec<String> {
    vec![
        "--name=e2e".to_string(),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
        format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
        format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
        format!("--initial-cluster=e2e=http://127.0.0.1:{peer_port}"),
        // Throwaway data: no fsync.
        "--unsafe-no-fsync".into(),
        "--log-level=warn".into(),
    ]
}

pub fn apiserver_args(pki: &Pki, etcd_port: u16, api_port: u16) -> Vec<String> {
    vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={api_port}"),
        // No default route on these machines: the apiserver cannot guess an address.
        "--advertise-address=127.0.0.1".into(),
        // Endpoints validation rejects loopback IPs, so the "kubernetes" Endpoints sync would loop.
        "--endpoint-reconciler-type=none".into(),
        format!("--cert-dir={}", pki.dir.join("apiserver").display()),
        format!("--tls-cert-file={}", pki.server_cert.display()),
        format!("--tls-private-key-file={}", pki.server_key.display()),
        format!("--client-ca-file={}", pki.ca_cert.display()),
        format!("--token-auth-file={}", pki.tokens.display()),
        "--authorization-mode=RBAC".into(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", pki.sa_key.display()),
        format!(
            "--service-account-signing-key-file={}",
            pki.sa_key.display()
        ),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        "--allow-privileged=true".into(),
        // Pods in a new namespace would race the controller that makes its default ServiceAccount.
        "--disable-admission-plugins=ServiceAccount".into(),
        // Tests create objects in bursts; no client should be throttled by the server.
        "--max-requests-inflight=0".into(),
        "--max-mutating-requests-inflight=0".into(),
        "--enable-priority-and-fairness=false".into(),
        "--v=1".into(),
    ]
}

pub fn controller_manager_args(kubeconfig: &Path, pki: &Pki) -> Vec<String> {
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        "--secure-port=0".into(),
        format!(
            "--service-account-private-key-file={}",
            pki.sa_key.display()
        ),
        format!("--root-ca-file={}", pki.ca_cert.display()),
        "--use-service-account-credentials=false".into(),
        // A busy 2-core machine can starve kwok's lease renewals for a while.
        "--node-monitor-grace-period=5m".into(),
        "--kube-api-qps=200".into(),
        "--kube-api-burst=400".into(),
    ]
}

/// The KubeSchedulerConfiguration: profile `default-scheduler`, no leader election, and the
/// same client budget hubpack-scheduler gets in benchmarks (QPS 200, burst 400).
pub fn kube_scheduler_config(kubeconfig: &Path) -> String {
    format!(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
             clientConnection:\n  kubeconfig: {}\n  qps: 200\n  burst: 400\n\
             leaderElection:\n  leaderElect: false\n\
             profiles:\n- schedulerName: default-scheduler\n",
        kubeconfig.display()
    )
}

/// z2jh's user-scheduler KubeSchedulerConfiguration (z2jh's `templates/scheduling/user-scheduler/configmap.yaml`) under
/// `scheduler_name`: one profile, the score plugins re-weighted (NodeAffinity 14631,
/// InterPodAffinity 1331, NodeResourcesFit 121, ImageLocality 11, BalancedAllocation off),
/// NodeResourcesFit scoring MostAllocated on cpu and memory; filter, preemption and bind at
/// upstream defaults; leader election off (one replica). `qps`: a client budget (QPS, burst);
/// z2jh sets none. `max_backoff_s`: the retry backoff's cap (upstream 10 s, from 1 s), e.g.
/// shorter on a time-compressed cluster.
pub fn z2jh_user_scheduler_config(
    kubeconfig: &Path,
    scheduler_name: &str,
    qps: Option<(u32, u32)>,
    max_backoff_s: Option<u32>,
) -> String {
    let budget = qps
        .map(|(q, b)| format!("  qps: {q}\n  burst: {b}\n"))
        .unwrap_or_default();
    let backoff = max_backoff_s
        .map(|m| {
            format!(
                "podInitialBackoffSeconds: 1\npodMaxBackoffSeconds: {}\n",
                m.max(1)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
{backoff}clientConnection:
  kubeconfig: {kubeconfig}
{budget}leaderElection:
  leaderElect: false
profiles:
  - schedulerName: {scheduler_name}
    plugins:
      score:
        disabled:
          - name: NodeResourcesBalancedAllocation
          - name: NodeAffinity
          - name: InterPodAffinity
          - name: NodeResourcesFit
          - name: ImageLocality
        enabled:
          - name: NodeAffinity
            weight: 14631
          - name: InterPodAffinity
            weight: 1331
          - name: NodeResourcesFit
            weight: 121
          - name: ImageLocality
            weight: 11
    pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: MostAllocated
            resources:
              - name: cpu
                weight: 1
              - name: memory
                weight: 1
",
        kubeconfig = kubeconfig.display()
    )
}

pub fn kube_scheduler_args(config: &Path, port: u16) -> Vec<String> {
    vec![
        format!("--config={}", config.display()),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apiserver_runs_rbac_on_loopback_with_the_generated_credentials() {
        let pki = Pki::at(Path::new("/s/pki"));
        let args = apiserver_args(&pki, 2379, 6443);
        for flag in [
            "--etcd-servers=http://127.0.0.1:2379",
            "--secure-port=6443",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--authorization-mode=RBAC",
            "--token-auth-file=/s/pki/tokens.csv",
            "--tls-cert-file=/s/pki/apiserver.crt",
        ] {
            assert!(args.iter().any(|a| a == flag), "missing {flag}");
        }
    }

    #[test]
    fn z2jhs_profile_scores_most_allocated_with_its_weights() {
        let text =
            z2jh_user_scheduler_config(Path::new("/k"), "user-scheduler", Some((5, 10)), None);
        for line in [
            "kubeconfig: /k",
            "  qps: 5",
            "schedulerName: user-scheduler",
            "type: MostAllocated",
            "weight: 14631",
            "- name: NodeResourcesBalancedAllocation",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!z2jh_user_scheduler_config(Path::new("/k"), "s", None, None).contains("qps"));
    }

    #[test]
    fn the_kube_scheduler_config_names_the_kubeconfig_and_default_profile() {
        let text = kube_scheduler_config(Path::new("/s/kubeconfig"));
        assert!(text.contains("kubeconfig: /s/kubeconfig"));
        assert!(text.contains("schedulerName: default-scheduler"));
        assert!(text.contains("leaderElect: false"));
    }
}
