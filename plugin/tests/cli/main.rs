//! The real `kubectl-salve` binary against `tests/fake-kube` (an in-memory TEST STAND-IN for the
//! Kubernetes API server), with a kubeconfig pointing at it, as a user would run it.

mod decisions;
mod describe;
mod errors;
mod fixtures;
mod listing;
mod postmortem;
mod support;
