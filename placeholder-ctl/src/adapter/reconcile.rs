//! The reconcile loop: on every change (debounced) and at least every
//! `reconcileIntervalSeconds`, gather the sources and the pool views, let
//! [`Controller::step`] decide, report the decision (metrics, one log line per placement,
//! Events), and, while leading, carry it out. Every replica decides (so a standby's learned
//! state is warm); only the leader writes. Before its first decision each replica starts
//! from the checkpoint; the leader writes it ([`super::checkpoint`]).

use super::apply::Applier;
use super::calendar::Feed;
use super::checkpoint;
use super::events::{Events, reference};
use super::metrics::{InputLabels, Metrics, PlacementLabels, PoolLabels, SourceLabels};
use super::watch::{Stores, WATCHED_KINDS};
use crate::config::{Backend, Config, PoolSizes};
use crate::decide::{Controller, Decision, PlacementDecision, PoolDecision};
use crate::karpenter;
use crate::objects;
use crate::observe::{is_user_of, observe_pool};
use crate::prune::{self, OwnedKind};
use crate::sources::{Source, SourcedEvent, configmap, expand_events, expand_parsed, secs};
use hubpack_core::model::Millis;
use hubpack_kube::leader::LeaderGate;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Changes arriving together are handled in one reconcile.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What the loop and its helpers share.
pub struct Context {
    pub config: Config,
    pub sizes: Vec<PoolSizes>,
    pub namespace: String,
    pub stores: Stores,
    pub applier: Applier,
    pub events: Events,
    pub metrics: Metrics,
    pub leader: Arc<LeaderGate>,
    pub wake: Arc<Notify>,
    pub synced: Arc<AtomicUsize>,
    /// Wall-clock ms of the loop's last round (`/healthz`).
    pub heartbeat: Arc<AtomicI64>,
    /// Calendar name → its last fetched text.
    pub feeds: Mutex<BTreeMap<String, Feed>>,
    /// The `ownerConfigMap` as an owner reference, once its uid is known.
    pub owner: Mutex<Option<OwnerReference>>,
    /// Wall-clock ms of the last successful look for unwanted objects (0: never).
    pub pruned_at: AtomicI64,
    /// The `capacityBuffer` backend's state.
    pub buffers: super::buffer::Buffers,
}

pub fn now_ms() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}

/// Input the controller could not use: where it came from, the field, what is wrong, and
/// the object to put the warning Event on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BadInput {
    pub source: String,
    pub field: String,
    pub message: String,
    pub regarding: (String, String, Option<String>, String),
}

/// Every expected event from the config, the calendar feeds and the event ConfigMaps over
/// `[from, to)`, and what could not be used.
pub fn gather_events(
    ctx: &Context,
    from: Millis,
    to: Millis,
) -> (Vec<SourcedEvent>, Vec<BadInput>) {
    let cfg = &ctx.config;
    let mut events = expand_events(&cfg.events, &Source::Config, from, to);
    let mut bad = Vec::new();
    let pools: BTreeSet<&str> = cfg.pools.iter().map(|p| p.name.as_str()).collect();
    for cm in ctx.stores.configmaps.state() {
        let ns = cm.namespace().unwrap_or_default();
        let name = cm.name_any();
        let source = Source::ConfigMap(format!("{ns}/{name}"));
        let data = cm.data.clone().unwrap_or_default();
        let (ok, problems) = configmap::parse_events(&data, &pools);
        events.extend(expand_events(&ok, &source, from, to));
        bad.extend(problems.into_iter().map(|p| BadInput {
            source: source.label(),
            field: p.field,
            message: p.message,
            regarding: (
                "v1".into(),
                "ConfigMap".into(),
                Some(ns.clone()),
                name.clone(),
            ),
        }));
    }
    // Each feed's state without its text (megabytes): the document parsed when it came.
    let feeds: BTreeMap<String, Feed> = ctx
        .feeds
        .lock()
        .map(|mut feeds| {
            feeds
                .iter_mut()
                .map(|(name, f)| {
                    let document = f.parsed();
                    let state = Feed {
                        text: None,
                        document,
                        fetched_at: f.fetched_at,
                        last_error: f.last_error.clone(),
                        rejected: f.rejected,
                    };
                    (name.clone(), state)
                })
                .collect()
        })
        .unwrap_or_default();
    for cal in &cfg.calendars {
        let source = Source::Calendar(cal.name.clone()).label();
        let pool_deployment =
            headroom_object(ctx, &cal.pool, objects::placeholder_name(&cal.pool, None));
        let feed = feeds.get(&cal.name).cloned().unwrap_or_default();
        if let Some(e) = &feed.last_error {
            let location = match (&cal.url, &cal.url_file) {
                (Some(_), _) => "url",
                (None, Some(_)) => "urlFile",
                (None, None) => "file",
            };
            let (field, what) = if feed.rejected {
                ("body".to_string(), "calendar refused")
            } else {
                (location.to_string(), "calendar unreachable")
            };
            bad.push(BadInput {
                source: source.clone(),
                field,
                message: format!("{what} (its last good copy is still used): {e}"),
                regarding: pool_deployment.clone(),
            });
        }
        let Some(document) = feed.document else {
            continue;
        };
        match expand_parsed(cal, &document, from, to) {
            Ok((found, problems)) => {
                events.extend(found);
                bad.extend(problems.into_iter().map(|message| BadInput {
                    source: source.clone(),
                    field: "VEVENT".into(),
                    message,
                    regarding: pool_deployment.clone(),
                }));
            }
            Err(e) => bad.push(BadInput {
                source: source.clone(),
                field: "body".into(),
                message: format!("malformed calendar: {e}"),
                regarding: pool_deployment.clone(),
            }),
        }
    }
    (events, bad)
}

