//! The PBX connection's CDR login and device-and-user mode, on real
//! MariaDB and the embedded server over loopback.

use crate::support;
use support::e2e;

use e2e::*;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::secret::Secret;

async fn pbx(env: &Env) -> PbxServer {
    let v: Vec<PbxServer> = env
        .api
        .get(paths::pbx_servers(&env.cs().await))
        .await
        .unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdr_login_is_freepbxs_never_the_agents() {
    let mut env = Env::new(1).await;
    // The agent reads the database as root (database_url); FreePBX's own login is in
    // freepbx.conf, behind a commented-out decoy and with PHP escapes.
    let conf = env.dir.path().join("freepbx.conf");
    std::fs::write(
        &conf,
        "<?php\n$amp_conf['AMPDBUSER'] = 'fpuser';\n\
         /* $amp_conf['AMPDBPASS'] = 'decoy-block'; */\n\
         $amp_conf['AMPDBPASS'] = \"fp-\\$ecret\\\\x\";\n\
         // $amp_conf['AMPDBPASS'] = 'decoy-line';\n\
         require_once('/var/www/html/admin/bootstrap.php');\n",
    )
    .unwrap();
    env.cfg.freepbx.config_file = conf.clone();
    let r = env.sync().await;
    assert!(
        !r.plan.render_text(false).contains("ecret"),
        "no password in the plan"
    );
    let p = pbx(&env).await;
    assert_eq!(p.cdr_username, "fpuser");
    assert_eq!(p.cdr_password.expose(), "fp-$ecret\\x");

    // FreePBX's CDRDBUSER / CDRDBPASS settings win when set.
    env.db
        .exec("INSERT INTO freepbx_settings (keyword, value) VALUES ('CDRDBUSER', 'cdruser'), ('CDRDBPASS', 'cdr-pw');")
        .await;
    env.sync().await;
    let p = pbx(&env).await;
    assert_eq!(
        (p.cdr_username.as_str(), p.cdr_password.expose()),
        ("cdruser", "cdr-pw")
    );

    // [isymphony] cdr_username / cdr_password win over both.
    env.cfg.isymphony.cdr_username = Some("cfguser".into());
    env.cfg.isymphony.cdr_password = Some(Secret::new("cfg-pw"));
    env.sync().await;
    let p = pbx(&env).await;
    assert_eq!(
        (p.cdr_username.as_str(), p.cdr_password.expose()),
        ("cfguser", "cfg-pw")
    );

    // Unknown (no setting, no key, freepbx.conf gone): left as the server has it, a warning.
    env.cfg.isymphony.cdr_username = None;
    env.cfg.isymphony.cdr_password = None;
    env.db
        .exec("DELETE FROM freepbx_settings WHERE keyword IN ('CDRDBUSER', 'CDRDBPASS');")
        .await;
    std::fs::remove_file(&conf).unwrap();
    let r = env.sync().await;
    assert!(r.plan.ops.is_empty(), "{:?}", plan_lines(&r));
    assert!(
        r.plan
            .warnings
            .iter()
            .any(|w| w.contains("CDR database login")
                && w.contains("cdrUsername and cdrPassword are left as the server has it")),
        "{:?}",
        r.plan.warnings
    );
    let p = pbx(&env).await;
    assert_eq!(
        (p.cdr_username.as_str(), p.cdr_password.expose()),
        ("cfguser", "cfg-pw")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_and_user_mode_uses_the_users_device() {
    let env = Env::new(3).await;
    // Devices are separate from users: user 1001 has devices 2003 and 2001, device 1001
    // belongs to user 1002, user 1003 has none.
    env.db
        .exec(
            "INSERT INTO freepbx_settings (keyword, value) VALUES ('AMPEXTENSIONS', 'deviceanduser');
             DELETE FROM devices;
             INSERT INTO devices (id, tech, dial, devicetype, user, description) VALUES
              ('2003', 'pjsip', 'PJSIP/2003', 'adhoc', '1001', 'desk'),
              ('2001', 'pjsip', 'PJSIP/2001', 'fixed', '1001', 'phone'),
              ('1001', 'sip', '', 'fixed', '1002', 'old phone');
             INSERT INTO sip (id, keyword, data) VALUES ('1001', 'dial', 'SIP/1001');",
        )
        .await;
    env.sync().await;
    let mut got: Vec<(String, String, String)> = env
        .extensions()
        .await
        .into_iter()
        .map(|x| (x.extension, x.peer, x.agent_interface))
        .collect();
    got.sort();
    let want = [
        ("1001", "PJSIP/2001", "PJSIP/2001"),
        ("1002", "SIP/1001", "SIP/1001"),
        ("1003", "", ""),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);

    // Back to the default mode: the device sharing the number again.
    env.db
        .exec("DELETE FROM freepbx_settings WHERE keyword = 'AMPEXTENSIONS';")
        .await;
    env.sync().await;
    let x = env.extensions().await;
    let x1001 = x.iter().find(|x| x.extension == "1001").unwrap();
    assert_eq!(x1001.peer, "SIP/1001");
}
