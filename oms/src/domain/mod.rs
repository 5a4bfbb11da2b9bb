pub mod customer;
pub mod error;
pub mod known_customers;
pub mod order;
pub mod ports;
pub mod service;

pub use customer::{Customer, NewCustomer};
pub use error::OrderError;
pub use order::{NewOrder, Order, OrderItem, OrderLine, OrderStatus};
pub use service::OrderService;