/// The object a pool's headroom lives in (`name`: the placement's), which its Events are
/// about: the placeholder Deployment, or the CapacityBuffer for a `capacityBuffer` pool.
fn headroom_object(
    ctx: &Context,
    pool: &str,
    name: String,
) -> (String, String, Option<String>, String) {
    let buffered = ctx
        .config
        .pools
        .iter()
        .any(|p| p.name == pool && p.backend == crate::config::Backend::CapacityBuffer);
    let (api, kind) = if buffered {
        (
            crate::buffer::BUFFER_API_VERSION,
            crate::buffer::BUFFER_KIND,
        )
    } else {
        ("apps/v1", "Deployment")
    };
    (api.into(), kind.into(), Some(ctx.namespace.clone()), name)
}

/// One decision from the caches.
pub fn decide_once(
    ctx: &Context,
    controller: &mut Controller,
    now: Millis,
) -> (Decision, Vec<BadInput>) {
    let cfg = &ctx.config;
    let horizon = secs(cfg.lead_time.max_seconds).max(
        cfg.pools
            .iter()
            .map(|p| match p.lead {
                crate::config::Lead::Seconds(s) => secs(s),
                crate::config::Lead::Auto => 0,
            })
            .max()
            .unwrap_or(0),
    );
    let from = now - secs(cfg.background.observed_window_seconds);
    let (events, mut bad) = gather_events(ctx, from, now + horizon + 1);
    let nodes_arc = ctx.stores.nodes.state();
    let pods_arc = ctx.stores.pods.state();
    let nodes: Vec<&Node> = nodes_arc.iter().map(|n| n.as_ref()).collect();
    let pods: Vec<&Pod> = pods_arc.iter().map(|p| p.as_ref()).collect();
    let views: Vec<_> = cfg
        .pools
        .iter()
        .zip(&ctx.sizes)
        .map(|(p, s)| observe_pool(cfg, p, s, &nodes, &pods))
        .collect();
    let replicas: BTreeMap<String, usize> = ctx
        .stores
        .deployments
        .state()
        .iter()
        .filter_map(|d| {
            let r = d.spec.as_ref()?.replicas.unwrap_or(1);
            Some((d.name_any(), usize::try_from(r).unwrap_or(0)))
        })
        .collect();
    let mut replicas = replicas;
    replicas.extend(ctx.buffers.replicas());
    let decision = controller.step(now, cfg, &ctx.sizes, &views, &events, &replicas);
    for p in &decision.pools {
        for (node, why) in &p.misfits {
            bad.push(BadInput {
                source: format!("pool/{}", p.pool),
                field: "freshNode.allocatable".into(),
                message: format!("placeholder cannot fit a new node: node {node} is smaller than configured: {why}"),
                regarding: headroom_object(ctx, &p.pool, objects::placeholder_name(&p.pool, None)),
            });
        }
        for u in &p.problems {
            bad.push(BadInput {
                source: format!("pod/{}/{}", u.namespace, u.name),
                field: u.field.clone(),
                message: u.message.clone(),
                regarding: (
                    "v1".into(),
                    "Pod".into(),
                    Some(u.namespace.clone()),
                    u.name.clone(),
                ),
            });
        }
    }
    bad.extend(karpenter_warnings(cfg, &nodes, &pods));
    bad.sort();
    bad.dedup();
    (decision, bad)
}

/// User pods Karpenter may consolidate away (no `karpenter.sh/do-not-disrupt`), as bad input
/// on the pod: a warning Event and the `bad_input` metric while it lasts.
fn karpenter_warnings(cfg: &Config, nodes: &[&Node], pods: &[&Pod]) -> Vec<BadInput> {
    let users = pods
        .iter()
        .copied()
        .filter(|p| cfg.pools.iter().any(|pool| is_user_of(cfg, pool, p)));
    karpenter::unprotected_user_pods(nodes, users)
        .into_iter()
        .map(|u| BadInput {
            source: format!("pod/{}/{}", u.namespace, u.name),
            field: format!("metadata.annotations[{}]", objects::KARPENTER_DO_NOT_DISRUPT),
            message: format!(
                "user pod on Karpenter node {} (NodePool {}) lacks {}: \"true\"; Karpenter may consolidate the node and end the session (z2jh: singleuser.extraAnnotations)",
                u.node, u.node_pool, objects::KARPENTER_DO_NOT_DISRUPT
            ),
            regarding: ("v1".into(), "Pod".into(), Some(u.namespace), u.name),
        })
        .collect()
}

