//! Evicting a placeholder through the Eviction API. kube's `Api::evict` serializes
//! `delete_options` in snake_case (kube-core's `subresource.rs`), so the API server would ignore the grace
//! period and the uid precondition; we post a typed policy/v1 Eviction instead. A fresh
//! PodDisruptionBudget answers 429 until its status is computed: that is retried.

use super::RateLimiter;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use kube::api::{Api, PostParams};
use kube::core::Status;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictOutcome {
    /// The API accepted the eviction; the pod's DELETE will follow on the watch.
    Accepted,
    /// 404, or 409 on the uid precondition: the pod we meant is already gone.
    AlreadyGone,
    /// Still 429 after every retry: a PDB does not allow it now.
    Blocked,
}

pub fn eviction(namespace: &str, name: &str, uid: &str) -> Eviction {
    Eviction {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        delete_options: Some(DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        }),
    }
}

/// How many times a 429 is retried, and the first wait (doubling).
pub const RETRIES_ON_429: u32 = 4;
pub const FIRST_429_WAIT: Duration = Duration::from_millis(250);

pub async fn evict(
    client: &kube::Client,
    limiter: &RateLimiter,
    namespace: &str,
    name: &str,
    uid: &str,
) -> crate::error::Result<EvictOutcome> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let body = eviction(namespace, name, uid);
    let mut wait = FIRST_429_WAIT;
    for attempt in 0..=RETRIES_ON_429 {
        limiter.acquire().await?;
        let res: Result<Status, _> = pods
            .create_subresource("eviction", name, &PostParams::default(), &body)
            .await;
        match res {
            Ok(s) if s.is_failure() => return Err(kube::Error::Api(Box::new(s)).into()),
            Ok(_) => return Ok(EvictOutcome::Accepted),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                return Ok(EvictOutcome::AlreadyGone);
            }
            Err(kube::Error::Api(s)) if s.code == 429 => {
                tracing::debug!(%namespace, %name, attempt, "eviction answered 429; retrying");
                if attempt < RETRIES_ON_429 {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(EvictOutcome::Blocked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubpack_kube::test_support::*;
    use serde_json::json;

    #[tokio::test]
    async fn posts_a_policy_v1_eviction_with_delete_options() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let server = tokio::spawn(async move { next(&mut handle, 201, status_ok()).await });
        let out = evict(&client, &limiter, "hub", "placeholder-0", "uid-ph")
            .await
            .unwrap();
        assert_eq!(out, EvictOutcome::Accepted);
        let seen = server.await.unwrap();
        assert_eq!(seen.method, "POST");
        assert_eq!(
            seen.path,
            "/api/v1/namespaces/hub/pods/placeholder-0/eviction"
        );
        assert_eq!(
            seen.body,
            json!({"apiVersion": "policy/v1", "kind": "Eviction",
                   "metadata": {"name": "placeholder-0", "namespace": "hub"},
                   "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "uid-ph"}}})
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_429_then_succeeds() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let server = tokio::spawn(async move {
            next(&mut handle, 429, status_err(429, "TooManyRequests")).await;
            next(&mut handle, 429, status_err(429, "TooManyRequests")).await;
            next(&mut handle, 201, status_ok()).await
        });
        let out = evict(&client, &limiter, "hub", "p", "u").await.unwrap();
        assert_eq!(out, EvictOutcome::Accepted);
        server.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_as_blocked_after_the_retries() {
        let (client, mut handle) = mock_client();
        let limiter = RateLimiter::new(100.0, 10);
        let server = tokio::spawn(async move {
            for _ in 0..=RETRIES_ON_429 {
                next(&mut handle, 429, status_err(429, "TooManyRequests")).await;
            }
        });
        let out = evict(&client, &limiter, "hub", "p", "u").await.unwrap();
        assert_eq!(out, EvictOutcome::Blocked);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn gone_and_uid_mismatch_mean_already_gone() {
        for code in [404, 409] {
            let (client, mut handle) = mock_client();
            let limiter = RateLimiter::new(100.0, 10);
            let server =
                tokio::spawn(async move { next(&mut handle, code, status_err(code, "x")).await });
            let out = evict(&client, &limiter, "hub", "p", "u").await.unwrap();
            assert_eq!(out, EvictOutcome::AlreadyGone, "{code}");
            server.await.unwrap();
        }
    }
}
