//! `--explain` end to end (issue 21 point 4): a real FreePBX-shaped MariaDB, the embedded
//! endpoint over loopback HTTP serving the Live API from a **real Asterisk** (a private
//! instance per test, tests/support/asterisk.rs), `[server] licensed_full_users` set so that
//! the Live API applies the full-user rule, and whole passes of the agent between them.
//!
//! - an extension bound to a lite user is configured but not live, and says why; binding it to
//!   a full user in FreePBX makes it live after one pass;
//! - a queue disabled in iSymphony is explained as disabled;
//! - an object FreePBX does not have is unknown: exit 1 with the closest keys (through the
//!   binary);
//! - explain reads only what the one object needs: the endpoint's own request count;
//! - readiness names the objects that are not live with nine GETs; a target without a Live
//!   API is unknown, and asked once.

use crate::support;

use isymphony_sync::config::{Config, LiveConfig};
use isymphony_sync::explain::readiness::{Readiness, Tracker};
use isymphony_sync::explain::{self, render, ExplainError, Liveness, ObjectRef};
use isymphony_sync::live::backend::Backend;
use isymphony_sync::model::Kind;
use isymphony_sync::reconcile::source::resolve_target;
use isymphony_sync::reconcile::{run_pass, PassOptions};
use isymphony_sync::server::{self, ServerHandle};
use support::asterisk::Asterisk;
use support::e2e::{freepbx_db, voicemail_text};
use support::TestDb;

/// A config reading `db` and a voicemail.conf of two mailboxes written into `dir`, its
/// endpoint on a loopback port with data and state in `dir`.
fn config_in(db: &TestDb, dir: &std::path::Path) -> Config {
    let vm = dir.join("voicemail.conf");
    std::fs::write(&vm, voicemail_text(2)).unwrap();
    let mut cfg = db.config(&vm);
    cfg.server.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.server.data_dir = dir.join("server");
    cfg.sync.state_dir = Some(dir.join("state"));
    cfg
}

/// FreePBX with extensions 1001 (its login a lite user) and 1002, queues 400 and 401; the
/// endpoint with the Live API on a real Asterisk; a config wiring the agent between them.
struct Env {
    _ast: Asterisk,
    db: TestDb,
    dir: tempfile::TempDir,
    server: ServerHandle,
    cfg: Config,
}

impl Env {
    async fn new() -> Env {
        let ast = Asterisk::start();
        let db = freepbx_db(2).await;
        db.exec("UPDATE cxpanel_users SET full = 0 WHERE user_id = '1001';")
            .await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config_in(&db, dir.path());
        cfg.server.licensed_full_users = Some(10);
        let live = isymphony_sync::live::Live {
            cfg: LiveConfig {
                backend: isymphony_sync::config::LiveBackend::Asterisk,
                ..LiveConfig::default()
            },
            backend: Backend::Asterisk(isymphony_sync::live::asterisk::start(ast.settings())),
        };
        let server = server::start_live(&cfg.server, None, None, Some(live))
            .await
            .expect("the endpoint starts");
        cfg.isymphony.url = Some(server.base_url());
        cfg.isymphony.username = Some(cfg.server.username.clone());
        cfg.isymphony.password = Some(cfg.server.password.clone());
        Env {
            _ast: ast,
            db,
            dir,
            server,
            cfg,
        }
    }

    /// One pass that must succeed, then until the Live API serves live state (the AMI link
    /// is up and its snapshot applied). Returns the pass's start, as explain names it.
    async fn sync(&self) -> String {
        let r = run_pass(&self.cfg, &PassOptions::default()).await.unwrap();
        assert!(r.is_complete(), "{:?}", r.errors);
        let pass = humantime::format_rfc3339_seconds(r.started).to_string();
        let url = self.server.base_url().replace("api/resource", "rest/live")
            + "coreServers/getByName/default/callSegments";
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let r = client
                .get(&url)
                .basic_auth(
                    &self.cfg.server.username,
                    Some(self.cfg.server.password.expose()),
                )
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the Live API never came up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        pass
    }

    async fn explain(&self, what: &str) -> Result<explain::Explanation, ExplainError> {
        let obj: ObjectRef = what.parse().unwrap();
        explain::explain(&self.cfg, &obj).await
    }

    fn requests(&self) -> u64 {
        self.server.stats().total()
    }
}

