//! JupyterHub + KubeSpawner: a concurrent spawn limit (users beyond it get a 429 with a
//! Retry-After drawn from `spawn_throttle_retry_range` and click again then, or give up),
//! the spawn overhead before the pod exists, a start timeout that fails the spawn (the user tries
//! again, up to `max_attempts`), container start once the image is present, and the idle
//! culler, which checks every `cull_interval` and removes servers idle for `cull_timeout`.

use crate::clock::secs;
use crate::cluster_state::{NodeId, PodId, PodKind};
use crate::events::Event;
use crate::models::{Sim, dist};
use hubpack_core::headroom::seats_in;
use hubpack_core::model::{Millis, Pod, PodRole};
use rand::Rng;

impl Sim<'_> {
    pub(crate) fn on_arrival(&mut self, u: usize, now: Millis) {
        self.users[u].warm_seat_at_arrival =
            self.warm_seats(self.users[u].session.profile, now) > self.users_unbound;
        self.users_unbound += 1;
        self.try_spawn(u, now);
    }

    pub(crate) fn try_spawn(&mut self, u: usize, now: Millis) {
        let hub = &self.sc.hub;
        if self.active_spawns >= hub.concurrent_spawn_limit {
            // Hub-queue HOL: held by the hub while every user not yet placed (this one
            // included) had a warm seat.
            if self.warm_seats(self.users[u].session.profile, now) >= self.users_unbound {
                self.users[u].hub_queue_blocked = true;
            }
            self.users[u].spawn_limited = true;
            if self.rng.random::<f64>() < hub.throttle_give_up_probability {
                self.users[u].gave_up = Some(now);
                self.users_unbound -= 1;
                return;
            }
            let [lo, hi] = hub.spawn_throttle_retry_range_s;
            let retry = lo + self.rng.random::<f64>() * (hi - lo).max(0.0);
            self.agenda.at(now + secs(retry), Event::SpawnRetry(u));
            return;
        }
        self.active_spawns += 1;
        let user = &mut self.users[u];
        user.attempts += 1;
        let attempt = user.attempts;
        self.agenda.at(
            now + secs(hub.spawn_overhead_s),
            Event::PodCreate { user: u, attempt },
        );
        self.agenda.at(
            now + secs(hub.start_timeout_s),
            Event::StartTimeout { user: u, attempt },
        );
    }

    pub(crate) fn on_pod_create(&mut self, u: usize, attempt: u32, now: Millis) {
        let user = &self.users[u];
        if user.attempts != attempt || user.ready.is_some() || user.failed_attempt == Some(attempt)
        {
            return;
        }
        let profile = &self.sc.profiles[user.session.profile];
        let pool = self.sc.pool_index(&profile.pool).unwrap_or(0);
        let image = self.sc.image_index(&profile.image);
        let core = Pod::simple(
            &format!("hub/jupyter-u{u}-{attempt}"),
            PodRole::User,
            0,
            profile.request.to_resources(),
            now,
        );
        let pod = self
            .cluster
            .create_pod(PodKind::User(u), pool, image, core, now);
        self.users[u].pod = Some(pod);
        // The controller counts user pods, not clicks: after the spawn overhead and limit.
        if self.placeholders.predictive.is_some() {
            self.placeholders.new_user_pods.push(now);
        }
        self.request_schedule(now);
    }

    pub(crate) fn on_user_bound(&mut self, u: usize, pod: PodId, node: NodeId, now: Millis) {
        // Placement HOL, judged before the pull starts: a cold node for this user's image
        // while a warm seat (free or held by a placeholder) existed at their arrival and
        // still exists now.
        let image = self.cluster.pods[pod].image;
        let cold = image.is_some_and(|img| !self.is_warm(node, img, now));
        let placement_hol =
            cold && self.users[u].warm_seat_at_arrival && self.warm_seat_for(pod, now).is_some();
        let image_at = match image {
            Some(img) => self.ensure_image(node, img, now),
            None => now,
        };
        self.users[u].placement_hol |= placement_hol;
        let user = &mut self.users[u];
        if user.bound_at.is_none() {
            self.users_unbound -= 1;
        }
        user.node = Some(node);
        user.bound_at = Some(now);
        user.pulled = image_at > now;
        user.node_was_new = self.cluster.nodes[node].created > user.session.arrival;
        user.node_ready_at = self.cluster.nodes[node].ready_at;
        let ready = image_at.max(now) + dist::sample(&self.sc.hub.container_start(), &mut self.rng);
        self.agenda.at(ready, Event::PodReady(pod));
    }

    pub(crate) fn on_pod_ready(&mut self, pod: PodId, now: Millis) {
        let p = &self.cluster.pods[pod];
        let PodKind::User(u) = p.kind else { return };
        if !p.alive || self.users[u].pod != Some(pod) || self.users[u].ready.is_some() {
            return;
        }
        self.users[u].ready = Some(now);
        self.active_spawns -= 1;
        // The culler runs every interval; the server goes at the first run after it has
        // been idle for the timeout.
        let hub = &self.sc.hub;
        let idle_from = now + self.users[u].session.active;
        let due = idle_from + secs(hub.cull_timeout_min * 60.0);
        let interval = secs(hub.cull_interval_min * 60.0).max(1);
        let at =
            due.div_euclid(interval) * interval + if due % interval == 0 { 0 } else { interval };
        self.agenda.at(at, Event::Cull(pod));
    }

    pub(crate) fn on_start_timeout(&mut self, u: usize, attempt: u32, now: Millis) {
        let user = &mut self.users[u];
        if user.attempts != attempt || user.ready.is_some() {
            return;
        }
        user.failed_attempt = Some(attempt);
        user.failed_spawns += 1;
        self.active_spawns -= 1;
        if let Some(pod) = user.pod.take() {
            self.cluster.delete_pod(pod, now);
        }
        if user.attempts < self.sc.hub.max_attempts {
            self.agenda
                .at(now + secs(self.sc.hub.spawn_retry_s), Event::SpawnRetry(u));
        } else {
            user.gave_up = Some(now);
            if user.bound_at.is_none() {
                self.users_unbound -= 1;
            }
        }
        self.request_schedule(now);
    }

    pub(crate) fn on_cull(&mut self, pod: PodId, now: Millis) {
        if let PodKind::User(u) = self.cluster.pods[pod].kind
            && self.cluster.pods[pod].alive
        {
            self.users[u].culled = Some(now);
        }
        self.cluster.delete_pod(pod, now);
        self.request_schedule(now);
    }

    /// Warm seats this user's profile fits right now: on Ready nodes of its pool with the
    /// image present, counting room held by placeholders as a seat. Independent of any
    /// scheduling policy; with the users who arrived earlier and are not yet placed, it
    /// defines head-of-line blocking (a seat existed that nobody ahead would take).
    pub(crate) fn warm_seats(&self, profile: usize, now: Millis) -> usize {
        let pr = &self.sc.profiles[profile];
        let (Some(pool), Some(image)) =
            (self.sc.pool_index(&pr.pool), self.sc.image_index(&pr.image))
        else {
            return 0;
        };
        let req = pr.request.to_resources().with_pods(1);
        let preemptable = self.placeholders.priority < 0;
        self.cluster
            .ready_nodes()
            .filter(|&(id, n)| n.pool == pool && self.is_warm(id, image, now))
            .map(|(_, n)| {
                let room = if preemptable {
                    &n.free() + &n.held
                } else {
                    n.free()
                };
                usize::try_from(seats_in(&room, &req)).unwrap_or(0)
            })
            .sum()
    }

    /// Warm as hubpack-core defines it: Ready for the settle time and the image present.
    pub(crate) fn is_warm(&self, node: NodeId, image: usize, now: Millis) -> bool {
        let n = &self.cluster.nodes[node];
        n.phase == crate::cluster_state::NodePhase::Ready
            && now - n.ready_at >= self.warm_settle
            && n.has_image(image, now)
    }

    /// A warm node of the pod's pool where it fits in free room plus what lower-priority
    /// placeholders hold.
    pub(crate) fn warm_seat_for(&self, pod: PodId, now: Millis) -> Option<NodeId> {
        let p = &self.cluster.pods[pod];
        let image = p.image?;
        let preemptable = self.placeholders.priority < p.priority();
        self.cluster
            .ready_nodes()
            .filter(|&(id, n)| n.pool == p.pool && self.is_warm(id, image, now))
            .find(|(_, n)| {
                let room = if preemptable {
                    &n.free() + &n.held
                } else {
                    n.free()
                };
                p.requests().fits_in(&room)
            })
            .map(|(id, _)| id)
    }
}
