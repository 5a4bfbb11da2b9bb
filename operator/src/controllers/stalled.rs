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
/// that), writes the status, then publishes one Warning Event.
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
    status::apply_status(api, obj, &status).await?;
    events::publish(recorder, &obj.object_ref(&()), PendingEvent::warning(why, "Reconcile", message)).await;
    Ok(())
}

/// Marks a stall as over once the object moves on.
pub fn clear_stalled(conditions: &mut Vec<Condition>, now: &str) {
    if conditions.iter().any(|c| c.type_ == condition_type::STALLED && c.status == ConditionStatus::True) {
        set_condition(conditions, Condition::new(condition_type::STALLED, ConditionStatus::False, "Progressing", "", now));
    }
}
