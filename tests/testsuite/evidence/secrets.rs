//! Secrets never leak: an end-to-end run of the real binary with distinct,
//! known passwords everywhere (the iSymphony API password, a dedicated MariaDB user's password
//! read from freepbx.conf, cxpanel login hashes and their clear initial passwords, ampusers and
//! userman administrator hashes, SIP secrets, voicemail PINs, conference PINs, a queue password)
//! at `RUST_LOG=debug`, with text and JSON logs, text and JSON plans, a real `--sync-now`, a
//! password change, a full verify, the daemon's status/plan/metrics resources, a snapshot
//! export, and the error paths (wrong database password, malformed database URL, wrong API
//! password, credentials inside the API URL, a misspelled password key in the TOML).
//!
//! Every byte the processes write (stdout, stderr, the separate server's log, HTTP answers of
//! the agent resources, the exported snapshot) is searched for every password, every hash (hex
//! in both cases) and the Basic credentials in base64. The test first proves the secrets did
//! flow: the server holds the pushed hashes and debug logging was on.

use crate::support;
use support::evidence;

use base64::Engine;
use evidence::*;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use mysql_async::prelude::Queryable;
use sha1::{Digest, Sha1};
use std::path::Path;
use std::time::{Duration, Instant};
use support::TestDb;

const API_PW: &str = "ApiPw-Kq7fXw2sZ";
const DB_PW: &str = "DbPw-Rt5mLp9vQ";
const WRONG_DB_PW: &str = "WrongDbPw-Hc3nYb8";
const URL_DB_PW: &str = "UrlDbPw-Ge6wJd1";
const WRONG_API_PW: &str = "WrongApiPw-Ns4kVz0";
const URL_API_PW: &str = "UrlApiPw-Mb2xTq7";
const TYPO_PW: &str = "TypoPw-Lw8cRf3";
/// cxpanel logins: clear password (only its hash is stored) and initial password (stored clear).
const CX_PW: [&str; 3] = ["CxPw1-Fa9eUo", "CxPw2-Zi4rQy", "CxPw3-Wd6tBn"];
const CX_NEW_PW: &str = "CxNewPw-Pv5sHk";
const CX_INIT_PW: [&str; 3] = ["CxInit1-Yo3gLm", "CxInit2-Ej8uRc", "CxInit3-Tx1wKa"];
const AMP_PW: &str = "AmpPw-Qs2dVn7";
const UM_PW: &str = "UmPw-Bh6yGe4";
const SIP_SECRET: &str = "SipSecret-Jr9pZc";
const VM_PIN: &str = "86420975";
const MEET_PIN: &str = "MeetPin-Xu7fNo";
const MEET_ADMIN_PIN: &str = "MeetAdm-Cl3qWs";
const QUEUE_PW: &str = "QueuePw-Vk5hDi";

fn sha1_hex(s: &str) -> String {
    hex::encode(Sha1::digest(s.as_bytes()))
}

/// Everything that must never be printed.
fn forbidden() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut add = |what: &str, s: String| v.push((what.to_string(), s));
    for (what, pw) in [
        ("API password", API_PW),
        ("database password", DB_PW),
        ("wrong database password", WRONG_DB_PW),
        ("database URL password", URL_DB_PW),
        ("wrong API password", WRONG_API_PW),
        ("API URL password", URL_API_PW),
        ("misspelled-key password", TYPO_PW),
        ("new cxpanel password", CX_NEW_PW),
        ("ampusers password", AMP_PW),
        ("userman password", UM_PW),
        ("SIP secret", SIP_SECRET),
        ("voicemail PIN", VM_PIN),
        ("conference PIN", MEET_PIN),
        ("conference admin PIN", MEET_ADMIN_PIN),
        ("queue password", QUEUE_PW),
        ("AMI password", "cxmanager*con"),
    ]
    .into_iter()
    .chain(CX_PW.iter().map(|p| ("cxpanel password", *p)))
    .chain(CX_INIT_PW.iter().map(|p| ("cxpanel initial password", *p)))
    {
        add(what, pw.to_string());
        let h = sha1_hex(pw);
        add(&format!("SHA-1 of the {what}"), h.clone());
        add(
            &format!("SHA-1 of the {what} (upper case)"),
            h.to_uppercase(),
        );
    }
    for pw in [API_PW, WRONG_API_PW, URL_API_PW] {
        add(
            "Basic credentials",
            base64::engine::general_purpose::STANDARD.encode(format!("manager:{pw}")),
        );
    }
    v
}

