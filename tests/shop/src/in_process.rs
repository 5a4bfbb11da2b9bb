//! Both services in one process: messages go straight from one's relay to the other's inbox,
//! and OMS prices orders by asking the IMS core directly. Same stores, same outbox and inbox
//! code as two processes; only the transport differs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use ims::domain::InventoryService;
use oms::domain::ports::{Catalog, CatalogError, CatalogProduct};
use salve_common::auth::ApiKeys;
use salve_common::messaging::sink::InProcessSink;
use salve_common::runtime::serve;
use salve_common::settings::SettingsHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cached_catalog::CachedCatalog;

/// The catalog port answered by the IMS core in the same process.
pub struct InProcessCatalog(pub Arc<InventoryService>);

#[async_trait]
impl Catalog for InProcessCatalog {
    async fn lookup(&self, skus: &[String]) -> Result<HashMap<String, CatalogProduct>, CatalogError> {
        let found = self.0.products(skus).await.map_err(|e| CatalogError::Unavailable(e.to_string()))?;
        Ok(found.into_iter().map(|(sku, p)| (sku, CatalogProduct { name: p.name, price: p.price })).collect())
    }
}

pub struct Shop {
    pub oms_addr: SocketAddr,
    pub ims_addr: SocketAddr,
    pub oms: oms::app::Oms,
    pub ims: ims::app::Ims,
    stop_http: CancellationToken,
    stop_background: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Clone)]
pub struct ShopOptions {
    pub oms_listen: SocketAddr,
    pub ims_listen: SocketAddr,
    pub keys: ApiKeys,
    pub oms_settings: SettingsHandle,
    pub ims_settings: SettingsHandle,
}

impl ShopOptions {
    /// Free ports on 127.0.0.1, default settings, the given keys.
    pub fn local(keys: &str) -> Self {
        let (oms_settings, _) = SettingsHandle::fixed(Default::default());
        let (ims_settings, _) = SettingsHandle::fixed(Default::default());
        Self {
            oms_listen: "127.0.0.1:0".parse().expect("literal address"),
            ims_listen: "127.0.0.1:0".parse().expect("literal address"),
            keys: ApiKeys::from_csv(keys),
            oms_settings,
            ims_settings,
        }
    }
}

impl Shop {
    /// Opens `<data_dir>/oms` and `<data_dir>/ims`, connects the two in-process, and serves
    /// both APIs.
    pub async fn start(data_dir: &Path, options: ShopOptions) -> anyhow::Result<Shop> {
        let ims = ims::app::build(&data_dir.join("ims"), options.keys.clone(), options.ims_settings.clone())?;
        // Remembered: in one process IMS cannot be down while OMS is up, so remembering its
        // (immutable) products hides nothing. Two processes ask IMS for every order, so an IMS
        // outage still shows at OMS as a 503, as it must for whoever diagnoses it.
        let catalog = Arc::new(CachedCatalog::new(Arc::new(InProcessCatalog(ims.service.clone()))));
        let oms = oms::app::build(&data_dir.join("oms"), options.keys.clone(), options.oms_settings.clone(), catalog)?;

        let to_ims = InProcessSink::new();
        to_ims.connect(ims.inbox.clone());
        let to_oms = InProcessSink::new();
        to_oms.connect(oms.inbox.clone());
        let stop_background = CancellationToken::new();
        let stop_http = CancellationToken::new();
        let mut tasks =
            vec![oms.runtime.start_relay(to_ims, stop_background.clone()), ims.runtime.start_relay(to_oms, stop_background.clone())];

        let oms_listener = tokio::net::TcpListener::bind(options.oms_listen).await?;
        let ims_listener = tokio::net::TcpListener::bind(options.ims_listen).await?;
        let (oms_addr, ims_addr) = (oms_listener.local_addr()?, ims_listener.local_addr()?);
        for (listener, router) in [(oms_listener, oms.router.clone()), (ims_listener, ims.router.clone())] {
            let stop = stop_http.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = serve(listener, router, stop).await {
                    tracing::error!(error = %e, "server failed");
                }
            }));
        }
        Ok(Shop { oms_addr, ims_addr, oms, ims, stop_http, stop_background, tasks })
    }

    pub fn oms_url(&self) -> String {
        format!("http://{}", self.oms_addr)
    }

    pub fn ims_url(&self) -> String {
        format!("http://{}", self.ims_addr)
    }

    /// Graceful: stop accepting, finish requests, flush the outboxes.
    pub async fn stop(self) {
        self.stop_http.cancel();
        self.stop_background.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