/// Metrics and one structured log line per placement.
pub fn report(ctx: &Context, decision: &Decision) {
    let m = &ctx.metrics;
    m.forecast_users.clear();
    for p in &decision.pools {
        let pool = PoolLabels {
            pool: p.pool.clone(),
        };
        for (source, mu) in &p.forecast.per_source {
            m.forecast_users
                .get_or_create(&SourceLabels {
                    pool: p.pool.clone(),
                    source: source.clone(),
                })
                .set(*mu);
        }
        m.headroom_target_users
            .get_or_create(&pool)
            .set(p.forecast.headroom);
        m.free_warm_seats
            .get_or_create(&pool)
            .set(p.free_warm_seats);
        m.lead_time_seconds
            .get_or_create(&pool)
            .set(p.forecast.lead as f64 / 1000.0);
        m.lead_time_samples
            .get_or_create(&pool)
            .set(i64::try_from(p.lead_samples).unwrap_or(i64::MAX));
        for pl in &p.placements {
            let labels = PlacementLabels {
                pool: p.pool.clone(),
                zone: pl.zone.clone().unwrap_or_default(),
            };
            let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
            m.placeholders_desired
                .get_or_create(&labels)
                .set(n(pl.replicas));
            m.placeholders_ready
                .get_or_create(&labels)
                .set(n(pl.placed));
            m.placeholders_pending
                .get_or_create(&labels)
                .set(n(pl.pending));
            m.placeholders_capped.get_or_create(&labels).set(n(pl
                .capped_from
                .map_or(0, |w| w.saturating_sub(pl.replicas))));
            // One line per decision: at info when the count or target moves (or a lead
            // sample came in), else at debug.
            let moved = pl.previous != Some(pl.replicas) || !p.new_lead_samples.is_empty();
            macro_rules! decision {
                ($level:expr) => {
                    tracing::event!(
                        $level,
                pool = %p.pool,
                        zone = pl.zone.as_deref().unwrap_or(""),
                        object = %pl.name,
                        target = pl.target,
                        replicas = pl.replicas,
                        previous = ?pl.previous,
                        expected_users = p.forecast.expected,
                        headroom_users = p.forecast.headroom,
                        free_warm_seats = p.free_warm_seats,
                        lead_seconds = p.forecast.lead as f64 / 1000.0,
                        lead_learned = p.lead_learned,
                        lead_samples = p.lead_samples,
                        placed = pl.placed,
                        pending = pl.pending,
                        new_lead_samples_ms = ?p.new_lead_samples,
                        "placeholder decision"
                    )
                };
            }
            if moved {
                decision!(tracing::Level::INFO);
            } else {
                decision!(tracing::Level::DEBUG);
            }
        }
    }
}

/// The TargetChanged Event's note: the change and the values it was decided on now (each
/// change is its own Event, so the note is never an older change's).
pub fn target_changed_note(p: &PoolDecision, pl: &PlacementDecision) -> String {
    let from = pl.previous.map_or("none".into(), |v| v.to_string());
    format!(
        "placeholders {from} -> {} (target {}, {} ready, {} pending; expected {:.1} users, headroom {:.1}, free warm seats {}, lead {:.0} s): {}",
        pl.replicas,
        pl.target,
        pl.placed,
        pl.pending,
        p.forecast.expected,
        p.forecast.headroom,
        p.free_warm_seats,
        p.forecast.lead as f64 / 1000.0,
        pl.reason
    )
}

/// Writes the decision: PriorityClasses, per placement the Deployment (+ PDB owned by it)
/// and deletion costs, per pool the pre-pull DaemonSet; Events where the count changes.
pub async fn carry_out(ctx: &Context, decision: &Decision) {
    let cfg = &ctx.config;
    let fail = |e: crate::error::Error, what: &str| {
        ctx.metrics
            .errors
            .get_or_create(&super::metrics::KindLabels {
                kind: e.metric_label().into(),
            })
            .inc();
        tracing::warn!(error = %e, what, "write failed; retried next reconcile");
    };
    for pc in objects::priority_classes(cfg) {
        if let Err(e) = ctx.applier.priority_class(&pc).await {
            fail(e, "PriorityClass");
        }
    }
    let existing: BTreeMap<String, String> = ctx
        .stores
        .deployments
        .state()
        .iter()
        .filter_map(|d| Some((d.name_any(), d.metadata.uid.clone()?)))
        .collect();
    let owner = owner_reference(ctx).await;
    for (p, (pool, sizes)) in decision.pools.iter().zip(cfg.pools.iter().zip(&ctx.sizes)) {
        // The placeholders' warmth is judged by the configured images (stable: a change
        // would roll every placeholder); the learned ones only when none are configured.
        let user_images = if pool.images.is_empty() {
            p.prepull_images.clone()
        } else {
            pool.images.clone()
        };
        if pool.backend == Backend::CapacityBuffer {
            super::buffer::carry_out(ctx, pool, sizes, p, &user_images, owner.as_ref()).await;
        }
        let placeholders = pool.backend == Backend::Placeholders;
        for pl in p.placements.iter().filter(|_| placeholders) {
            let replicas = i32::try_from(pl.replicas).unwrap_or(i32::MAX);
            let d = objects::placeholder_deployment(
                cfg,
                pool,
                sizes,
                pl.zone.as_deref(),
                replicas,
                &user_images,
                owner.as_ref(),
            );
            let uid = match ctx.applier.deployment(&d).await {
                Ok(Some(written)) => written.metadata.uid,
                Ok(None) => existing.get(&pl.name).cloned(),
                Err(e) => {
                    fail(e, "Deployment");
                    continue;
                }
            };
            if pl.previous != Some(pl.replicas) {
                ctx.events
                    .publish(
                        &reference("apps/v1", "Deployment", Some(&ctx.namespace), &pl.name),
                        false,
                        "TargetChanged",
                        target_changed_note(p, pl),
                    )
                    .await;
            }
            let owner = uid.map(|u| objects::owner_of("Deployment", "apps/v1", &pl.name, &u));
            let pdb = objects::placeholder_pdb(cfg, pool, pl.zone.as_deref(), owner.as_ref());
            if let Err(e) = ctx.applier.pdb(&pdb).await {
                fail(e, "PodDisruptionBudget");
            }
            for (pod, cost) in &pl.deletion_costs {
                if let Err(e) = ctx.applier.deletion_cost(pod, *cost).await {
                    fail(e, "pod-deletion-cost");
                }
            }
        }
        if cfg.pre_puller.enabled {
            let ds = objects::prepuller_daemonset(cfg, pool, &p.prepull_images, owner.as_ref());
            if let Err(e) = ctx.applier.daemonset(&ds).await {
                fail(e, "DaemonSet");
            }
        }
    }
    // Listing three kinds on every reconcile (which runs on every pod change) would load
    // the API server for what changes only with the config: once at start, then every
    // PRUNE_INTERVAL.
    let now = now_ms();
    let last = ctx.pruned_at.load(Ordering::Acquire);
    if last == 0 || now - last >= PRUNE_INTERVAL_MS {
        match delete_unwanted(ctx).await {
            Ok(()) => ctx.pruned_at.store(now, Ordering::Release),
            Err(e) => fail(e, "delete unwanted"),
        }
    }
}

