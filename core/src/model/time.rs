//! Time as the core sees it: milliseconds on a clock the caller owns (wall clock in the live
//! binaries, simulated time in hubpack-sim). The core never reads a clock itself.

/// Milliseconds since an arbitrary epoch chosen by the caller.
pub type Millis = i64;
