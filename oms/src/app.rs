//! One OMS, wired: SQLite store, catalog, order service, inbox and HTTP router. The relay is
//! started separately because its sink (the IMS inbox) may not exist yet when OMS is built.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use prometheus::{IntGaugeVec, Opts};
use salve_common::auth::ApiKeys;
use salve_common::aws::dynamo::{DynamoOutbox, TableReadiness};
use salve_common::db::DbError;
use salve_common::http::GaugeRefresher;
use salve_common::messaging::inbox::Inbox;
use salve_common::runtime::Runtime;
use salve_common::settings::SettingsHandle;
use salve_common::time::UuidV7;

use crate::adapters::dynamodb_store::{DynamoOrderStore, Tables};
use crate::adapters::http::{api_doc, routes};
use crate::adapters::inbox_handler::OmsMessageHandler;
use crate::adapters::sqlite_store::{SCHEMA, SqliteOrderStore};
use crate::domain::ports::{Catalog, OrderStore};
use crate::domain::{OrderService, OrderStatus};

pub struct Oms {
    pub runtime: Runtime,
    pub service: Arc<OrderService>,
    pub inbox: Arc<Inbox>,
    pub router: Router,
}

/// Where OMS keeps its data.
pub enum Storage {
    Sqlite(PathBuf),
    Dynamo { client: aws_sdk_dynamodb::Client, tables: Tables },
}

/// The embedded default: SQLite in `data_dir`, messages over HTTP.
pub fn build(data_dir: &Path, keys: ApiKeys, settings: SettingsHandle, catalog: Arc<dyn Catalog>) -> Result<Oms, DbError> {
    build_with(Storage::Sqlite(data_dir.to_path_buf()), false, keys, settings, catalog)
}

/// `queue_fed`: messages arrive from SQS rather than over HTTP.
pub fn build_with(
    storage: Storage,
    queue_fed: bool,
    keys: ApiKeys,
    settings: SettingsHandle,
    catalog: Arc<dyn Catalog>,
) -> Result<Oms, DbError> {
    let (runtime, store): (Runtime, Arc<dyn OrderStore>) = match storage {
        Storage::Sqlite(dir) => {
            let (runtime, db) = Runtime::open_sqlite("oms", &dir, SCHEMA, settings, keys)?;
            let store = Arc::new(SqliteOrderStore::new(db, runtime.outbox.clone()));
            (runtime, store)
        }
        Storage::Dynamo { client, tables } => {
            let outbox = Arc::new(DynamoOutbox::new(client.clone(), tables.outbox.clone()));
            let ready = Arc::new(TableReadiness { client: client.clone(), table: tables.orders.clone() });
            let runtime = Runtime::new("oms", outbox, ready, settings, keys);
            let store = Arc::new(DynamoOrderStore::new(client, tables, runtime.outbox.clone()));
            (runtime, store)
        }
    };
    let runtime = if queue_fed { runtime.fed_by_queue() } else { runtime };
    let service = Arc::new(OrderService::new(store.clone(), catalog, runtime.clock.clone(), Arc::new(UuidV7)));
    let inbox = runtime.inbox(Arc::new(OmsMessageHandler(service.clone())));
    let gauges = OrderGauges::new(store);
    runtime.metrics.register(Box::new(gauges.by_status.clone()));
    let router = runtime.router(routes(service.clone()), inbox.clone(), Arc::new(gauges), api_doc());
    Ok(Oms { runtime, service, inbox, router })
}

/// `oms_orders{status}`: orders by status, read from the store at scrape time.
struct OrderGauges {
    store: Arc<dyn OrderStore>,
    by_status: IntGaugeVec,
}

impl OrderGauges {
    fn new(store: Arc<dyn OrderStore>) -> Self {
        let by_status = IntGaugeVec::new(Opts::new("orders", "Orders by status"), &["status"]).expect("static metric definition");
        Self { store, by_status }
    }
}

#[async_trait]
impl GaugeRefresher for OrderGauges {
    async fn refresh(&self) {
        let counts: HashMap<OrderStatus, i64> = self.store.count_by_status().await.unwrap_or_default();
        for status in OrderStatus::ALL {
            self.by_status.with_label_values(&[status.as_str()]).set(counts.get(&status).copied().unwrap_or(0));
        }
    }
}
