pub mod error;
pub mod ports;
pub mod product;
pub mod reservation;
pub mod service;

pub use error::InventoryError;
pub use product::{InventoryItem, NewProduct, Product, ProductWithInventory};
pub use service::InventoryService;