/// Fails naming the source and the secret when any forbidden string occurs in `text`.
fn assert_clean(source: &str, text: &str) {
    for (what, s) in forbidden() {
        if let Some(i) = text.find(&s) {
            let from = text[..i]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(j, _)| j);
            panic!(
                "{what} leaked in {source}:\n…{}…",
                &text[from..(i + s.len() + 100).min(text.len())]
            );
        }
    }
}

fn cx_rows() -> String {
    let mut cx = Vec::new();
    let mut users = Vec::new();
    let mut devices = Vec::new();
    let mut sip = Vec::new();
    for i in 0..3 {
        let ext = 2001 + i;
        let name = ["Ann O'Neil", "Bo Chen", "Cleo Diaz"][i];
        users.push(format!("('{ext}', {name:?}, 'default')"));
        devices.push(format!(
            "('{ext}', 'sip', 'SIP/{ext}', 'fixed', '{ext}', {name:?})"
        ));
        sip.push(format!("('{ext}', 'secret', '{SIP_SECRET}{i}')"));
        sip.push(format!("('{ext}', 'sipdriver', 'chan_sip')"));
        cx.push(format!(
            "('{ext}', {name:?}, 'SIP/{ext}', 1, 1, 1, '{}', '{}', 0, '{ext}', 1)",
            sha1_hex(CX_PW[i]),
            CX_INIT_PW[i]
        ));
    }
    format!(
        "INSERT INTO users (extension, name, voicemail) VALUES {};\n\
         INSERT INTO devices (id, tech, dial, devicetype, user, description) VALUES {};\n\
         INSERT INTO sip (id, keyword, data) VALUES {};\n\
         INSERT INTO cxpanel_users (user_id, display_name, peer, add_extension, full, add_user, \
         hashed_password, initial_password, auto_answer, parent_user_id, password_dirty) VALUES {};\n",
        users.join(", "),
        devices.join(", "),
        sip.join(", "),
        cx.join(", ")
    )
}

fn base_sql() -> String {
    format!(
        "INSERT INTO cxpanel_server VALUES ('default', 'pbx.test', '', 58080, 0, 'localhost', 58080, \
         'manager', '{API_PW}', 0, 0, 0);\n\
         INSERT INTO queues_config (extension, descr, password) VALUES ('400', 'Sales', '{QUEUE_PW}');\n\
         INSERT INTO meetme (exten, description, userpin, adminpin) VALUES \
         ('9001', 'Board Room', '{MEET_PIN}', '{MEET_ADMIN_PIN}');\n\
         INSERT INTO ampusers (username, password_sha1, sections) VALUES \
         ('admin', '{}', '*'), ('ops', '{}', 'cxpanel');\n\
         INSERT INTO userman_users (id, username, password, displayname, default_extension) VALUES \
         (1, 'umadmin', '{}', 'UM Admin', 'none');\n\
         INSERT INTO userman_users_settings (uid, module, `key`, val) VALUES (1, 'global', 'pbx_admin', '1');\n\
         INSERT INTO freepbx_settings (keyword, value) VALUES ('ASTSPOOLDIR', '/var/spool/asterisk');\n",
        sha1_hex(AMP_PW),
        sha1_hex(UM_PW),
        sha1_hex(UM_PW),
    )
}

/// A MariaDB account of our own with a known password, dropped at the end.
struct DbUser {
    name: String,
}

impl DbUser {
    async fn create(db: &TestDb) -> DbUser {
        let name = format!("isysec{}", rand::random::<u32>() & 0xff_ffff);
        let mut c = support::admin_conn().await;
        for host in ["%", "localhost", "127.0.0.1"] {
            c.query_drop(format!(
                "CREATE USER '{name}'@'{host}' IDENTIFIED BY '{DB_PW}'"
            ))
            .await
            .unwrap();
            c.query_drop(format!(
                "GRANT SELECT ON `{}`.* TO '{name}'@'{host}'",
                db.name
            ))
            .await
            .unwrap();
        }
        c.disconnect().await.unwrap();
        DbUser { name }
    }
}

impl Drop for DbUser {
    fn drop(&mut self) {
        support::admin_cleanup(
            ["%", "localhost", "127.0.0.1"]
                .iter()
                .map(|host| format!("DROP USER IF EXISTS '{}'@'{host}'", self.name))
                .collect(),
        );
    }
}

