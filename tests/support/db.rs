//! The test MariaDB: a uniquely named database ([`TestDb`]) and MariaDB users ([`TestUser`]),
//! each dropped when its guard goes out of scope (also when an assertion failed), and schema
//! loading. This file depends on no part of the crate, so the crate's unit tests include the
//! same file (`src/agent/testdb.rs` is this file by `#[path]`): there is one `TestDb`.

use mysql_async::prelude::Queryable;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The test server (env ISYMPHONY_SYNC_TEST_MYSQL, default root on 127.0.0.1:3306).
pub fn server_url() -> String {
    std::env::var("ISYMPHONY_SYNC_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_string())
        .trim_end_matches('/')
        .to_string()
}

pub fn server_opts() -> mysql_async::Opts {
    mysql_async::Opts::from_url(&server_url()).expect("ISYMPHONY_SYNC_TEST_MYSQL is a mysql:// URL")
}

pub async fn admin_conn() -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::from_opts(server_opts())
        .prefer_socket(false)
        .init(vec!["SET NAMES utf8mb4"]);
    mysql_async::Conn::new(opts)
        .await
        .expect("connect to the test MariaDB")
}

/// A unique name: prefix + pid + counter + random.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}_{:06x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// A database that exists for the life of the guard.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        TestDb::new("fpbx").await
    }

    /// A database named `isy_<tag>_…` (the tag says which test left it, should one survive).
    pub async fn new(tag: &str) -> TestDb {
        let name = unique_name(&format!("isy_{tag}"));
        let mut c = admin_conn().await;
        c.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// Options for a connection as the admin user with this database selected.
    pub fn opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::from_opts(server_opts())
            .db_name(Some(self.name.clone()))
            .into()
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        let mut c = admin_conn().await;
        c.query_drop(format!("USE `{}`", self.name)).await.unwrap();
        c
    }

    /// Run the statements of a SQL file or string (split on `;` at line ends).
    pub async fn exec(&self, sql: &str) {
        let mut c = self.conn().await;
        for stmt in split_sql(sql) {
            c.query_drop(&stmt)
                .await
                .unwrap_or_else(|e| panic!("{e}: {stmt}"));
        }
        c.disconnect().await.unwrap();
    }

    pub async fn load_fixture(&self, file: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        let sql = std::fs::read_to_string(&path).unwrap();
        self.exec(&sql).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        admin_cleanup(vec![format!("DROP DATABASE IF EXISTS `{}`", self.name)]);
    }
}

/// A MariaDB user `name@host` for each host given, dropped with the guard.
pub struct TestUser {
    pub name: String,
    hosts: Vec<String>,
}

impl TestUser {
    /// Create user `<prefix>_…` with `password` on each of `hosts` (e.g. `["%"]`).
    pub async fn create(prefix: &str, password: &str, hosts: &[&str]) -> TestUser {
        let user = TestUser {
            name: unique_name(prefix),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        let mut c = admin_conn().await;
        for host in &user.hosts {
            c.query_drop(format!(
                "CREATE USER '{}'@'{host}' IDENTIFIED BY '{password}'",
                user.name
            ))
            .await
            .unwrap();
        }
        c.disconnect().await.unwrap();
        user
    }

    /// Grant `privileges` (e.g. `SELECT`) on every table of `db` on each host.
    pub async fn grant(&self, privileges: &str, db: &str) {
        let mut c = admin_conn().await;
        for host in &self.hosts {
            c.query_drop(format!(
                "GRANT {privileges} ON `{db}`.* TO '{}'@'{host}'",
                self.name
            ))
            .await
            .unwrap();
        }
        c.disconnect().await.unwrap();
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let stmts = self
            .hosts
            .iter()
            .map(|h| format!("DROP USER IF EXISTS '{}'@'{h}'", self.name))
            .collect();
        admin_cleanup(stmts);
    }
}

/// Run clean-up statements as the admin user, ignoring their errors, from a `Drop`: drop may
/// run inside a runtime, so the async work gets a thread and a runtime of its own.
pub fn admin_cleanup(stmts: Vec<String>) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut c = admin_conn().await;
            for stmt in stmts {
                let _ = c.query_drop(stmt).await;
            }
            let _ = c.disconnect().await;
        });
    })
    .join();
}

pub fn split_sql(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            out.push(cur.trim().trim_end_matches(';').to_string());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}
