use super::ports::{CatalogError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("{0}")]
    Validation(String),
    #[error("customer {0} does not exist")]
    UnknownCustomer(String),
    #[error("unknown products: {}", .0.join(", "))]
    UnknownSkus(Vec<String>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("product catalog unavailable: {0}")]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
