//! Pod and Service networking on loopback: every pod gets its own address in 127.1.0.0/16 and
//! every Service a cluster IP in 127.2.0.0/16 (Linux routes all of 127.0.0.0/8 to `lo`), so
//! two pods can both listen on :8080 as in a cluster. `endpoints` keeps each Service's Endpoints
//! (ready pods only); `proxy` forwards a Service's address to them, as kube-proxy does.

pub mod endpoints;
pub mod proxy;

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable the kubelet sets to the pod's address (a sandbox addition; Kubernetes offers the
/// same through the downward API, `status.podIP`).
pub const POD_IP_ENV: &str = "SANDBOX_POD_IP";
/// The container's volume mounts as `[[mountPath, nodePath], ...]` and its own root directory
/// (a sandbox addition: containers here share the node's file system).
pub const MOUNTS_ENV: &str = "SANDBOX_MOUNTS";
pub const ROOTFS_ENV: &str = "SANDBOX_ROOTFS";

/// Hands out loopback addresses in `127.<net>.0.0/16`.
pub struct Addresses {
    net: u8,
    next: AtomicU32,
}

impl Addresses {
    pub const fn new(net: u8) -> Self {
        Self { net, next: AtomicU32::new(2) }
    }

    pub fn allocate(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("127.{}.{}.{}", self.net, (n / 250) % 250, n % 250 + 1)
    }
}

pub static POD_ADDRESSES: Addresses = Addresses::new(1);
pub static SERVICE_ADDRESSES: Addresses = Addresses::new(2);
