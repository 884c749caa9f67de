//! The AMI link: an Asterisk restart, a cut connection, a wrong password, where the login
//! comes from, `--check-config`'s ami line, and the metrics and status of the connection.

use super::*;

#[tokio::test]
async fn an_asterisk_restart_reconnects_with_new_ids() {
    let mut ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    let key = ("401".to_string(), "Local/1003@from-queue/n".to_string());
    let before = h
        .shared()
        .read(|f| f.members.get(&key).map(|m| m.id))
        .expect("the static member of 401");
    let since_before = match h.shared().read(|f| f.link.clone()) {
        Link::Up { since, .. } => since,
        l => panic!("{l:?}"),
    };
    let mut rx = h.shared().subscribe();
    let saw_down = tokio::spawn({
        let shared = h.shared().clone();
        async move {
            loop {
                if !shared.read(|f| f.link.is_up()) {
                    return shared.read(|f| (f.channels.len(), f.members.len()));
                }
                if rx.changed().await.is_err() {
                    return (usize::MAX, usize::MAX);
                }
            }
        }
    });
    ast.restart();
    let (chans, members) = tokio::time::timeout(Duration::from_secs(10), saw_down)
        .await
        .expect("went down")
        .expect("task");
    assert_eq!((chans, members), (0, 0), "nothing stale while down");
    let t = wait_for(
        &h,
        "reconnected",
        Duration::from_secs(20),
        |f| matches!(&f.link, Link::Up { since, .. } if *since > since_before),
    )
    .await;
    eprintln!("reconnected {t:?} after the restart");
    let after = h
        .shared()
        .read(|f| f.members.get(&key).map(|m| m.id))
        .expect("re-listed");
    assert_ne!(before, after, "an agent gets a new id after the reconnect");
    h.execute(originate("1001", "1002"))
        .await
        .expect("actions work again");
    wait_for(
        &h,
        "a call after the restart",
        Duration::from_secs(10),
        |f| !f.channels.is_empty(),
    )
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_is_one_clear_reason_retried_with_backoff() {
    let (_logs, _guard) = support::logs::capture();
    let ast = Asterisk::start();
    let h = asterisk::start(ast.settings_with("wrong-password-xyz"));
    let reason = wait_for(
        &h,
        "a login refusal",
        Duration::from_secs(10),
        |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("refused")),
    )
    .await;
    let _ = reason;
    let text = h.shared().read(|f| match &f.link {
        Link::Down { reason, .. } => reason.clone(),
        l => panic!("{l:?}"),
    });
    assert!(
        text.contains("Authentication failed") && text.contains("ami_password"),
        "{text}"
    );
    assert!(!text.contains("wrong-password-xyz"));
    let e = h.execute(originate("1001", "1002")).await;
    assert!(
        matches!(&e, Err(ActionError::Unavailable { reason, .. }) if reason.contains("refused")),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let attempts = ast.full_log().matches("failed to authenticate").count();
    eprintln!("login attempts in ~5 s: {attempts}");
    assert!(
        (1..=8).contains(&attempts),
        "backoff, not a crash loop: {attempts} attempts"
    );
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// FAKE AMI server: only for faults a real Asterisk cannot produce.

#[tokio::test]
async fn check_config_ami_line_names_missing_write_classes() {
    use isymphony_sync::live::asterisk::check::check;
    let ast = Asterisk::start();
    let ok = check(&ast.settings()).await.expect("the full user passes");
    assert!(
        ok.contains("Asterisk 22.") && ok.contains("every action"),
        "{ok}"
    );
    let mut limited = ast.settings();
    limited.username = format!("{}-limited", support::asterisk::USER);
    let e = check(&limited)
        .await
        .expect_err("the limited user lacks classes")
        .to_string();
    for needle in [
        "DBPut (DND on) needs write class 'system'",
        "'originate'",
        "QueueAdd (queue login) needs write class 'agent'",
        "Redirect (call-segment transfer) needs write class 'call'",
    ] {
        assert!(e.contains(needle), "{needle} in {e}");
    }
    assert!(!e.contains("CoreShowChannels"), "reporting is granted: {e}");
    let wrong = check(&ast.settings_with("nope"))
        .await
        .expect_err("wrong password")
        .to_string();
    assert!(
        wrong.contains("refused") && !wrong.contains("nope"),
        "{wrong}"
    );
}

/// Originate a call from 1001 to 1002 through `h` and wait until both of its channels are
/// bridged.
async fn bridged_call(h: &Handle) {
    h.execute(originate("1001", "1002"))
        .await
        .expect("originate");
    wait_for(h, "a bridged call", Duration::from_secs(10), |f| {
        f.channels.values().filter(|c| c.bridge.is_some()).count() >= 2
    })
    .await;
}

#[tokio::test]
async fn metrics_and_status_show_the_ami_connection() {
    let ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    let agent = isymphony_sync::agent::state::AgentState::new();
    assert!(
        !agent.metrics().contains("ami_connected"),
        "not exported without the backend"
    );
    agent.attach_ami(h.shared().clone());
    bridged_call(&h).await;
    let m = agent.metrics();
    assert!(m.contains("isymphony_sync_ami_connected 1"), "{m}");
    assert!(m.contains("isymphony_sync_live_calls 1"), "{m}");
    let events = m
        .lines()
        .find(|l| l.starts_with("isymphony_sync_ami_events_total "))
        .expect("events counter");
    assert!(
        events
            .split(' ')
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            > 0,
        "{events}"
    );
    let st = agent.status();
    let ami = st.ami.as_ref().expect("status has ami");
    assert!(ami.connected_since.is_some() && ami.calls_now == 1);
    let json = serde_json::to_value(&st).expect("status JSON");
    assert!(json["ami"]["connected_since"].is_string(), "{json}");
    ast.stop();
    wait_for(&h, "down", Duration::from_secs(10), |f| !f.link.is_up()).await;
    let m = agent.metrics();
    assert!(
        m.contains("isymphony_sync_ami_connected 0") && m.contains("isymphony_sync_live_calls 0"),
        "{m}"
    );
    let st = agent.status();
    assert!(st.ami.as_ref().is_some_and(|a| a.down_reason.is_some()));
    h.shutdown().await;
}

/// The AMI connection cut while Asterisk keeps running (a TCP proxy between them): while down,
/// no stale state and actions answer Unavailable naming the loss; after the reconnect the same
/// Asterisk channels and members are re-listed with NEW live ids.
#[tokio::test]
async fn a_cut_connection_relists_the_same_calls_with_new_ids() {
    use support::agent::{Mode, Proxy};
    let ast = Asterisk::start();
    let proxy = Proxy::start(([127, 0, 0, 1], ast.port).into()).await;
    let mut s = ast.settings();
    s.port = proxy.addr.port();
    let h = asterisk::start(s);
    wait_for(&h, "up through the proxy", Duration::from_secs(10), |f| {
        f.link.is_up()
    })
    .await;
    bridged_call(&h).await;
    let snapshot_ids = |h: &Handle| {
        h.shared().read(|f| {
            let mut v: Vec<(String, uuid::Uuid)> =
                f.channels.iter().map(|(k, c)| (k.clone(), c.id)).collect();
            v.sort();
            v
        })
    };
    let before = snapshot_ids(&h);
    let static_key = ("401".to_string(), "Local/1003@from-queue/n".to_string());
    let member_before = h.shared().read(|f| f.members[&static_key].id);
    proxy.set(Mode::Down);
    wait_for(&h, "down", Duration::from_secs(5), |f| !f.link.is_up()).await;
    assert!(
        h.shared()
            .read(|f| f.channels.is_empty() && f.members.is_empty()),
        "nothing stale while down"
    );
    match h.execute(originate("1001", "1003")).await {
        Err(ActionError::Unavailable { reason, .. }) => assert!(!reason.is_empty(), "a reason"),
        other => panic!("while down: {other:?}"),
    }
    proxy.set(Mode::Up);
    wait_for(&h, "up again", Duration::from_secs(15), |f| f.link.is_up()).await;
    let after = snapshot_ids(&h);
    let keys = |v: &[(String, uuid::Uuid)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(
        keys(&before),
        keys(&after),
        "the same Asterisk channels, re-listed"
    );
    for ((_, a), (_, b)) in before.iter().zip(&after) {
        assert_ne!(a, b, "a re-listed segment gets a new id");
    }
    assert_ne!(
        member_before,
        h.shared().read(|f| f.members[&static_key].id)
    );
    assert!(
        h.shared()
            .read(|f| f.channels.values().filter(|c| c.bridge.is_some()).count() >= 2),
        "bridges re-listed"
    );
    h.shutdown().await;
}

/// The AMI login read from FreePBX's `freepbx_settings` (MariaDB), `[live]` overriding a key;
/// and with no FreePBX database, `[live] ami_*` alone.
#[tokio::test]
async fn the_login_comes_from_freepbx_settings_or_live_overrides() {
    use isymphony_sync::config::{Config, LiveBackend};
    let ast = Asterisk::start();
    let db = support::TestDb::new("ami").await;
    db.exec("CREATE TABLE freepbx_settings (keyword VARCHAR(50) PRIMARY KEY, value VARCHAR(255))")
        .await;
    db.exec(&format!(
        "INSERT INTO freepbx_settings VALUES ('AMPMGRUSER','{}'),('AMPMGRPASS','{}'),('ASTMANAGERHOST','127.0.0.1'),('ASTMANAGERPORT','{}')",
        support::asterisk::USER, support::asterisk::SECRET, ast.port
    ))
    .await;
    let mut cfg = Config::default();
    cfg.freepbx.database_url = Some(Secret::new(db.url()));
    cfg.live.backend = LiveBackend::Asterisk;
    let s = asterisk::settings_from(&cfg)
        .await
        .expect("read from FreePBX");
    assert_eq!(
        (s.username.as_str(), s.port),
        (support::asterisk::USER, ast.port)
    );
    assert!(
        !format!("{s:?}").contains(support::asterisk::SECRET),
        "Debug hides the password"
    );
    let h = asterisk::start_from_config(&cfg);
    wait_for(
        &h,
        "up from FreePBX's login",
        Duration::from_secs(10),
        |f| f.link.is_up(),
    )
    .await;
    h.shutdown().await;
    // An override wins: a wrong [live] ami_password is refused.
    cfg.live.ami_password = Some(Secret::new("override-wrong"));
    cfg.live.ami_username = Some(support::asterisk::USER.into());
    let h = asterisk::start_from_config(&cfg);
    wait_for(
        &h,
        "refused",
        Duration::from_secs(10),
        |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("refused")),
    )
    .await;
    h.shutdown().await;
    // No FreePBX database at all (--serve-only): [live] ami_* alone.
    let mut cfg = Config::default();
    cfg.freepbx.database_url = None;
    cfg.freepbx.config_file = "/nonexistent/freepbx.conf".into();
    cfg.freepbx.amportal_conf = "/nonexistent/amportal.conf".into();
    cfg.live.ami_username = Some(support::asterisk::USER.into());
    cfg.live.ami_password = Some(Secret::new(support::asterisk::SECRET));
    cfg.live.ami_port = Some(ast.port);
    let h = asterisk::start_from_config(&cfg);
    wait_for(&h, "up from [live] alone", Duration::from_secs(10), |f| {
        f.link.is_up()
    })
    .await;
    h.shutdown().await;
    // Neither: Down with a reason naming the settings to set, no panic.
    cfg.live.ami_password = None;
    let h = asterisk::start_from_config(&cfg);
    wait_for(&h, "a settings reason", Duration::from_secs(10), |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("ami_username/ami_password"))).await;
    h.shutdown().await;
}
