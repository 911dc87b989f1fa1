//! Binding a pod to a node through the `pods/binding` subresource, with the pod's uid as a
//! precondition so a re-created pod of the same name is never bound by mistake
//! (the API server keeps `metadata.uid` as a precondition on subresource create). kube has no
//! binding helper, so this posts through `create_subresource`; the API answers with a `Status`,
//! not a `Binding` (`BindingREST.Create`).

use super::RateLimiter;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::core::Status;

pub fn binding(namespace: &str, name: &str, uid: &str, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid.to_string()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    }
}

/// Binds `namespace/name` (uid `uid`) to `node`. A 409 means already bound or a uid
/// mismatch, a 404 that the pod is gone; both surface as `kube::Error::Api`.
pub async fn bind(
    client: &kube::Client,
    limiter: &RateLimiter,
    namespace: &str,
    name: &str,
    uid: &str,
    node: &str,
) -> crate::error::Result<()> {
    limiter.acquire().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let status: Status = pods
        .create_subresource(
            "binding",
            name,
            &PostParams::default(),
            &binding(namespace, name, uid, node),
        )
        .await?;
    if status.is_failure() {
        return Err(kube::Error::Api(Box::new(status)).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubpack_kube::test_support::*;
    use serde_json::json;

    #[tokio::test]
    async fn posts_a_binding_with_the_uid_precondition() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let server = tokio::spawn(async move { next(&mut handle, 201, status_ok()).await });
        bind(&client, &limiter, "hub", "jupyter-a", "uid-a", "node-1")
            .await
            .unwrap();
        let seen = server.await.unwrap();
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/api/v1/namespaces/hub/pods/jupyter-a/binding");
        assert_eq!(
            seen.body,
            json!({"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": "jupyter-a", "namespace": "hub", "uid": "uid-a"},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}})
        );
    }

    #[tokio::test]
    async fn a_conflict_is_an_api_error_with_its_code() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let server =
            tokio::spawn(async move { next(&mut handle, 409, status_err(409, "Conflict")).await });
        let err = bind(&client, &limiter, "hub", "p", "u", "n")
            .await
            .unwrap_err();
        server.await.unwrap();
        match err {
            crate::error::Error::Kube(kube::Error::Api(s)) => assert_eq!(s.code, 409),
            other => panic!("{other:?}"),
        }
    }
}
