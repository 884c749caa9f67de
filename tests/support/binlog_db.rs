//! A second, private MariaDB with the binary log on (issue 20 point 3): its own data directory
//! under a tempdir, its own port and socket, started with `mariadbd --no-defaults --log-bin`
//! and stopped (SIGTERM, then SIGKILL) when the guard drops. The shared test server at
//! 127.0.0.1:3306 runs without a binary log, and turning it on there would need a restart that
//! other tests would feel.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `mariadbd` with `--log-bin`; root has an empty password on 127.0.0.1.
pub struct BinlogServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn mariadbd() -> PathBuf {
    ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mariadbd"))
}

impl BinlogServer {
    /// Initialise a data directory and start the server with `--binlog-format=<format>`
    /// (ROW, MIXED or STATEMENT); returns once it answers on its port.
    pub async fn start(format: &str) -> BinlogServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // A temporary directory of its own: two installs sharing /tmp at once fail at random
        // ("Unknown table 'mysql.tmp_user_sys'": their bootstrap temp tables collide).
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--user=root")
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = Command::new(mariadbd())
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--log-bin={}", data.join("binlog").display()))
            .arg("--server-id=1")
            .arg(format!("--binlog-format={format}"))
            .arg("--user=root")
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("err.log").display()
            ))
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--skip-name-resolve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let s = BinlogServer { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(c) = Conn::new(s.opts(None)).await {
                let _ = c.disconnect().await;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the binlog MariaDB did not answer within 60 s: {}",
                std::fs::read_to_string(s.dir.path().join("err.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `mysql://root@127.0.0.1:PORT[/db]`.
    pub fn url(&self, db: Option<&str>) -> String {
        let base = format!("mysql://root@127.0.0.1:{}", self.port);
        match db {
            Some(d) => format!("{base}/{d}"),
            None => base,
        }
    }

    pub fn opts(&self, db: Option<&str>) -> mysql_async::Opts {
        let opts = mysql_async::Opts::from_url(&self.url(db)).unwrap();
        mysql_async::OptsBuilder::from_opts(opts)
            .prefer_socket(false)
            .into()
    }

    /// A root connection, with `db` selected when given.
    pub async fn conn(&self, db: Option<&str>) -> Conn {
        Conn::new(self.opts(db))
            .await
            .expect("connect to the binlog MariaDB")
    }

    /// Create database `name` with the modern FreePBX schema (cxpanel tables mode), the base
    /// rows and `n` extensions with logins (the same as [`super::e2e::freepbx_db`]).
    pub async fn freepbx_db(&self, name: &str, n: usize) {
        let mut c = self.conn(None).await;
        c.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .await
            .unwrap();
        c.query_drop(format!("USE `{name}`")).await.unwrap();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut sql = String::new();
        for f in ["freepbx_modern_schema.sql", "cx_settings_tables.sql"] {
            sql += &std::fs::read_to_string(fixtures.join(f)).unwrap();
            sql.push('\n');
        }
        sql += &super::e2e::BASE_SQL.replace(
            "@API_PASSWORD@",
            isymphony_sync::config::DEFAULT_API_PASSWORD,
        );
        sql.push('\n');
        sql += &super::e2e::extension_rows(1, n);
        for stmt in super::db::split_sql(&sql) {
            c.query_drop(&stmt)
                .await
                .unwrap_or_else(|e| panic!("{e}: {stmt}"));
        }
        let _ = c.disconnect().await;
    }

    /// The connection id of the binary log dump thread serving our replica, if one runs.
    pub async fn dump_thread(&self) -> Option<u64> {
        let mut c = self.conn(None).await;
        let id: Option<u64> = c
            .query_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
            )
            .await
            .unwrap();
        let _ = c.disconnect().await;
        id
    }

    /// The `mariadbd` process id (for its CPU ticks).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for BinlogServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
