//! Inventory management service (IMS).
//!
//! `domain` is the core (products, stock, the all-or-nothing reservation rule, and its ports);
//! `adapters` connect it to the world (HTTP API, SQLite store, message inbox); `app` wires one
//! running service together; `config` is its command line.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod process;
