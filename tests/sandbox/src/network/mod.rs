//! Pod and Service networking on loopback: every pod gets its own address in 127.1.0.0/16 and
//! every Service a cluster IP in 127.2.0.0/16 (Linux routes all of 127.0.0.0/8 to `lo`), so
//! two pods can both listen on :8080 as in a cluster. `endpoints` keeps each Service's Endpoints
//! (ready pods only); `proxy` forwards a Service's address to them, as kube-proxy does.

pub mod endpoints;
pub mod proxy;

use std::sync::Mutex;

/// The variable the kubelet sets to the pod's address (a sandbox addition; Kubernetes offers the
/// same through the downward API, `status.podIP`).
pub const POD_IP_ENV: &str = "SANDBOX_POD_IP";
/// The container's volume mounts as `[[mountPath, nodePath], ...]` and its own root directory
/// (a sandbox addition: containers here share the node's file system).
pub const MOUNTS_ENV: &str = "SANDBOX_MOUNTS";
pub const ROOTFS_ENV: &str = "SANDBOX_ROOTFS";

/// Hands out loopback addresses in `127.<net>.0.0/16`, in blocks of 250 (`127.<net>.<block>.*`).
/// A process claims each block it uses machine-wide with a lock file held until it exits, so
/// simulated clusters in different processes (tests running in parallel) never share an
/// address; clusters in one process share the process's blocks.
pub struct Addresses {
    net: u8,
    state: Mutex<Claimed>,
}

#[derive(Default)]
struct Claimed {
    /// The blocks this process holds and their lock files (kept open: the lock lives with them;
    /// `None` when no block was free and block 0 is shared, as before blocks existed).
    blocks: Vec<(u8, Option<std::fs::File>)>,
    next_in_block: u32,
}

const PER_BLOCK: u32 = 250;

impl Addresses {
    pub const fn new(net: u8) -> Self {
        Self { net, state: Mutex::new(Claimed { blocks: Vec::new(), next_in_block: PER_BLOCK }) }
    }

    pub fn allocate(&self) -> String {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.next_in_block >= PER_BLOCK {
            let taken: Vec<u8> = st.blocks.iter().map(|(b, _)| *b).collect();
            match claim_block(self.net, &taken) {
                Some((block, lock)) => st.blocks.push((block, Some(lock))),
                None if st.blocks.is_empty() => st.blocks.push((0, None)),
                // Every block is held: wrap around within ours.
                None => {}
            }
            st.next_in_block = 0;
        }
        let block = st.blocks.last().map(|(b, _)| *b).unwrap_or(0);
        let n = st.next_in_block;
        st.next_in_block += 1;
        format!("127.{}.{block}.{}", self.net, n + 2)
    }
}

/// Takes the first block of `127.<net>.*` no other process holds.
fn claim_block(net: u8, taken: &[u8]) -> Option<(u8, std::fs::File)> {
    let dir = std::env::temp_dir().join("salve-sandbox-addresses");
    std::fs::create_dir_all(&dir).ok()?;
    (0..=255u8).filter(|b| !taken.contains(b)).find_map(|b| {
        let file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(format!("127.{net}.{b}.lock"))).ok()?;
        file.try_lock().ok()?;
        Some((b, file))
    })
}

pub static POD_ADDRESSES: Addresses = Addresses::new(1);
pub static SERVICE_ADDRESSES: Addresses = Addresses::new(2);
