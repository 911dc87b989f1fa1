//! Sampling the scenario's duration distributions.

use crate::clock::secs;
use crate::scenario::DurationDist;
use hubpack_core::model::Millis;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};

/// A log-normal draw with the given median (σ = 0: always the median), in ms.
pub fn sample(d: &DurationDist, rng: &mut impl Rng) -> Millis {
    if d.sigma <= 0.0 || d.median_s <= 0.0 {
        return secs(d.median_s.max(0.0));
    }
    match LogNormal::new(d.median_s.ln(), d.sigma) {
        Ok(ln) => secs(ln.sample(rng)),
        Err(_) => secs(d.median_s),
    }
}

/// The mean of the log-normal, in seconds: median · exp(σ²/2).
pub fn mean_s(d: &DurationDist) -> f64 {
    d.median_s * (d.sigma * d.sigma / 2.0).exp()
}
