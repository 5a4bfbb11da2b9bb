//! # salve-sandbox — a SIMULATED Kubernetes cluster in one process
//!
//! **Not a cluster.** An API server stand-in (`tests/fake-kube`), the built-in controllers Salve
//! meets (Deployment, ReplicaSet, Endpoints), a kube-proxy on loopback addresses and a kubelet
//! that runs every container as a real child process (OMS and IMS are this binary itself,
//! re-executed), with the kubelet's documented unkind parts: restarts in place with back-off,
//! ConfigMap volumes updated late and never through `subPath`, env resolved only at start.
//! Every known difference from a real cluster is listed in this crate's README.
//!
//! - `cluster`: starts the API server and the loops, writes a kubeconfig
//! - `access`: users, their tokens and kubeconfig files, the operator's ServiceAccount and RBAC,
//!   the approval policy
//! - `controllers`: Deployment, ReplicaSet, StatefulSet, DaemonSet and Job controllers
//! - `kubelet`: pods, containers (processes), volumes, probes, back-off, node pressure and
//!   eviction, events
//! - `network`: pod and Service addresses, Endpoints and the proxy
//! - `images`: what an image name runs (OMS, IMS, scripted behaviours)
//! - `demo`, `scenario`: the `demo` and `run` commands

pub mod access;
pub mod bench;
pub mod clock;
pub mod cluster;
pub mod container;
pub mod controllers;
pub mod demo;
pub mod events;
pub mod executable;
pub mod images;
pub mod kubelet;
pub mod network;
pub mod scenario;
pub mod scheduler;
