//! One IMS, wired: SQLite store, inventory service, inbox and HTTP router. The relay is started
//! separately because its sink (the OMS inbox) may not exist yet when IMS is built.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use prometheus::{IntCounterVec, Opts};
use salve_common::auth::ApiKeys;
use salve_common::db::DbError;
use salve_common::messaging::inbox::Inbox;
use salve_common::runtime::{NoGauges, Runtime};
use salve_common::settings::SettingsHandle;
use salve_common::time::UuidV7;

use crate::adapters::http::{openapi_json, routes};
use crate::adapters::inbox_handler::ImsMessageHandler;
use crate::adapters::sqlite_store::{SCHEMA, SqliteInventoryStore};
use crate::domain::InventoryService;

pub struct Ims {
    pub runtime: Runtime,
    pub service: Arc<InventoryService>,
    pub inbox: Arc<Inbox>,
    pub router: Router,
}

pub fn build(data_dir: &Path, keys: ApiKeys, settings: SettingsHandle) -> Result<Ims, DbError> {
    let (runtime, db) = Runtime::open_sqlite("ims", data_dir, SCHEMA, settings, keys)?;
    let store = Arc::new(SqliteInventoryStore::new(db, runtime.outbox.clone()));
    let service = Arc::new(InventoryService::new(store, runtime.clock.clone(), Arc::new(UuidV7)));
    let outcomes = IntCounterVec::new(Opts::new("reservations_total", "Reservation outcomes: reserved, failed, released"), &["outcome"])
        .expect("static metric definition");
    runtime.metrics.register(Box::new(outcomes.clone()));
    let inbox = runtime.inbox(Arc::new(ImsMessageHandler { service: service.clone(), outcomes }));
    let router = runtime.router(routes(service.clone()), inbox.clone(), Arc::new(NoGauges), openapi_json());
    Ok(Ims { runtime, service, inbox, router })
}
