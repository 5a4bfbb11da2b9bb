//! Support for running and driving the shop (OMS + IMS): both services in one process with
//! in-process delivery, the real binaries as separate processes, and a small typed client.

pub mod aws;
pub mod cached_catalog;
pub mod client;
pub mod in_process;
pub mod processes;
pub mod raw;
pub mod seed;
