//! What every service process is built from: its database, outbox, metrics, settings and
//! keys; and the helpers to turn them into an inbox, a relay, a router and a running server.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::ApiKeys;
use crate::connection::EdgeListener;
use crate::db::{Db, DbError};
use crate::http::{GaugeRefresher, Plumbing, ReadinessCheck, assemble};
use crate::messaging::dead_letters::{DeadLetterStore, SqliteDeadLetters};
use crate::messaging::inbox::{Inbox, MessageHandler};
use crate::messaging::outbox::{Outbox, OutboxStore, SqliteOutbox};
use crate::messaging::relay::Relay;
use crate::messaging::sink::MessageSink;
use crate::metrics::Metrics;
use crate::settings::SettingsHandle;
use crate::time::{Clock, SystemClock};

/// The parts of a service process that do not depend on its business: where its outbox and
/// dead letters live, how readiness is checked, metrics, settings, clock and keys.
#[derive(Clone)]
pub struct Runtime {
    pub outbox: Outbox,
    pub outbox_store: Arc<dyn OutboxStore>,
    pub storage: Arc<dyn ReadinessCheck>,
    /// Kept here when messages arrive over HTTP; with a queue, its DLQ keeps them.
    pub dead_letters: Option<Arc<dyn DeadLetterStore>>,
    pub http_inbox: bool,
    pub metrics: Arc<Metrics>,
    pub settings: SettingsHandle,
    pub clock: Arc<dyn Clock>,
    pub keys: ApiKeys,
}

/// For services with no gauges of their own.
pub struct NoGauges;

#[async_trait]
impl GaugeRefresher for NoGauges {
    async fn refresh(&self) {}
}

impl Runtime {
    /// A runtime whose outbox lives in `outbox_store` and whose messages arrive from a queue.
    pub fn new(
        service: &str,
        outbox_store: Arc<dyn OutboxStore>,
        storage: Arc<dyn ReadinessCheck>,
        settings: SettingsHandle,
        keys: ApiKeys,
    ) -> Runtime {
        Runtime {
            outbox: Outbox::new(),
            outbox_store,
            storage,
            dead_letters: None,
            http_inbox: false,
            metrics: Arc::new(Metrics::new(service)),
            settings,
            clock: Arc::new(SystemClock),
            keys,
        }
    }

    /// The embedded default: `<data_dir>/<service>.db` holds the business tables (`schema`),
    /// the outbox and the dead letters; messages arrive over HTTP. The read pool follows the
    /// current settings, and dedupe markers older than a week are swept away.
    pub fn open_sqlite(
        service: &str,
        data_dir: &Path,
        schema: &str,
        settings: SettingsHandle,
        keys: ApiKeys,
    ) -> Result<(Runtime, Db), DbError> {
        let full_schema = format!("{}\n{}", crate::messaging::SCHEMA, schema);
        let db = Db::open(&data_dir.join(format!("{service}.db")), settings.current().pool_size, &full_schema)?;
        let mut changes = settings.subscribe();
        let follower = db.clone();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let size = changes.borrow_and_update().pool_size;
                follower.resize_read_pool(size);
            }
        });
        let mut runtime = Runtime::new(service, Arc::new(SqliteOutbox(db.clone())), Arc::new(db.clone()), settings, keys);
        runtime.dead_letters = Some(Arc::new(SqliteDeadLetters(db.clone())));
        runtime.http_inbox = true;
        crate::messaging::marker_sweep::spawn(db.clone(), runtime.clock.clone());
        Ok((runtime, db))
    }

    /// Messages arrive from a queue (SQS): no HTTP inbox, and the queue's DLQ keeps rejects.
    pub fn fed_by_queue(mut self) -> Runtime {
        self.dead_letters = None;
        self.http_inbox = false;
        self
    }

    pub fn inbox(&self, handler: Arc<dyn MessageHandler>) -> Arc<Inbox> {
        Arc::new(Inbox::new(handler, self.settings.clone(), self.metrics.clone(), self.clock.clone(), self.dead_letters.clone()))
    }

    /// `openapi` documents the business routes; the shared ones are added as they are mounted.
    pub fn router(
        &self,
        business: Router,
        inbox: Arc<Inbox>,
        gauges: Arc<dyn GaugeRefresher>,
        openapi: utoipa::openapi::OpenApi,
    ) -> Router {
        assemble(
            business,
            Plumbing {
                keys: self.keys.clone(),
                metrics: self.metrics.clone(),
                settings: self.settings.clone(),
                storage: self.storage.clone(),
                outbox: self.outbox_store.clone(),
                inbox,
                http_inbox: self.http_inbox,
                clock: self.clock.clone(),
                gauges,
                openapi,
            },
        )
    }

    /// Starts delivering this service's outbox through `sink` until `stop`, then flushes.
    pub fn start_relay(&self, sink: Arc<dyn MessageSink>, stop: CancellationToken) -> JoinHandle<()> {
        Relay {
            store: self.outbox_store.clone(),
            outbox: self.outbox.clone(),
            sink,
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
        }
        .spawn(stop)
    }
}

/// Serves until `stop`: then stops accepting and lets in-flight requests finish. Requests hyper
/// refuses before they reach the router are answered in the JSON error shape too
/// ([`EdgeListener`]).
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) -> std::io::Result<()> {
    axum::serve(EdgeListener::new(listener), router).with_graceful_shutdown(stop.cancelled_owned()).await
}

/// The life of a service process: deliver the outbox through `sink`, serve `router` on `listen`
/// until SIGTERM/Ctrl-C, let in-flight requests finish, then flush the outbox and stop the
/// background tasks (`background`: relay, queue consumer, settings reloader).
pub async fn run_until_signal(
    name: &str,
    listen: std::net::SocketAddr,
    router: Router,
    runtime: &Runtime,
    sink: Arc<dyn MessageSink>,
    background: CancellationToken,
) -> std::io::Result<()> {
    let relay = runtime.start_relay(sink, background.clone());
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(service = name, %listen, "listening");
    let http_stop = CancellationToken::new();
    tokio::spawn({
        let http_stop = http_stop.clone();
        async move {
            crate::shutdown::signal().await;
            http_stop.cancel();
        }
    });
    serve(listener, router, http_stop).await?;
    background.cancel();
    let _ = relay.await;
    tracing::info!(service = name, "stopped");
    Ok(())
}
