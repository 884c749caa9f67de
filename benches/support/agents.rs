//! Shared by the benches that run the agent against MariaDB (`agent`, `binlog_bench`): their
//! runtime and the change-latency loop (one plain SQL change at a time, timed from its commit
//! until the endpoint shows it).

use isymphony_sync::api::client::Client;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::Extension;
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};

/// The benches' runtime: two worker threads, as many as the machine's cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One run of changes: which, how many, and how they are watched.
pub struct Changes<'a> {
    /// The synced extensions; change `i` renames the `(i * 7919) % len`-th.
    pub exts: &'a [Extension],
    /// Their core server on the endpoint.
    pub cs: &'a str,
    pub count: usize,
    /// Change `i` sets the name `{prefix} {i}`.
    pub prefix: &'a str,
    /// How often the endpoint is asked whether it shows the change yet.
    pub check_every: Duration,
    /// The next change waits 200 ms plus a random part of this, so that changes land at a
    /// random phase of the poll timer.
    pub spread: Duration,
}

/// The latency of each change, in order.
pub async fn change_latencies(
    db: &mut mysql_async::Conn,
    api: &Client,
    c: &Changes<'_>,
) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(c.count);
    for i in 0..c.count {
        let x = &c.exts[(i * 7919) % c.exts.len()];
        let id = x.id.clone().unwrap();
        let name = format!("{} {i}", c.prefix);
        db.query_drop(format!(
            "UPDATE users SET name = '{name}' WHERE extension = '{}'",
            x.extension
        ))
        .await
        .unwrap();
        let committed = Instant::now();
        loop {
            let e: Extension = api.get(paths::extension(c.cs, &id)).await.unwrap();
            if e.display_name == name {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(30),
                "change {i} not visible after 30 s"
            );
            tokio::time::sleep(c.check_every).await;
        }
        lat.push(committed.elapsed());
        let spread = (c.spread.as_millis() as u64).max(1);
        tokio::time::sleep(Duration::from_millis(200 + rand::random::<u64>() % spread)).await;
    }
    lat
}
