//! A mock API server for unit tests (tower-test), after kube-rs/controller-rs's fixtures:
//! each test says which requests it expects, in order, and what the server answers.
//! Behind the `test-support` feature, for the unit tests of the binaries' adapters
//! (hubpack-scheduler and hubpack-placeholder-ctl enable it in their dev-dependencies only).

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

pub fn mock_client() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

/// A request the mock received.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

/// Waits for the next request (failing after 5 s of mock time), answers it with `status` and
/// `reply`, and returns what was sent.
pub async fn next(handle: &mut Handle, status: u16, reply: Value) -> Seen {
    next_with(handle, |_| (status, reply)).await
}

/// Like [`next`], the answer chosen from the request's path (for requests that go out
/// together, in either order).
pub async fn next_with(handle: &mut Handle, answer: impl FnOnce(&str) -> (u16, Value)) -> Seen {
    let (req, send) =
        tokio::time::timeout(std::time::Duration::from_secs(5), handle.next_request())
            .await
            .expect("timed out waiting for a request")
            .expect("service closed");
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = req.into_body().collect_bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    let (status, reply) = answer(&path);
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).expect("json")))
            .expect("response"),
    );
    Seen {
        method,
        path,
        query,
        content_type,
        body,
    }
}

pub fn status_ok() -> Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

pub fn status_err(code: u16, reason: &str) -> Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": format!("mock {reason}"), "reason": reason, "code": code})
}

pub fn pod_json(ns: &str, name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
                       "spec": {"containers": []}})
}