#[tokio::test]
async fn a_lite_users_extension_is_not_live_and_says_why_until_the_user_is_full() {
    let env = Env::new().await;
    let first = env.sync().await;

    let before = env.requests();
    let e = env.explain("extension/1001").await.unwrap();
    let sent = env.requests() - before;
    let text = render::text(&e);
    let Liveness::NotLive(why) = &e.live else {
        panic!("1001 should not be live: {text}")
    };
    assert!(why.contains("lite user"), "{why}");
    assert!(why.contains("1001"), "{why}");
    assert!(e.pending.is_empty(), "{text}");
    assert_eq!(e.exit_code(), 2, "{text}");
    assert!(text.contains("users 1001"), "{text}");
    assert!(text.contains("cxpanel_users 1001"), "{text}");
    assert!(text.contains("voicemail.conf:4"), "{text}");
    // The core server, extensions, users, 1001's managing user; one Live API list.
    assert_eq!(e.requests.get, 4, "{text}");
    assert_eq!(e.live_requests.get, 1, "{text}");
    assert_eq!(e.requests.writes() + e.live_requests.writes(), 0);
    assert_eq!(
        sent, 5,
        "the endpoint saw other requests than explain counted"
    );
    // The pass that created it, from the agent's state file (no request for it).
    let line = format!("last written by the pass of {first} (create) at ");
    assert!(text.contains(&line), "{line} not in {text}");
    let held = &render::json(&e)["isymphony"]["last_write"];
    assert_eq!(held["pass_started"], first.as_str(), "{held}");
    assert_eq!(held["action"], "create", "{held}");

    // The same user made full and renamed in FreePBX: live after one pass, which is now the
    // last pass that wrote the extension and the user. The pass of `first` is at least a
    // second earlier, so the two are told apart.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    env.db
        .exec("UPDATE cxpanel_users SET full = 1 WHERE user_id = '1001';")
        .await;
    env.db
        .exec("UPDATE users SET name = 'Renamed 1001' WHERE extension = '1001';")
        .await;
    let pending = env.explain("user/1001").await.unwrap();
    assert!(
        pending.pending.iter().any(|p| p.kind == Kind::User
            && p.changes
                .iter()
                .any(|c| c.field == "full" && c.to == "true")),
        "{}",
        render::text(&pending)
    );
    assert_eq!(pending.exit_code(), 2);
    // The core server, the users, 1001's contact, e-mails and phones; one Live API list.
    assert_eq!((pending.requests.get, pending.live_requests.get), (5, 1));
    assert!(
        render::text(&pending).contains(&format!("last written by the pass of {first} (create)")),
        "{}",
        render::text(&pending)
    );
    let second = env.sync().await;
    assert_ne!(first, second);
    let e = env.explain("extension/1001").await.unwrap();
    assert_eq!(e.live, Liveness::Live, "{}", render::text(&e));
    let line = format!("last written by the pass of {second} (update) at ");
    assert!(render::text(&e).contains(&line), "{}", render::text(&e));
    let user = render::text(&env.explain("user/1001").await.unwrap());
    assert!(user.contains(&line), "{line} not in {user}");
    assert_eq!(e.exit_code(), 0, "{}", render::text(&e));
    let json = render::json(&e);
    assert_eq!(json["live"]["state"], "live");
    assert_eq!(json["exit_code"], 0);
}

#[tokio::test]
async fn a_queue_disabled_in_isymphony_is_explained_as_disabled() {
    let env = Env::new().await;
    env.sync().await;
    let e = env.explain("queue/400").await.unwrap();
    assert_eq!(e.live, Liveness::Live, "{}", render::text(&e));
    // The core server and the queues; one Live API list.
    assert_eq!((e.requests.get, e.live_requests.get), (2, 1));

    // An administrator disables the queue in iSymphony; the agent does not own that flag.
    let api = isymphony_sync::reconcile::make_client(
        &env.cfg,
        &resolve_target(&env.cfg, &Default::default()),
    )
    .unwrap();
    let core: isymphony_sync::api::types::CoreServer = api
        .get(isymphony_sync::api::paths::core_server_by_slug("default"))
        .await
        .unwrap();
    let cs = core.id.unwrap();
    let list = isymphony_sync::api::resource::QUEUES.list(&cs);
    let queues: Vec<serde_json::Value> = api.get(&list).await.unwrap();
    let mut q = queues
        .into_iter()
        .find(|q| q["identifier"] == "400")
        .unwrap();
    q["enabled"] = false.into();
    let id = q["id"].as_str().unwrap().to_string();
    api.put(&format!("{list}/{id}"), &q).await.unwrap();

    let e = env.explain("queue/400").await.unwrap();
    let text = render::text(&e);
    let Liveness::NotLive(why) = &e.live else {
        panic!("a disabled queue should not be live: {text}")
    };
    assert!(why.contains("disabled"), "{why}");
    assert!(text.contains("enabled = false"), "{text}");
    assert!(text.contains("queues_config 400"), "{text}");
    assert_eq!(e.exit_code(), 2);
    // The agent owns the flag: its pending update turns the queue back on, live after a pass.
    assert!(why.contains("enables it again"), "{why}");
    env.sync().await;
    let e = env.explain("queue/400").await.unwrap();
    assert_eq!(e.live, Liveness::Live, "{}", render::text(&e));
}

