//! Plumbing shared by the order service (OMS) and the inventory service (IMS).
//!
//! Nothing here knows about orders or stock: it is the HTTP edge (errors, auth, metrics,
//! runtime settings and faults), the SQLite pool, the message contract between the services,
//! and the at-least-once delivery machinery (outbox relay, inbox, dead letters).

pub mod auth;
pub mod aws;
pub mod backend;
pub mod connection;
pub mod db;
pub mod error;
pub mod extract;
pub mod http;
pub mod messages;
pub mod messaging;
pub mod metrics;
pub mod money;
pub mod openapi;
pub mod page_token;
pub mod runtime;
pub mod schema;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod trace_context;
