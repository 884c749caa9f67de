//! Taking over from the FreePBX cxpanel module, with the real binary, real
//! MariaDB and real embedded servers: `--check-config` says when the module's modify.php would
//! write to the iSymphony the agent manages, and which setting to change; and
//! `--adopt-cxpanel-items` takes over what the module posted but never recorded as managed.

use crate::support;
use support::agent;
use support::e2e;

use e2e::*;
use isymphony_sync::config::ServerConfig;
use isymphony_sync::server;
use std::path::{Path, PathBuf};

/// An agent config for `env`'s database; `isymphony` is the body of the `[isymphony]` section.
fn write_config(env: &Env, name: &str, isymphony: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    let text = format!(
        "[server]\nenabled = false\npassword = \"Agent-Pw-8\"\n\n[freepbx]\ndatabase_url = {:?}\n\
         voicemail_conf = {:?}\n\n[isymphony]\ntimeout = \"2s\"\n{isymphony}\n\n[sync]\n\
         state_dir = {:?}\n",
        env.db.url(),
        env.vm_path().display().to_string(),
        env.dir.path().join("state").display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary off the test's runtime; returns (exit code, stdout, stderr).
async fn run(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = support::process::with_config(config, args);
    cmd.env("RUST_LOG", "error").env("NO_COLOR", "1");
    let out = support::process::run_off_runtime(cmd).await;
    (out.code_or_signal(), out.stdout, out.stderr)
}

/// The `cxpanel` line of `--check-config`, with the exit code.
async fn cxpanel_line(config: &Path) -> (i32, String) {
    let (code, out, err) = run(config, &["--check-config"]).await;
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("cxpanel"))
        .unwrap_or_else(|| panic!("no cxpanel line in:\n{out}{err}"))
        .to_string();
    (code, line)
}

async fn set_cx(env: &Env, assignments: &str) {
    env.db
        .exec(&format!("UPDATE cxpanel_server SET {assignments};"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_detects_the_cxpanel_conflict_and_its_fix() {
    let env = Env::new(2).await;
    let port = env.server().http_addr().port();
    let cfg_path = |n: &str| env.dir.path().join(n).display().to_string();
    // cxpanel's settings name the agent's server, as "localhost".
    set_cx(&env, &format!("api_host = 'localhost', api_port = {port}")).await;

    // 1. The agent follows those settings ([isymphony] url unset): pin it first, then the port.
    let follows = write_config(&env, "follows.toml", "");
    let (code, l) = cxpanel_line(&follows).await;
    assert_eq!(code, 0, "a warning, not a failure: {l}");
    assert!(l.starts_with("warn "), "{l}");
    let want_url = format!(
        "[isymphony] url = \"http://localhost:{port}/communication_manager/api/resource/\""
    );
    assert!(l.contains(&want_url), "{l}");
    assert!(l.contains(&cfg_path("follows.toml")), "{l}");
    assert!(
        l.contains(&format!(
            "Admin > iSymphonyV3 > Server API Connection Settings > Port (cxpanel_server.api_port, now {port})"
        )),
        "{l}"
    );
    assert!(l.contains("keep Host (localhost)"), "{l}");
    assert!(
        !l.contains(isymphony_sync::config::DEFAULT_API_PASSWORD),
        "{l}"
    );

    // 2. Pinned to the same server under another name (127.0.0.1): still the same iSymphony.
    let pinned = write_config(
        &env,
        "pinned.toml",
        &format!(
            "url = {:?}\ncore_server = \"default\"",
            env.server().base_url()
        ),
    );
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("warn "), "{l}");
    assert!(
        l.contains("core server 'default', the one this agent manages"),
        "{l}"
    );
    assert!(
        l.contains(&format!("cxpanel_server.api_port, now {port}")),
        "{l}"
    );

    // 3. Another core server name on the same iSymphony still collides (server-wide objects).
    set_cx(&env, "name = 'tenant2'").await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("warn "), "{l}");
    assert!(
        l.contains("core server 'tenant2' on the iSymphony this agent manages"),
        "{l}"
    );
    assert!(l.contains("server-wide administrators"), "{l}");
    set_cx(&env, "name = 'default'").await;

    // 4. The procedure: the module's API port where nothing listens. No warning left.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    set_cx(&env, &format!("api_port = {dead}")).await;
    let (code, out, err) = run(&pinned, &["--check-config"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("warn "), "{out}");
    let l = out.lines().find(|l| l.contains(" cxpanel ")).unwrap();
    assert!(
        l.starts_with("ok ") && l.contains("cannot write to iSymphony"),
        "{l}"
    );
    assert!(l.contains("does not answer"), "{l}");
    // Port moved before the agent's URL was pinned: the agent would follow it nowhere.
    let (code, l) = cxpanel_line(&follows).await;
    assert_eq!(code, 1, "the isymphony check fails too: {l}");
    assert!(
        l.starts_with("warn ") && l.contains("set [isymphony] url (and core_server)"),
        "{l}"
    );

    // 5. The module pointing at a different iSymphony: no conflict either.
    let other = server::start(
        &ServerConfig {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: env.dir.path().join("other-isymphony"),
            ..ServerConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    set_cx(
        &env,
        &format!(
            "api_host = '127.0.0.1', api_port = {}",
            other.http_addr().port()
        ),
    )
    .await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(
        l.starts_with("ok ") && l.contains("not to the iSymphony this agent manages"),
        "{l}"
    );

    // 6. Wrong module credentials: modify.php cannot log in, so it cannot write.
    set_cx(
        &env,
        &format!("api_host = 'localhost', api_port = {port}, api_password = 'Not-It-9'"),
    )
    .await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(
        l.starts_with("ok ") && l.contains("refuses the module's API credentials"),
        "{l}"
    );
    assert!(!l.contains("Not-It-9"), "{l}");
    other.shutdown().await;
}

/// An embedded server of its own holding core server `default` with id `cs_id`.
async fn server_with_core(dir: &Path, name: &str, cs_id: &str) -> server::ServerHandle {
    let srv = server::start(
        &ServerConfig {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.join(name),
            ..ServerConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    let api =
        isymphony_sync::api::client::Client::new(&isymphony_sync::api::client::ClientConfig::new(
            srv.base_url(),
            "manager",
            isymphony_sync::secret::Secret::new(isymphony_sync::config::DEFAULT_API_PASSWORD),
        ))
        .unwrap();
    api.post(
        &isymphony_sync::api::paths::core_servers(),
        &serde_json::json!({"id": cs_id, "slug": "default", "name": "default"}),
        None,
    )
    .await
    .unwrap();
    srv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_knows_the_same_server_by_its_core_server_not_by_the_agents_own_ids() {
    use isymphony_sync::model::Kind;
    use isymphony_sync::reconcile::ownership::object_id;
    let env = Env::new(1).await;
    let pinned_to = |srv: &server::ServerHandle, name: &str| {
        write_config(
            &env,
            name,
            &format!("url = {:?}\ncore_server = \"default\"", srv.base_url()),
        )
    };
    // The module reaches the agent's server through another address (a TCP proxy): the core
    // server iSymphony created (a random id) is the same one.
    let a = server_with_core(env.dir.path(), "a", "7f0c1e5a-cx-created").await;
    let proxy = agent::Proxy::start(a.http_addr()).await;
    set_cx(
        &env,
        &format!("api_host = '127.0.0.1', api_port = {}", proxy.addr.port()),
    )
    .await;
    let (_, l) = cxpanel_line(&pinned_to(&a, "a.toml")).await;
    assert!(l.starts_with("warn "), "{l}");
    assert!(
        l.contains("core server 'default', the one this agent manages"),
        "{l}"
    );

    // Two different servers that both hold the id this agent gives core server 'default'
    // (each filled by an agent once): that id proves nothing, so no conflict.
    let ours = object_id("default", Kind::CoreServer, "default");
    let x = server_with_core(env.dir.path(), "x", &ours).await;
    let y = server_with_core(env.dir.path(), "y", &ours).await;
    set_cx(&env, &format!("api_port = {}", y.http_addr().port())).await;
    let (_, l) = cxpanel_line(&pinned_to(&x, "x.toml")).await;
    assert!(
        l.starts_with("ok ") && l.contains("not to the iSymphony this agent manages"),
        "{l}"
    );
    for s in [a, x, y] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_names_the_kvstore_setting_on_cxpanel_16_0_4_and_later() {
    let env = Env::new(1).await;
    let port = env.server().http_addr().port();
    env.db.load_fixture("cx_settings_kvstore.sql").await;
    env.db
        .exec(&format!(
            "INSERT INTO kvstore_FreePBX_modules_Cxpanel (`key`, val, type, id) VALUES
             ('name', 'default', NULL, 'settings_server'),
             ('api_host', '127.0.0.1', NULL, 'settings_server'),
             ('api_port', '{port}', NULL, 'settings_server'),
             ('api_username', 'manager', NULL, 'settings_server'),
             ('api_password', '{pw}', NULL, 'settings_server'),
             ('api_use_ssl', '0', NULL, 'settings_server');",
            pw = isymphony_sync::config::DEFAULT_API_PASSWORD
        ))
        .await;
    let pinned = write_config(
        &env,
        "pinned.toml",
        &format!("url = {:?}", env.server().base_url()),
    );
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("warn "), "{l}");
    assert!(
        l.contains(&format!(
            "settings_server.api_port in kvstore_FreePBX_modules_Cxpanel, now {port}"
        )),
        "{l}"
    );
    // The module disabled: its hooks (modify.php too) do not run.
    env.db
        .exec("INSERT INTO modules (modulename, version, enabled) VALUES ('cxpanel', '16.0.6', 0);")
        .await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("ok ") && l.contains("disabled"), "{l}");
}

/// What cxpanel's modify.php leaves on iSymphony for users 1001..1000+n: users with its own
/// ids (listed in `cxpanel_managed_items`), a Work e-mail and a Cell number each (posted without
/// an id, never recorded), and the `default` parking lot (likewise).
async fn cxpanel_posted(env: &Env, n: usize) {
    use isymphony_sync::api::paths;
    use serde_json::json;
    let api = &env.api;
    api.post(
        &paths::core_servers(),
        &json!({"id": "cx-core-1", "slug": "default", "name": "default"}),
        None,
    )
    .await
    .unwrap();
    let cs = "cx-core-1";
    let mut items = Vec::new();
    for i in 1..=n {
        let ext = 1000 + i;
        let uid = format!("CX-USER-{ext}");
        api.post(
            &paths::users(cs),
            &json!({"id": uid, "username": ext.to_string(), "password": "x", "full": true, "enabled": true}),
            None,
        )
        .await
        .unwrap();
        api.post(
            &paths::email_addresses(cs, &uid),
            &json!({"type": "Work", "address": format!("u{ext}@example.com")}),
            None,
        )
        .await
        .unwrap();
        api.post(
            &paths::phone_numbers(cs, &uid),
            &json!({"type": "Cell", "number": format!("555-0{ext}")}),
            None,
        )
        .await
        .unwrap();
        items.push(format!("('{}', '{ext}', 'user')", uid.to_lowercase()));
        env.db
            .exec(&format!(
                "INSERT INTO cxpanel_phone_number (user_id, phone_number, type) VALUES ('{ext}', '555-0{ext}', 'Cell');"
            ))
            .await;
    }
    api.post(
        &paths::parking_lots(cs),
        &json!({"identifier": "default", "name": "Main", "destinationExtension": "70", "destinationContext": "from-internal"}),
        None,
    )
    .await
    .unwrap();
    env.db
        .exec(&format!(
            "INSERT INTO cxpanel_managed_items (cxpanel_id, fpbx_id, type) VALUES {};",
            items.join(", ")
        ))
        .await;
}

async fn phones(env: &Env, username: &str) -> Vec<String> {
    use isymphony_sync::api::{paths, types::PhoneNumber};
    let cs = env.cs().await;
    let uid = env.user_id(username).await;
    let v: Vec<PhoneNumber> = env.api.get(paths::phone_numbers(&cs, &uid)).await.unwrap();
    let mut out: Vec<String> = v
        .into_iter()
        .map(|p| format!("{} {}", p.kind, p.number))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_cxpanel_contacts_are_replaced_when_freepbx_changes() {
    for adopt in [false, true] {
        let mut env = Env::new(2).await;
        cxpanel_posted(&env, 2).await;
        let cfg = write_config(
            &env,
            "agent.toml",
            &format!("url = {:?}", env.server().base_url()),
        );
        if adopt {
            // Shown first, recorded by nothing.
            let (code, out, err) = run(&cfg, &["--dry-run", "--adopt-cxpanel-items"]).await;
            assert_eq!(code, 2, "{out}{err}");
            for line in [
                "= adopt e-mail u1001@example.com of user 1001",
                "= adopt phone number Cell 555-01001 of user 1001",
                "= adopt e-mail u1002@example.com of user 1002",
                "= adopt phone number Cell 555-01002 of user 1002",
            ] {
                assert!(out.contains(line), "{line}:\n{out}");
            }
            // FreePBX has parking: the lot matches and needs no adoption.
            assert!(!out.contains("adopt parking lot"), "{out}");
            let (code, out, err) = run(&cfg, &["--sync-now", "--adopt-cxpanel-items"]).await;
            assert_eq!(code, 0, "{out}{err}");
            assert!(out.contains("; 4 adopted"), "{out}");
            // Once is enough: nothing is left to adopt.
            let (code, out, err) = run(&cfg, &["--dry-run", "--adopt-cxpanel-items"]).await;
            assert_eq!(code, 0, "{out}{err}");
            assert!(!out.contains("= adopt"), "{out}");
        } else {
            let (code, out, err) = run(&cfg, &["--sync-now"]).await;
            assert_eq!(code, 0, "{out}{err}");
        }
        // Later, FreePBX changes 1001's number and e-mail address.
        env.db
            .exec(
                "UPDATE cxpanel_phone_number SET phone_number = '555-0199' WHERE user_id = '1001';",
            )
            .await;
        env.emails.insert(1001, "Ann.New@example.com".into());
        env.write_voicemail();
        let (code, out, err) = run(&cfg, &["--sync-now"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let (mails, nums) = (env.emails("1001").await, phones(&env, "1001").await);
        if adopt {
            assert_eq!(mails.len(), 1, "replaced: {mails:?}");
            assert!(
                mails[0].eq_ignore_ascii_case("ann.new@example.com"),
                "{mails:?}"
            );
            assert_eq!(nums, vec!["Cell 555-0199"]);
        } else {
            // Without adoption the module's old values stand beside the new ones.
            assert_eq!(mails.len(), 2, "{mails:?}");
            assert_eq!(nums, vec!["Cell 555-01001", "Cell 555-0199"]);
        }
        // The unchanged user keeps its one address and number either way.
        assert_eq!(env.emails("1002").await, vec!["u1002@example.com"]);
        assert_eq!(phones(&env, "1002").await, vec!["Cell 555-01002"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_parking_lot_is_adopted_and_then_removed_as_cxpanel_would() {
    for adopt in [false, true] {
        let env = Env::new(1).await;
        cxpanel_posted(&env, 1).await;
        // Parking is off in FreePBX: cxpanel deletes its 'default' lot then.
        env.db
            .exec("UPDATE modules SET enabled = 0 WHERE modulename = 'parking';")
            .await;
        let cfg = write_config(
            &env,
            "agent.toml",
            &format!("url = {:?}", env.server().base_url()),
        );
        // --force: the only parking lot is 100% of its kind for the safety valve (see
        // `[sync] valve_min_managed`); the adoption itself needs no override.
        let mut args = vec!["--dry-run", "--force"];
        if adopt {
            args.push("--adopt-cxpanel-items");
        }
        let (code, out, err) = run(&cfg, &args).await;
        assert!(code == 0 || code == 2, "{out}{err}");
        let lot_deleted = out.contains("- delete parking lot default \"Main\"");
        assert_eq!(lot_deleted, adopt, "{out}");
        assert_eq!(
            out.contains("= adopt parking lot default \"Main\""),
            adopt,
            "{out}"
        );
        args[0] = "--sync-now";
        let (code, out, err) = run(&cfg, &args).await;
        assert_eq!(code, 0, "{out}{err}");
        let lots: Vec<isymphony_sync::api::types::ParkingLot> = env
            .api
            .get(isymphony_sync::api::paths::parking_lots(&env.cs().await))
            .await
            .unwrap();
        assert_eq!(lots.is_empty(), adopt, "{lots:?}");
    }
}
