//! cluster-autoscaler as it behaves (reference/sched.md §3), one node group per pool:
//! - every scan: scale up for Unschedulable pods at or above the expendable cutoff (not
//!   nominated; the sim binds a preemptor as soon as its victims are gone, in the same
//!   instant, so no pod is left nominated), first-fit-decreasing them onto existing and upcoming (booting) nodes, then
//!   onto fresh template nodes, up to the pool's max;
//! - scale down a node when its requested share (max of cpu and memory, DaemonSets and
//!   placeholders included) is under the threshold, it holds no user pod (bare user pods
//!   cannot be moved) and its placeholders fit elsewhere, for the unneeded time; never within
//!   the cluster-wide delay after any scale-up; never below the pool's minimum; empty nodes
//!   in bulk, at most one non-empty node per scan.

use crate::clock::secs;
use crate::cluster::{NodeId, NodePhase, PodKind};
use crate::engine::Sim;
use crate::events::Event;
use hubpack_core::model::{Millis, Resources};

#[derive(Debug, Default, Clone)]
pub struct AutoscalerState {
    pub last_scale_up: Option<Millis>,
    pub scale_ups: usize,
    pub scale_downs: usize,
    /// Most nodes alive (booting or Ready) at once.
    pub peak_nodes: usize,
}

impl Sim<'_> {
    pub(crate) fn on_autoscaler_scan(&mut self, now: Millis) {
        self.scale_up(now);
        if self.sc.autoscaler.scale_down_enabled {
            self.scale_down(now);
        }
        self.agenda.at(
            now + secs(self.sc.autoscaler.scan_interval_s).max(1),
            Event::AutoscalerScan,
        );
    }

    fn scale_up(&mut self, now: Millis) {
        let cutoff = self.sc.autoscaler.expendable_pods_priority_cutoff;
        for pool in 0..self.sc.pools.len() {
            let mut pods: Vec<Resources> = self
                .cluster
                .pending()
                .map(|p| &self.cluster.pods[p])
                .filter(|p| {
                    p.pool == pool
                        && p.unschedulable
                        && p.priority() >= cutoff
                        && p.core.nominated_node.is_none()
                })
                .map(|p| p.requests().clone())
                .collect();
            if pods.is_empty() {
                continue;
            }
            let spec = &self.sc.pools[pool];
            let template =
                &spec.allocatable.to_resources() - &spec.daemonset_overhead.to_resources();
            // Largest first (by the larger of the cpu and memory shares of a fresh node).
            let share = |r: &Resources| {
                let c = r.cpu_milli as f64 / template.cpu_milli.max(1) as f64;
                let m = r.memory as f64 / template.memory.max(1) as f64;
                c.max(m)
            };
            pods.sort_by(|a, b| share(b).total_cmp(&share(a)));
            let mut bins: Vec<Resources> = self
                .cluster
                .nodes
                .iter()
                .filter(|n| n.pool == pool && n.phase != NodePhase::Deleted)
                .map(|n| match n.phase {
                    NodePhase::Booting => template.clone(),
                    _ => n.free(),
                })
                .collect();
            let mut new_nodes = 0usize;
            for req in &pods {
                if let Some(bin) = bins.iter_mut().find(|b| req.fits_in(b)) {
                    *bin -= req;
                } else if req.fits_in(&template) {
                    let mut bin = template.clone();
                    bin -= req;
                    bins.push(bin);
                    new_nodes += 1;
                }
            }
            let room = spec.max_nodes.saturating_sub(self.cluster.live_nodes[pool]);
            let add = new_nodes.min(room);
            for _ in 0..add {
                self.boot_node(pool, now);
            }
            if add > 0 {
                self.autoscaler.last_scale_up = Some(now);
                self.autoscaler.scale_ups += add;
            }
        }
    }

    fn scale_down(&mut self, now: Millis) {
        let a = &self.sc.autoscaler;
        let threshold = a.scale_down_utilization_threshold;
        let unneeded_for = secs(a.scale_down_unneeded_min * 60.0);
        let in_cooldown = self
            .autoscaler
            .last_scale_up
            .is_some_and(|t| now - t < secs(a.scale_down_delay_after_add_min * 60.0));
        let bulk = a.max_empty_bulk_delete;
        // Capacity elsewhere that moved placeholders may use, shrinking as we plan moves.
        let mut free: Vec<Resources> = self.cluster.nodes.iter().map(|n| n.free()).collect();
        let mut removing: Vec<NodeId> = Vec::new();
        let mut per_pool_live = self.cluster.live_nodes.clone();
        let (mut empty_deleted, mut busy_deleted) = (0usize, 0usize);
        for id in 0..self.cluster.nodes.len() {
            let n = &self.cluster.nodes[id];
            if n.phase != NodePhase::Ready {
                continue;
            }
            let util = {
                let c = n.requested.cpu_milli as f64 / n.allocatable.cpu_milli.max(1) as f64;
                let m = n.requested.memory as f64 / n.allocatable.memory.max(1) as f64;
                c.max(m)
            };
            let movable = n.users == 0 && util < threshold;
            // Empty nodes trivially qualify; only placeholders need a dry-run move.
            let fits_elsewhere = movable
                && (n.placeholders == 0 || self.plan_moves(id, &mut free.clone(), &removing));
            if !fits_elsewhere {
                self.cluster.nodes[id].unneeded_since = None;
                continue;
            }
            let since = *self.cluster.nodes[id].unneeded_since.get_or_insert(now);
            let n = &self.cluster.nodes[id];
            let empty = n.placeholders == 0;
            let due = now - since >= unneeded_for;
            let under_limit = if empty {
                empty_deleted < bulk
            } else {
                busy_deleted < 1
            };
            if !in_cooldown
                && due
                && under_limit
                && per_pool_live[n.pool] > self.sc.pools[n.pool].min_nodes
            {
                self.plan_moves(id, &mut free, &removing);
                per_pool_live[n.pool] -= 1;
                removing.push(id);
                if empty {
                    empty_deleted += 1;
                } else {
                    busy_deleted += 1;
                }
            }
        }
        for id in removing {
            let evicted = self.cluster.delete_node(id, now);
            self.autoscaler.scale_downs += 1;
            for pod in evicted {
                if self.cluster.pods[pod].kind == PodKind::Placeholder {
                    self.evict_placeholder(pod, now);
                }
            }
        }
        self.request_schedule(now);
    }

    /// Whether every placeholder on `node` fits on another Ready node (first fit), taking
    /// the room from `free` as it goes.
    fn plan_moves(&self, node: NodeId, free: &mut [Resources], removing: &[NodeId]) -> bool {
        let n = &self.cluster.nodes[node];
        for &pod in &n.pods {
            let req = self.cluster.pods[pod].requests();
            let target = self.cluster.ready_nodes().find(|(id, m)| {
                *id != node && m.pool == n.pool && !removing.contains(id) && req.fits_in(&free[*id])
            });
            match target {
                Some((id, _)) => free[id] -= req,
                None => return false,
            }
        }
        true
    }
}
