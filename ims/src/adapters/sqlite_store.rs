//! The embedded inventory store: products, stock, reservations and the messaging tables in one
//! SQLite file, so a reservation's decrements, its record, the incoming message's dedupe marker
//! and the reply message commit in ONE transaction (no double decrement after a crash).
//!
//! `inventory` is `WITHOUT ROWID`: its rows are a few dozen bytes, found and updated by SKU on
//! every reservation, so keeping them in the SKU's own b-tree saves a seek per line. Products
//! and reservations keep rowids: their rows (names, descriptions, the items as JSON) are too
//! large for a key b-tree, whose interior pages would hold whole rows.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use salve_common::db::{Db, DbError};
use salve_common::messages::{Envelope, Message, MessageItem};
use salve_common::messaging::outbox::{Outbox, mark_processed};
use salve_common::time::{from_text, to_text};

use crate::domain::ports::{Adjusted, Emit, InventoryStore, ProductPage, Released, Reserved, StoreError};
use crate::domain::product::{InventoryItem, Product, adjusted};
use crate::domain::reservation;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    price_cents INTEGER NOT NULL,
    image_url TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inventory (
    sku TEXT PRIMARY KEY REFERENCES products(sku),
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT PRIMARY KEY,
    items TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
";

const RESERVED: &str = "RESERVED";
const FAILED: &str = "FAILED";
const RELEASED: &str = "RELEASED";

pub struct SqliteInventoryStore {
    db: Db,
    outbox: Outbox,
}

impl SqliteInventoryStore {
    pub fn new(db: Db, outbox: Outbox) -> Self {
        Self { db, outbox }
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Busy => StoreError::Unavailable(e.to_string()),
            other => StoreError::Failed(other.to_string()),
        }
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::from(DbError::from(e))
}

fn time_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = r.get(i)?;
    from_text(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into()))
}

/// A macro so statement texts can be literals (`concat!`), built at compile time.
macro_rules! product_columns {
    () => {
        "p.sku, p.name, p.description, p.price_cents, p.image_url, p.created_at, p.updated_at"
    };
}
const SELECT_PRODUCT: &str =
    concat!("SELECT ", product_columns!(), ", i.quantity FROM products p JOIN inventory i ON i.sku = p.sku WHERE p.sku = ?1");
const SELECT_PRODUCT_ONLY: &str = concat!("SELECT ", product_columns!(), " FROM products p WHERE p.sku = ?1");
const LIST_PRODUCTS: &str =
    concat!("SELECT ", product_columns!(), " FROM products p WHERE (?1 IS NULL OR p.sku > ?1) ORDER BY p.sku LIMIT ?2");
const SELECT_ITEM: &str = "SELECT sku, quantity, updated_at FROM inventory WHERE sku = ?1";

fn row_to_product(r: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        sku: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        price: salve_common::money::Money::from_cents(r.get(3)?),
        image_url: r.get(4)?,
        created_at: time_col(r, 5)?,
        updated_at: time_col(r, 6)?,
    })
}

fn row_to_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<InventoryItem> {
    Ok(InventoryItem { sku: r.get(0)?, quantity: r.get(1)?, updated_at: time_col(r, 2)? })
}

fn stock_of(tx: &Connection, sku: &str) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT quantity FROM inventory WHERE sku = ?1")?.query_row([sku], |r| r.get(0)).optional()
}

fn write_stock(tx: &Connection, sku: &str, quantity: i64, now: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE inventory SET quantity = ?2, updated_at = ?3 WHERE sku = ?1")?.execute(params![sku, quantity, now])?;
    Ok(())
}

fn item_of(tx: &Connection, sku: &str) -> rusqlite::Result<Option<InventoryItem>> {
    tx.prepare_cached(SELECT_ITEM)?.query_row([sku], row_to_item).optional()
}

