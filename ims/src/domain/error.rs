use super::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{0}")]
    Validation(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("product {0} already exists")]
    AlreadyExists(String),
    #[error("stock of {sku} cannot go below zero (available {available}, change {delta})")]
    InsufficientStock { sku: String, available: i64, delta: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}
