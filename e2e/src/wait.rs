//! Readiness probes and a generic "poll until" for tests.

use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The NoSchedule taint the TaintNodesByCondition admission plugin puts on new nodes; the
/// controller-manager lifts it once the node is Ready.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// The node lifecycle controller's taint on a node whose kubelet stopped reporting.
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

#[derive(Debug, thiserror::Error)]
#[error("timed out after {timeout:?} waiting for {what}")]
pub struct Timeout {
    pub what: String,
    pub timeout: Duration,
}

/// An HTTP answer: its status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// Plain HTTP/1.0 GET on loopback (`addr`: `host:port`); None when nothing answers within 5 s.
pub async fn http_get(addr: &str, path: &str) -> Option<HttpAnswer> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some(HttpAnswer {
            status,
            body: body.to_string(),
        })
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
}

/// The body of a 200 answer to GET `path` on a loopback port.
pub async fn http_body(port: u16, path: &str) -> Option<String> {
    let answer = http_get(&format!("127.0.0.1:{port}"), path).await?;
    (answer.status == 200).then_some(answer.body)
}

/// Plain HTTP GET on loopback; true on a 200 answer (etcd /health, autoscaler /health-check).
pub async fn http_ok(addr: &str, path: &str) -> bool {
    http_get(addr, path).await.is_some_and(|a| a.status == 200)
}

/// Whether the apiserver answers `ok` on /readyz.
pub async fn apiserver_ready(client: &kube::Client) -> bool {
    let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await;
    matches!(answer, Ok(Ok(text)) if text.trim() == "ok")
}

/// Whether a condition of `type_` has status True in a list of (type, status) pairs.
fn condition_true<'a>(
    mut conditions: impl Iterator<Item = (&'a str, &'a str)>,
    type_: &str,
) -> bool {
    conditions.any(|(t, s)| t == type_ && s == "True")
}

pub fn node_ready(node: &Node) -> bool {
    let conditions = node
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| (c.type_.as_str(), c.status.as_str()));
    condition_true(conditions, "Ready")
}

/// The tolerations the `DefaultTolerationSeconds` admission plugin gives every pod that
/// does not say otherwise: `not-ready` and `unreachable`, NoExecute, for 300 s
/// (plugin/pkg/admission/defaulttolerationseconds/admission.go).
pub fn default_tolerations() -> Vec<Toleration> {
    [NOT_READY_TAINT, UNREACHABLE_TAINT]
        .into_iter()
        .map(|key| Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(300),
            ..Default::default()
        })
        .collect()
}

/// Ready, and a scheduler may place a pod with the default tolerations there. See
/// [`node_schedulable_for`].
pub fn node_schedulable(node: &Node) -> bool {
    node_schedulable_for(node, &default_tolerations())
}

/// Ready, and a scheduler may place a pod with `tolerations` there, judged as the schedulers
/// do (kube-scheduler's TaintToleration filter, hubpack's alike): every node-condition taint
/// (`node.kubernetes.io/…`) with effect NoSchedule or NoExecute is tolerated. Once a node
/// turns Ready the node lifecycle controller lifts `not-ready:NoSchedule` at once but its
/// NoExecute twin only at its next pass, seconds later: pods tolerate that one for 300 s by
/// default, so binding in that window is right. The pool's own taints are the tests' to
/// check.
pub fn node_schedulable_for(node: &Node, tolerations: &[Toleration]) -> bool {
    let blocked = node
        .spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .filter(|t| t.key.starts_with("node.kubernetes.io/"))
        .any(|t| !crate::placement::tolerates(tolerations, t) && t.effect != "PreferNoSchedule");
    node_ready(node) && !blocked
}

pub fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| (c.type_.as_str(), c.status.as_str()));
    condition_true(conditions, "Ready")
}

/// `PodScheduled=False` with reason `Unschedulable`: what a scheduler writes on a pod it
/// could not place, and what the cluster-autoscaler reacts to.
pub fn pod_unschedulable(pod: &Pod) -> bool {
    pod.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
}

pub fn pod_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Calls `probe` every 200 ms until it returns `Some`, or times out.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T, Timeout>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_schedulable_only_when_ready_and_untainted() {
        let mut node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": {"taints": [{"key": NOT_READY_TAINT, "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        assert!(node_ready(&node));
        assert!(!node_schedulable(&node));
        node.spec = None;
        assert!(node_schedulable(&node));
    }

    #[test]
    fn a_ready_node_keeping_its_not_ready_no_execute_taint_is_schedulable_for_default_pods() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": {"taints": [{"key": NOT_READY_TAINT, "effect": "NoExecute"},
                                {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        assert!(node_schedulable(&node), "tolerated for 300 s by default");
        assert!(
            !node_schedulable_for(&node, &[]),
            "a pod without the default toleration is kept off"
        );
        let mut unready = node.clone();
        unready.status = None;
        assert!(!node_schedulable(&unready));
    }

    #[tokio::test]
    async fn until_times_out_with_the_thing_named() {
        let err = until("nothing", Duration::from_millis(300), || async {
            None::<()>
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("nothing"));
    }
}
