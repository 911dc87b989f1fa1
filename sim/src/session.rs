//! One user's visit as drawn before a run: the arrivals model makes them, the hub model
//! plays them, the outcome reports against them.

use hubpack_core::model::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub arrival: Millis,
    /// Active use after the server is ready; the culler removes it `cull_timeout` later.
    pub active: Millis,
    pub profile: usize,
}
