//! The embedded order store: one SQLite file holds customers, orders, idempotency keys and
//! the messaging tables, so an order and its outgoing message commit in one transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use salve_common::db::{Db, DbError};
use salve_common::messages::{Envelope, Message};
use salve_common::messaging::outbox::{Outbox, mark_processed};
use salve_common::time::{from_text, to_text};
use salve_common::trace_context::TraceParent;

use crate::domain::customer::Customer;
use crate::domain::order::{Order, OrderStatus, Reaction, ReservationResult, on_reservation_result};
use crate::domain::ports::{Applied, Deleted, Emit, IdempotencyKey, OrderPage, OrderQuery, OrderStore, PlaceOutcome, StoreError};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    address TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    items TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    cancellation_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, created_at DESC);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    order_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
";

pub struct SqliteOrderStore {
    db: Db,
    outbox: Outbox,
}

impl SqliteOrderStore {
    pub fn new(db: Db, outbox: Outbox) -> Self {
        Self { db, outbox }
    }
}

/// Storage errors are the store's business: busy means "retry", anything else is a failure.
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

/// A macro so statement texts can be literals (`concat!`), built at compile time.
macro_rules! order_columns {
    () => {
        "id, customer_id, items, total_cents, status, cancellation_reason, created_at, updated_at"
    };
}
const ORDER_COLUMNS: &str = order_columns!();
const SELECT_ORDER: &str = concat!("SELECT ", order_columns!(), " FROM orders WHERE id = ?1");
const INSERT_ORDER: &str = concat!("INSERT INTO orders (", order_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?6)");

fn row_to_order(r: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    let corrupt = |i: usize, what: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into());
    let items: String = r.get(2)?;
    let status: String = r.get(4)?;
    let created: String = r.get(6)?;
    let updated: String = r.get(7)?;
    Ok(Order {
        id: r.get(0)?,
        customer_id: r.get(1)?,
        items: serde_json::from_str(&items).map_err(|e| corrupt(2, e.to_string()))?,
        total: salve_common::money::Money::from_cents(r.get(3)?),
        status: OrderStatus::parse(&status).ok_or_else(|| corrupt(4, format!("unknown status {status}")))?,
        cancellation_reason: r.get(5)?,
        created_at: from_text(&created).map_err(|e| corrupt(6, e.to_string()))?,
        updated_at: from_text(&updated).map_err(|e| corrupt(7, e.to_string()))?,
    })
}

fn load_order(tx: &Connection, id: &str) -> rusqlite::Result<Option<Order>> {
    tx.prepare_cached(SELECT_ORDER)?.query_row([id], row_to_order).optional()
}

