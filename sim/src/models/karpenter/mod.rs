//! Karpenter v1.14 as it behaves (sigs.k8s.io/karpenter, read at v1.14.1; docs/design.md,
//! "Karpenter"), one NodePool per pool launching the pool's one node type:
//! - provisioning: a pod turning Unschedulable opens a batch or extends it; the batch closes
//!   `batch_idle_s` after its last such pod or `batch_max_s` after its first (the
//!   provisioner's batcher). Then every provisionable pod (Unschedulable, not nominated,
//!   whatever its priority: `IsProvisionable` has no expendable cutoff, so a −10 placeholder
//!   gets a node) is placed, largest first, on the Ready nodes' free room and the launched
//!   nodes' (in flight); the rest are packed first-fit decreasing onto new nodes, launched at
//!   once, up to the pool's max (the NodePool's `limits`).
//! - the initial nodes (`initial_nodes`) are not Karpenter's (a node group of their own, as
//!   in the e2e harness): never disrupted. Karpenter's own nodes have no minimum.
//! - disruption, every `disruption_poll_s` (`pollingPeriod`, 10 s) and at once after an action: candidates are
//!   Ready nodes no pod has come to or left for `consolidate_after_s`, with no
//!   `karpenter.sh/do-not-disrupt` pod (users when the hub sets it; hubpack's placeholders
//!   always carry it; z2jh's never), not already being disrupted, and at most the pool's
//!   budget (`budget_nodes`, a share rounding up; drained nodes go at once, so none is
//!   mid-disruption to count against it). First
//!   emptiness (every policy): the candidates with no pod. Then, under
//!   WhenEmptyOrUnderutilized only, consolidation: multi-node first, the longest run of two
//!   or more candidates, cheapest to disrupt first (fewest pods), whose pods (after the
//!   pending ones) fit on the other nodes, found by bisection as `firstNConsolidationOption`
//!   does; then single-node, the first candidate whose pods fit on the others. Never a
//!   replacement: Karpenter replaces only with a cheaper node (`computeConsolidation` prices
//!   one candidate's replacement below it; `filterOutSameInstanceType` drops a replacement
//!   of several by one of their own type), and a pool here has one node type. A command
//!   waits `commandValidationDelay` (15 s, the loop waits with it) and is dropped if no
//!   longer valid. Executing taints the candidates and drains them. A drained placeholder
//!   is replaced by its controller; a drained user's server is lost (counted).

use crate::clock::secs;
use crate::cluster_state::{NodeId, NodePhase, PodKind};
use crate::events::Event;
use crate::models::Sim;
use crate::models::autoscaler::{estimate_new_nodes, fresh_node, share};
use crate::scenario::{AutoscalerKind, ConsolidationPolicy, SchedulerKind};
use hubpack_core::model::{Millis, Resources};

/// Multi-node consolidation looks at this many candidates at most
/// (`MultiNodeConsolidation`'s `maxParallel` of 100).
const MAX_CONSOLIDATED: usize = 100;

#[derive(Debug, Default, Clone)]
pub struct KarpenterState {
    /// The open provisioning batch: (its first pod, its latest pod).
    batch: Option<(Millis, Millis)>,
    /// A batch-end check is on the agenda.
    batch_check_queued: bool,
    /// The command waiting out its validation delay.
    validating: Option<Command>,
    /// Nodes the provisioner expects a pending pod on, until when.
    nominated_until: std::collections::BTreeMap<NodeId, Millis>,
    /// Running servers lost to consolidation (users without `do-not-disrupt`).
    pub users_evicted: usize,
    /// Nodes removed by emptiness / by consolidation.
    pub empty_removed: usize,
    pub consolidated: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    pool: usize,
    nodes: Vec<NodeId>,
    empty: bool,
}

