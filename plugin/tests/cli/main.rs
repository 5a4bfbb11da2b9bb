//! The real `kubectl-salve` binary against `tests/fake-kube` (an in-memory TEST STAND-IN for the
//! Kubernetes API server), with a kubeconfig pointing at it, as a user would run it; and, in
//! `live_operator`, against the simulated cluster of `tests/sandbox` with the real operator.

mod decisions;
mod describe;
mod errors;
mod fixtures;
mod listing;
mod live_operator;
mod postmortem;
mod support;
