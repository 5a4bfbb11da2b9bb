//! Order management service (OMS).
//!
//! `domain` is the core (orders, customers, the saga's decisions, and the ports it needs);
//! `adapters` connect it to the world (HTTP API, SQLite store, IMS catalog, message inbox);
//! `app` wires one running service together; `config` is its command line.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod process;
