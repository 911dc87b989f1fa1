//! A recording proxy in front of the kube-apiserver, so a test sees every request a hubpack
//! binary makes: the binary talks plain HTTP to the proxy with its own bearer token (its
//! kubeconfig says so), the proxy forwards each request unchanged over TLS, with that token,
//! and notes the request's verb and resource the way the API server's RequestInfo derives them
//! (GET + `watch` = watch, GET of a collection = list, POST = create, PATCH = patch, ...)
//! together with the answer's status. Responses stream through, so watches work. A
//! server-side apply answered 201 created its object, which the API server authorizes as a
//! create too: it is noted as both.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{Method, StatusCode};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The prefix of [`Seen::resource`] for a non-resource URL (`/version`, discovery).
pub const NON_RESOURCE: &str = "nonresource:";

/// One request as the API server's authorizer sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub verb: String,
    /// `group/resource[/subresource]` (the core group is empty: `/pods`), or
    /// [`NON_RESOURCE`] and the path.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub status: u16,
}

pub struct Proxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to the cluster of `admin_kubeconfig`
    /// (its server and CA only: none of its credentials).
    pub async fn start(admin_kubeconfig: &Path) -> Proxy {
        let kc = kube::config::Kubeconfig::read_from(admin_kubeconfig).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        config.auth_info = Default::default();
        // Watches are long; the binaries set their own timeouts.
        config.read_timeout = None;
        let upstream = kube::Client::try_from(config).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((upstream, seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Proxy { addr, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A kubeconfig for a binary: this proxy as the server, `token` as its credentials.
    pub fn kubeconfig(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: http://{}\n\
             users:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context:\n    cluster: proxy\n    user: sa\n\
             current-context: sa\n",
            self.addr
        )
    }
}

type Shared = (kube::Client, Arc<Mutex<Vec<Seen>>>);

async fn forward(State((upstream, seen)): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let mut out = http::Request::builder()
        .method(parts.method.clone())
        .uri(&path_and_query);
    for (k, v) in &parts.headers {
        if ![HOST, CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING].contains(k) {
            out = out.header(k, v);
        }
    }
    let Ok(out) = out.body(kube::client::Body::from(body.to_vec())) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (status, response) = match upstream.send(out).await {
        Ok(resp) => {
            let (mut head, body) = resp.into_parts();
            for h in [CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING] {
                head.headers.remove(h);
            }
            let status = head.status;
            (
                status,
                Response::from_parts(head, axum::body::Body::new(body)),
            )
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        ),
    };
    let info = request_info(&parts.method, &path_and_query, status.as_u16());
    let mut seen = seen.lock().unwrap();
    // A server-side apply that made a new object (201) was also authorized as a create.
    if parts.method == Method::PATCH && status == StatusCode::CREATED {
        seen.push(Seen {
            verb: "create".into(),
            ..info.clone()
        });
    }
    seen.push(info);
    response
}

/// The verb, resource, namespace and name of a request, as the API server's RequestInfo
/// resolver derives them from the method and path.
pub fn request_info(method: &Method, path_and_query: &str, status: u16) -> Seen {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        // A group version alone (`/apis/<group>/<version>`) is discovery, not a resource.
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => {
            return Seen {
                verb: method.as_str().to_lowercase(),
                resource: format!("{NON_RESOURCE}{path}"),
                namespace: String::new(),
                name: String::new(),
                status,
            };
        }
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (*ns, rest),
        _ => ("", rest),
    };
    let (resource, name, sub) = match rest {
        [r] => (*r, "", ""),
        [r, n] => (*r, *n, ""),
        [r, n, s, ..] => (*r, *n, *s),
        [] => ("", "", ""),
    };
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if name.is_empty() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => "other",
    };
    let resource = if sub.is_empty() {
        format!("{group}/{resource}")
    } else {
        format!("{group}/{resource}/{sub}")
    };
    Seen {
        verb: verb.into(),
        resource,
        namespace: namespace.into(),
        name: name.into(),
        status,
    }
}

#[test]
fn request_info_follows_the_api_servers_rules() {
    let info = |m: Method, p: &str| {
        let s = request_info(&m, p, 200);
        (s.verb, s.resource, s.namespace, s.name)
    };
    let t = |v: &str, r: &str, ns: &str, n: &str| (v.into(), r.into(), ns.into(), n.into());
    assert_eq!(
        info(Method::GET, "/api/v1/pods?limit=500"),
        t("list", "/pods", "", "")
    );
    assert_eq!(
        info(Method::GET, "/api/v1/pods?watch=true&resourceVersion=1"),
        t("watch", "/pods", "", "")
    );
    assert_eq!(
        info(Method::POST, "/api/v1/namespaces/hub/pods/u1/binding"),
        t("create", "/pods/binding", "hub", "u1")
    );
    assert_eq!(
        info(
            Method::PATCH,
            "/apis/coordination.k8s.io/v1/namespaces/hub/leases/l?fieldManager=x"
        ),
        t("patch", "coordination.k8s.io/leases", "hub", "l")
    );
    assert_eq!(
        info(Method::POST, "/apis/events.k8s.io/v1/namespaces/hub/events"),
        t("create", "events.k8s.io/events", "hub", "")
    );
    assert_eq!(
        info(Method::GET, "/api/v1/nodes/n1"),
        t("get", "/nodes", "", "n1")
    );
    assert_eq!(
        info(Method::GET, "/api/v1/namespaces/hub"),
        t("get", "/namespaces", "", "hub")
    );
    assert_eq!(
        info(Method::GET, "/apis/autoscaling.x-k8s.io/v1beta1"),
        t(
            "get",
            "nonresource:/apis/autoscaling.x-k8s.io/v1beta1",
            "",
            ""
        )
    );
}
