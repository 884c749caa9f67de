//! End-to-end fixture: a FreePBX-shaped MariaDB database (cxpanel tables mode), voicemail.conf,
//! the embedded iSymphony server on a loopback port, and a config wiring the agent between them.

use super::db::TestDb;
use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::config::Config;
use isymphony_sync::reconcile::plan::Action;
use isymphony_sync::reconcile::{run_pass, PassOptions, PassReport, ReconcileError};
use isymphony_sync::secret::Secret;
use isymphony_sync::server::{self, ServerHandle};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use isymphony_sync::digest::sha1_hex;

pub fn name_of(i: usize) -> String {
    const FIRST: [&str; 6] = ["Alice", "Bob", "Carol", "Dan", "Eve", "Frank"];
    const LAST: [&str; 6] = ["Smith", "Jones", "White", "Brown", "Adams", "Miller"];
    format!("{} {}", FIRST[i % 6], LAST[(i / 6) % 6])
}

/// A modern FreePBX database (cxpanel tables mode) with `BASE_SQL` and `n` extensions with logins.
pub async fn freepbx_db(n: usize) -> TestDb {
    let db = TestDb::create().await;
    db.load_fixture("freepbx_modern_schema.sql").await;
    db.load_fixture("cx_settings_tables.sql").await;
    db.exec(&BASE_SQL.replace(
        "@API_PASSWORD@",
        isymphony_sync::config::DEFAULT_API_PASSWORD,
    ))
    .await;
    db.exec(&extension_rows(1, n)).await;
    db
}

/// A voicemail.conf with a mailbox and an e-mail address (`u<ext>@example.com`) for each of
/// extensions 1001..1000+n, named as `extension_rows` names them.
pub fn voicemail_text(n: usize) -> String {
    let mut s = String::from("[general]\n\n[default]\n");
    for i in 1..=n {
        let ext = 1000 + i;
        s.push_str(&format!(
            "{ext} => 1234,{},u{ext}@example.com,,attach=yes\n",
            name_of(i - 1)
        ));
    }
    s
}

/// Rows for extensions 1001..1000+n, each with a cxpanel login bound to itself.
pub fn extension_rows(from: usize, n: usize) -> String {
    let mut users = Vec::new();
    let mut devices = Vec::new();
    let mut sip = Vec::new();
    let mut cx = Vec::new();
    for i in from..from + n {
        let ext = 1000 + i;
        let name = name_of(i - 1);
        users.push(format!("('{ext}', '{name}', 'default')"));
        devices.push(format!(
            "('{ext}', 'pjsip', 'PJSIP/{ext}', 'fixed', '{ext}', '{name}')"
        ));
        sip.push(format!("('{ext}', 'sipdriver', 'chan_pjsip')"));
        cx.push(format!(
            "('{ext}', '{name}', 'PJSIP/{ext}', 1, 1, 1, '{}', '', 0, '{ext}', 0)",
            sha1_hex(&format!("pw-{ext}"))
        ));
    }
    let mut sql = String::new();
    for (table, cols, rows) in [
        ("users", "(extension, name, voicemail)", &users),
        ("devices", "(id, tech, dial, devicetype, user, description)", &devices),
        ("sip", "(id, keyword, data)", &sip),
        (
            "cxpanel_users",
            "(user_id, display_name, peer, add_extension, full, add_user, hashed_password, initial_password, auto_answer, parent_user_id, password_dirty)",
            &cx,
        ),
    ] {
        for chunk in rows.chunks(500) {
            sql.push_str(&format!(
                "INSERT INTO {table} {cols} VALUES\n{};\n",
                chunk.join(",\n")
            ));
        }
    }
    sql
}

/// `@API_PASSWORD@` stands for [`isymphony_sync::config::DEFAULT_API_PASSWORD`].
pub const BASE_SQL: &str = "
INSERT INTO cxpanel_server VALUES
 ('default', 'pbx.test', '', 58080, 0, 'localhost', 58080, 'manager', '@API_PASSWORD@', 0, 0, 0);
