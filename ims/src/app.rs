//! One IMS, wired: SQLite store, inventory service, inbox and HTTP router. The relay is started
//! separately because its sink (the OMS inbox) may not exist yet when IMS is built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use prometheus::{IntCounterVec, Opts};
use salve_common::auth::ApiKeys;
use salve_common::aws::dynamo::{DynamoOutbox, TableReadiness};
use salve_common::db::DbError;
use salve_common::messaging::inbox::Inbox;
use salve_common::runtime::{NoGauges, Runtime};
use salve_common::settings::SettingsHandle;
use salve_common::time::UuidV7;

use crate::adapters::dynamodb_store::{DynamoInventoryStore, Tables};
use crate::adapters::http::{api_doc, routes};
use crate::adapters::inbox_handler::ImsMessageHandler;
use crate::adapters::sqlite_store::{SCHEMA, SqliteInventoryStore};
use crate::domain::InventoryService;
use crate::domain::ports::InventoryStore;

pub struct Ims {
    pub runtime: Runtime,
    pub service: Arc<InventoryService>,
    pub inbox: Arc<Inbox>,
    pub router: Router,
}

/// Where IMS keeps its data.
pub enum Storage {
    Sqlite(PathBuf),
    Dynamo { client: aws_sdk_dynamodb::Client, tables: Tables },
}

/// The embedded default: SQLite in `data_dir`, messages over HTTP.
pub fn build(data_dir: &Path, keys: ApiKeys, settings: SettingsHandle) -> Result<Ims, DbError> {
    build_with(Storage::Sqlite(data_dir.to_path_buf()), false, keys, settings)
}

/// `queue_fed`: messages arrive from SQS rather than over HTTP.
pub fn build_with(storage: Storage, queue_fed: bool, keys: ApiKeys, settings: SettingsHandle) -> Result<Ims, DbError> {
    let (runtime, store): (Runtime, Arc<dyn InventoryStore>) = match storage {
        Storage::Sqlite(dir) => {
            let (runtime, db) = Runtime::open_sqlite("ims", &dir, SCHEMA, settings, keys)?;
            let store = Arc::new(SqliteInventoryStore::new(db, runtime.outbox.clone()));
            (runtime, store)
        }
        Storage::Dynamo { client, tables } => {
            let outbox = Arc::new(DynamoOutbox::new(client.clone(), tables.outbox.clone()));
            let ready = Arc::new(TableReadiness { client: client.clone(), table: tables.inventory.clone() });
            let runtime = Runtime::new("ims", outbox, ready, settings, keys);
            let store = Arc::new(DynamoInventoryStore::new(client, tables, runtime.outbox.clone()));
            (runtime, store)
        }
    };
    let runtime = if queue_fed { runtime.fed_by_queue() } else { runtime };
    let service = Arc::new(InventoryService::new(store, runtime.clock.clone(), Arc::new(UuidV7)));
    let outcomes = IntCounterVec::new(Opts::new("reservations_total", "Reservation outcomes: reserved, failed, released"), &["outcome"])
        .expect("static metric definition");
    runtime.metrics.register(Box::new(outcomes.clone()));
    let inbox = runtime.inbox(Arc::new(ImsMessageHandler { service: service.clone(), outcomes }));
    let router = runtime.router(routes(service.clone()), inbox.clone(), Arc::new(NoGauges), api_doc());
    Ok(Ims { runtime, service, inbox, router })
}
