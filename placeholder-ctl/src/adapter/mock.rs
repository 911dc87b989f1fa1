//! A mock API server for unit tests of the writes (tower-test): each test answers the
//! requests it expects, in order, and checks what was sent.

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

pub fn mock_client() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

/// Waits for the next request (5 s at most), answers `status` + `reply`, returns it.
pub async fn next(handle: &mut Handle, status: u16, reply: Value) -> Seen {
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

pub fn status_err(code: u16, reason: &str) -> Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": format!("mock {reason}"), "reason": reason, "code": code})
}

pub fn pod_json(ns: &str, name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
                       "spec": {"containers": []}})
}
