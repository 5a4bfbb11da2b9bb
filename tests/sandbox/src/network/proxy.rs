//! kube-proxy on loopback: each Service port gets a listener on `clusterIP:port` that forwards
//! every new connection to one ready endpoint, chosen round-robin (kube-proxy's iptables mode
//! picks at random; either way, only ready pods get traffic). A Service with no ready endpoint
//! refuses connections, as `REJECT` rules make it do in a cluster.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Ready backends per `clusterIP:port`.
type Backends = Arc<Mutex<HashMap<String, Vec<String>>>>;

#[derive(Default, Clone)]
pub struct Proxy {
    backends: Backends,
    listening: Arc<Mutex<BTreeSet<String>>>,
}

impl Proxy {
    /// Refreshes the backends from Services and Endpoints, and listens on new Service addresses.
    pub async fn sync(&self, client: &Client, shutdown: &CancellationToken) -> Result<(), kube::Error> {
        let services: Api<Service> = Api::all(client.clone());
        let mut table = HashMap::new();
        for svc in services.list(&ListParams::default()).await?.items {
            let ns = svc.namespace().unwrap_or_default();
            let Some(ip) = svc.spec.as_ref().and_then(|s| s.cluster_ip.clone()).filter(|ip| ip.starts_with("127.")) else { continue };
            let ep = Api::<Endpoints>::namespaced(client.clone(), &ns).get_opt(&svc.name_any()).await?;
            let subsets = ep.and_then(|e| e.subsets).unwrap_or_default();
            for (i, port) in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()).enumerate() {
                let Some(subset) = subsets.get(i) else { continue };
                let target = subset.ports.iter().flatten().next().map(|p| p.port).unwrap_or(port.port);
                let ready = subset.addresses.iter().flatten().map(|a| format!("{}:{target}", a.ip)).collect();
                table.insert(format!("{ip}:{}", port.port), ready);
            }
        }
        let new: Vec<String> = {
            let listening = self.listening.lock().map(|l| l.clone()).unwrap_or_default();
            table.keys().filter(|k| !listening.contains(*k)).cloned().collect()
        };
        if let Ok(mut b) = self.backends.lock() {
            *b = table;
        }
        for addr in new {
            match TcpListener::bind(&addr).await {
                Ok(l) => {
                    if let Ok(mut s) = self.listening.lock() {
                        s.insert(addr.clone());
                    }
                    tokio::spawn(serve(l, addr, self.backends.clone(), shutdown.clone()));
                }
                Err(e) => tracing::warn!(%addr, error = %e, "cannot listen for a Service"),
            }
        }
        Ok(())
    }
}

async fn serve(listener: TcpListener, addr: String, backends: Backends, shutdown: CancellationToken) {
    let turn = AtomicUsize::new(0);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let Ok((mut inbound, _)) = accepted else { continue };
        let ready = backends.lock().ok().and_then(|b| b.get(&addr).cloned()).unwrap_or_default();
        if ready.is_empty() {
            drop(inbound); // no ready endpoint: the connection is refused/reset
            continue;
        }
        let backend = ready[turn.fetch_add(1, Ordering::Relaxed) % ready.len()].clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&backend).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
