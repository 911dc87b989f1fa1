//! `/metrics` (OpenMetrics text), `/healthz` (the binary's main loop, scheduling or
//! reconciling, went round recently: a replica whose loop is stuck is restarted by its
//! liveness probe), `/readyz` (every cache has listed once; a standby is ready too, so it
//! can take over).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// The loop goes round at least once a second (leader or not); this long without a round
/// means it is stuck.
pub const HEARTBEAT_STALE_MS: i64 = 30_000;

#[derive(Clone)]
pub struct HttpState {
    pub registry: Arc<Registry>,
    pub synced: Arc<AtomicUsize>,
    pub kinds: usize,
    /// Wall-clock milliseconds of the main loop's last round.
    pub heartbeat: Arc<AtomicI64>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    let now = jiff::Timestamp::now().as_millisecond();
    let age = now - s.heartbeat.load(Ordering::Acquire);
    if age < HEARTBEAT_STALE_MS {
        (StatusCode::OK, "ok".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the scheduling loop has not gone round for {} s",
                age / 1000
            ),
        )
    }
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    let synced = s.synced.load(Ordering::Acquire);
    if synced >= s.kinds {
        (StatusCode::OK, "ready".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("caches syncing: {synced}/{} kinds listed", s.kinds),
        )
    }
}

pub async fn serve(
    addr: std::net::SocketAddr,
    state: HttpState,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics /healthz /readyz");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthz_follows_the_loops_heartbeat() {
        let heartbeat = Arc::new(AtomicI64::new(jiff::Timestamp::now().as_millisecond()));
        let state = HttpState {
            registry: Arc::new(Registry::default()),
            synced: Arc::default(),
            kinds: 6,
            heartbeat: heartbeat.clone(),
        };
        let status =
            |state: HttpState| async move { healthz(State(state)).await.into_response().status() };
        assert_eq!(status(state.clone()).await, StatusCode::OK);
        heartbeat.fetch_sub(HEARTBEAT_STALE_MS + 1, Ordering::AcqRel);
        assert_eq!(status(state).await, StatusCode::SERVICE_UNAVAILABLE);
    }
}
