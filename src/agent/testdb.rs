//! Test helper: a uniquely named database on the test MariaDB, dropped at the end.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn server_url() -> String {
    std::env::var("ISYMPHONY_SYNC_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub struct TestDb {
    pub name: String,
    server: Opts,
}

impl TestDb {
    pub async fn new(tag: &str) -> TestDb {
        let server = Opts::from_url(&server_url()).unwrap();
        let name = format!(
            "isy_agent_{tag}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut c = Conn::new(server.clone()).await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE `{name}`"))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        TestDb { name, server }
    }

    pub fn opts(&self) -> Opts {
        OptsBuilder::from_opts(self.server.clone())
            .db_name(Some(self.name.clone()))
            .into()
    }

    pub async fn exec(&self, sql: &str) {
        let mut c = Conn::new(self.opts()).await.unwrap();
        c.query_drop(sql).await.unwrap();
        c.disconnect().await.unwrap();
    }

    pub async fn drop(self) {
        let mut c = Conn::new(self.server.clone()).await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
    }
}
