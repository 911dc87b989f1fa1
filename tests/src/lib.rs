//! hubpack-e2e: a real local Kubernetes control plane for end-to-end tests.
//! (Being built: see issue "A real local Kubernetes control plane".)