impl Sim<'_> {
    fn on_karpenter(&self) -> bool {
        self.sc.autoscaler.kind == AutoscalerKind::Karpenter
    }

    /// A pod turned Unschedulable: the provisioner's batch opens or is extended.
    pub(crate) fn karpenter_saw_unschedulable(&mut self, now: Millis) {
        if !self.on_karpenter() {
            return;
        }
        let first = self.karpenter.batch.map_or(now, |(first, _)| first);
        self.karpenter.batch = Some((first, now));
        if !self.karpenter.batch_check_queued {
            self.karpenter.batch_check_queued = true;
            let end = self.batch_end();
            self.agenda.at(end, Event::KarpenterBatch);
        }
    }

    fn batch_end(&self) -> Millis {
        let k = &self.sc.autoscaler.karpenter;
        let (first, last) = self.karpenter.batch.unwrap_or((0, 0));
        (last + secs(k.batch_idle_s)).min(first + secs(k.batch_max_s))
    }

    pub(crate) fn on_karpenter_batch(&mut self, now: Millis) {
        self.karpenter.batch_check_queued = false;
        if self.karpenter.batch.is_none() {
            return;
        }
        let end = self.batch_end();
        if now < end {
            self.karpenter.batch_check_queued = true;
            self.agenda.at(end, Event::KarpenterBatch);
            return;
        }
        self.karpenter.batch = None;
        for pool in 0..self.sc.pools.len() {
            self.karpenter_provision(pool, now);
        }
    }

    /// The provisionable pods of `pool`, largest first.
    fn provisionable(&self, pool: usize) -> Vec<Resources> {
        let template = fresh_node(&self.sc.pools[pool]);
        let mut pods: Vec<Resources> = self
            .cluster
            .pending()
            .map(|p| &self.cluster.pods[p])
            .filter(|p| p.pool == pool && p.unschedulable && p.core.nominated_node.is_none())
            .map(|p| p.requests().clone())
            .collect();
        pods.sort_by(|a, b| share(b, &template).total_cmp(&share(a, &template)));
        pods
    }

    /// Free room per node Karpenter may place pods on: Ready (untainted) nodes' free room,
    /// and in-flight nodes' whole room.
    fn room(&self, pool: usize, except: &[NodeId]) -> Vec<(NodeId, Resources)> {
        let template = fresh_node(&self.sc.pools[pool]);
        self.cluster
            .nodes
            .iter()
            .enumerate()
            .filter(|(id, n)| n.pool == pool && !n.cordoned && !except.contains(id))
            .filter_map(|(id, n)| match n.phase {
                NodePhase::Ready => Some((id, n.free())),
                NodePhase::Booting => Some((id, template.clone())),
                NodePhase::Deleted => None,
            })
            .collect()
    }

    fn karpenter_provision(&mut self, pool: usize, now: Millis) {
        let pods = self.provisionable(pool);
        if pods.is_empty() {
            return;
        }
        let mut room = self.room(pool, &[]);
        let (left, used) = place_first_fit(&pods, &mut room);
        // Nodes expected to receive a pending pod are not disrupted for a while.
        // `nominationWindow`: max(2 × the batch's max, 10 s).
        let k = &self.sc.autoscaler.karpenter;
        let until = now + secs(k.nomination_min_s).max(2 * secs(k.batch_max_s));
        for id in used {
            self.karpenter.nominated_until.insert(id, until);
        }
        let new_nodes = estimate_new_nodes(&left, &fresh_node(&self.sc.pools[pool]));
        self.launch(pool, new_nodes, now);
    }

    /// One pass of the disruption controller; it plans its own next pass.
    pub(crate) fn on_karpenter_disruption(&mut self, now: Millis) {
        let acted = match self.karpenter.validating.take() {
            Some(cmd) => {
                let valid = self.still_valid(&cmd, now);
                if let Some(cmd) = valid {
                    self.execute(cmd, now);
                }
                true
            }
            None => match self.next_command(now) {
                Some(cmd) => {
                    // `commandValidationDelay`: checked again, and carried out if still valid.
                    self.karpenter.validating = Some(cmd);
                    let delay = secs(self.sc.autoscaler.karpenter.validation_delay_s);
                    self.agenda.at(now + delay, Event::KarpenterDisruption);
                    return;
                }
                None => false,
            },
        };
        // After an action the controller requeues at once (a millisecond here, so the
        // agenda moves on); otherwise it polls.
        let next = if acted {
            1
        } else {
            secs(self.sc.autoscaler.karpenter.disruption_poll_s).max(1)
        };
        self.agenda.at(now + next, Event::KarpenterDisruption);
    }

    /// Whether a pod on the node carries `karpenter.sh/do-not-disrupt`.
    fn do_not_disrupt(&self, node: NodeId) -> bool {
        let users_protected = self.sc.autoscaler.karpenter.user_pods_do_not_disrupt;
        let placeholders_protected = self.policy.scheduler == SchedulerKind::Hubpack;
        self.cluster.nodes[node]
            .pods
            .iter()
            .any(|&p| match self.cluster.pods[p].kind {
                PodKind::User(_) => users_protected,
                PodKind::Placeholder => placeholders_protected,
            })
    }

    fn in_flight(&self, node: NodeId) -> bool {
        self.karpenter
            .validating
            .as_ref()
            .is_some_and(|c| c.nodes.contains(&node))
    }

    /// The pool's candidates, cheapest to disrupt first, and how many may go now.
    fn candidates(&self, pool: usize, now: Millis) -> (Vec<NodeId>, usize) {
        let after = secs(self.sc.autoscaler.karpenter.consolidate_after_s);
        let mut c: Vec<NodeId> = self
            .cluster
            .ready_nodes()
            .filter(|(id, n)| {
                n.pool == pool
                    && !n.initial
                    && now - n.last_pod_event >= after
                    && self
                        .karpenter
                        .nominated_until
                        .get(id)
                        .is_none_or(|&t| t <= now)
                    && !self.do_not_disrupt(*id)
                    && !self.in_flight(*id)
            })
            .map(|(id, _)| id)
            .collect();
        c.sort_by_key(|&id| (self.cluster.nodes[id].pods.len(), id));
        // Drained nodes go at once here, so no node is mid-disruption to count against it.
        let allowed = self
            .sc
            .autoscaler
            .karpenter
            .budget_nodes
            .allowed(self.cluster.live_nodes[pool]);
        (c, allowed)
    }

    fn next_command(&self, now: Millis) -> Option<Command> {
        let pools: Vec<(Vec<NodeId>, usize)> = (0..self.sc.pools.len())
            .map(|pool| self.candidates(pool, now))
            .collect();
        let command = |pool: usize, nodes: Vec<NodeId>, empty: bool| Command { pool, nodes, empty };
        for (pool, (cands, allowed)) in pools.iter().enumerate() {
            let empty: Vec<NodeId> = cands
                .iter()
                .copied()
                .filter(|&id| self.cluster.nodes[id].pods.is_empty())
                .take(*allowed)
                .collect();
            if !empty.is_empty() {
                return Some(command(pool, empty, true));
            }
        }
        if self.sc.autoscaler.karpenter.consolidation_policy
            != ConsolidationPolicy::WhenEmptyOrUnderutilized
        {
            return None;
        }
        let pending: Vec<Vec<Resources>> = (0..self.sc.pools.len())
            .map(|pool| self.provisionable(pool))
            .collect();
        // Multi-node: bisect for the longest run of ≥ 2 that fits elsewhere.
        for (pool, (cands, allowed)) in pools.iter().enumerate() {
            let cands = &cands[..cands.len().min(*allowed)];
            if cands.len() < 2 {
                continue;
            }
            let (mut lo, mut hi) = (1, (cands.len() - 1).min(MAX_CONSOLIDATED));
            let mut found = None;
            while lo <= hi {
                let mid = (lo + hi) / 2;
                if self.fits_elsewhere(pool, &cands[..=mid], &pending[pool]) {
                    found = Some(mid);
                    lo = mid + 1;
                } else {
                    hi = mid - 1;
                }
            }
            if let Some(last) = found {
                return Some(command(pool, cands[..=last].to_vec(), false));
            }
        }
        // Single-node: the first candidate that fits elsewhere.
        for (pool, (cands, allowed)) in pools.iter().enumerate() {
            if *allowed == 0 {
                continue;
            }
            if let Some(&id) = cands
                .iter()
                .find(|&&id| self.fits_elsewhere(pool, &[id], &pending[pool]))
            {
                return Some(command(pool, vec![id], false));
            }
        }
        None
    }

    /// Whether removing `nodes` works: the pool's `pending` pods, then the nodes' own pods,
    /// all fit on the pool's other nodes.
    fn fits_elsewhere(&self, pool: usize, nodes: &[NodeId], pending: &[Resources]) -> bool {
        let mut room = self.room(pool, nodes);
        if !place_first_fit(pending, &mut room).0.is_empty() {
            return false;
        }
        let template = fresh_node(&self.sc.pools[pool]);
        let mut moved: Vec<Resources> = nodes
            .iter()
            .flat_map(|&id| self.cluster.nodes[id].pods.iter())
            .map(|&p| self.cluster.pods[p].requests().clone())
            .collect();
        moved.sort_by(|a, b| share(b, &template).total_cmp(&share(a, &template)));
        place_first_fit(&moved, &mut room).0.is_empty()
    }

    /// The command as it stands after the validation delay, or `None` if it no longer
    /// holds: an empty node that got a pod, a node gone or protected since.
    fn still_valid(&self, cmd: &Command, now: Millis) -> Option<Command> {
        let (cands, _) = self.candidates(cmd.pool, now);
        let in_cands = |id: &NodeId| cands.contains(id);
        if cmd.empty {
            let nodes: Vec<NodeId> = cmd
                .nodes
                .iter()
                .copied()
                .filter(|id| in_cands(id) && self.cluster.nodes[*id].pods.is_empty())
                .collect();
            return (!nodes.is_empty()).then(|| Command {
                nodes,
                ..cmd.clone()
            });
        }
        if !cmd.nodes.iter().all(in_cands) {
            return None;
        }
        let pending = self.provisionable(cmd.pool);
        self.fits_elsewhere(cmd.pool, &cmd.nodes, &pending)
            .then(|| cmd.clone())
    }

    fn execute(&mut self, cmd: Command, now: Millis) {
        for &id in &cmd.nodes {
            self.cluster.cordon(id, now);
        }
        self.drain(&cmd, now);
    }

    /// Evicts the nodes' pods and deletes the nodes.
    fn drain(&mut self, cmd: &Command, now: Millis) {
        for &id in &cmd.nodes {
            if self.cluster.nodes[id].phase == NodePhase::Deleted {
                continue;
            }
            let evicted = self.cluster.delete_node(id, now);
            self.autoscaler.scale_downs += 1;
            if cmd.empty {
                self.karpenter.empty_removed += 1;
            } else {
                self.karpenter.consolidated += 1;
            }
            for pod in evicted {
                match self.cluster.pods[pod].kind {
                    PodKind::Placeholder => self.evict_placeholder(pod, now),
                    PodKind::User(u) => {
                        if let Some(user) = self.users.get_mut(u) {
                            user.culled = Some(now);
                        }
                        self.karpenter.users_evicted += 1;
                        self.cluster.delete_pod(pod, now);
                    }
                }
            }
        }
        self.request_schedule(now);
    }
}

/// Each pod on the first room it fits; returns the pods that fit nowhere and the nodes
/// that received one.
fn place_first_fit(
    pods: &[Resources],
    room: &mut [(NodeId, Resources)],
) -> (Vec<Resources>, Vec<NodeId>) {
    let mut left = Vec::new();
    let mut used = Vec::new();
    for req in pods {
        match room.iter_mut().find(|(_, r)| req.fits_in(r)) {
            Some((id, r)) => {
                *r -= req;
                used.push(*id);
            }
            None => left.push(req.clone()),
        }
    }
    (left, used)
}

#[cfg(test)]
mod tests;
