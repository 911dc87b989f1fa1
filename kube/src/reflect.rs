//! One reflector loop for every watched kind of both binaries: a watch that fills a
//! reflector cache (retrying with backoff by itself), counts the kind as synced after its
//! first list (for `/readyz`), wakes the binary's loop on every change, and hands each event
//! to the binary's [`Observer`]. It runs whether or not the replica leads, so a standby's
//! caches are warm when it takes over.
//!
//! A re-list after a watch gap reports the full set again but no DELETE for objects that
//! vanished meanwhile; a [`Relister`] remembers what it knew and yields their deletion when
//! the re-list ends (for observers that act on deletions).

use crate::error::{Error, Result};
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What one watch reads and where it writes.
pub struct Watch<K: Resource<DynamicType = ()> + Clone + 'static> {
    pub api: Api<K>,
    pub config: watcher::Config,
    pub writer: Writer<K>,
}

/// How the watches tell the binary about progress: `synced` counts kinds whose first list
/// is complete, `wake` is notified after every event.
#[derive(Clone)]
pub struct Signals {
    pub synced: Arc<AtomicUsize>,
    pub wake: Arc<Notify>,
}

/// What a binary does with the events of one watch, besides the cache the loop fills.
pub trait Observer<K>: Send {
    /// One event, after the cache took it in.
    fn event(&mut self, _event: Event<K>) {}
    /// A watch error (the stream retries by itself).
    fn error(&mut self, _kind: &str, _error: &watcher::Error) {}
}

/// Observes nothing: the binary reads the cache only.
impl<K> Observer<K> for () {}

/// Runs one kind's watch until `stop`. The stream retries with backoff by itself, so it ends
/// only if something is badly wrong: [`Error::TaskEnded`] (the supervisor then stops the
/// replica).
pub async fn run<K, O>(
    watch: Watch<K>,
    signals: Signals,
    mut observer: O,
    stop: CancellationToken,
) -> Result<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    O: Observer<K>,
{
    let kind = K::kind(&()).to_string();
    let stream = watcher::watcher(watch.api, watch.config)
        .default_backoff()
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(watch.writer);
    let mut stream = std::pin::pin!(stream);
    let mut first_sync = true;
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            ev = stream.next() => ev,
        };
        let Some(ev) = ev else {
            return Err(Error::TaskEnded {
                task: "watch",
                detail: format!("the {kind} watch stream ended"),
            });
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(kind, error = %e, "watch error");
                observer.error(&kind, &e);
                continue;
            }
        };
        let listed = matches!(ev, Event::InitDone);
        observer.event(ev);
        if listed && first_sync {
            first_sync = false;
            signals.synced.fetch_add(1, Ordering::AcqRel);
        }
        signals.wake.notify_one();
    }
}

/// A change after relist bookkeeping.
pub enum Change<'a, K> {
    Applied(&'a K),
    Deleted(&'a K),
}

/// Turns watcher events into changes, remembering what it has seen so that a re-list
/// (which reports no DELETE for objects gone during a watch gap) still yields their
/// deletion when it ends.
pub struct Relister<K: Resource> {
    known: HashMap<ObjectRef<K>, K>,
    relist: Option<HashSet<ObjectRef<K>>>,
    /// What is kept of each object for its eventual delete handling (the reflector's store
    /// holds the full object already).
    keep: fn(K) -> K,
}

impl<K: Resource> Default for Relister<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn default() -> Self {
        Relister::new(|k| k)
    }
}

impl<K: Resource> Relister<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    pub fn new(keep: fn(K) -> K) -> Self {
        Relister {
            known: HashMap::new(),
            relist: None,
            keep,
        }
    }
}

impl<K> Relister<K>
where
    K: Resource<DynamicType = ()> + Clone,
{
    /// Feeds one event, calling `handle` for each change; true when a (re-)list ended.
    pub fn feed(&mut self, ev: Event<K>, mut handle: impl FnMut(Change<'_, K>)) -> bool {
        match ev {
            Event::Init => {
                self.relist = Some(HashSet::new());
                false
            }
            Event::InitApply(o) | Event::Apply(o) => {
                let r = ObjectRef::from_obj(&o);
                if let Some(seen) = self.relist.as_mut() {
                    seen.insert(r.clone());
                }
                handle(Change::Applied(&o));
                self.known.insert(r, (self.keep)(o));
                false
            }
            Event::Delete(o) => {
                self.known.remove(&ObjectRef::from_obj(&o));
                handle(Change::Deleted(&o));
                false
            }
            Event::InitDone => {
                if let Some(seen) = self.relist.take() {
                    let gone: Vec<_> = self
                        .known
                        .keys()
                        .filter(|r| !seen.contains(r))
                        .cloned()
                        .collect();
                    for r in gone {
                        if let Some(o) = self.known.remove(&r) {
                            handle(Change::Deleted(&o));
                        }
                    }
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn feed(r: &mut Relister<Node>, ev: Event<Node>) -> (Vec<String>, bool) {
        let mut seen = Vec::new();
        let done = r.feed(ev, |c| {
            seen.push(match c {
                Change::Applied(n) => format!("+{}", n.name_any()),
                Change::Deleted(n) => format!("-{}", n.name_any()),
            })
        });
        (seen, done)
    }

    #[test]
    fn a_relist_deletes_what_vanished_during_the_gap() {
        let mut r = Relister::default();
        assert_eq!(feed(&mut r, Event::Init), (vec![], false));
        feed(&mut r, Event::InitApply(node("a")));
        feed(&mut r, Event::InitApply(node("b")));
        assert_eq!(feed(&mut r, Event::InitDone), (vec![], true));
        assert_eq!(feed(&mut r, Event::Apply(node("c"))).0, vec!["+c"]);
        // The watch broke; b and c went away meanwhile; the re-list shows only a.
        feed(&mut r, Event::Init);
        assert_eq!(feed(&mut r, Event::InitApply(node("a"))).0, vec!["+a"]);
        let (mut changes, done) = feed(&mut r, Event::InitDone);
        changes.sort();
        assert_eq!(changes, vec!["-b", "-c"]);
        assert!(done);
        assert_eq!(feed(&mut r, Event::Delete(node("a"))).0, vec!["-a"]);
    }
}
