//! hubpack-sim: a discrete-event simulator of a JupyterHub + cluster autoscaler.
//! (Being built: see issue "hubpack-sim: the autoscaling policy simulator and its reports".)
