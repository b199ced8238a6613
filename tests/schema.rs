//! The three backends' migrations: the same numbered steps, and, built from empty, the
//! same tables, columns and indexes. The only expected difference is SQLite's partial
//! indexes (its customer-service, group, retry and notice indexes skip 1:1 rows).

#[cfg(all(feature = "mysql", feature = "postgres"))]
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The steps of one backend's migrations directory, by name.
fn steps(backend: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} should be readable: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_backend_has_the_same_numbered_steps() {
    let sqlite = steps("sqlite");
    assert!(sqlite.len() >= 7, "{sqlite:?}");
    assert_eq!(steps("mysql"), sqlite);
    assert_eq!(steps("postgres"), sqlite);
    for backend in ["sqlite", "mysql", "postgres"] {
        for step in steps(backend) {
            for file in ["up.sql", "down.sql"] {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(backend)
                    .join(&step)
                    .join(file);
                let sql = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()));
                assert!(
                    !sql.trim().is_empty(),
                    "{}: a step that does nothing says so (SELECT 1)",
                    path.display()
                );
            }
        }
    }
}

/// A table's columns, and its indexes as (unique, columns).
#[cfg(all(feature = "mysql", feature = "postgres"))]
#[derive(Debug, PartialEq, Eq)]
struct Table {
    columns: BTreeSet<String>,
    indexes: BTreeMap<String, (bool, Vec<String>)>,
}

#[cfg(all(feature = "mysql", feature = "postgres"))]
type Schema = BTreeMap<String, Table>;

/// Indexes the migrations name are `{table}_...`; those a `UNIQUE` column constraint
/// makes are named by each backend its own way, so they are keyed by what they index.
#[cfg(all(feature = "mysql", feature = "postgres"))]
fn index_key(table: &str, name: &str, unique: bool, columns: &[String]) -> String {
    let named = name.starts_with(&format!("{table}_")) && !name.ends_with("_key");
    match named {
        true => name.to_string(),
        false => format!(
            "{}({})",
            if unique { "unique" } else { "index" },
            columns.join(",")
        ),
    }
}

/// The indexes SQLite makes partial (migration steps 5, 6 and 2026-12-01-000001).
#[cfg(all(feature = "mysql", feature = "postgres"))]
const SQLITE_PARTIAL: [&str; 5] = [
    "messages_by_consumer",
    "messages_by_group",
    "messages_by_shop",
    "messages_client_id",
    "messages_notices",
];

#[cfg(all(feature = "mysql", feature = "postgres"))]
mod sqlite {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};

    use super::{Schema, Table};

    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }

    #[derive(QueryableByName)]
    struct IndexRow {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        unique: i64,
        #[diesel(sql_type = BigInt)]
        partial: i64,
    }

    /// The schema of a migrated SQLite file, and its partial indexes.
    pub fn schema(path: &str) -> (Schema, Vec<String>) {
        let mut c = SqliteConnection::establish(path).unwrap();
        let tables: Vec<Name> = diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations'",
        )
        .load(&mut c)
        .unwrap();
        let mut schema = Schema::new();
        let mut partial = Vec::new();
        for t in tables {
            let columns =
                diesel::sql_query(format!("SELECT name FROM pragma_table_info('{}')", t.name))
                    .load::<Name>(&mut c)
                    .unwrap()
                    .into_iter()
                    .map(|n| n.name)
                    .collect();
            let mut indexes = std::collections::BTreeMap::new();
            let rows: Vec<IndexRow> = diesel::sql_query(format!(
                "SELECT name, \"unique\", partial FROM pragma_index_list('{}') WHERE origin != 'pk'",
                t.name
            ))
            .load(&mut c)
            .unwrap();
            for i in rows {
                let cols: Vec<String> = diesel::sql_query(format!(
                    "SELECT name FROM pragma_index_info('{}') ORDER BY seqno",
                    i.name
                ))
                .load::<Name>(&mut c)
                .unwrap()
                .into_iter()
                .map(|n| n.name)
                .collect();
                if i.partial == 1 {
                    partial.push(i.name.clone());
                }
                let key = super::index_key(&t.name, &i.name, i.unique == 1, &cols);
                indexes.insert(key, (i.unique == 1, cols));
            }
            schema.insert(t.name, Table { columns, indexes });
        }
        partial.sort();
        (schema, partial)
    }
}