// Multi-threaded: the endpoint in this process must answer while the binary runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_freepbx_does_not_have_is_unknown_with_the_closest_keys() {
    let env = Env::new().await;
    env.sync().await;
    match env.explain("extension/1011").await {
        Err(ExplainError::Unknown { suggestions, .. }) => {
            assert_eq!(suggestions.first().map(String::as_str), Some("1001"));
        }
        other => panic!("expected an unknown object, got {other:?}"),
    }

    // Through the binary: exit 1, the closest keys on stderr; JSON on stdout for tools.
    let path = env.dir.path().join("agent.toml");
    let text = format!(
        "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n\
         [isymphony]\nurl = {:?}\n\n[sync]\nstate_dir = {:?}\n",
        env.db.url(),
        env.cfg.freepbx.voicemail_conf.display().to_string(),
        env.server.base_url(),
        env.dir.path().join("state").display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    let out = support::process::bin()
        .arg("--config")
        .arg(&path)
        .args(["--explain", "extension/1011", "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("closest keys: 1001"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unknown"], true);
    assert_eq!(v["exit_code"], 1);

    let out = support::process::bin()
        .arg("--config")
        .arg(&path)
        .args(["--explain", "queue/401"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("live: the Live API lists it"), "{stdout}");
}

#[tokio::test]
async fn readiness_names_what_is_configured_but_not_live_with_a_handful_of_gets() {
    let env = Env::new().await;
    env.sync().await;
    let target = resolve_target(&env.cfg, &Default::default());
    let tracker = Tracker::default();
    let before = env.requests();
    let r = tracker.run(&env.cfg, &target).await;
    let sent = env.requests() - before;
    let Readiness::Known { not_live, .. } = &r else {
        panic!("readiness should be known: {r:?}")
    };
    assert_eq!(
        not_live[&Kind::Extension],
        vec!["1001".to_string()],
        "{r:?}"
    );
    assert!(not_live[&Kind::Queue].is_empty(), "{r:?}");
    assert!(not_live[&Kind::User].is_empty(), "{r:?}");
    assert!(not_live[&Kind::ConferenceRoom].is_empty(), "{r:?}");
    // The core server, four configured collections, four live lists: never per object.
    assert_eq!(sent, 9);
}

#[tokio::test]
async fn a_target_without_a_live_api_is_unknown_warned_once_and_then_costs_nothing() {
    // The embedded endpoint without a Live API answers 404 below rest/live/, as iSymphony 3.1.
    let db = freepbx_db(2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_in(&db, dir.path());
    let server = server::start(&cfg.server, None).await.unwrap();
    cfg.isymphony.url = Some(server.base_url());
    let r = run_pass(&cfg, &PassOptions::default()).await.unwrap();
    assert!(r.is_complete(), "{:?}", r.errors);

    let e = explain::explain(&cfg, &"extension/1001".parse().unwrap())
        .await
        .unwrap();
    let Liveness::Unknown(why) = &e.live else {
        panic!("no Live API: liveness unknown, got {:?}", e.live)
    };
    assert!(why.contains("no Live API"), "{why}");
    assert_eq!(e.exit_code(), 0, "in sync; liveness cannot be told");

    let target = resolve_target(&cfg, &Default::default());
    let tracker = Tracker::default();
    let first = tracker.run(&cfg, &target).await;
    assert!(matches!(first, Readiness::Unknown { .. }), "{first:?}");
    assert_eq!(first.counts(), None);
    let before = server.stats().total();
    let again = tracker.run(&cfg, &target).await;
    assert_eq!(again, first);
    assert_eq!(server.stats().total(), before, "asked again");
}
