//! Brings a database file to the layout its service declares, keeping its rows.
//!
//! A service declares its schema as `CREATE TABLE/INDEX IF NOT EXISTS` statements. On a new
//! file they create everything. On a file written by an older build, a table whose declared
//! definition has changed (a `WITHOUT ROWID`, a dropped `AUTOINCREMENT`, a new column with a
//! default) would otherwise keep its old layout forever, since `IF NOT EXISTS` skips it. So
//! each table is compared with its declaration, and a changed one is rebuilt the way SQLite
//! documents for changes `ALTER TABLE` cannot make (https://www.sqlite.org/lang_altertable.html,
//! "Making Other Kinds Of Table Schema Changes"): create the new table under another name, copy
//! the columns both layouts have, drop the old one, rename the new one, recreate the indexes,
//! check foreign keys; all in one transaction, with foreign keys off around it. A changed index
//! is dropped and created again. Tables the declaration does not mention are left alone.
//!
//! The declared definitions are read back from an in-memory database that ran the same
//! statements, so they are compared in exactly the form SQLite keeps them in `sqlite_master`.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::db::DbError;

/// Applies `schema` to `conn` (a write connection outside any transaction); returns the names
/// of the tables it rebuilt.
pub fn apply(conn: &Connection, schema: &str) -> Result<Vec<String>, DbError> {
    let declared = Connection::open_in_memory()?;
    declared.execute_batch(schema)?;
    let wanted = definitions(&declared)?;
    let existing = definitions(conn)?;
    let changed_tables: Vec<&Definition> = wanted
        .values()
        .filter(|d| d.kind == "table")
        .filter(|d| existing.get(&d.name).is_some_and(|e| e.kind == "table" && !same_sql(&e.sql, &d.sql)))
        .collect();
    let changed_indexes: Vec<&Definition> = wanted
        .values()
        .filter(|d| d.kind == "index")
        .filter(|d| existing.get(&d.name).is_some_and(|e| !same_sql(&e.sql, &d.sql)))
        .collect();
    if changed_tables.is_empty() && changed_indexes.is_empty() {
        conn.execute_batch(schema)?;
        return Ok(Vec::new());
    }
    // Foreign keys cannot be switched inside a transaction, so around it; as they were after.
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys=OFF;")?;
    let rebuilt = rebuild(conn, schema, &changed_tables, &changed_indexes);
    if enforced {
        conn.execute_batch("PRAGMA foreign_keys=ON;")?;
    }
    rebuilt
}

fn rebuild(conn: &Connection, schema: &str, tables: &[&Definition], indexes: &[&Definition]) -> Result<Vec<String>, DbError> {
    conn.execute_batch("BEGIN IMMEDIATE;")?;
    let result = (|| -> Result<Vec<String>, DbError> {
        for index in indexes {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {};", quoted(&index.name)))?;
        }
        let mut rebuilt = Vec::new();
        for table in tables {
            let scratch = format!("{}__rebuild", table.name);
            let create = renamed(&table.sql, &table.name, &scratch)
                .ok_or_else(|| DbError::Task(format!("cannot read the declared definition of table {}", table.name)))?;
            conn.execute_batch(&create)?;
            let old_columns = columns(conn, &table.name)?;
            let common: Vec<String> =
                columns(conn, &scratch)?.into_iter().filter(|c| old_columns.contains(c)).map(|c| quoted(&c)).collect();
            let list = common.join(", ");
            conn.execute_batch(&format!(
                "INSERT INTO {scratch} ({list}) SELECT {list} FROM {old};
                 DROP TABLE {old};
                 ALTER TABLE {scratch} RENAME TO {old};",
                scratch = quoted(&scratch),
                old = quoted(&table.name),
            ))?;
            rebuilt.push(table.name.clone());
        }
        // Recreates the indexes the dropped tables took with them, and the changed ones.
        conn.execute_batch(schema)?;
        let violations: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        if violations > 0 {
            return Err(DbError::Task(format!("rebuilding {rebuilt:?} would break {violations} foreign key reference(s)")));
        }
        Ok(rebuilt)
    })();
    // A failed COMMIT (a full disk) leaves the transaction open: it is rolled back like any
    // other failure, so the file keeps its old layout whole.
    match result.and_then(|rebuilt| conn.execute_batch("COMMIT;").map(|()| rebuilt).map_err(DbError::from)) {
        Ok(rebuilt) => {
            tracing::info!(tables = ?rebuilt, "database tables rebuilt to the declared layout");
            Ok(rebuilt)
        }
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK;");
            }
            Err(e)
        }
    }
}

struct Definition {
    kind: String,
    name: String,
    sql: String,
}

