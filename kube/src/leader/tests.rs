#![allow(clippy::unwrap_used)] // tests may unwrap

use super::campaign::*;
use super::gate::now_ms;
use super::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use std::time::Duration;

fn lease(holder: &str, renew: &str) -> Lease {
    serde_json::from_value(json!({"metadata": {"name": "l"},
        "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": 15}}))
    .unwrap()
}

use crate::test_support::{mock_client, next, status_err};

fn campaign(identity: &str, field_manager: &str) -> Campaign {
    Campaign {
        lease_name: "l".into(),
        identity: identity.into(),
        duration_seconds: 15,
        renew_grace_seconds: 5,
        field_manager: field_manager.into(),
    }
}

/// The Lease as the API server returns it: `holder`, renewed at `renewed_ms`, at `rv`.
fn stored(holder: Option<&str>, renewed_ms: i64, rv: &str) -> serde_json::Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "namespace": "ns", "resourceVersion": rv},
        "spec": {"holderIdentity": holder, "renewTime": micro_time(renewed_ms),
                 "acquireTime": micro_time(renewed_ms), "leaseDurationSeconds": 15,
                 "leaseTransitions": 1}})
}

#[tokio::test]
async fn a_release_after_another_replica_renewed_leaves_the_lease_alone() {
    let (client, mut handle) = mock_client();
    let leases: Api<Lease> = Api::namespaced(client, "ns");
    let c = campaign("me", "hubpack-scheduler");
    // Held by another replica by the time we read it: no write at all.
    let releasing = tokio::spawn({
        let (leases, c) = (leases.clone(), c.clone());
        async move { release(&leases, &c).await }
    });
    let get = next(&mut handle, 200, stored(Some("other"), now_ms(), "7")).await;
    assert_eq!(get.method, "GET");
    assert!(!releasing.await.unwrap().unwrap(), "not ours: not released");

    // Ours when read, renewed by another replica before our write: the write is
    // conditional on what was read, so it loses and nothing is retried.
    let releasing = tokio::spawn({
        let (leases, c) = (leases.clone(), c.clone());
        async move { release(&leases, &c).await }
    });
    next(&mut handle, 200, stored(Some("me"), now_ms(), "7")).await;
    let patch = next(&mut handle, 409, status_err(409, "Conflict")).await;
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(patch.body["metadata"]["resourceVersion"], "7");
    assert_eq!(
        patch.body["spec"]["holderIdentity"],
        serde_json::Value::Null
    );
    assert!(
        !releasing.await.unwrap().unwrap(),
        "lost the race: not released"
    );
}

#[tokio::test]
async fn a_standby_takes_an_expired_lease_only_as_it_read_it() {
    let (client, mut handle) = mock_client();
    let leases: Api<Lease> = Api::namespaced(client, "ns");
    let c = campaign("standby", "hubpack-scheduler");
    let now = now_ms();
    // Valid: left alone, and looked at again when it expires.
    let stepping = tokio::spawn({
        let (leases, c) = (leases.clone(), c.clone());
        async move { campaign_step(&leases, &c, now).await }
    });
    next(&mut handle, 200, stored(Some("leader"), now - 1_000, "3")).await;
    assert_eq!(
        stepping.await.unwrap(),
        Step::NotLeading(Duration::from_millis(14_000))
    );
    // Expired as read; the leader renews before our write lands: we lose, it keeps it.
    let stepping = tokio::spawn({
        let (leases, c) = (leases.clone(), c.clone());
        async move { campaign_step(&leases, &c, now).await }
    });
    next(&mut handle, 200, stored(Some("leader"), now - 20_000, "4")).await;
    let patch = next(&mut handle, 409, status_err(409, "Conflict")).await;
    assert_eq!(patch.body["metadata"]["resourceVersion"], "4");
    assert_eq!(patch.body["spec"]["holderIdentity"], "standby");
    assert_eq!(patch.body["spec"]["leaseTransitions"], 2);
    assert!(matches!(stepping.await.unwrap(), Step::NotLeading(_)));
}

#[tokio::test]
async fn the_holder_renews_when_due_under_its_own_field_manager() {
    let (client, mut handle) = mock_client();
    let leases: Api<Lease> = Api::namespaced(client, "ns");
    let c = campaign("ctl-0", "hubpack-placeholder-ctl");
    let now = now_ms();
    // Renewed by the scheduler's field manager (e.g. before an upgrade), as an apply:
    // a merge patch is an Update, which never conflicts with another manager's fields.
    let mut lease = stored(Some("ctl-0"), now - 11_000, "9");
    lease["metadata"]["managedFields"] = json!([{"manager": "hubpack-scheduler",
        "operation": "Apply", "apiVersion": "coordination.k8s.io/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:holderIdentity": {}}}}]);
    let stepping = tokio::spawn({
        let (leases, c) = (leases.clone(), c.clone());
        async move { campaign_step(&leases, &c, now).await }
    });
    next(&mut handle, 200, lease.clone()).await;
    let patch = next(&mut handle, 200, lease).await;
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert!(
        patch.query.contains("fieldManager=hubpack-placeholder-ctl"),
        "{}",
        patch.query
    );
    assert_eq!(patch.body["metadata"]["resourceVersion"], "9");
    assert_eq!(patch.body["spec"]["renewTime"], micro_time(now));
    assert!(
        patch.body["spec"].get("holderIdentity").is_none(),
        "a renewal keeps the holder and acquireTime"
    );
    assert_eq!(
        stepping.await.unwrap(),
        Step::Leading(Duration::from_millis(10_000))
    );
    // Not due yet: no write.
    let stepping = tokio::spawn({
        let (leases, c) = (leases.clone(), c.clone());
        async move { campaign_step(&leases, &c, now).await }
    });
    next(&mut handle, 200, stored(Some("ctl-0"), now - 2_000, "10")).await;
    assert_eq!(
        stepping.await.unwrap(),
        Step::Leading(Duration::from_millis(8_000))
    );
}

