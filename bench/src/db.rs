//! The bench's own database, so that it never touches other data: a fresh
//! `makima_bench_<random>` database on the PostgreSQL server it is given (dropped at
//! the end unless `--keep`), or an SQLite file in its scratch directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
};

use crate::error::{Error, Result};

/// A database the bench runs against.
pub struct BenchDb {
    pub url: String,
    pub backend: DatabaseBackend,
    /// Set when the bench created the database (and so may drop it).
    created: Option<Created>,
}

enum Created {
    /// The file lives in the scratch directory and goes with it.
    Sqlite,
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl BenchDb {
    /// Creates a database for this run: `spec` is `sqlite` (any `sqlite:` URL means the
    /// same: a new file in `scratch`) or a PostgreSQL server URL
    /// (`postgres://USER@HOST:PORT`, any database name in it is ignored).
    pub async fn create(spec: &str, scratch: &Path) -> Result<Self> {
        if spec == "sqlite" || spec.starts_with("sqlite:") {
            let file = scratch.join("bench.db");
            return Ok(Self {
                url: format!("sqlite://{}?mode=rwc", file.display()),
                backend: DatabaseBackend::Sqlite,
                created: Some(Created::Sqlite),
            });
        }
        if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
            return Err(Error::msg(format!(
                "--database-url must be `sqlite` or postgres://USER@HOST:PORT, not {spec:?}"
            )));
        }
        let base = server_base(spec);
        let name = format!("makima_bench_{}", uuid::Uuid::now_v7().simple());
        let admin_url = format!("{base}/postgres");
        let admin = connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        Ok(Self {
            url: format!("{base}/{name}"),
            backend: DatabaseBackend::Postgres,
            created: Some(Created::Postgres { admin_url, name }),
        })
    }

    /// An already seeded database (from an earlier run with `--keep`); never dropped.
    pub fn existing(url: &str) -> Result<Self> {
        let backend = if url.starts_with("sqlite:") {
            DatabaseBackend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DatabaseBackend::Postgres
        } else {
            return Err(Error::msg(format!("unsupported database URL {url:?}")));
        };
        Ok(Self {
            url: url.to_owned(),
            backend,
            created: None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.backend {
            DatabaseBackend::Postgres => "postgres",
            _ => "sqlite",
        }
    }

    pub async fn connect(&self) -> Result<DatabaseConnection> {
        connect(&self.url).await
    }

    /// Bytes on disk: the whole database, then each big table with its indexes.
    pub async fn sizes(&self) -> Result<Vec<(String, u64)>> {
        let db = self.connect().await?;
        let mut sizes = Vec::new();
        match self.backend {
            DatabaseBackend::Postgres => {
                let total = scalar(&db, "SELECT pg_database_size(current_database()) AS n").await?;
                sizes.push(("database".to_owned(), total as u64));
                for table in TABLES {
                    let sql = format!("SELECT pg_total_relation_size('{table}') AS n");
                    sizes.push((table.to_owned(), scalar(&db, &sql).await? as u64));
                }
            }
            _ => {
                db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await?;
                let file = sqlite_file(&self.url);
                let mut total = 0;
                for suffix in ["", "-wal", "-shm"] {
                    let path = PathBuf::from(format!("{}{suffix}", file.display()));
                    total += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                }
                sizes.push(("database".to_owned(), total));
                for table in TABLES {
                    // dbstat counts the table's pages and those of its indexes.
                    let sql = format!(
                        "SELECT COALESCE(SUM(d.pgsize), 0) AS n FROM dbstat d \
                         JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name = '{table}'"
                    );
                    if let Ok(n) = scalar(&db, &sql).await {
                        sizes.push((table.to_owned(), n as u64));
                    }
                }
            }
        }
        db.close().await?;
        Ok(sizes)
    }

    /// Drops the database if this run created it (SQLite files go with the scratch
    /// directory). Returns what was kept, if anything, for the user.
    pub async fn finish(self, keep: bool) -> Result<Option<String>> {
        match self.created {
            None => Ok(None),
            Some(_) if keep => Ok(Some(self.url)),
            Some(Created::Sqlite) => Ok(None),
            Some(Created::Postgres { admin_url, name }) => {
                let admin = connect(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await?;
                Ok(None)
            }
        }
    }
}

/// The tables that hold the data set.
const TABLES: [&str; 2] = ["history_events", "task_events"];

/// `postgres://user@host:port/db?x` → `postgres://user@host:port`.
fn server_base(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

fn sqlite_file(url: &str) -> PathBuf {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

async fn connect(url: &str) -> Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(2)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .map_err(|e| Error::msg(format!("cannot connect to {url}: {e}")))
}

/// The `n` column of a one-row query.
pub async fn scalar(db: &impl ConnectionTrait, sql: &str) -> Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| Error::msg(format!("no row from {sql}")))?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// The scratch directory of one run, removed on drop unless kept.
pub struct Scratch {
    pub path: PathBuf,
    pub keep: bool,
}

impl Scratch {
    pub fn new(keep: bool) -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("makima-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path, keep })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            server_base("postgres://postgres@127.0.0.1:5432/other?sslmode=disable"),
            "postgres://postgres@127.0.0.1:5432"
        );
        assert_eq!(server_base("postgres://u@h:1"), "postgres://u@h:1");
        assert_eq!(
            sqlite_file("sqlite:///tmp/x/bench.db?mode=rwc"),
            PathBuf::from("/tmp/x/bench.db")
        );
    }
}