/// Tables and indexes written by a statement (not SQLite's own automatic indexes).
fn definitions(conn: &Connection) -> Result<HashMap<String, Definition>, DbError> {
    let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL")?;
    let rows = stmt.query_map([], |r| Ok(Definition { kind: r.get(0)?, name: r.get(1)?, sql: r.get(2)? }))?;
    let mut found = HashMap::new();
    for row in rows {
        let row = row?;
        if !row.name.starts_with("sqlite_") {
            found.insert(row.name.clone(), row);
        }
    }
    Ok(found)
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

/// Definitions are equal when they differ at most in white space and identifier quotes (a
/// rebuilt table's statement names it in quotes: SQLite's RENAME writes the new name so).
fn same_sql(a: &str, b: &str) -> bool {
    let words = |sql: &str| sql.replace('"', "").split_whitespace().map(str::to_string).collect::<Vec<_>>();
    words(a) == words(b)
}

/// `CREATE TABLE <name> (...)` with another name.
fn renamed(sql: &str, name: &str, new_name: &str) -> Option<String> {
    let rest = sql.trim_start().strip_prefix("CREATE TABLE")?.trim_start();
    let rest = rest.strip_prefix(name).or_else(|| rest.strip_prefix(&quoted(name)))?;
    Some(format!("CREATE TABLE {}{rest}", quoted(new_name)))
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "
        CREATE TABLE IF NOT EXISTS parents (id TEXT PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS children (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            parent TEXT NOT NULL REFERENCES parents(id),
            note TEXT
        );
        CREATE INDEX IF NOT EXISTS children_by_parent ON children (parent);
        CREATE TABLE IF NOT EXISTS other (v INTEGER);";
    /// `parents` becomes WITHOUT ROWID, `children` loses AUTOINCREMENT and `note` and gains a
    /// column with a default; `other` is not declared any more.
    const NEW: &str = "
        CREATE TABLE IF NOT EXISTS parents (id TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS children (
            seq INTEGER PRIMARY KEY,
            parent TEXT NOT NULL REFERENCES parents(id),
            attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS children_by_parent ON children (parent, seq);";

    fn table_sql(conn: &Connection, name: &str) -> String {
        conn.query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [name], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_file_from_an_older_layout_is_rebuilt_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys=ON;").unwrap();
        assert!(apply(&conn, OLD).unwrap().is_empty(), "a new file is created, not rebuilt");
        conn.execute_batch(
            "INSERT INTO parents VALUES ('p1', 'one'), ('p2', 'two');
             INSERT INTO children (parent, note) VALUES ('p1', 'a'), ('p2', 'b'), ('p1', 'c');
             INSERT INTO other VALUES (7);",
        )
        .unwrap();

        let mut rebuilt = apply(&conn, NEW).unwrap();
        rebuilt.sort();
        assert_eq!(rebuilt, vec!["children", "parents"]);
        assert!(table_sql(&conn, "parents").ends_with("WITHOUT ROWID"));
        assert!(!table_sql(&conn, "children").contains("AUTOINCREMENT"));
        assert!(table_sql(&conn, "children_by_parent").contains("(parent, seq)"), "the changed index was recreated");
        let rows: Vec<(i64, String, i64)> = conn
            .prepare("SELECT seq, parent, attempts FROM children ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![(1, "p1".into(), 0), (2, "p2".into(), 0), (3, "p1".into(), 0)], "rows and their keys kept");
        let parents: i64 = conn.query_row("SELECT count(*) FROM parents", [], |r| r.get(0)).unwrap();
        assert_eq!(parents, 2);
        let other: i64 = conn.query_row("SELECT v FROM other", [], |r| r.get(0)).unwrap();
        assert_eq!(other, 7, "an undeclared table is left alone");
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1, "foreign keys are enforced again afterwards, as before");
        assert!(conn.execute("INSERT INTO children (parent) VALUES ('nobody')", []).is_err(), "and still checked");

        assert!(apply(&conn, NEW).unwrap().is_empty(), "a file already in the declared layout is left as it is");
    }

    #[test]
    fn a_rebuild_that_would_break_a_reference_changes_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        apply(&conn, OLD).unwrap();
        // Written with foreign keys off (as an old build or a hand edit could have).
        conn.execute_batch("PRAGMA foreign_keys=OFF; INSERT INTO children (parent, note) VALUES ('ghost', 'x');").unwrap();
        let err = apply(&conn, NEW).unwrap_err();
        assert!(err.to_string().contains("foreign key"), "{err}");
        assert!(table_sql(&conn, "children").contains("AUTOINCREMENT"), "rolled back: the old layout is intact");
        let notes: i64 = conn.query_row("SELECT count(*) FROM children WHERE note = 'x'", [], |r| r.get(0)).unwrap();
        assert_eq!(notes, 1);
    }
}
