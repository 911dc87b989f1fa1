//! hubpack-scheduler: the Kubernetes adapter of hubpack-core's scheduling policy.
//! (Being built: see issue "hubpack-scheduler: the live scheduler for user pods".)