#[tokio::test]
async fn a_missing_lease_is_created_by_its_field_manager() {
    let (client, mut handle) = mock_client();
    let leases: Api<Lease> = Api::namespaced(client, "ns");
    let c = campaign("ctl-0", "hubpack-placeholder-ctl");
    let stepping = tokio::spawn({
        let (leases, c) = (leases.clone(), c.clone());
        async move { campaign_step(&leases, &c, now_ms()).await }
    });
    next(&mut handle, 404, status_err(404, "NotFound")).await;
    let create = next(&mut handle, 201, stored(Some("ctl-0"), now_ms(), "1")).await;
    assert_eq!(create.method, "POST");
    assert!(
        create
            .query
            .contains("fieldManager=hubpack-placeholder-ctl")
    );
    assert_eq!(create.body["spec"]["holderIdentity"], "ctl-0");
    assert!(matches!(stepping.await.unwrap(), Step::Leading(_)));
}

#[test]
fn a_lease_acquired_anew_is_a_new_tenure_however_the_signal_read() {
    let mut t = Tenure::default();
    assert!(t.same(Some(1_000)), "the first tenure seen");
    assert!(t.same(Some(1_000)), "renewals keep acquireTime");
    assert!(t.same(None), "not said: nothing to compare");
    assert!(!t.same(Some(9_000)), "lost and won again in between");
    t.reset();
    assert!(
        t.same(Some(9_000)),
        "after a reset, the next tenure is recorded"
    );
}

#[test]
fn valid_until_renewal_plus_duration_minus_margin() {
    let l = lease("me", "2026-01-01T00:00:00.000000Z");
    let t0 = "2026-01-01T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    assert_eq!(
        lease_valid_until(&l, "me"),
        Some(t0 + 15_000 - SAFETY_MARGIN_MS)
    );
    assert_eq!(lease_valid_until(&l, "other"), None);
}

fn parse(yaml: &str) -> std::result::Result<LeaderElectionConfig, serde_saphyr::Error> {
    struct Named(LeaderElectionConfig);
    impl<'de> Deserialize<'de> for Named {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            LeaderElectionConfig::deserialize_named(d, "my-lease").map(Named)
        }
    }
    serde_saphyr::from_str::<Named>(yaml).map(|n| n.0)
}

#[test]
fn missing_keys_keep_the_binarys_defaults_and_unknown_keys_are_refused() {
    let c = parse("{leaseDurationSeconds: 20}").unwrap();
    assert_eq!(
        c,
        LeaderElectionConfig {
            lease_duration_seconds: 20,
            ..LeaderElectionConfig::named("my-lease")
        }
    );
    let e = parse("{leaseNmae: x}").unwrap_err();
    assert!(e.to_string().contains("leaseNmae"), "{e}");
}

#[test]
fn invalid_settings_name_the_field_under_the_binarys_key() {
    let base = LeaderElectionConfig::named("l");
    let cases = [
        (
            LeaderElectionConfig {
                lease_name: " ".into(),
                ..base.clone()
            },
            "election.leaseName",
        ),
        (
            LeaderElectionConfig {
                lease_duration_seconds: 2,
                renew_grace_seconds: 1,
                ..base.clone()
            },
            "election.leaseDurationSeconds",
        ),
        (
            LeaderElectionConfig {
                lease_duration_seconds: 5,
                ..base.clone()
            },
            "election.renewGraceSeconds",
        ),
        (
            LeaderElectionConfig {
                renew_grace_seconds: 0,
                ..base.clone()
            },
            "election.renewGraceSeconds",
        ),
        (
            LeaderElectionConfig {
                enabled: false,
                lease_duration_seconds: 86_401,
                ..base.clone()
            },
            "election.leaseDurationSeconds",
        ),
    ];
    for (config, field) in cases {
        let e = config.validate("election").unwrap_err();
        assert_eq!(e.field, field, "{config:?}");
        assert!(!e.fix.is_empty());
    }
    assert!(base.validate("election").is_ok());
    let off = LeaderElectionConfig {
        enabled: false,
        lease_name: String::new(),
        ..base
    };
    assert!(off.validate("election").is_ok(), "disabled: not checked");
}

#[test]
fn the_gate_closes_at_its_deadline_and_on_revoke() {
    let g = LeaderGate::new();
    assert!(!g.is_leading(0));
    g.extend(1_000);
    assert!(g.is_leading(999));
    assert!(
        !g.is_leading(1_000),
        "no write once the deadline passed, even without a signal"
    );
    g.extend(500);
    assert_eq!(g.leading_until(), 1_000, "extend never shortens");
    g.revoke();
    assert!(!g.is_leading(0));
    assert!(LeaderGate::always().is_leading(i64::MAX - 1));
}
