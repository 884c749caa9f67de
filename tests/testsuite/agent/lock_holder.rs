//! The lock holder is named truthfully: any MariaDB account can take the
//! writer lock, so the agent names the holder's MariaDB user and host, warns when it is not
//! the agents' login or when standby lasts over `[sync] standby_warn_after`, and exports both
//! as metrics. Real binary, real MariaDB, a second real account holding the lock.

use crate::support;
use support::agent;
use support::e2e;

use agent::*;
use e2e::*;
use isymphony_sync::config::DEFAULT_API_PASSWORD as PW;
use mysql_async::prelude::Queryable;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_another_account_is_named_warned_and_exported() {
    let env = Env::new(2).await;
    let intruder = support::TestUser::create("isy_intr", "Intr-Pw-41", &["%"]).await;
    let server = support::server_url().replace("mysql://root@", "");
    let mut conn = mysql_async::Conn::new(
        mysql_async::Opts::from_url(&format!("mysql://{}:Intr-Pw-41@{server}/", intruder.name))
            .unwrap(),
    )
    .await
    .unwrap();
    let lock = isymphony_sync::agent::leader::election::lock_name("default", &env.db.name);
    let got: Option<i64> = conn
        .exec_first("SELECT GET_LOCK(?, 0)", (lock.as_str(),))
        .await
        .unwrap();
    assert_eq!(got, Some(1));

    let cfg = env.dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n\
             [freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n\
             [isymphony]\ncore_server = \"default\"\n\n[sync]\nstandby_warn_after = \"2s\"\n",
            env.dir.path().join("data").display().to_string(),
            env.db.url(),
            env.vm_path().display().to_string(),
        ),
    )
    .unwrap();
    let daemon = Agent::spawn(&cfg, &[]);
    let root = daemon.endpoint(0).await;
    let user = intruder.name.clone();
    daemon
        .wait_log(T, |v| {
            let m = msg(v);
            m.contains(&format!("of user '{user}'")) && m.contains("NOT the agents' login")
        })
        .await;
    daemon
        .wait_log(T, |v| msg(v).starts_with("standby for "))
        .await;

    let (st, body) = get_text(&root, "/isymphony-sync/api/status", PW).await;
    assert_eq!(st, 200);
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["role"], "standby", "{s}");
    let check = &s["lock_check"];
    assert_eq!(check["foreign_holder"], true, "{s}");
    assert_eq!(check["standby_too_long"], true, "{s}");
    assert!(check["holder"].as_str().unwrap().contains(&user), "{s}");
    let (_, metrics) = get_text(&root, "/isymphony-sync/api/metrics", PW).await;
    assert!(
        metrics.contains("isymphony_sync_lock_holder_foreign 1")
            && metrics.contains("isymphony_sync_standby_too_long 1"),
        "{metrics}"
    );
    let (_, page) = get_text(&root, "/isymphony-sync/", PW).await;
    assert!(
        page.contains(&format!("of user &#39;{user}&#39;"))
            || page.contains(&format!("of user '{user}'")),
        "the page names the account"
    );
    assert!(!page.contains("held by another agent"));

    // Released: this agent leads, the warnings and the metrics clear.
    conn.disconnect().await.unwrap();
    assert!(
        eventually(T, || async {
            let (_, m) = get_text(&root, "/isymphony-sync/api/metrics", PW).await;
            m.contains("isymphony_sync_leader 1")
                && m.contains("isymphony_sync_lock_holder_foreign 0")
                && m.contains("isymphony_sync_standby_too_long 0")
        })
        .await,
        "{}",
        daemon.dump()
    );
}
