//! The lifecycle of a pod the scheduler acted for and now waits on, in one place: one state
//! type ([`InFlight`]) and its transitions ([`Flights`]). A pod enters when it is nominated
//! to a node whose placeholders it evicts ([`Flights::preempt`]) or assumed on a node
//! whose claims are being prepared ([`Flights::provision`]); it leaves ([`Flights::end`])
//! when it binds, gives up (timeout, nothing fits any more), or is gone. Binding itself is
//! the snapshot's `assume` until the watch confirms it.

use crate::actions::volumes::VolumeStep;
use hubpack_core::model::{Millis, PodKey};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A pod the scheduler already acted for and is waiting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InFlight {
    /// Nominated to `node`; bind once every victim's DELETE has been seen.
    Preempting {
        node: String,
        victims: BTreeSet<PodKey>,
        deadline: Millis,
    },
    /// Assumed on `node`; bind once the claim of every step is Bound. The static volumes
    /// of its steps are reserved for it: no other decision may take them meanwhile.
    Provisioning {
        node: String,
        steps: Vec<VolumeStep>,
        deadline: Millis,
        /// Claims whose write (selected-node, claimRef) the cache has shown: its removal
        /// from now on is a reset, not the cache lagging.
        writes_seen: BTreeSet<String>,
    },
}

impl InFlight {
    /// The claims a provisioning pod waits for.
    pub fn claims(&self) -> impl Iterator<Item = &str> {
        let steps = match self {
            InFlight::Provisioning { steps, .. } => steps.as_slice(),
            InFlight::Preempting { .. } => &[],
        };
        steps.iter().map(VolumeStep::claim)
    }

    /// The node the pod is nominated or assumed to.
    pub fn node(&self) -> &str {
        match self {
            InFlight::Preempting { node, .. } | InFlight::Provisioning { node, .. } => node,
        }
    }
}

/// Every pod in flight.
#[derive(Debug, Default)]
pub struct Flights {
    pods: HashMap<PodKey, InFlight>,
}

impl Flights {
    pub fn get(&self, key: &PodKey) -> Option<&InFlight> {
        self.pods.get(key)
    }

    /// The node the pod is nominated to while its victims go.
    pub fn nominated_node(&self, key: &PodKey) -> Option<&str> {
        match self.pods.get(key) {
            Some(InFlight::Preempting { node, .. }) => Some(node),
            _ => None,
        }
    }

    /// Nominated to `node`; waits for `victims` to be deleted until `deadline`.
    pub fn preempt(
        &mut self,
        key: PodKey,
        node: String,
        victims: BTreeSet<PodKey>,
        deadline: Millis,
    ) {
        self.pods.insert(
            key,
            InFlight::Preempting {
                node,
                victims,
                deadline,
            },
        );
    }

    /// Assumed on `node`; waits for the claims of `steps` to be Bound until `deadline`.
    pub fn provision(
        &mut self,
        key: PodKey,
        node: String,
        steps: Vec<VolumeStep>,
        deadline: Millis,
    ) {
        self.pods.insert(
            key,
            InFlight::Provisioning {
                node,
                steps,
                deadline,
                writes_seen: BTreeSet::new(),
            },
        );
    }

    /// The cache showed our write for these claims of the provisioning pod.
    pub fn writes_seen(&mut self, key: &PodKey, claims: impl IntoIterator<Item = String>) {
        if let Some(InFlight::Provisioning { writes_seen, .. }) = self.pods.get_mut(key) {
            writes_seen.extend(claims);
        }
    }

    /// No longer in flight (bound, given up, or gone); what it was.
    pub fn end(&mut self, key: &PodKey) -> Option<InFlight> {
        self.pods.remove(key)
    }

    /// Give up waiting at the next attempt (an eviction refused for good, or a test).
    pub fn expire(&mut self, key: &PodKey) {
        if let Some(
            InFlight::Preempting { deadline, .. } | InFlight::Provisioning { deadline, .. },
        ) = self.pods.get_mut(key)
        {
            *deadline = 0;
        }
    }

    /// A pod's DELETE was seen: the preemptors whose last victim it was, to schedule now.
    pub fn victim_deleted(&mut self, victim: &PodKey) -> Vec<PodKey> {
        let mut wake = Vec::new();
        for (preemptor, w) in self.pods.iter_mut() {
            if let InFlight::Preempting { victims, .. } = w
                && victims.remove(victim)
                && victims.is_empty()
            {
                wake.push(preemptor.clone());
            }
        }
        wake.sort();
        wake
    }

    /// Static volumes pre-bound (or about to be) for pods other than `except`: no other
    /// decision may take them.
    pub fn reserved_volumes(&self, except: &PodKey) -> HashSet<&str> {
        self.pods
            .iter()
            .filter(|(k, _)| *k != except)
            .flat_map(|(_, w)| match w {
                InFlight::Provisioning { steps, .. } => steps.as_slice(),
                InFlight::Preempting { .. } => &[],
            })
            .filter_map(|s| match s {
                VolumeStep::BindVolume { volume, .. } => Some(volume.as_str()),
                VolumeStep::SelectNode { .. } => None,
            })
            .collect()
    }

    /// Pods waiting on these claims whose claims are now all Bound.
    pub fn claims_bound(&mut self, namespace: &str, bound: &dyn Fn(&str) -> bool) -> Vec<PodKey> {
        let mut wake = Vec::new();
        for (key, w) in &self.pods {
            if matches!(w, InFlight::Provisioning { .. })
                && key.0.starts_with(&format!("{namespace}/"))
                && w.claims().all(bound)
            {
                wake.push(key.clone());
            }
        }
        wake.sort();
        wake
    }
}
