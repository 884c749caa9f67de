//! The one support tree of the integration tests. The test binary (`tests/testsuite`) includes
//! it as `crate::support`, the benches with `#[path] mod support;`; each uses the parts it needs:
//!
//! - [`db`]: a uniquely named MariaDB database and MariaDB users, each dropped by `Drop` (also
//!   when an assertion failed). The crate's own unit tests include the same file
//!   (`src/agent/testdb.rs`), so there is one `TestDb`.
//! - [`process`]: the one way to start the binary: [`process::bin`] builds the command,
//!   [`process::spawn`] starts it behind a guard that kills and reaps it on drop.
//! - [`server`]: the embedded server in-process, with a reqwest client.
//! - [`agent`]: the binary as a service, its JSON log collected; TCP proxy; polling helpers.
//! - [`e2e`]: a FreePBX database + embedded server environment for whole passes.
//! - [`evidence`]: the binary as a server child plus census helpers for the evidence tests.
//! - [`fake_peer`], [`http_proxy`]: FAKE peers and a recording proxy, for faults the real
//!   server cannot produce.
//! - [`tmpfs`]: a small tmpfs (a real full disk).
//! - [`browser`]: headless Chromium over chromedriver, and its console.
//! - [`trust`]: the agent on a snapshot, at fixed ports, and raw HTTP.
//! - [`asterisk`]: a private real Asterisk per test, and an AMI probe.
//! - [`binlog_db`]: a private MariaDB with the binary log on, per test.
//! - [`logs`]: the log lines of a test's own thread.
//! - [`heavy`]: one lock for the tests that must not share the machine with each other.
#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod asterisk;
pub mod binlog_db;
pub mod browser;
pub mod db;
pub mod e2e;
pub mod evidence;
pub mod fake_peer;
pub mod heavy;
pub mod http_proxy;
pub mod logs;
pub mod process;
pub mod server;
pub mod tmpfs;
pub mod trust;

pub use db::*;

use isymphony_sync::config::Config;
use isymphony_sync::secret::Secret;

impl TestDb {
    /// A config reading this database, with voicemail.conf at `vm`. (Here rather than in
    /// `db.rs`, which the crate's unit tests share and so cannot name the crate.)
    pub fn config(&self, vm: &std::path::Path) -> Config {
        let mut cfg = Config::default();
        cfg.freepbx.database_url = Some(Secret::new(self.url()));
        cfg.freepbx.voicemail_conf = vm.to_path_buf();
        cfg
    }
}
