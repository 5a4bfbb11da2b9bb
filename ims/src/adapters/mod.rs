pub mod dynamodb_store;
pub mod http;
pub mod inbox_handler;
pub mod sqlite_store;
