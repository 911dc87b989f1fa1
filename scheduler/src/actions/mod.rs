//! The scheduler's writes to the API server, one file per kind of write. Each function does
//! one request (or a bounded retry of one), paced by the shared [`RateLimiter`], and is
//! tested against a mock API server for the exact request it sends. Binds, evictions and
//! volume steps reserve their turn in the limiter at once; the writes that can wait go
//! through the [`status_lane`], one per pod, behind them.

pub mod bind;
pub mod condition;
pub mod events;
pub mod evict;
pub mod nominate;
pub mod rate_limit;
pub mod status_lane;
pub mod volumes;

pub use rate_limit::RateLimiter;
