//! Customers an order may name without asking the store again.
//!
//! A customer, once created, exists for good: the API creates and reads customers and never
//! deletes one (docs/contracts/oms.yaml), and no message removes one. So "this id exists",
//! once seen in the store, stays true, and placing an order for a known customer skips the
//! read. Only ids are kept (an order needs to know the customer exists, not their details),
//! and at most [`MAX_KNOWN`] of them: when full the set starts over.

use std::collections::HashSet;
use std::sync::RwLock;

const MAX_KNOWN: usize = 100_000;

#[derive(Default)]
pub struct KnownCustomers(RwLock<HashSet<String>>);

impl KnownCustomers {
    pub fn contains(&self, id: &str) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    /// Call only once the store has shown the customer exists.
    pub fn remember(&self, id: &str) {
        let mut known = self.0.write().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(id.to_string());
    }
}
