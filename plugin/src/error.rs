//! Every way a command can fail, worded for the person at the terminal.

use operator::domain::replay::ReplayError;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("no usable kubeconfig: {0} (set KUBECONFIG or create ~/.kube/config, as for kubectl)")]
    Kubeconfig(String),
    #[error("cannot reach the cluster at {server} (context {context:?}): {detail}")]
    Unreachable { server: String, context: String, detail: String },
    #[error("{kind} {name:?} not found in namespace {namespace:?}")]
    NotFound { kind: &'static str, name: String, namespace: String },
    #[error(
        "the server does not know {resource}: the Salve CRDs are not installed in this cluster (helm install charts/salve, or kubectl apply -f crds/)"
    )]
    CrdsMissing { resource: String },
    #[error(
        "forbidden: {user} may not {verb} {resource} in {scope} (the API server said: {message}); ask your cluster admin for a Role that grants it"
    )]
    Forbidden { user: String, verb: &'static str, resource: String, scope: String, message: String },
    #[error("{name:?} changed while it was being updated (someone else acted on it); run the command again")]
    Conflict { name: String },
    #[error("the API server refused to {verb} {resource}: {message}")]
    Rejected { verb: &'static str, resource: String, message: String },
    #[error("the API server failed to {verb} {resource} (HTTP {code}): {message}")]
    Server { verb: &'static str, resource: String, code: u16, message: String },
    #[error(
        "remediation {name:?} is not awaiting approval: its phase is {phase} (approval: {approval}); only a remediation in phase AwaitingApproval can be approved or rejected"
    )]
    NotAwaitingApproval { name: String, phase: String, approval: String },
    #[error("remediation {name:?} is {phase}: there is no change in flight to abandon")]
    NothingToAbandon { name: String, phase: String },
    #[error("a rejection needs feedback: say what was wrong with the proposal (--feedback TEXT); the next diagnosis reads it")]
    EmptyFeedback,
    #[error("incident {name:?} has no post-mortem yet (phase {phase}); it is written when the incident is Resolved or Escalated")]
    NoPostMortem { name: String, phase: String },
    #[error("the post-mortem of incident {name:?} cannot be replayed: {source}")]
    Replay { name: String, source: ReplayError },
    #[error("the {what} of {name:?} is malformed: {detail}")]
    Malformed { what: &'static str, name: String, detail: String },
    #[error("cannot write the output: {0}")]
    Output(String),
    #[error("the watch stopped: {0}")]
    Watch(String),
}