INSERT INTO queues_config (extension, descr) VALUES ('400', 'Sales'), ('401', 'Support');
INSERT INTO meetme (exten, description) VALUES ('9001', 'Board Room'), ('9002', 'Team');
INSERT INTO parkplus (id, defaultlot, name, parkext, parkpos, numslots) VALUES (1, 'yes', 'Default', '70', '71', 8);
INSERT INTO modules (modulename, version, enabled) VALUES ('parking', '16.0.10', 1);
INSERT INTO freepbx_settings (keyword, value) VALUES ('ASTSPOOLDIR', '/var/spool/asterisk');
";

/// The agent's TOML for `db_url`, `vm`, the target `url` and `state` (no embedded endpoint);
/// `sync_extra` is appended to `[sync]`.
pub fn agent_toml(db_url: &str, vm: &Path, url: &str, state: &Path, sync_extra: &str) -> String {
    format!(
        "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n\
         [isymphony]\nurl = {:?}\n\n[sync]\nstate_dir = {:?}\n{sync_extra}",
        db_url,
        vm.display().to_string(),
        url,
        state.display().to_string(),
    )
}

/// The requests `b` counts beyond `a` (two readings of one server's counters).
pub fn delta(a: server::RequestStats, b: server::RequestStats) -> server::RequestStats {
    server::RequestStats {
        get: b.get - a.get,
        post: b.post - a.post,
        put: b.put - a.put,
        delete: b.delete - a.delete,
        other: b.other - a.other,
    }
}

/// How many operations of `kind` and `action` the pass's plan holds.
pub fn count(r: &PassReport, kind: isymphony_sync::model::Kind, action: Action) -> usize {
    r.plan
        .ops
        .iter()
        .filter(|o| o.kind == kind && o.action == action)
        .count()
}

pub struct Env {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    pub server: Option<ServerHandle>,
    pub cfg: Config,
    pub api: Client,
    /// voicemail.conf e-mail per extension.
    pub emails: BTreeMap<usize, String>,
}

impl Env {
    /// `n` extensions with logins, two queues, two rooms, a parking lot.
    pub async fn new(n: usize) -> Env {
        Env::new_with(n, |_| {}).await
    }

    /// [`Env::new`], with `tweak` applied to the configuration before the server starts.
    pub async fn new_with(n: usize, tweak: impl FnOnce(&mut Config)) -> Env {
        let db = freepbx_db(n).await;
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("voicemail.conf");
        let mut cfg = db.config(&vm);
        cfg.server.http_listen = "127.0.0.1:0".parse().unwrap();
        cfg.server.data_dir = dir.path().join("server");
        cfg.sync.state_dir = Some(dir.path().join("state"));
        tweak(&mut cfg);
        let server = server::start(&cfg.server, None).await.unwrap();
        cfg.isymphony.url = Some(server.base_url());
        cfg.isymphony.username = Some(cfg.server.username.clone());
        cfg.isymphony.password = Some(cfg.server.password.clone());
        let api = Client::new(&ClientConfig::new(
            server.base_url(),
            cfg.server.username.clone(),
            cfg.server.password.clone(),
        ))
        .unwrap();
        let emails = (1..=n)
            .map(|i| (1000 + i, format!("u{}@example.com", 1000 + i)))
            .collect();
        let env = Env {
            db,
            dir,
            server: Some(server),
            cfg,
            api,
            emails,
        };
        env.write_voicemail();
        env
    }