#[cfg(all(feature = "mysql", feature = "postgres"))]
mod servers {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};

    use super::{Schema, Table};

    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
    }

    #[derive(QueryableByName)]
    struct IndexColumn {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        index_name: String,
        #[diesel(sql_type = BigInt)]
        is_unique: i64,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = BigInt)]
        position: i64,
    }

    fn assemble(columns: Vec<Column>, mut index_columns: Vec<IndexColumn>) -> Schema {
        let mut schema = Schema::new();
        for c in columns {
            if c.table_name == "__diesel_schema_migrations" {
                continue;
            }
            schema
                .entry(c.table_name)
                .or_insert_with(|| Table {
                    columns: Default::default(),
                    indexes: Default::default(),
                })
                .columns
                .insert(c.column_name);
        }
        index_columns.sort_by_key(|i| i.position);
        for i in index_columns {
            if let Some(t) = schema.get_mut(&i.table_name) {
                t.indexes
                    .entry(i.index_name)
                    .or_insert((i.is_unique == 1, Vec::new()))
                    .1
                    .push(i.column_name);
            }
        }
        for (table, t) in schema.iter_mut() {
            t.indexes = std::mem::take(&mut t.indexes)
                .into_iter()
                .map(|(name, (unique, cols))| {
                    (
                        super::index_key(table, &name, unique, &cols),
                        (unique, cols),
                    )
                })
                .collect();
        }
        schema
    }

    /// `base` with its database name replaced by `name`.
    fn with_database(base: &str, name: &str) -> String {
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let root = match base[scheme_end..].find('/') {
            Some(i) => &base[..scheme_end + i],
            None => base,
        };
        format!("{root}/{name}")
    }

    /// A throwaway MySQL database, migrated by shopchat; dropped when the guard goes.
    pub struct Throwaway {
        base: String,
        name: String,
        mysql: bool,
    }

    impl Drop for Throwaway {
        fn drop(&mut self) {
            if self.mysql {
                if let Ok(mut c) = MysqlConnection::establish(&self.base) {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.name));
                }
            } else if let Ok(mut c) = PgConnection::establish(&self.base) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }

    fn migrate(url: &str) {
        shopchat::db::connect(url, 1, Default::default())
            .expect("the migrations should run from empty");
    }

    pub fn mysql(base: &str) -> (Throwaway, Schema) {
        let name = format!("shopchat_t{}_schema", std::process::id());
        let mut admin = MysqlConnection::establish(base).expect("MySQL should accept connections");
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4"
            ))
            .unwrap();
        let guard = Throwaway {
            base: base.to_string(),
            name: name.clone(),
            mysql: true,
        };
        migrate(&with_database(base, &name));
        let columns = diesel::sql_query(format!(
            "SELECT CAST(table_name AS CHAR) AS table_name, CAST(column_name AS CHAR) AS column_name \
             FROM information_schema.columns WHERE table_schema = '{name}'"
        ))
        .load(&mut admin)
        .unwrap();
        let indexes = diesel::sql_query(format!(
            "SELECT CAST(table_name AS CHAR) AS table_name, CAST(index_name AS CHAR) AS index_name, \
             CAST(non_unique = 0 AS SIGNED) AS is_unique, CAST(column_name AS CHAR) AS column_name, \
             CAST(seq_in_index AS SIGNED) AS position \
             FROM information_schema.statistics WHERE table_schema = '{name}' AND index_name != 'PRIMARY'"
        ))
        .load(&mut admin)
        .unwrap();
        (guard, assemble(columns, indexes))
    }

    pub fn postgres(base: &str) -> (Throwaway, Schema) {
        let name = format!("shopchat_t{}_schema", std::process::id());
        let mut admin =
            PgConnection::establish(base).expect("PostgreSQL should accept connections");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let guard = Throwaway {
            base: base.to_string(),
            name: name.clone(),
            mysql: false,
        };
        let url = with_database(base, &name);
        migrate(&url);
        let mut c = PgConnection::establish(&url).unwrap();
        let columns = diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns WHERE table_schema = 'public'",
        )
        .load(&mut c)
        .unwrap();
        let indexes = diesel::sql_query(
            "SELECT t.relname::text AS table_name, i.relname::text AS index_name, \
             (CASE WHEN x.indisunique THEN 1 ELSE 0 END)::int8 AS is_unique, a.attname::text AS column_name, k.n AS position \
             FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace ns ON ns.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE ns.nspname = 'public' AND NOT x.indisprimary",
        )
        .load(&mut c)
        .unwrap();
        (guard, assemble(columns, indexes))
    }
}

/// Built from empty, SQLite, MariaDB and PostgreSQL have the same tables, columns and
/// indexes; SQLite's partial indexes are exactly the expected ones.
#[cfg(all(feature = "mysql", feature = "postgres"))]
#[test]
fn every_backend_builds_the_same_schema() {
    let urls = (
        std::env::var("SHOPCHAT_TEST_MYSQL_URL"),
        std::env::var("SHOPCHAT_TEST_POSTGRES_URL"),
    );
    let (Ok(mysql_url), Ok(pg_url)) = urls else {
        assert!(
            std::env::var("SHOPCHAT_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "SHOPCHAT_REQUIRE_SERVICES=1 but SHOPCHAT_TEST_MYSQL_URL / SHOPCHAT_TEST_POSTGRES_URL are unset"
        );
        eprintln!("skipped: set SHOPCHAT_TEST_MYSQL_URL and SHOPCHAT_TEST_POSTGRES_URL to compare schemas");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = format!("{}/schema.db", dir.path().display());
    shopchat::db::connect(&format!("sqlite://{path}"), 1, Default::default())
        .expect("SQLite should migrate");
    let (sqlite, partial) = sqlite::schema(&path);
    assert_eq!(partial, SQLITE_PARTIAL);
    assert!(
        sqlite.contains_key("messages") && sqlite.len() >= 9,
        "{sqlite:#?}"
    );
    let (_mysql_db, mysql) = servers::mysql(&mysql_url);
    let (_pg_db, postgres) = servers::postgres(&pg_url);
    assert_eq!(mysql, sqlite, "MariaDB differs from SQLite");
    assert_eq!(postgres, sqlite, "PostgreSQL differs from SQLite");
}