/// How often owned objects no pool wants are looked for (and at start).
const PRUNE_INTERVAL_MS: Millis = 60_000;

/// The `ownerConfigMap` as an owner reference (looked up once; without it, or while it
/// cannot be read, objects are written without an owner).
pub(super) async fn owner_reference(ctx: &Context) -> Option<OwnerReference> {
    let name = ctx.config.owner_config_map.as_deref()?;
    if let Some(known) = ctx.owner.lock().ok().and_then(|o| o.clone()) {
        return Some(known);
    }
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(ctx.applier.client(), &ctx.namespace);
    match api.get(name).await {
        Ok(cm) => {
            let uid = cm.metadata.uid?;
            let mut owner = objects::owner_of("ConfigMap", "v1", name, &uid);
            // Owned, not controlled: the Deployment's controller is this process.
            owner.controller = Some(false);
            if let Ok(mut o) = ctx.owner.lock() {
                *o = Some(owner.clone());
            }
            Some(owner)
        }
        Err(e) => {
            tracing::warn!(error = %e, configmap = name, "cannot read ownerConfigMap; objects are written without an owner for now");
            None
        }
    }
}

/// Deletes the owned Deployments, PDBs and DaemonSets no configured pool wants (a removed
/// or renamed pool), each with an Event.
pub async fn delete_unwanted(ctx: &Context) -> crate::error::Result<()> {
    let selector = objects::owner_selector(&ctx.config);
    let mut found = Vec::new();
    for kind in [
        OwnedKind::Deployment,
        OwnedKind::PodDisruptionBudget,
        OwnedKind::DaemonSet,
    ] {
        found.extend(ctx.applier.list_owned(kind, &selector).await?);
    }
    if ctx.buffers.served() {
        found.extend(super::buffer::list_owned(ctx, &selector).await?);
    }
    for gone in prune::unwanted(&ctx.config, &found) {
        ctx.applier.delete(gone.kind, &gone.name).await?;
        ctx.metrics
            .objects_deleted
            .get_or_create(&super::metrics::KindLabels {
                kind: gone.kind.as_str().into(),
            })
            .inc();
        tracing::info!(kind = gone.kind.as_str(), name = %gone.name, "deleted: no configured pool wants it");
        ctx.events
            .publish(
                &reference(
                    gone.kind.api_version(),
                    gone.kind.as_str(),
                    Some(&ctx.namespace),
                    &gone.name,
                ),
                false,
                "Deleted",
                format!(
                    "{} {} deleted: no configured pool wants it (pool removed or renamed)",
                    gone.kind.as_str(),
                    gone.name
                ),
            )
            .await;
    }
    Ok(())
}

/// Reports bad input: the metric for every present problem, a warning Event for each new one.
pub async fn report_bad_input(
    ctx: &Context,
    bad: &[BadInput],
    reported: &mut BTreeSet<BadInput>,
    leading: bool,
) {
    ctx.metrics.bad_input.clear();
    for b in bad {
        ctx.metrics
            .bad_input
            .get_or_create(&InputLabels {
                source: b.source.clone(),
                field: b.field.clone(),
            })
            .set(1);
        if leading && !reported.contains(b) {
            tracing::warn!(source = %b.source, field = %b.field, message = %b.message, "bad input");
            let (api, kind, ns, name) = &b.regarding;
            ctx.events
                .publish(
                    &reference(api, kind, ns.as_deref(), name),
                    true,
                    "BadInput",
                    format!("{} field {}: {}", b.source, b.field, b.message),
                )
                .await;
        }
    }
    if leading {
        *reported = bad.iter().cloned().collect();
    }
}

/// A warning Event on each placeholder Deployment whose target the pool's cost guard
/// (`maxNodes`) cuts, once per capping episode (`capped` holds the Deployments reported
/// and still capped).
pub async fn report_caps(
    ctx: &Context,
    decision: &Decision,
    capped: &mut BTreeSet<String>,
    leading: bool,
) {
    for p in &decision.pools {
        for pl in &p.placements {
            let Some(wanted) = pl.capped_from else {
                capped.remove(&pl.name);
                continue;
            };
            if !leading || capped.contains(&pl.name) {
                continue;
            }
            tracing::warn!(pool = %p.pool, object = %pl.name, wanted, replicas = pl.replicas, "placeholders capped by maxNodes");
            let (api, kind, ns, name) = headroom_object(ctx, &p.pool, pl.name.clone());
            ctx.events
                .publish(
                    &reference(&api, &kind, ns.as_deref(), &name),
                    true,
                    "TargetCapped",
                    format!(
                        "the forecast asks for {wanted} placeholders; pool {} is capped at {} by maxNodes (raise pools[].maxNodes if this hub needs more headroom)",
                        p.pool, pl.replicas
                    ),
                )
                .await;
            capped.insert(pl.name.clone());
        }
    }
}

