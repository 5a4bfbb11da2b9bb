//! What both kinds of remediation (in-cluster and pull request) share: the step a reconcile
//! takes, the controller's error, and the workload the Remediation is about.

use kube::Api;

use crate::controllers::context::Context;
use crate::crd::*;
use crate::domain::time::now_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading or writing the API: {0}")]
    Kube(#[from] kube::Error),
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("illegal phase transition {0:?} -> {1:?}")]
    IllegalTransition(RemediationPhase, RemediationPhase),
    /// Transient only (5xx, rate limit, unreachable): retried by requeue. Permanent GitHub
    /// failures end the Remediation instead.
    #[error(transparent)]
    Github(#[from] crate::github::client::GithubError),
    #[error("this replica no longer leads: its lease ran out before the write")]
    NotLeading,
}

impl Error {
    /// Errors that repeating the same request cannot fix (see the Incident controller's).
    pub fn permanent_reason(&self) -> Option<&'static str> {
        match self {
            Error::IllegalTransition(..) => Some(reason::ILLEGAL_TRANSITION),
            Error::Kube(e) | Error::WriteStatus(e) => crate::controllers::stalled::permanent_api_reason(e),
            Error::Github(_) | Error::NotLeading => None,
        }
    }
}

/// Refuses to go on once this replica's lease has run out (see `kube::write_gate`).
pub fn ensure_leading(ctx: &Context) -> Result<(), Error> {
    if ctx.write_gate.may_write() { Ok(()) } else { Err(Error::NotLeading) }
}

/// A change of phase, with the condition it sets and the Event it publishes once written.
pub struct Step {
    pub to: RemediationPhase,
    pub condition: Option<Condition>,
    pub reason: &'static str,
    pub message: String,
    pub warning: bool,
}

pub fn step(to: RemediationPhase, reason: &'static str, message: impl Into<String>) -> Step {
    Step { to, condition: None, reason, message: message.into(), warning: false }
}

/// A step that ends badly: a warning Event and a `False` condition of `type_` with the same reason.
pub fn failing(to: RemediationPhase, type_: &str, reason: &'static str, message: impl Into<String>) -> Step {
    let message = message.into();
    Step { to, condition: cond(type_, false, reason, &message), reason, message, warning: true }
}

pub fn cond(type_: &str, ok: bool, reason: &str, message: &str) -> Option<Condition> {
    let s = if ok { ConditionStatus::True } else { ConditionStatus::False };
    Some(Condition::new(type_, s, reason, message, &now_rfc3339()))
}

/// The workload the Remediation's Incident is about (the action's target when the Incident is
/// gone), and whether the Incident's signal reports OK.
pub async fn workload_of(rem: &Remediation, ns: &str, ctx: &Context) -> Result<(String, bool), kube::Error> {
    let inc = Api::<Incident>::namespaced(ctx.client.clone(), ns).get_opt(&rem.spec.incident_ref).await?;
    let target = inc.as_ref().map(|i| i.spec.target.name.clone()).unwrap_or_else(|| rem.spec.action.target_name.clone());
    let ok = inc.and_then(|i| i.spec.signal).is_some_and(|s| s == SignalState::Ok);
    Ok((target, ok))
}
