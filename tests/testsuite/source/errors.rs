//! Connection and configuration failures: one clear message each naming what was tried (host,
//! port, user, database, file) and never the password; the CLI exits 1.

use crate::support;

use std::path::Path;
use support::TestDb;

/// Run `--export-snapshot` with a config file body; returns (exit code, stderr).
fn export(dir: &Path, config_body: &str) -> (i32, String) {
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, config_body).unwrap();
    let out = support::process::bin()
        .arg("--config")
        .arg(&cfg)
        .arg("--export-snapshot")
        .arg(dir.join("snap.json"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn freepbx_conf(dir: &Path, host: &str, port: u16, user: &str, pass: &str, db: &str) -> String {
    let path = dir.join("freepbx.conf");
    std::fs::write(
        &path,
        format!(
            "<?php\n$amp_conf['AMPDBUSER'] = '{user}';\n$amp_conf['AMPDBPASS'] = '{pass}';\n\
             $amp_conf['AMPDBHOST'] = '{host}';\n$amp_conf['AMPDBPORT'] = '{port}';\n\
             $amp_conf['AMPDBNAME'] = '{db}';\n$amp_conf['AMPDBENGINE'] = 'mysql';\n\
             require_once('/var/www/html/admin/bootstrap.php');\n"
        ),
    )
    .unwrap();
    format!(
        "[freepbx]\nconfig_file = \"{}\"\nvoicemail_conf = \"{}\"\n",
        path.display(),
        dir.join("voicemail.conf").display()
    )
}

#[test]
fn unreachable_server_names_host_and_port() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1025 on loopback: nothing listens, the connection is refused at once.
    let body = freepbx_conf(
        dir.path(),
        "127.0.0.1",
        1025,
        "fpbxuser",
        "pw-unreach-123",
        "asterisk",
    );
    let (code, err) = export(dir.path(), &body);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
    assert!(err.contains("fpbxuser@127.0.0.1:1025/asterisk"), "{err}");
    assert!(!err.contains("pw-unreach-123"), "{err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.contains("isymphony-sync:"))
            .count(),
        1,
        "{err}"
    );
}

#[tokio::test]
async fn wrong_password_names_user_but_not_password() {
    let db = TestDb::create().await;
    let test_user = support::TestUser::create("isy_u", "right-pw-42", &["%"]).await;
    test_user.grant("SELECT", &db.name).await;
    let user = test_user.name.clone();
    let o = support::server_opts();
    let dir = tempfile::tempdir().unwrap();
    let body = freepbx_conf(
        dir.path(),
        o.ip_or_hostname(),
        o.tcp_port(),
        &user,
        "wrong-pw-99",
        &db.name,
    );
    let (code, err) = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || export(&d, &body)
    })
    .await
    .unwrap();
    // The right password works (so the failure above is the password, nothing else).
    let ok_body = freepbx_conf(
        dir.path(),
        o.ip_or_hostname(),
        o.tcp_port(),
        &user,
        "right-pw-42",
        &db.name,
    );
    let (ok_code, ok_err) = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || export(&d, &ok_body)
    })
    .await
    .unwrap();
    drop(test_user);

    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused the login"), "{err}");
    assert!(
        err.contains(&format!(
            "{user}@{}:{}/{}",
            o.ip_or_hostname(),
            o.tcp_port(),
            db.name
        )),
        "{err}"
    );
    assert!(
        !err.contains("wrong-pw-99") && !err.contains("right-pw-42"),
        "{err}"
    );
    assert_eq!(ok_code, 0, "{ok_err}");
}

#[test]
fn missing_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = support::unique_name("isy_nodb");
    let body = format!(
        "[freepbx]\ndatabase_url = \"{}/{missing}\"\n",
        support::server_url()
    );
    let (code, err) = export(dir.path(), &body);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains(&missing), "{err}");
}

#[test]
fn missing_config_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "[freepbx]\nconfig_file = \"{0}/freepbx.conf\"\namportal_conf = \"{0}/amportal.conf\"\n",
        dir.path().display()
    );
    let (code, err) = export(dir.path(), &body);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not found"), "{err}");
    assert!(
        err.contains(&format!("{}/freepbx.conf", dir.path().display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}/amportal.conf", dir.path().display())),
        "{err}"
    );
}

#[test]
fn unparsable_freepbx_conf_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("freepbx.conf");
    std::fs::write(&conf, "<?php\n// nothing useful here\necho 'hello';\n").unwrap();
    let body = format!("[freepbx]\nconfig_file = \"{}\"\n", conf.display());
    let (code, err) = export(dir.path(), &body);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot parse") && err.contains(&conf.display().to_string()),
        "{err}"
    );
    // A file with assignments but no AMPDBUSER is also unusable.
    std::fs::write(&conf, "<?php\n$amp_conf['AMPDBPASS'] = 'only-pw';\n").unwrap();
    let (code, err) = export(dir.path(), &body);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("AMPDBUSER") && !err.contains("only-pw"),
        "{err}"
    );
}