/// Refreshes calendar feeds on their periods until `shutdown`, each fetch a task of its own:
/// a feed that hangs (up to the fetch timeout) delays no other feed's refresh.
pub async fn calendars(ctx: Arc<Context>, shutdown: CancellationToken) {
    let mut due: BTreeMap<String, Millis> = BTreeMap::new();
    // Fetch task → its calendar (a task that panicked frees its calendar too).
    let mut in_flight: BTreeMap<tokio::task::Id, String> = BTreeMap::new();
    let mut fetches = tokio::task::JoinSet::new();
    loop {
        let now = now_ms();
        for cal in &ctx.config.calendars {
            let fetching = in_flight.values().any(|n| *n == cal.name);
            if fetching || due.get(&cal.name).is_some_and(|t| *t > now) {
                continue;
            }
            due.insert(cal.name.clone(), now + secs(cal.refresh_seconds));
            let config = cal.clone();
            let task = fetches.spawn(async move { super::calendar::fetch(&config).await });
            in_flight.insert(task.id(), cal.name.clone());
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            Some(done) = fetches.join_next_with_id() => {
                let (id, result) = match done {
                    Ok((id, result)) => (id, Some(result)),
                    Err(e) => (e.id(), None),
                };
                if let (Some(name), Some(result)) = (in_flight.remove(&id), result) {
                    take_feed(&ctx, &name, result);
                }
            }
        }
    }
}

/// One fetch's result into the feed's cache (parsed here, once per new body).
fn take_feed(ctx: &Context, name: &str, result: crate::error::Result<String>) {
    let outcome = ctx
        .feeds
        .lock()
        .map(|mut feeds| {
            feeds
                .entry(name.to_string())
                .or_default()
                .take(result, now_ms())
        })
        .ok();
    if outcome == Some(super::calendar::Outcome::Rejected) {
        ctx.metrics
            .calendar_rejected
            .get_or_create(&super::metrics::CalendarLabels {
                calendar: name.to_string(),
            })
            .inc();
    }
    ctx.wake.notify_one();
}

/// The loop, until `shutdown`. `identity` names this replica in the checkpoint it writes.
pub async fn run(ctx: Arc<Context>, identity: String, shutdown: CancellationToken) {
    let mut controller = Controller::new(&ctx.config);
    let interval = Duration::from_secs_f64(ctx.config.reconcile_interval_seconds);
    let mut was_leading = false;
    let mut reported = BTreeSet::new();
    let mut capped = BTreeSet::new();
    let mut saved = checkpoint::Progress::new(identity);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                // What was learned since the last write is kept for the next leader.
                if saved.read && ctx.config.checkpoint.enabled && ctx.leader.is_leading(now_ms()) {
                    let last = checkpoint::write(&ctx, &controller, &mut saved);
                    if tokio::time::timeout(SHUTDOWN_WRITE, last).await.is_err() {
                        tracing::warn!("the checkpoint could not be written on shutdown in time");
                    }
                }
                return;
            }
            _ = tokio::time::sleep(interval) => {}
            _ = ctx.wake.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
            }
        }
        let now = now_ms();
        ctx.heartbeat.store(now, Ordering::Release);
        if ctx.synced.load(Ordering::Acquire) < WATCHED_KINDS {
            continue;
        }
        if !saved.read {
            // Decide only from the last leader's state: a first step from nothing would
            // count every existing user as a new arrival.
            checkpoint::load(&ctx, &mut controller, &mut saved).await;
            if !saved.read {
                continue;
            }
        }
        let leading = ctx.leader.is_leading(now);
        ctx.metrics.is_leader.set(i64::from(leading));
        if leading && !was_leading {
            // Another replica may have written since: apply everything afresh.
            ctx.applier.forget();
            ctx.pruned_at.store(0, Ordering::Release);
            reported.clear();
            capped.clear();
            ctx.buffers.forget_reported();
        }
        was_leading = leading;
        let (decision, bad) = decide_once(&ctx, &mut controller, now);
        report(&ctx, &decision);
        report_bad_input(&ctx, &bad, &mut reported, leading).await;
        report_caps(&ctx, &decision, &mut capped, leading).await;
        ctx.metrics.reconciles.inc();
        if leading && ctx.leader.is_leading(now_ms()) {
            carry_out(&ctx, &decision).await;
            if saved.due(&ctx, now_ms()) && ctx.leader.is_leading(now_ms()) {
                checkpoint::write(&ctx, &controller, &mut saved).await;
            }
        }
    }
}

/// How long the last checkpoint write may hold up a shutdown.
const SHUTDOWN_WRITE: Duration = Duration::from_secs(5);

