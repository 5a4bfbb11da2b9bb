pub mod dynamodb_store;
pub mod http;
pub mod ims_catalog;
pub mod inbox_handler;
pub mod sqlite_store;
