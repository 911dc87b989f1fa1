//! A token bucket for API writes (`api.qps`, `api.burst`), like client-go's default rate
//! limiter: a burst of writes goes out at once, the sustained rate is capped. It is also where
//! the leader check sits, because a write may wait seconds for its turn and the lease may
//! lapse meanwhile: the check must come after the wait, right before the request.

use crate::metrics::LaneLabels;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::{Arc, Mutex};
use tokio::time::{Duration, Instant};

/// Whether this replica may still write (it holds the lease, within its own deadline).
pub type WriteGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// A write refused because leadership lapsed while it waited for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not the leader: the lease lapsed while the write waited for its turn")]
pub struct NotLeader;

impl From<NotLeader> for crate::error::Error {
    fn from(_: NotLeader) -> Self {
        crate::error::Error::NotLeader
    }
}

pub struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<Bucket>,
    gate: Option<WriteGate>,
    /// Where waits are recorded, and the lane name of [`Self::acquire`]'s writes.
    waits: Option<(Family<LaneLabels, Histogram>, &'static str)>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("qps", &self.qps)
            .field("burst", &self.burst)
            .field("gated", &self.gate.is_some())
            .finish()
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps: qps.max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                updated: Instant::now(),
            }),
            gate: None,
            waits: None,
        }
    }

    /// Records each write's wait in `waits`: [`Self::acquire`]'s under `lane`,
    /// [`Self::acquire_spare`]'s under `status`.
    pub fn observed(mut self, waits: Family<LaneLabels, Histogram>, lane: &'static str) -> Self {
        self.waits = Some((waits, lane));
        self
    }

    fn record(&self, lane: Option<&'static str>, waited: Duration) {
        if let Some((family, own)) = &self.waits {
            family
                .get_or_create(&LaneLabels {
                    lane: lane.unwrap_or(own),
                })
                .observe(waited.as_secs_f64());
        }
    }

    /// Every `acquire` checks `gate` after its wait and refuses the write if it says no.
    pub fn gated(mut self, gate: WriteGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Waits until a request may go out.
    ///
    /// The token is reserved at once (the bucket may go negative) and the caller sleeps until
    /// its turn, as client-go's limiter does: with many writers waiting, each is woken once,
    /// in arrival order. Polling instead (sleep, retry, lose the race, sleep again) wakes every
    /// waiter at every refill, which with hundreds of binds queued costs more CPU than the
    /// binds, and lets latecomers overtake so the slowest bind waits longest.
    ///
    /// Then the gate, if any, is asked: a write whose leadership lapsed during the wait is
    /// refused rather than sent.
    pub async fn acquire(&self) -> Result<(), NotLeader> {
        let wait = self.reserve(Instant::now());
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        self.record(None, wait.unwrap_or_default());
        match &self.gate {
            Some(may_write) if !may_write() => Err(NotLeader),
            _ => Ok(()),
        }
    }

    /// Like [`Self::acquire`], but only from a token already there: never reserves ahead,
    /// so every write waiting in [`Self::acquire`] (binds, evictions: they hold a reservation
    /// the bucket is paying off) goes first. For the status lane, whose writes can wait.
    pub async fn acquire_spare(&self) -> Result<(), NotLeader> {
        let start = Instant::now();
        while let Some(wait) = self.take_spare(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        self.record(Some("status"), Instant::now() - start);
        match &self.gate {
            Some(may_write) if !may_write() => Err(NotLeader),
            _ => Ok(()),
        }
    }

    /// Takes a whole token if there is one (`None`), else says how long until there may be.
    fn take_spare(&self, now: Instant) -> Option<Duration> {
        let mut b = self.refilled(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - b.tokens) / self.qps))
        }
    }

    /// The bucket, refilled for the time since its last use.
    fn refilled(&self, now: Instant) -> std::sync::MutexGuard<'_, Bucket> {
        // A poisoned lock only means another task panicked mid-update; the bucket's numbers
        // are still usable.
        let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.qps).min(self.burst);
        b.updated = now;
        b
    }

    /// Takes a token, possibly ahead of the refill; returns how long until it is due.
    fn reserve(&self, now: Instant) -> Option<Duration> {
        let mut b = self.refilled(now);
        b.tokens -= 1.0;
        (b.tokens < 0.0).then(|| Duration::from_secs_f64(-b.tokens / self.qps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_sustained_rate() {
        let rl = RateLimiter::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            rl.acquire().await.unwrap();
        }
        assert_eq!(Instant::now(), start, "the burst goes out at once");
        for _ in 0..10 {
            rl.acquire().await.unwrap();
        }
        let took = Instant::now() - start;
        assert!(
            took >= Duration::from_millis(990) && took <= Duration::from_millis(1_010),
            "10 more at 10 qps take about 1 s, took {took:?}"
        );
    }

    /// Writers arriving one after another (each takes its turn before the next arrives;
    /// `true`: a status write), and when each went out, in the order they went.
    async fn goes_out(rl: &Arc<RateLimiter>, writers: &[(i32, bool)]) -> Vec<(i32, Duration)> {
        let start = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = vec![];
        for &(i, spare) in writers {
            let (rl, order) = (rl.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                if spare {
                    rl.acquire_spare().await.unwrap();
                } else {
                    rl.acquire().await.unwrap();
                }
                order.lock().unwrap().push((i, Instant::now() - start));
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        order.lock().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_go_out_in_arrival_order_at_the_rate() {
        let rl = Arc::new(RateLimiter::new(10.0, 1));
        let order = goes_out(
            &rl,
            &[(0, false), (1, false), (2, false), (3, false), (4, false)],
        )
        .await;
        let ids: Vec<i32> = order.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
        for (i, at) in &order {
            let due = Duration::from_millis(100 * u64::try_from(*i).unwrap());
            assert!(
                *at >= due && *at <= due + Duration::from_millis(5),
                "waiter {i} went at {at:?}, due {due:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn spare_tokens_go_to_status_writes_only_after_every_reserved_write() {
        let rl = Arc::new(RateLimiter::new(10.0, 1));
        rl.acquire().await.unwrap();
        // A status write waits first; three binds arrive after it.
        let order = goes_out(&rl, &[(0, true), (1, false), (2, false), (3, false)]).await;
        let ids: Vec<i32> = order.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, vec![1, 2, 3, 0], "binds overtake the status write");
        let (_, status_at) = order[3];
        assert!(
            status_at >= Duration::from_millis(400) && status_at <= Duration::from_millis(420),
            "the status write takes the first token nobody reserved: {status_at:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_refills_only_up_to_the_burst() {
        let rl = RateLimiter::new(10.0, 3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..4 {
            rl.acquire().await.unwrap();
        }
        let took = Instant::now() - start;
        assert!(
            took >= Duration::from_millis(95) && took <= Duration::from_millis(105),
            "3 at once, the 4th after 100 ms; took {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_whose_lease_lapsed_during_its_wait_is_refused() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let leading = Arc::new(AtomicBool::new(true));
        let gate = leading.clone();
        let rl =
            Arc::new(RateLimiter::new(1.0, 1).gated(Arc::new(move || gate.load(Ordering::SeqCst))));
        rl.acquire().await.unwrap();
        // The next token is due in 1 s; leadership is lost while the write waits for it.
        let waiting = tokio::spawn({
            let rl = rl.clone();
            async move { rl.acquire().await }
        });
        tokio::task::yield_now().await;
        leading.store(false, Ordering::SeqCst);
        assert_eq!(waiting.await.unwrap(), Err(NotLeader));
    }
}