#[cfg(test)]
impl Context {
    /// A context on `client` (a mock), with empty stores but `configmaps`, for the adapter's
    /// unit tests.
    #[allow(clippy::unwrap_used)] // tests may unwrap
    pub(crate) fn for_tests(
        client: kube::Client,
        cfg: Config,
        configmaps: Vec<k8s_openapi::api::core::v1::ConfigMap>,
    ) -> Context {
        use kube::runtime::reflector;
        use kube::runtime::watcher::Event;
        let (pods, _) = reflector::store();
        let (nodes, _) = reflector::store();
        let (deployments, _) = reflector::store();
        let (cms, mut writer) = reflector::store();
        for cm in configmaps {
            writer.apply_watcher_event(&Event::Apply(cm));
        }
        let mut registry = prometheus_client::registry::Registry::default();
        Context {
            sizes: cfg.pool_sizes().unwrap(),
            namespace: "hub".into(),
            stores: Stores {
                pods,
                nodes,
                configmaps: cms,
                deployments,
            },
            applier: Applier::new(client.clone(), "hub".into()),
            events: Events::new(client, Some("test".into())),
            metrics: Metrics::new(&mut registry),
            leader: Arc::new(LeaderGate::always()),
            wake: Arc::new(Notify::new()),
            synced: Arc::new(AtomicUsize::new(0)),
            heartbeat: Arc::new(AtomicI64::new(0)),
            feeds: Mutex::new(BTreeMap::new()),
            owner: Mutex::new(None),
            pruned_at: AtomicI64::new(0),
            buffers: Default::default(),
            config: cfg,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use hubpack_kube::test_support::{mock_client, next};
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::str::FromStr;

    fn context(client: kube::Client, cfg: Config, cms: Vec<ConfigMap>) -> Context {
        Context::for_tests(client, cfg, cms)
    }

    fn cfg() -> Config {
        let mut c = Config::parse(include_str!("../../config.example.yaml"), "t").unwrap();
        c.namespace = Some("hub".into());
        c.events.clear();
        c.calendars.push(crate::config::CalendarConfig {
            name: "course".into(),
            pool: "default".into(),
            url: Some("https://calendar.example/course.ics".into()),
            url_file: None,
            file: None,
            default_users: 10.0,
            arrival_window_seconds: 600.0,
            time_zone: "UTC".into(),
            all_day_arrival: "09:00".into(),
            refresh_seconds: 300.0,
        });
        c
    }

    fn configmap(data: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "lab", "namespace": "hub", "labels": {"hubpack.io/events": "true"}},
            "data": {"events.yaml": data}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn bad_input_names_source_and_field_and_the_rest_is_used() {
        let (client, mut handle) = mock_client();
        let cm = configmap(
            "- {name: ok, pool: default, users: 30, start: \"2026-12-01T09:00:00Z\", arrivalWindowSeconds: 600}\n\
             - {name: bad, pool: default, users: 30, start: \"next monday\"}\n",
        );
        let ctx = context(client, cfg(), vec![cm]);
        ctx.feeds.lock().unwrap().insert(
            "course".into(),
            Feed {
                last_error: Some("GET https://calendar.example/course.ics: HTTP 404".into()),
                ..Default::default()
            },
        );
        let t = jiff::Timestamp::from_str("2026-12-01T09:00:00Z")
            .unwrap()
            .as_millisecond();
        let (events, bad) = gather_events(&ctx, t - 1, t + 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].source, Source::ConfigMap("hub/lab".into()));
        let found: Vec<(&str, &str)> = bad
            .iter()
            .map(|b| (b.source.as_str(), b.field.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("configmap/hub/lab", "data.events.yaml[1].start"),
                ("calendar/course", "url"),
            ]
        );
        // Reported: a metric per problem, and a warning Event on the object at fault, once.
        let server = tokio::spawn(async move {
            let a = next(&mut handle, 201, serde_json::json!({})).await;
            let b = next(&mut handle, 201, serde_json::json!({})).await;
            (a, b)
        });
        let mut reported = BTreeSet::new();
        report_bad_input(&ctx, &bad, &mut reported, true).await;
        report_bad_input(&ctx, &bad, &mut reported, true).await; // no second Event
        let (a, b) = server.await.unwrap();
        assert_eq!(a.method, "POST");
        assert_eq!(a.path, "/apis/events.k8s.io/v1/namespaces/hub/events");
        assert_eq!(a.body["type"], "Warning");
        assert_eq!(a.body["reason"], "BadInput");
        assert_eq!(a.body["regarding"]["kind"], "ConfigMap");
        assert!(
            a.body["note"]
                .as_str()
                .unwrap()
                .contains("data.events.yaml[1].start"),
            "{}",
            a.body
        );
        assert_eq!(b.body["regarding"]["kind"], "Deployment");
        assert!(b.body["note"].as_str().unwrap().contains("HTTP 404"));
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("bad_input", "", ctx.metrics.bad_input.clone());
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "bad_input{source=\"configmap/hub/lab\",field=\"data.events.yaml[1].start\"} 1"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_refused_feed_answer_is_bad_input_and_the_last_good_copy_still_forecasts() {
        let (client, _handle) = mock_client();
        let ctx = context(client, cfg(), vec![]);
        let good = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20261201T080000Z\r\nDTSTART:20261201T090000Z\r\nSUMMARY:Lab\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let mut feed = Feed::default();
        feed.take(Ok(good.into()), 1);
        let outcome = feed.take(Ok("<html><body>Sign in</body></html>".into()), 2);
        assert_eq!(outcome, crate::adapter::calendar::Outcome::Rejected);
        ctx.feeds.lock().unwrap().insert("course".into(), feed);
        let t = jiff::Timestamp::from_str("2026-12-01T09:00:00Z")
            .unwrap()
            .as_millisecond();
        let (events, bad) = gather_events(&ctx, t - 1, t + 1);
        assert_eq!(events.len(), 1, "the last good copy's event");
        assert_eq!(events[0].name, "Lab");
        assert_eq!(bad.len(), 1);
        assert_eq!(
            (bad[0].source.as_str(), bad[0].field.as_str()),
            ("calendar/course", "body")
        );
        assert!(
            bad[0].message.contains("last good copy"),
            "{}",
            bad[0].message
        );
        assert!(
            bad[0].message.contains("BEGIN:VCALENDAR"),
            "{}",
            bad[0].message
        );
    }

    fn metadata_list(kind: &str, items: &[(&str, &str)]) -> serde_json::Value {
        let items: Vec<_> = items
            .iter()
            .map(|(name, pool)| {
                serde_json::json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                    "metadata": {"name": name, "namespace": "hub", "labels": {
                        "app.kubernetes.io/managed-by": "hubpack-placeholder-ctl",
                        "app.kubernetes.io/instance": "hub",
                        "hubpack.io/pool": pool}}})
            })
            .collect();
        serde_json::json!({"apiVersion": "meta.k8s.io/v1", "kind": format!("{kind}List"),
            "metadata": {"resourceVersion": "1"}, "items": items})
    }

