//! The parts of the world around the scheduler: node pools, the cluster autoscaler, the hub
//! (spawner + culler), user arrivals, the placeholder Deployment/controller and the image
//! pre-puller. Each file extends the engine with the handlers of its own events.

pub mod arrivals;
pub mod autoscaler;
pub mod dist;
pub mod hub;
pub mod placeholders;
pub mod pool;
pub mod prepull;
