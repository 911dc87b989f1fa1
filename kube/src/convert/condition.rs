//! Status conditions: Nodes and Pods carry the same shape (type, status, reason,
//! lastTransitionTime) in different types; since when one holds is answered once, here.

use super::time_millis;
use k8s_openapi::api::core::v1::{NodeCondition, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A status condition, whichever object it is on.
pub trait Condition {
    fn type_(&self) -> &str;
    fn status(&self) -> &str;
    fn reason(&self) -> Option<&str>;
    fn last_transition_time(&self) -> Option<&Time>;
}

macro_rules! impl_condition {
    ($($t:ty),*) => {$(
        impl Condition for $t {
            fn type_(&self) -> &str {
                &self.type_
            }
            fn status(&self) -> &str {
                &self.status
            }
            fn reason(&self) -> Option<&str> {
                self.reason.as_deref()
            }
            fn last_transition_time(&self) -> Option<&Time> {
                self.last_transition_time.as_ref()
            }
        }
    )*};
}
impl_condition!(NodeCondition, PodCondition);

/// Since when (ms) the first condition that `holds` has held, if one does. One without a
/// transition time holds since an unknown moment: 0, counted as long settled rather than
/// as never.
pub fn since<C: Condition>(conditions: &[C], holds: impl Fn(&C) -> bool) -> Option<i64> {
    conditions
        .iter()
        .find(|c| holds(c))
        .map(|c| c.last_transition_time().map(time_millis).unwrap_or(0))
}

/// Since when condition `type_` has been True, if it is True now.
pub fn true_since<C: Condition>(conditions: &[C], type_: &str) -> Option<i64> {
    since(conditions, |c| c.type_() == type_ && c.status() == "True")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn at(ms: i64) -> Option<Time> {
        Some(Time(jiff::Timestamp::from_millisecond(ms).unwrap()))
    }

    #[test]
    fn true_since_is_the_transition_time_of_a_true_condition_of_that_type() {
        let node = |status: &str, t| NodeCondition {
            type_: "Ready".into(),
            status: status.into(),
            last_transition_time: t,
            ..Default::default()
        };
        assert_eq!(true_since(&[node("True", at(5_000))], "Ready"), Some(5_000));
        assert_eq!(true_since(&[node("False", at(5_000))], "Ready"), None);
        assert_eq!(true_since(&[node("Unknown", at(5_000))], "Ready"), None);
        assert_eq!(true_since(&[node("True", None)], "Ready"), Some(0));
        assert_eq!(
            true_since(&[node("True", at(5_000))], "MemoryPressure"),
            None
        );
        assert_eq!(true_since::<NodeCondition>(&[], "Ready"), None);
    }

    #[test]
    fn pod_conditions_answer_the_same_and_reasons_can_be_asked() {
        let pod = |type_: &str, status: &str, reason: Option<&str>, t| PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(Into::into),
            last_transition_time: t,
            ..Default::default()
        };
        let conditions = [
            pod("PodScheduled", "False", Some("Unschedulable"), at(7_000)),
            pod("Ready", "True", None, at(9_000)),
        ];
        assert_eq!(true_since(&conditions, "Ready"), Some(9_000));
        let unschedulable = |c: &PodCondition| {
            c.type_() == "PodScheduled"
                && c.status() == "False"
                && c.reason() == Some("Unschedulable")
        };
        assert_eq!(since(&conditions, unschedulable), Some(7_000));
        let other = [pod(
            "PodScheduled",
            "False",
            Some("SchedulerError"),
            at(7_000),
        )];
        assert_eq!(since(&other, unschedulable), None);
    }
}
