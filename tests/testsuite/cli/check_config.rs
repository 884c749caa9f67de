//! `--check-config` against a good setup and against each likely failure (bad database
//! password, API down, wrong API password, missing freepbx.conf), run as the real binary;
//! and the man page and shell completions that packaging installs.

use crate::support;
use support::e2e;

use e2e::*;
use std::path::{Path, PathBuf};

const API_PASSWORD_MARK: &str = isymphony_sync::config::DEFAULT_API_PASSWORD;

/// The agent port's password file, as the package's postinst writes it.
fn password_file(env: &Env) -> PathBuf {
    let path = env.dir.path().join("agent-password");
    std::fs::write(&path, "Generated-At-Install-1\n").unwrap();
    path
}

fn write(env: &Env, name: &str, freepbx: &str, isymphony: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    let text = format!(
        "[server]\nenabled = false\npassword_file = {:?}\n\n[freepbx]\n{freepbx}\n\
         voicemail_conf = {:?}\n\n[isymphony]\n{isymphony}\n",
        password_file(env).display().to_string(),
        env.vm_path().display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `--check-config` off the test's runtime; returns (exit code, stdout + stderr).
async fn check(config: &Path) -> (i32, String) {
    let mut cmd = support::process::with_config(config, &["--check-config"]);
    cmd.env("RUST_LOG", "error");
    let out = support::process::run_off_runtime(cmd).await;
    (out.code_or_signal(), out.text())
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no '{name}' line in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_good_and_each_failure() {
    let env = Env::new(3).await;
    env.write_voicemail();
    let url = env.server().base_url();
    let db = format!("database_url = {:?}", env.db.url());

    // Good: every line ok, exit 0.
    let good = write(&env, "good.toml", &db, &format!("url = {url:?}"));
    let (code, out) = check(&good).await;
    assert_eq!(code, 0, "{out}");
    for name in [
        "config",
        "password",
        "freepbx",
        "database",
        "changes",
        "voicemail",
        "isymphony",
    ] {
        assert!(line(&out, name).starts_with("ok"), "{name}: {out}");
    }
    assert!(line(&out, "database").contains("3 extensions"), "{out}");
    // Where the agent port's password is, never the password.
    let pw = line(&out, "password");
    assert!(
        pw.contains("sudo cat") && pw.contains("agent-password"),
        "{out}"
    );
    assert!(!out.contains("Generated-At-Install-1"), "{out}");

    // The factory password outside the demo: the service would refuse it; the line warns (a
    // one-shot pass serves no port) and says how to set one.
    let text = std::fs::read_to_string(&good).unwrap();
    let factory = env.dir.path().join("factory.toml");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("password_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&factory, text).unwrap();
    let (code, out) = check(&factory).await;
    assert_eq!(code, 0, "{out}");
    let pw = line(&out, "password");
    assert!(
        pw.starts_with("warn") && pw.contains("refuses to start"),
        "{out}"
    );
    assert!(pw.contains("password_file"), "{out}");

    // Wrong database password: a dedicated MariaDB user, then the wrong password for it.
    let test_user = support::TestUser::create("isy_chk", "Right-Pw-123", &["%"]).await;
    let user = test_user.name.clone();
    let server = support::server_url().replace("mysql://root@", "");
    let bad_db = format!(
        "database_url = \"mysql://{user}:Wrong-Pw-456@{server}/{}\"",
        env.db.name
    );
    let cfg = write(&env, "baddb.toml", &bad_db, &format!("url = {url:?}"));
    let (code, out) = check(&cfg).await;
    drop(test_user);
    assert_eq!(code, 1, "{out}");
    assert!(line(&out, "database").starts_with("FAIL"), "{out}");
    assert!(line(&out, "database").contains(&user), "{out}");
    assert!(
        !out.contains("Wrong-Pw-456") && !out.contains("Right-Pw-123"),
        "{out}"
    );

    // API down: nothing listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!(
        "http://{}/communication_manager/api/resource/",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let cfg = write(
        &env,
        "down.toml",
        &db,
        &format!("url = {down:?}\ntimeout = \"2s\""),
    );
    let (code, out) = check(&cfg).await;
    assert_eq!(code, 1, "{out}");
    assert!(line(&out, "isymphony").starts_with("FAIL"), "{out}");
    assert!(line(&out, "database").starts_with("ok"), "{out}");

    // Wrong API password.
    let cfg = write(
        &env,
        "badapi.toml",
        &db,
        &format!("url = {url:?}\npassword = \"Not-The-Api-Pw\""),
    );
    let (code, out) = check(&cfg).await;
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "isymphony");
    assert!(l.starts_with("FAIL") && l.contains("403"), "{out}");
    assert!(l.contains("wrong API username or password"), "{out}");
    assert!(
        !out.contains("Not-The-Api-Pw") && !out.contains(API_PASSWORD_MARK),
        "{out}"
    );

    // Missing freepbx.conf (no database_url): the file is named.
    let missing = env.dir.path().join("no-such-freepbx.conf");
    let cfg = write(
        &env,
        "noconf.toml",
        &format!(
            "config_file = {:?}\namportal_conf = {:?}",
            missing.display().to_string(),
            env.dir
                .path()
                .join("no-amportal.conf")
                .display()
                .to_string()
        ),
        &format!("url = {url:?}"),
    );
    let (code, out) = check(&cfg).await;
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "freepbx");
    assert!(
        l.starts_with("FAIL") && l.contains("no-such-freepbx.conf"),
        "{out}"
    );

    // A config file that does not parse: one line naming the key.
    let cfg = env.dir.path().join("broken.toml");
    std::fs::write(&cfg, "[sync]\nconcurrencyy = 3\n").unwrap();
    let (code, out) = check(&cfg).await;
    assert_eq!(code, 1, "{out}");
    assert!(line(&out, "config").contains("concurrencyy"), "{out}");
}

#[test]
fn man_page_and_completions_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let status = support::process::bin()
        .arg("--generate-assets")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let gz = std::fs::read(dir.path().join("isymphony-sync.1.gz")).unwrap();
    let mut man = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut man)
        .unwrap();
    assert!(man.contains(".TH isymphony-sync"), "{man}");
    for flag in ["sync\\-now", "dry\\-run", "check\\-config"] {
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    assert!(
        !man.contains("generate\\-assets"),
        "hidden flag in the man page"
    );
    let bash = std::fs::read_to_string(dir.path().join("isymphony-sync.bash")).unwrap();
    assert!(
        bash.contains("--dry-run") && bash.contains("complete"),
        "{bash}"
    );
    let zsh = std::fs::read_to_string(dir.path().join("_isymphony-sync")).unwrap();
    assert!(zsh.starts_with("#compdef isymphony-sync"), "{zsh}");
}