    /// Write `agent.toml` into the test's directory: [`agent_toml`] for this database and
    /// voicemail.conf with the target `url` and `state`.
    pub fn write_agent_config(&self, url: &str, state: &Path, sync_extra: &str) -> PathBuf {
        let path = self.dir.path().join("agent.toml");
        let text = agent_toml(&self.db.url(), &self.vm_path(), url, state, sync_extra);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// [`Env::write_agent_config`] against this endpoint, with state in `state/`.
    pub fn write_agent_config_here(&self) -> PathBuf {
        let url = self.server().base_url();
        self.write_agent_config(&url, &self.dir.path().join("state"), "")
    }

    pub fn vm_path(&self) -> PathBuf {
        self.dir.path().join("voicemail.conf")
    }

    pub fn write_voicemail(&self) {
        let mut s = String::from("[general]\n\n[default]\n");
        for (ext, mail) in &self.emails {
            s.push_str(&format!(
                "{ext} => 1234,{},{mail},,attach=yes\n",
                name_of(ext - 1001)
            ));
        }
        std::fs::write(self.vm_path(), s).unwrap();
    }

    pub fn server(&self) -> &ServerHandle {
        self.server.as_ref().unwrap()
    }

    pub fn stats(&self) -> server::RequestStats {
        self.server().stats()
    }

    pub async fn pass(
        &self,
        dry_run: bool,
        full: bool,
        force: bool,
    ) -> Result<PassReport, ReconcileError> {
        run_pass(
            &self.cfg,
            &PassOptions {
                dry_run,
                full,
                force,
                ..PassOptions::default()
            },
        )
        .await
    }

    /// A pass that must succeed.
    pub async fn sync(&self) -> PassReport {
        let r = self.pass(false, false, false).await.unwrap();
        assert_eq!(r.refused, None, "the safety valve refused");
        assert_eq!(r.failed, 0, "{:?}", r.errors);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        r
    }

    pub async fn cs(&self) -> String {
        let c: CoreServer = self
            .api
            .get(paths::core_server_by_slug("default"))
            .await
            .unwrap();
        c.id.unwrap()
    }

    pub async fn extensions(&self) -> Vec<Extension> {
        self.api
            .get(paths::extensions(&self.cs().await))
            .await
            .unwrap()
    }
    /// The numbers of the extensions on the server, in its order.
    pub async fn extension_numbers(&self) -> Vec<String> {
        let all = self.extensions().await;
        all.into_iter().map(|x| x.extension).collect()
    }
    pub async fn users(&self) -> Vec<User> {
        self.api.get(paths::users(&self.cs().await)).await.unwrap()
    }
    pub async fn user_id(&self, username: &str) -> String {
        self.users()
            .await
            .into_iter()
            .find(|u| u.username == username)
            .unwrap()
            .id
            .unwrap()
    }
    pub async fn ext_id(&self, ext: &str) -> String {
        self.extensions()
            .await
            .into_iter()
            .find(|x| x.extension == ext)
            .unwrap()
            .id
            .unwrap()
    }
    pub async fn emails(&self, username: &str) -> Vec<String> {
        let cs = self.cs().await;
        let uid = self.user_id(username).await;
        let v: Vec<EmailAddress> = self
            .api
            .get(paths::email_addresses(&cs, &uid))
            .await
            .unwrap();
        let mut out: Vec<String> = v.into_iter().map(|e| e.address).collect();
        out.sort();
        out
    }
    pub async fn contact(&self, username: &str) -> Option<Contact> {
        let cs = self.cs().await;
        let uid = self.user_id(username).await;
        self.api.get_opt(paths::contact(&cs, &uid)).await.unwrap()
    }
    pub async fn managing_user(&self, ext: &str) -> Option<String> {
        let cs = self.cs().await;
        let id = self.ext_id(ext).await;
        let u: Option<User> = self
            .api
            .get_opt(paths::managing_user(&cs, &id))
            .await
            .unwrap();
        u.map(|u| u.username)
    }

    /// CHECKSUM of every table: proves a pass wrote nothing to FreePBX.
    pub async fn db_checksum(&self) -> Vec<(String, Option<u64>)> {
        use mysql_async::prelude::Queryable;
        let mut c = self.db.conn().await;
        let tables: Vec<String> = c.query("SHOW TABLES").await.unwrap();
        let out: Vec<(String, Option<u64>)> = c
            .query(format!("CHECKSUM TABLE {}", tables.join(", ")))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        out
    }

    pub fn password(&self) -> Secret {
        self.cfg.server.password.clone()
    }
}

/// The plan's lines, sorted.
pub fn plan_lines(r: &PassReport) -> Vec<String> {
    let mut v: Vec<String> = r.plan.ops.iter().map(|o| o.describe()).collect();
    v.sort();
    v
}
