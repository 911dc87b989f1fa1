//! The reflector caches of every watched kind ([`Stores`], read by everyone) and their
//! writers (fed by `watch`), apart from both so neither depends on the other.

use hubpack_kube::convert::VolumeCatalog;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use std::sync::Arc;

/// Reflector caches of every watched kind.
#[derive(Clone)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub csinodes: Store<CSINode>,
    pub claims: Store<PersistentVolumeClaim>,
    pub volumes: Store<PersistentVolume>,
    pub classes: Store<StorageClass>,
}

impl VolumeCatalog for Stores {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.get(&ObjectRef::new(name).within(namespace))
    }
    fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.volumes.get(&ObjectRef::new(name))
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(&ObjectRef::new(name))
    }
    fn volumes(&self) -> Vec<Arc<PersistentVolume>> {
        self.volumes.state()
    }
}

/// Watched kinds; readiness waits for every one's first list.
pub const WATCHED_KINDS: usize = 6;

pub struct Writers {
    pub pods: Writer<Pod>,
    pub nodes: Writer<Node>,
    pub csinodes: Writer<CSINode>,
    pub claims: Writer<PersistentVolumeClaim>,
    pub volumes: Writer<PersistentVolume>,
    pub classes: Writer<StorageClass>,
}

/// New empty caches and their writers.
pub fn stores() -> (Stores, Writers) {
    let (pods, pw) = reflector::store();
    let (nodes, nw) = reflector::store();
    let (csinodes, cw) = reflector::store();
    let (claims, clw) = reflector::store();
    let (volumes, vw) = reflector::store();
    let (classes, sw) = reflector::store();
    (
        Stores {
            pods,
            nodes,
            csinodes,
            claims,
            volumes,
            classes,
        },
        Writers {
            pods: pw,
            nodes: nw,
            csinodes: cw,
            claims: clw,
            volumes: vw,
            classes: sw,
        },
    )
}