#[async_trait]
impl OrderStore for SqliteOrderStore {
    async fn insert_customer(&self, c: &Customer) -> Result<(), StoreError> {
        let c = c.clone();
        self.db
            .write(move |tx| -> Result<_, StoreError> {
                tx.prepare_cached("INSERT INTO customers (id, name, email, address, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .and_then(|mut s| s.execute(params![c.id, c.name, c.email, c.address, to_text(c.created_at)]))
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        let id = id.to_string();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT id, name, email, address, created_at FROM customers WHERE id = ?1").map_err(sql)?;
                stmt.query_row([id], |r| {
                    let created: String = r.get(4)?;
                    Ok(Customer {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        email: r.get(2)?,
                        address: r.get(3)?,
                        created_at: from_text(&created)
                            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into()))?,
                    })
                })
                .optional()
                .map_err(sql)
            })
            .await
    }

    async fn place_order(
        &self,
        order: &Order,
        reserve: &Envelope,
        trace: &TraceParent,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOutcome, StoreError> {
        let (order, reserve, trace, outbox) = (order.clone(), reserve.clone(), trace.clone(), self.outbox.clone());
        let outcome = self
            .db
            .write(move |tx| -> Result<_, StoreError> {
                if let Some(key) = &key {
                    let seen: Option<(String, String)> = tx
                        .prepare_cached("SELECT request_hash, order_id FROM idempotency_keys WHERE key = ?1")
                        .and_then(|mut s| s.query_row([&key.key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                        .map_err(sql)?;
                    match seen {
                        Some((hash, order_id)) if hash == key.request_hash => return Ok(PlaceOutcome::Replayed { order_id }),
                        Some(_) => return Ok(PlaceOutcome::KeyReused),
                        None => {
                            tx.prepare_cached(
                                "INSERT INTO idempotency_keys (key, request_hash, order_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                            )
                            .and_then(|mut s| s.execute(params![key.key, key.request_hash, order.id, to_text(order.created_at)]))
                            .map_err(sql)?;
                        }
                    }
                }
                let items = serde_json::to_string(&order.items).map_err(|e| StoreError::Failed(e.to_string()))?;
                tx.prepare_cached(INSERT_ORDER)
                    .and_then(|mut s| {
                        s.execute(params![
                            order.id,
                            order.customer_id,
                            items,
                            order.total.cents(),
                            order.status.as_str(),
                            to_text(order.created_at)
                        ])
                    })
                    .map_err(sql)?;
                outbox.enqueue(tx, &reserve, &trace, order.created_at).map_err(sql)?;
                Ok(PlaceOutcome::Placed)
            })
            .await?;
        if outcome == PlaceOutcome::Placed {
            self.outbox.wake_relay();
        }
        Ok(outcome)
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let id = id.to_string();
        self.db.read(move |c| load_order(c, &id).map_err(sql)).await
    }

    async fn list_orders(&self, q: &OrderQuery) -> Result<OrderPage, StoreError> {
        let q = q.clone();
        self.db
            .read(move |c| {
                let (after_at, after_id) = match &q.after {
                    Some((at, id)) => (Some(to_text(*at)), Some(id.clone())),
                    None => (None, None),
                };
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {ORDER_COLUMNS} FROM orders
                         WHERE customer_id = ?1
                           AND (?2 IS NULL OR status = ?2)
                           AND (?3 IS NULL OR created_at >= ?3)
                           AND (?4 IS NULL OR created_at <= ?4)
                           AND (?5 IS NULL OR (created_at, id) < (?5, ?6))
                         ORDER BY created_at DESC, id DESC
                         LIMIT ?7"
                    ))
                    .map_err(sql)?;
                let mut orders = stmt
                    .query_map(
                        params![
                            q.customer_id,
                            q.status.map(OrderStatus::as_str),
                            q.start.map(to_text),
                            q.end.map(to_text),
                            after_at,
                            after_id,
                            q.limit + 1
                        ],
                        row_to_order,
                    )
                    .map_err(sql)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql)?;
                let more = orders.len() > q.limit as usize;
                orders.truncate(q.limit as usize);
                Ok(OrderPage { orders, more })
            })
            .await
    }

    async fn delete_order(&self, id: &str, emit: Emit) -> Result<Deleted, StoreError> {
        let (id, outbox) = (id.to_string(), self.outbox.clone());
        let deleted = self
            .db
            .write(move |tx| -> Result<_, StoreError> {
                let Some(order) = load_order(tx, &id).map_err(sql)? else { return Ok(Deleted::NotFound) };
                tx.prepare_cached("DELETE FROM orders WHERE id = ?1").and_then(|mut s| s.execute([&id])).map_err(sql)?;
                let released_stock = order.must_release_on_delete();
                if released_stock {
                    let release =
                        Envelope::new(emit.message_id.clone(), Message::ReleaseInventory { order_id: id.clone(), timestamp: emit.now });
                    outbox.enqueue(tx, &release, &emit.trace, emit.now).map_err(sql)?;
                }
                Ok(Deleted::Deleted { released_stock })
            })
            .await?;
        if matches!(deleted, Deleted::Deleted { released_stock: true }) {
            self.outbox.wake_relay();
        }
        Ok(deleted)
    }

    async fn apply_reservation_result(
        &self,
        message_id: &str,
        order_id: &str,
        result: &ReservationResult,
        emit: Emit,
    ) -> Result<Applied, StoreError> {
        let (message_id, order_id, result, outbox) = (message_id.to_string(), order_id.to_string(), result.clone(), self.outbox.clone());
        let (applied, woke) = self
            .db
            .write(move |tx| -> Result<_, StoreError> {
                if !mark_processed(tx, &message_id, emit.now).map_err(sql)? {
                    return Ok((Applied::Duplicate, false));
                }
                let order = load_order(tx, &order_id).map_err(sql)?;
                match on_reservation_result(order.as_ref(), &result) {
                    Reaction::Settle { status, reason } => {
                        tx.prepare_cached("UPDATE orders SET status = ?2, cancellation_reason = ?3, updated_at = ?4 WHERE id = ?1")
                            .and_then(|mut s| s.execute(params![order_id, status.as_str(), reason, to_text(emit.now)]))
                            .map_err(sql)?;
                        Ok((Applied::Applied, false))
                    }
                    Reaction::ReleaseOrphanedStock => {
                        let release = Envelope::new(
                            emit.message_id.clone(),
                            Message::ReleaseInventory { order_id: order_id.clone(), timestamp: emit.now },
                        );
                        outbox.enqueue(tx, &release, &emit.trace, emit.now).map_err(sql)?;
                        Ok((Applied::Applied, true))
                    }
                    Reaction::Nothing => Ok((Applied::Applied, false)),
                }
            })
            .await?;
        if woke {
            self.outbox.wake_relay();
        }
        Ok(applied)
    }

    async fn count_by_status(&self) -> Result<HashMap<OrderStatus, i64>, StoreError> {
        // Counts every order: on a blocking thread.
        self.db
            .scan(|c| {
                let mut stmt = c.prepare_cached("SELECT status, count(*) FROM orders GROUP BY status").map_err(sql)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(sql)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql)?;
                Ok(rows.into_iter().filter_map(|(s, n)| OrderStatus::parse(&s).map(|s| (s, n))).collect())
            })
            .await
    }
}