    #[tokio::test]
    async fn a_renamed_pools_objects_are_deleted_with_an_event() {
        let (client, mut handle) = mock_client();
        let mut c = cfg();
        c.instance = Some("hub".into());
        let ctx = context(client, c, vec![]);
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            seen.push(
                next(
                    &mut handle,
                    200,
                    metadata_list(
                        "PartialObjectMetadata",
                        &[
                            ("hubpack-placeholder-default", "default"),
                            ("hubpack-placeholder-user", "user"),
                        ],
                    ),
                )
                .await,
            );
            seen.push(
                next(
                    &mut handle,
                    200,
                    metadata_list("PartialObjectMetadata", &[]),
                )
                .await,
            );
            seen.push(
                next(
                    &mut handle,
                    200,
                    metadata_list(
                        "PartialObjectMetadata",
                        &[("hubpack-prepuller-user", "user")],
                    ),
                )
                .await,
            );
            for _ in 0..4 {
                seen.push(next(&mut handle, 200, hubpack_kube::test_support::status_ok()).await);
            }
            seen
        });
        delete_unwanted(&ctx).await.unwrap();
        let seen = server.await.unwrap();
        let selector = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dhubpack-placeholder-ctl%2Capp.kubernetes.io%2Finstance%3Dhub";
        assert_eq!(seen[0].path, "/apis/apps/v1/namespaces/hub/deployments");
        assert!(seen[0].query.contains(selector), "{}", seen[0].query);
        assert_eq!(
            seen[1].path,
            "/apis/policy/v1/namespaces/hub/poddisruptionbudgets"
        );
        assert_eq!(seen[2].path, "/apis/apps/v1/namespaces/hub/daemonsets");
        let calls: Vec<(&str, &str)> = seen[3..]
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            calls,
            vec![
                (
                    "DELETE",
                    "/apis/apps/v1/namespaces/hub/deployments/hubpack-placeholder-user"
                ),
                ("POST", "/apis/events.k8s.io/v1/namespaces/hub/events"),
                (
                    "DELETE",
                    "/apis/apps/v1/namespaces/hub/daemonsets/hubpack-prepuller-user"
                ),
                ("POST", "/apis/events.k8s.io/v1/namespaces/hub/events"),
            ]
        );
        assert_eq!(seen[3].body["propagationPolicy"], "Background");
        assert_eq!(seen[4].body["reason"], "Deleted");
        assert_eq!(
            seen[4].body["regarding"]["name"],
            "hubpack-placeholder-user"
        );
    }

    #[test]
    fn a_target_change_note_shows_the_current_values() {
        let c = cfg();
        let mut ctl = Controller::new(&c);
        let sizes = c.pool_sizes().unwrap();
        let view = crate::observe::PoolView::default();
        let step = |ctl: &mut Controller, users: f64, replicas: usize| {
            let t = 30 * 60_000;
            let ev = SourcedEvent {
                source: Source::Config,
                pool: "default".into(),
                name: "class".into(),
                event: hubpack_core::headroom::ScheduledEvent {
                    start: t,
                    window: 300_000,
                    users,
                    weekly: false,
                },
            };
            let current: BTreeMap<String, usize> =
                [("hubpack-placeholder-default".to_string(), replicas)].into();
            ctl.step(
                t - 60_000,
                &c,
                &sizes,
                std::slice::from_ref(&view),
                &[ev],
                &current,
            )
        };
        let d = step(&mut ctl, 40.0, 0);
        let (p, pl) = (&d.pools[0], &d.pools[0].placements[0]);
        let note = target_changed_note(p, pl);
        assert!(
            note.starts_with(&format!(
                "placeholders 0 -> {} (target {}",
                pl.replicas, pl.target
            )),
            "{note}"
        );
        assert!(note.contains("expected 40.0 users"), "{note}");
        // A second change names the new values, not the first one's.
        let d2 = step(&mut ctl, 80.0, pl.replicas);
        let (p2, pl2) = (&d2.pools[0], &d2.pools[0].placements[0]);
        assert!(pl2.replicas > pl.replicas);
        let note2 = target_changed_note(p2, pl2);
        assert!(
            note2.starts_with(&format!("placeholders {} -> {}", pl.replicas, pl2.replicas)),
            "{note2}"
        );
        assert!(note2.contains("expected 80.0 users"), "{note2}");
        assert_ne!(note, note2);
    }

    #[tokio::test]
    async fn a_feed_is_parsed_once_per_new_body_not_per_reconcile() {
        use crate::sources::ics::PARSES;
        let (client, _handle) = mock_client();
        let ctx = context(client, cfg(), vec![]);
        let good = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20261201T080000Z\r\nDTSTART:20261201T090000Z\r\nSUMMARY:Lab\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let before = PARSES.with(|p| p.get());
        take_feed(&ctx, "course", Ok(good.into()));
        assert_eq!(PARSES.with(|p| p.get()) - before, 1);
        let t = jiff::Timestamp::from_str("2026-12-01T09:00:00Z")
            .unwrap()
            .as_millisecond();
        for i in 0..3 {
            let (events, _) = gather_events(&ctx, t - 1 - i, t + 1 + i);
            assert_eq!(events.len(), 1);
        }
        assert_eq!(
            PARSES.with(|p| p.get()) - before,
            1,
            "parsed again on reconcile"
        );
        // A copy known only as text (restored from elsewhere) is parsed once, then kept.
        ctx.feeds
            .lock()
            .unwrap()
            .get_mut("course")
            .unwrap()
            .document = None;
        for _ in 0..3 {
            assert_eq!(gather_events(&ctx, t - 1, t + 1).0.len(), 1);
        }
        assert_eq!(PARSES.with(|p| p.get()) - before, 2);
    }

    #[tokio::test]
    async fn a_hanging_feed_delays_no_other() {
        // One feed's server accepts and never answers; the other is a file.
        let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = hang.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = hang.accept().await {
                open.push(s);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.ics");
        std::fs::write(
            &file,
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n",
        )
        .unwrap();
        let mut c = cfg();
        c.calendars[0].url = Some(format!("http://127.0.0.1:{port}/course.ics"));
        let mut lab = c.calendars[0].clone();
        lab.name = "lab".into();
        lab.url = None;
        lab.file = Some(file);
        c.calendars.push(lab);
        let (client, _handle) = mock_client();
        let ctx = Arc::new(context(client, c, vec![]));
        let stop = CancellationToken::new();
        let task = tokio::spawn(calendars(ctx.clone(), stop.clone()));
        let t0 = std::time::Instant::now();
        loop {
            let lab = ctx
                .feeds
                .lock()
                .unwrap()
                .get("lab")
                .and_then(|f| f.fetched_at);
            if lab.is_some() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "the file feed waited for the hanging one"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            ctx.feeds
                .lock()
                .unwrap()
                .get("course")
                .is_none_or(|f| f.fetched_at.is_none()),
            "the hanging feed answered"
        );
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_capped_target_is_one_warning_event_and_a_metric() {
        let (client, mut handle) = mock_client();
        let mut c = cfg();
        c.pools[0].max_nodes = 1;
        let ctx = context(client, c.clone(), vec![]);
        let mut ctl = Controller::new(&c);
        let t = 30 * 60_000;
        let ev = SourcedEvent {
            source: Source::Config,
            pool: "default".into(),
            name: "exam".into(),
            event: hubpack_core::headroom::ScheduledEvent {
                start: t,
                window: 300_000,
                users: 300.0,
                weekly: false,
            },
        };
        let view = crate::observe::PoolView::default();
        let d = ctl.step(
            t - 60_000,
            &c,
            &ctx.sizes,
            std::slice::from_ref(&view),
            &[ev],
            &BTreeMap::new(),
        );
        let pl = &d.pools[0].placements[0];
        assert_eq!(pl.replicas, 1);
        let wanted = pl.capped_from.unwrap();
        report(&ctx, &d);
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("capped", "", ctx.metrics.placeholders_capped.clone());
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(&format!(
                "capped{{pool=\"default\",zone=\"\"}} {}",
                wanted - 1
            )),
            "{text}"
        );
        let server =
            tokio::spawn(async move { next(&mut handle, 201, serde_json::json!({})).await });
        let mut capped = BTreeSet::new();
        report_caps(&ctx, &d, &mut capped, true).await;
        report_caps(&ctx, &d, &mut capped, true).await; // the same episode: no second Event
        let event = server.await.unwrap();
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "TargetCapped");
        assert_eq!(
            event.body["regarding"]["name"],
            "hubpack-placeholder-default"
        );
        let note = event.body["note"].as_str().unwrap();
        assert!(
            note.contains(&format!("asks for {wanted} placeholders")),
            "{note}"
        );
        assert!(note.contains("maxNodes"), "{note}");
        assert!(capped.contains("hubpack-placeholder-default"));
    }

    #[tokio::test]
    async fn a_pools_events_are_about_its_deployment_or_its_capacity_buffer() {
        let (client, _handle) = mock_client();
        let mut c = cfg();
        let ctx = context(client.clone(), c.clone(), vec![]);
        let name = "hubpack-placeholder-default".to_string();
        let (api, kind, ns, n) = headroom_object(&ctx, "default", name.clone());
        assert_eq!((api.as_str(), kind.as_str()), ("apps/v1", "Deployment"));
        assert_eq!((ns.as_deref(), n.as_str()), (Some("hub"), name.as_str()));
        c.pools[0].backend = crate::config::Backend::CapacityBuffer;
        let ctx = context(client, c, vec![]);
        let (api, kind, _, n) = headroom_object(&ctx, "default", name.clone());
        assert_eq!(
            (api.as_str(), kind.as_str()),
            (
                crate::buffer::BUFFER_API_VERSION,
                crate::buffer::BUFFER_KIND
            )
        );
        assert_eq!(n, name);
    }

    #[test]
    fn a_user_pod_on_a_karpenter_node_without_do_not_disrupt_is_bad_input_on_the_pod() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "k-1", "labels": {"karpenter.sh/nodepool": "user"}}
        }))
        .unwrap();
        let pod = |name: &str, component: &str, annotations: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "hub",
                             "labels": {"component": component}, "annotations": annotations},
                "spec": {"nodeName": "k-1", "containers": []},
                "status": {"phase": "Running"}
            }))
            .unwrap()
        };
        let pods = [
            pod("jupyter-ada", "singleuser-server", serde_json::json!({})),
            pod(
                "jupyter-bob",
                "singleuser-server",
                serde_json::json!({"karpenter.sh/do-not-disrupt": "true"}),
            ),
            pod("proxy", "proxy", serde_json::json!({})),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let bad = karpenter_warnings(&cfg(), &[&node], &refs);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].source, "pod/hub/jupyter-ada");
        assert_eq!(
            bad[0].field,
            "metadata.annotations[karpenter.sh/do-not-disrupt]"
        );
        assert!(
            bad[0].message.contains("NodePool user"),
            "{}",
            bad[0].message
        );
        assert_eq!(bad[0].regarding.1, "Pod");
    }
}
