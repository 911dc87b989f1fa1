//! The scheduling loop: while leading, pop the next pod and run one attempt; otherwise wait
//! for leadership. Each round beats the heart `/healthz` reads. On shutdown it stops
//! popping; `app` then lets in-flight binds finish ([`drain_binds`]).
//!
//! A lapse of the lease deadline (the API server unreachable, a renewal late) only pauses
//! the loop: what is in flight stays, and resumes if the lease is renewed, since no other
//! replica can have acted meanwhile. Losing the lease to another replica stops the whole
//! process instead (see `app`).

use crate::context::Context;
use crate::schedule_one::schedule_one;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest sleep between checks, so deadlines (leadership, preemption timeouts) are
/// noticed even when nothing else happens.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let mut leadership = ctx.leader.subscribe();
    let mut was_leading = false;
    while !shutdown.is_cancelled() {
        let now = ctx.now();
        ctx.heartbeat.store(now, Ordering::Release);
        let leading = ctx.leader.is_leading(now);
        ctx.metrics.is_leader.set(i64::from(leading));
        if leading != was_leading {
            tracing::info!(
                leading,
                "scheduling {}",
                if leading { "started" } else { "stopped" }
            );
            was_leading = leading;
        }
        if !leading || !ctx.caches_synced() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = leadership.changed() => {}
                _ = ctx.wake.notified() => {}
                _ = tokio::time::sleep(MAX_IDLE) => {}
            }
            continue;
        }
        let next = ctx.queue().pop(now);
        match next {
            Some(key) => {
                let attempt = schedule_one(&ctx, key.clone()).await;
                tracing::debug!(pod = %key, ?attempt, "attempt");
                ctx.publish_queue_depth();
            }
            None => {
                let wait = ctx
                    .queue()
                    .next_ready_at()
                    .map(|t| Duration::from_millis(u64::try_from((t - now).max(1)).unwrap_or(1)))
                    .unwrap_or(MAX_IDLE)
                    .min(MAX_IDLE);
                ctx.publish_queue_depth();
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ctx.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Waits (bounded) until every bind slot is free again: no bind is cut off mid-request.
pub async fn drain_binds(ctx: &Context) {
    let all = u32::try_from(ctx.config.api.bind_concurrency).unwrap_or(u32::MAX);
    match tokio::time::timeout(Duration::from_secs(10), ctx.bind_slots.acquire_many(all)).await {
        Ok(Ok(permits)) => {
            permits.forget();
            ctx.bind_slots.close();
            tracing::info!("in-flight binds finished");
        }
        _ => tracing::warn!("in-flight binds did not finish within 10 s"),
    }
}