#[async_trait]
impl InventoryStore for SqliteInventoryStore {
    async fn insert_product(&self, p: &Product) -> Result<(), StoreError> {
        let p = p.clone();
        self.db
            .write(move |tx| -> Result<_, StoreError> {
                let now = to_text(p.created_at);
                let inserted = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO products (sku, name, description, price_cents, image_url, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    )
                    .and_then(|mut s| s.execute(params![p.sku, p.name, p.description, p.price.cents(), p.image_url, now]))
                    .map_err(sql)?;
                if inserted == 0 {
                    return Err(StoreError::AlreadyExists);
                }
                tx.prepare_cached("INSERT INTO inventory (sku, quantity, updated_at) VALUES (?1, 0, ?2)")
                    .and_then(|mut s| s.execute(params![p.sku, now]))
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn product(&self, sku: &str) -> Result<Option<(Product, i64)>, StoreError> {
        let sku = sku.to_string();
        self.db
            .read(move |c| {
                c.prepare_cached(SELECT_PRODUCT)
                    .and_then(|mut s| s.query_row([sku], |r| Ok((row_to_product(r)?, r.get(7)?))).optional())
                    .map_err(sql)
            })
            .await
    }

    async fn products_by_sku(&self, skus: &[String]) -> Result<HashMap<String, Product>, StoreError> {
        let skus = skus.to_vec();
        // One call for all the lines: one pooled connection and one compiled statement, not a
        // round trip through the pool per line.
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(SELECT_PRODUCT_ONLY).map_err(sql)?;
                let mut found = HashMap::new();
                for sku in skus {
                    if let Some(p) = stmt.query_row([&sku], row_to_product).optional().map_err(sql)? {
                        found.insert(sku, p);
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn list_products(&self, limit: u32, after: Option<String>) -> Result<ProductPage, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(LIST_PRODUCTS).map_err(sql)?;
                let mut products =
                    stmt.query_map(params![after, limit + 1], row_to_product).map_err(sql)?.collect::<Result<Vec<_>, _>>().map_err(sql)?;
                let more = products.len() > limit as usize;
                products.truncate(limit as usize);
                Ok(ProductPage { products, more })
            })
            .await
    }

    async fn inventory(&self, sku: &str) -> Result<Option<InventoryItem>, StoreError> {
        let sku = sku.to_string();
        self.db.read(move |c| item_of(c, &sku).map_err(sql)).await
    }

    async fn quantities(&self, skus: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        let skus = skus.to_vec();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT quantity FROM inventory WHERE sku = ?1").map_err(sql)?;
                let mut found = HashMap::new();
                for sku in skus {
                    if let Some(q) = stmt.query_row([&sku], |r| r.get::<_, i64>(0)).optional().map_err(sql)? {
                        found.insert(sku, q);
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn set_stock(&self, sku: &str, quantity: i64, now: DateTime<Utc>) -> Result<Option<InventoryItem>, StoreError> {
        let sku = sku.to_string();
        self.db
            .write(move |tx| -> Result<_, StoreError> {
                if stock_of(tx, &sku).map_err(sql)?.is_none() {
                    return Ok(None);
                }
                write_stock(tx, &sku, quantity, &to_text(now)).map_err(sql)?;
                item_of(tx, &sku).map_err(sql)
            })
            .await
    }

    async fn adjust_stock(&self, sku: &str, delta: i64, now: DateTime<Utc>) -> Result<Adjusted, StoreError> {
        let sku = sku.to_string();
        self.db
            .write(move |tx| -> Result<_, StoreError> {
                let Some(available) = stock_of(tx, &sku).map_err(sql)? else { return Ok(Adjusted::NotFound) };
                let Ok(quantity) = adjusted(&sku, available, delta) else { return Ok(Adjusted::Insufficient { available }) };
                write_stock(tx, &sku, quantity, &to_text(now)).map_err(sql)?;
                Ok(item_of(tx, &sku).map_err(sql)?.map(Adjusted::Done).unwrap_or(Adjusted::NotFound))
            })
            .await
    }

    async fn reserve(&self, message_id: &str, order_id: &str, items: &[MessageItem], reply: Emit) -> Result<Reserved, StoreError> {
        let (message_id, order_id, items, outbox) = (message_id.to_string(), order_id.to_string(), items.to_vec(), self.outbox.clone());
        let outcome = self
            .db
            .write(move |tx| -> Result<_, StoreError> {
                if !mark_processed(tx, &message_id, reply.now).map_err(sql)? {
                    return Ok(Reserved::Duplicate);
                }
                let now = to_text(reply.now);
                // The same order asked again under another message id: answer as before,
                // never reserve twice.
                let earlier: Option<(String, Option<String>)> = tx
                    .prepare_cached("SELECT status, reason FROM reservations WHERE order_id = ?1")
                    .and_then(|mut s| s.query_row([&order_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                    .map_err(sql)?;
                let outcome = match earlier {
                    Some((status, reason)) if status == FAILED => Reserved::Failed { reason: reason.unwrap_or_default() },
                    Some((status, _)) if status == RELEASED => Reserved::Failed { reason: "the order's stock was already released".into() },
                    Some(_) => Reserved::Reserved,
                    None => {
                        let mut stock = HashMap::new();
                        for item in &items {
                            if let Some(q) = stock_of(tx, &item.sku).map_err(sql)? {
                                stock.insert(item.sku.clone(), q);
                            }
                        }
                        let (status, reason, outcome) = match reservation::plan(&items, &stock) {
                            Ok(levels) => {
                                for (sku, quantity) in levels {
                                    write_stock(tx, &sku, quantity, &now).map_err(sql)?;
                                }
                                (RESERVED, None, Reserved::Reserved)
                            }
                            Err(reason) => (FAILED, Some(reason.clone()), Reserved::Failed { reason }),
                        };
                        let items_json = serde_json::to_string(&items).map_err(|e| StoreError::Failed(e.to_string()))?;
                        tx.prepare_cached(
                            "INSERT INTO reservations (order_id, items, status, reason, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        )
                        .and_then(|mut s| s.execute(params![order_id, items_json, status, reason, now]))
                        .map_err(sql)?;
                        outcome
                    }
                };
                let answer = match &outcome {
                    Reserved::Failed { reason } => {
                        Message::InventoryReservationFailed { order_id: order_id.clone(), reason: Some(reason.clone()), timestamp: reply.now }
                    }
                    _ => Message::InventoryReserved { order_id: order_id.clone(), timestamp: reply.now },
                };
                outbox.enqueue(tx, &Envelope::new(reply.message_id.clone(), answer), &reply.trace, reply.now).map_err(sql)?;
                Ok(outcome)
            })
            .await?;
        if outcome != Reserved::Duplicate {
            self.outbox.wake_relay();
        }
        Ok(outcome)
    }

    async fn release(&self, message_id: &str, order_id: &str, now: DateTime<Utc>) -> Result<Released, StoreError> {
        let (message_id, order_id) = (message_id.to_string(), order_id.to_string());
        self.db
            .write(move |tx| -> Result<_, StoreError> {
                if !mark_processed(tx, &message_id, now).map_err(sql)? {
                    return Ok(Released::Duplicate);
                }
                let held: Option<String> = tx
                    .prepare_cached("SELECT items FROM reservations WHERE order_id = ?1 AND status = ?2")
                    .and_then(|mut s| s.query_row(params![order_id, RESERVED], |r| r.get(0)).optional())
                    .map_err(sql)?;
                let Some(items_json) = held else { return Ok(Released::NothingHeld) };
                let items: Vec<MessageItem> = serde_json::from_str(&items_json).map_err(|e| StoreError::Failed(e.to_string()))?;
                let now = to_text(now);
                let mut give_back =
                    tx.prepare_cached("UPDATE inventory SET quantity = quantity + ?2, updated_at = ?3 WHERE sku = ?1").map_err(sql)?;
                for item in items {
                    give_back.execute(params![item.sku, item.quantity, now]).map_err(sql)?;
                }
                tx.prepare_cached("UPDATE reservations SET status = ?2, updated_at = ?3 WHERE order_id = ?1")
                    .and_then(|mut s| s.execute(params![order_id, RELEASED, now]))
                    .map_err(sql)?;
                Ok(Released::Released)
            })
            .await
    }
}
