//! The `Stalled` condition both controllers use for permanent errors: set once per distinct
//! error (written, then one Warning Event), cleared when the object progresses again.

use crate::kube::recorder::Recorder;
use kube::Resource;
use kube::api::Api;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::{Condition, ConditionStatus, condition_type, set_condition};
use crate::domain::time::now_rfc3339;
use crate::kube::events::{self, PendingEvent};
use crate::kube::status;

/// Sets `Stalled=True` with `why` and `message` in `status` (unless it already says exactly
/// that), writes the status, then publishes one Warning Event. When the status write itself is
/// refused for good (the operator may not write there at all), the Event is still published and
/// the error logged: the object waits for a change either way, instead of retrying a request
/// that cannot pass.
pub async fn stall<K, S>(
    recorder: &Recorder,
    api: &Api<K>,
    obj: &K,
    mut status: S,
    conditions: impl FnOnce(&mut S) -> &mut Vec<Condition>,
    why: &'static str,
    message: String,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let list = conditions(&mut status);
    if list.iter().any(|c| c.type_ == condition_type::STALLED && c.status == ConditionStatus::True && c.message == message) {
        return Ok(());
    }
    set_condition(list, Condition::new(condition_type::STALLED, ConditionStatus::True, why, message.clone(), &now_rfc3339()));
    match status::apply_status(api, obj, &status).await {
        Err(e) if permanent_api_reason(&e).is_some() => {
            tracing::warn!(error = %e, reason = why, "cannot write the Stalled condition either; waiting for a change");
        }
        other => {
            other?;
        }
    }
    events::publish(recorder, &obj.object_ref(&()), PendingEvent::warning(why, "Reconcile", message)).await;
    Ok(())
}

/// The reason a failed API request is permanent: repeating the same request cannot succeed
/// (400 Bad Request, 422 Invalid: the content is rejected; 403 Forbidden: RBAC does not grant
/// it; 404 Not Found: what it needs is gone). Everything else (conflicts, 429, 5xx, a broken
/// connection) may pass and is retried with back-off.
pub fn permanent_api_reason(e: &kube::Error) -> Option<&'static str> {
    use crate::crd::reason;
    match e {
        kube::Error::Api(s) if s.code == 400 || s.code == 422 => Some(reason::REJECTED_BY_API_SERVER),
        kube::Error::Api(s) if s.code == 403 => Some(reason::FORBIDDEN),
        kube::Error::Api(s) if s.code == 404 => Some(reason::NOT_FOUND),
        _ => None,
    }
}

/// Marks a stall as over once the object moves on.
pub fn clear_stalled(conditions: &mut Vec<Condition>, now: &str) {
    if conditions.iter().any(|c| c.type_ == condition_type::STALLED && c.status == ConditionStatus::True) {
        set_condition(conditions, Condition::new(condition_type::STALLED, ConditionStatus::False, "Progressing", "", now));
    }
}