fn freepbx_conf(path: &Path, user: &str, pw: &str, db: &str) {
    let o = support::server_opts();
    std::fs::write(
        path,
        format!(
            "<?php\n$amp_conf['AMPDBUSER'] = '{user}';\n$amp_conf['AMPDBPASS'] = '{pw}';\n\
             $amp_conf['AMPDBHOST'] = '{}';\n$amp_conf['AMPDBPORT'] = '{}';\n\
             $amp_conf['AMPDBNAME'] = '{db}';\n$amp_conf['AMPDBENGINE'] = 'mysql';\n",
            o.ip_or_hostname(),
            o.tcp_port(),
        ),
    )
    .unwrap();
}

/// Everything one run printed, labelled, collected for the final check.
#[derive(Default)]
struct Transcript {
    parts: Vec<(String, String)>,
}

impl Transcript {
    fn add(&mut self, label: &str, text: &str) {
        assert_clean(label, text);
        self.parts.push((label.to_string(), text.to_string()));
    }
    fn run(&mut self, label: &str, cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> RunOutput {
        let mut e = vec![("RUST_LOG", "debug")];
        e.extend_from_slice(env);
        let out = run_bin(cfg, args, &e);
        self.add(&format!("{label} stdout"), &out.stdout);
        self.add(&format!("{label} stderr"), &out.stderr);
        out
    }
    fn debug_lines(&self) -> usize {
        self.parts
            .iter()
            .map(|(_, t)| t.lines().filter(|l| l.contains("DEBUG")).count())
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_hash_appears_in_any_output() {
    let started = Instant::now();
    let db = TestDb::create().await;
    db.load_fixture("freepbx_modern_schema.sql").await;
    db.load_fixture("cx_settings_tables.sql").await;
    db.exec(&base_sql()).await;
    db.exec(&cx_rows()).await;
    let user = DbUser::create(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let vm = dir.path().join("voicemail.conf");
    std::fs::write(
        &vm,
        format!(
            "[general]\n\n[default]\n2001 => {VM_PIN},Ann,ann@example.com,,attach=yes\n\
             2002 => {VM_PIN}1,Bo,bo@example.com\n"
        ),
    )
    .unwrap();
    let fpbx = dir.path().join("freepbx.conf");
    freepbx_conf(&fpbx, &user.name, DB_PW, &db.name);

    // The Configuration API in a process of its own, logging at debug level.
    let server = ServerProc::start(dir.path(), &dir.path().join("server"), API_PW, "", "debug");
    let state = dir.path().join("state");
    // No password in the TOML: the API password comes from FreePBX's cxpanel settings, the
    // database credentials from freepbx.conf.
    let agent_toml = |url: &str, extra_isym: &str, freepbx: &str| {
        format!(
            "[server]\nenabled = false\n\n[freepbx]\n{freepbx}voicemail_conf = {:?}\n\n\
             [isymphony]\nurl = {url:?}\n{extra_isym}\n[sync]\nstate_dir = {:?}\n",
            vm.display().to_string(),
            state.display().to_string()
        )
    };
    let conf_line = format!(
        "config_file = {:?}\namportal_conf = {:?}\n",
        fpbx.display().to_string(),
        dir.path().join("none.conf").display().to_string()
    );
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, agent_toml(&server.base_url, "", &conf_line)).unwrap();

    let mut t = Transcript::default();
    let json_logs: &[&str] = &["--log-format", "json"];

    // Plans before the first sync, as JSON and text, with JSON logs too.
    let out = t.run(
        "dry-run json",
        &cfg,
        &["--dry-run", "--output", "json"],
        &[],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        out.stdout.contains("2001") && out.stdout.contains("umadmin"),
        "the plan lists the logins and administrators: {}",
        out.stdout
    );
    assert!(plan["plan"].is_object(), "{plan}");
    let args = [json_logs, &["--dry-run"]].concat();
    let out = t.run("dry-run text (json logs)", &cfg, &args, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);

    // The real sync.
    let out = t.run(
        "sync-now json",
        &cfg,
        &["--sync-now", "--output", "json"],
        &[],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = t.run("check-config", &cfg, &["--check-config"], &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = t.run("sync-now again", &cfg, &["--sync-now"], &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // The secrets did flow: the server holds FreePBX's hashes.
    let api = server.client(API_PW);
    let cs = core_server_id(&api).await;
    let users: Vec<User> = api.get(paths::users(&cs)).await.unwrap();
    let u = users.iter().find(|u| u.username == "2001").unwrap();
    assert_eq!(u.password.expose(), sha1_hex(CX_PW[0]));
    let admins: Vec<Administrator> = api.get(paths::administrators()).await.unwrap();
    let a = admins.iter().find(|a| a.user_name == "admin").unwrap();
    assert_eq!(a.password.expose(), sha1_hex(AMP_PW));

    // A password changed in FreePBX: the plan shows an update, masked.
    db.exec(&format!(
        "UPDATE cxpanel_users SET hashed_password = '{}', password_dirty = 1 WHERE user_id = '2002';",
        sha1_hex(CX_NEW_PW)
    ))
    .await;
    let out = t.run("password change dry-run", &cfg, &["--dry-run"], &[]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("2002"), "{}", out.stdout);
    let out = t.run(
        "password change dry-run json",
        &cfg,
        &["--dry-run", "--output", "json"],
        &[],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    let args = [json_logs, &["--sync-now", "--output", "json"]].concat();
    let out = t.run("password change sync", &cfg, &args, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let users: Vec<User> = api.get(paths::users(&cs)).await.unwrap();
    let u = users.iter().find(|u| u.username == "2002").unwrap();
    assert_eq!(u.password.expose(), sha1_hex(CX_NEW_PW));
    let out = t.run(
        "full verify json",
        &cfg,
        &["--dry-run", "--full", "--output", "json"],
        &[],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // Snapshot export (secrets replaced).
    let snap = dir.path().join("snapshot.json");
    let out = t.run(
        "export-snapshot",
        &cfg,
        &["--export-snapshot", snap.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    t.add("snapshot file", &std::fs::read_to_string(&snap).unwrap());

    // Error paths.
    let bad = dir.path().join("bad.toml");
    let wrong_conf = dir.path().join("wrong-freepbx.conf");
    freepbx_conf(&wrong_conf, &user.name, WRONG_DB_PW, &db.name);
    let wrong_line = format!(
        "config_file = {:?}\namportal_conf = {:?}\n",
        wrong_conf.display().to_string(),
        dir.path().join("none.conf").display().to_string()
    );
    let o = support::server_opts();
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong database password",
            agent_toml(&server.base_url, "", &wrong_line),
        ),
        (
            "wrong database password in database_url",
            agent_toml(
                &server.base_url,
                "",
                &format!(
                    "database_url = \"mysql://{}:{URL_DB_PW}@{}:{}/{}\"\n",
                    user.name,
                    o.ip_or_hostname(),
                    o.tcp_port(),
                    db.name
                ),
            ),
        ),
        (
            "malformed database_url",
            agent_toml(
                &server.base_url,
                "",
                &format!(
                    "database_url = \"mysql://{}:{URL_DB_PW}@{}:notaport/{}\"\n",
                    user.name,
                    o.ip_or_hostname(),
                    db.name
                ),
            ),
        ),
        (
            "wrong API password",
            agent_toml(
                &server.base_url,
                &format!("password = {WRONG_API_PW:?}\n"),
                &conf_line,
            ),
        ),
        (
            "credentials in the API URL",
            agent_toml(
                &server
                    .base_url
                    .replace("http://", &format!("http://manager:{URL_API_PW}@")),
                "",
                &conf_line,
            ),
        ),
        (
            "misspelled password key",
            agent_toml(
                &server.base_url,
                &format!("pasword = {TYPO_PW:?}\n"),
                &conf_line,
            ),
        ),
    ];
    for (label, text) in &cases {
        std::fs::write(&bad, text).unwrap();
        for args in [
            &["--sync-now"][..],
            &["--dry-run", "--output", "json"][..],
            &["--log-format", "json", "--sync-now", "--output", "json"][..],
        ] {
            let out = t.run(&format!("{label} {args:?}"), &bad, args, &[]);
            assert_eq!(out.code, 1, "{label}: {}\n{}", out.stdout, out.stderr);
            assert!(
                !out.stdout.trim().is_empty() || !out.stderr.trim().is_empty(),
                "{label}: no message at all"
            );
        }
    }

    // The daemon: its status, plan and metrics resources, then SIGTERM.
    let dcfg = dir.path().join("daemon.toml");
    std::fs::write(
        &dcfg,
        format!(
            "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\npassword = {API_PW:?}\n\n\
             [freepbx]\n{conf_line}voicemail_conf = {:?}\npoll_interval = \"200ms\"\n\n\
             [isymphony]\nurl = {:?}\n\n[sync]\nstate_dir = {:?}\ndebounce = \"50ms\"\n",
            dir.path().join("daemon-server").display().to_string(),
            vm.display().to_string(),
            server.base_url,
            state.display().to_string()
        ),
    )
    .unwrap();
    let first_pass_ended = |l: &str| l.contains("in sync") || l.contains("applied ");
    let daemon_out = daemon_transcript(&dcfg, first_pass_ended, true).await;
    t.add("daemon", &daemon_out);

    // The daemon with the wrong database password: it keeps running, says the login failed
    // (in its log and its status), and shows no password.
    let wcfg = dir.path().join("daemon-wrong-db.toml");
    std::fs::write(
        &wcfg,
        std::fs::read_to_string(&dcfg)
            .unwrap()
            .replace(&conf_line, &wrong_line)
            .replace("daemon-server", "daemon-wrong-server"),
    )
    .unwrap();
    let login_failed = |l: &str| l.contains("cannot start yet") || l.contains("connection failed");
    let wrong_out = daemon_transcript(&wcfg, login_failed, false).await;
    assert!(
        wrong_out.contains(&user.name),
        "the failure names the user: {wrong_out}"
    );
    t.add("daemon, wrong database password", &wrong_out);

    // --check-config on every error path. Last, because its wrong API logins would lock the
    // user name out of the shared server (lockout per network and user) for the daemons.
    for (label, text) in &cases {
        std::fs::write(&bad, text).unwrap();
        let out = t.run(
            &format!("{label} --check-config"),
            &bad,
            &["--check-config"],
            &[],
        );
        assert_eq!(out.code, 1, "{label}: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("FAIL") || out.stderr.contains("isymphony-sync:"),
            "{label}: --check-config says what failed: {}\n{}",
            out.stdout,
            out.stderr
        );
    }

    let server_log = server.stop().join("\n");
    t.add("server log", &server_log);
    assert!(server_log.contains("listening"), "no server log captured");
    let n_debug = t.debug_lines();
    assert!(n_debug > 50, "debug logging was not on ({n_debug} lines)");
    let bytes: usize = t.parts.iter().map(|(_, s)| s.len()).sum();
    eprintln!(
        "evidence_secrets: {} outputs, {bytes} bytes, {n_debug} debug lines searched for {} \
         forbidden strings: clean; {:.1?}",
        t.parts.len(),
        forbidden().len(),
        started.elapsed()
    );
}

/// Run the daemon until a log line satisfies `done` (e.g. its first pass ended), read its agent
/// resources, stop it; return all it printed and answered.
/// `plan_ok`: the plan resource can be computed (false: FreePBX is unreadable, so it answers
/// with an error, which is kept in the transcript too).
async fn daemon_transcript(cfg: &Path, done: impl Fn(&str) -> bool, plan_ok: bool) -> String {
    use std::io::{BufRead, BufReader, Read};
    use std::sync::{Arc, Mutex};
    let mut child = support::process::spawn(
        support::process::bin()
            .arg("--config")
            .arg(cfg)
            .arg("--log-format")
            .arg("json")
            .env("RUST_LOG", "debug")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let err_t = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            l2.lock().unwrap().push(line);
        }
    });
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let http = reqwest::Client::new();
    let mut answers = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The endpoint's address is in the start-up log line `agent resources at`.
    let root = loop {
        let url = lines.lock().unwrap().iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            if !v["message"].as_str()?.starts_with("agent resources at") {
                return None;
            }
            v["url"].as_str().map(str::to_string)
        });
        if let Some(u) = url {
            break u
                .split("/communication_manager")
                .next()
                .unwrap()
                .to_string();
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not listen:\n{}",
            lines.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let get = |p: &str| {
        http.get(format!("{root}/isymphony-sync/api/{p}"))
            .basic_auth("manager", Some(API_PW))
            .send()
    };
    // Wait for the event the caller names.
    loop {
        if lines.lock().unwrap().iter().any(|l| done(l)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not get there:\n{}",
            lines.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in ["status", "plan", "metrics"] {
        let r = get(p).await.unwrap();
        if plan_ok || p != "plan" {
            assert_eq!(r.status(), 200, "GET {p}");
        } else {
            assert!(r.status().is_server_error(), "GET {p}: {}", r.status());
        }
        answers.push('\n');
        answers.push_str(&r.text().await.unwrap());
    }
    // A wrong password at the daemon's endpoint: 403.
    let r = http
        .get(format!("{root}/isymphony-sync/api/status"))
        .basic_auth("manager", Some(WRONG_API_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "daemon exit {status}");
    err_t.join().unwrap();
    let log = lines.lock().unwrap().join("\n");
    format!("{}\n{log}\n{answers}", out_t.join().unwrap())
}
