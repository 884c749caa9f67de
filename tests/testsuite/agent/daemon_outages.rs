//! The service through outages and signals: iSymphony and MariaDB going away and coming back,
//! SIGTERM during a slow pass, and failover to a standby after SIGKILL.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_are_reported_retried_and_converge_without_deleting() {
    let env = env(3).await;
    let target = env.server().http_addr();
    let http_proxy = Proxy::start(target).await;
    let db_addr: std::net::SocketAddr = {
        let o = support::server_opts();
        format!("{}:{}", o.ip_or_hostname(), o.tcp_port())
            .parse()
            .unwrap_or_else(|_| format!("127.0.0.1:{}", o.tcp_port()).parse().unwrap())
    };
    let db_proxy = Proxy::start(db_addr).await;
    // Credentials from freepbx.conf (pointing at the database proxy).
    freepbx_conf(&env, db_proxy.addr);
    let cfg = write_config(
        &env,
        &Opts {
            server: true,
            url: Some(format!(
                "http://{}/communication_manager/api/resource/",
                http_proxy.addr
            )),
            name: "o",
            ..Opts::default()
        },
    );
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    let direct = env.server().base_url();
    assert!(
        eventually(T, || async {
            ext_names(&direct).await.is_some_and(|m| m.len() == 3)
        })
        .await,
        "{}",
        agent.dump()
    );
    let failed_passes =
        |agent: &Agent| agent.count(|v| msg(v).starts_with("pass:") && v["result"] != "success");
    let skipped_passes = |agent: &Agent| agent.count(|v| msg(v) == "standby: pass skipped");

    // 1. iSymphony down.
    http_proxy.set(Mode::Down);
    env.db
        .exec("UPDATE users SET name = 'Down Town' WHERE extension = '1001'")
        .await;
    assert!(
        eventually(T, || async {
            status(&root).await["isymphony"]["reachable"] == false
        })
        .await,
        "{}",
        agent.dump()
    );
    let st = status(&root).await;
    assert!(st["last_error"].is_string(), "{st}");
    assert_ne!(st["last_pass"]["result"], "success", "{st}");
    assert!(
        st["next_retry"].is_string() || st["pass_running"] == true,
        "{st}"
    );
    http_proxy.set(Mode::Up);
    assert!(
        eventually(T, || async {
            ext_name(&direct, "1001").await.as_deref() == Some("Down Town")
        })
        .await,
        "{}",
        agent.dump()
    );
    assert!(
        eventually(T, || async {
            status(&root).await["isymphony"]["reachable"] == true
        })
        .await
    );

    // 2. iSymphony answering 503.
    let before = failed_passes(&agent);
    http_proxy.set(Mode::Error503);
    env.db
        .exec("UPDATE users SET name = 'Five Hundred' WHERE extension = '1002'")
        .await;
    assert!(
        eventually(T, || async { failed_passes(&agent) >= before + 2 }).await,
        "retried with backoff: {}",
        agent.dump()
    );
    http_proxy.set(Mode::Up);
    assert!(
        eventually(T, || async {
            ext_name(&direct, "1002").await.as_deref() == Some("Five Hundred")
        })
        .await,
        "{}",
        agent.dump()
    );

    // 3. FreePBX database down. The change is made directly, behind the agent's back.
    db_proxy.set(Mode::Down);
    env.db
        .exec("UPDATE users SET name = 'Db Down' WHERE extension = '1003'")
        .await;
    env.db
        .exec("DELETE FROM users WHERE extension = '1002'")
        .await;
    assert!(
        eventually(T, || async {
            status(&root).await["freepbx"]["reachable"] == false
        })
        .await,
        "{}",
        agent.dump()
    );
    // A pass forced during the outage, and its result, before looking: without one the
    // check below could not fail. The election lock lives in the same database, so the
    // result is a failed pass or, once the lock is lost, a pass skipped as standby.
    let outcome = |agent: &Agent| failed_passes(agent) + skipped_passes(agent);
    let before = outcome(&agent);
    sync_now(&root, PW).await;
    assert!(
        eventually(T, || async { outcome(&agent) > before }).await,
        "a pass was tried during the database outage and did not succeed: {}",
        agent.dump()
    );
    assert_eq!(
        ext_names(&direct).await.unwrap().len(),
        3,
        "nothing is deleted while FreePBX is unreadable"
    );
    db_proxy.set(Mode::Up);
    assert!(
        eventually(T, || async {
            ext_names(&direct).await.is_some_and(|m| {
                m.len() == 2 && m.get("1003").map(String::as_str) == Some("Db Down")
            })
        })
        .await,
        "{}",
        agent.dump()
    );

    // 4. freepbx.conf unreadable (gone: tests run as root, who reads any mode).
    let conf = env.dir.path().join("freepbx.conf");
    let aside = env.dir.path().join("freepbx.conf.aside");
    std::fs::rename(&conf, &aside).unwrap();
    assert!(
        eventually(T, || async {
            let st = status(&root).await;
            st["freepbx"]["reachable"] == false
                && st["freepbx"]["last_error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("freepbx.conf")
        })
        .await,
        "{}",
        agent.dump()
    );
    env.db
        .exec("UPDATE users SET name = 'Conf Back' WHERE extension = '1001'")
        .await;
    let before = outcome(&agent);
    sync_now(&root, PW).await;
    assert!(
        eventually(T, || async { outcome(&agent) > before }).await,
        "a pass was tried without freepbx.conf and did not succeed: {}",
        agent.dump()
    );
    assert_eq!(ext_names(&direct).await.unwrap().len(), 2);
    std::fs::rename(&aside, &conf).unwrap();
    assert!(
        eventually(T, || async {
            ext_name(&direct, "1001").await.as_deref() == Some("Conf Back")
        })
        .await,
        "{}",
        agent.dump()
    );
    assert!(pid_alive(agent.pid()), "kept running through every outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_pass_exits_zero_within_ten_seconds() {
    let env = env(2).await;
    let proxy = Proxy::start(env.server().http_addr()).await;
    let cfg = write_config(
        &env,
        &Opts {
            server: false,
            db_url: Some(db_url(&env)),
            url: Some(format!(
                "http://{}/communication_manager/api/resource/",
                proxy.addr
            )),
            name: "s",
            ..Opts::default()
        },
    );
    proxy.set(Mode::Slow);
    let mut agent = Agent::spawn(&cfg, &[]);
    // The pass is running (the proxy holds each connection 2 s): SIGTERM now.
    agent.wait_log(T, |v| msg(v) == "pass started").await;
    let t0 = std::time::Instant::now();
    agent.signal(libc::SIGTERM);
    let st = agent.wait_exit(Duration::from_secs(10));
    let took = t0.elapsed();
    let st = st.unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", agent.dump()));
    assert!(st.success(), "{st:?}\n{}", agent.dump());
    assert!(agent.messages().iter().any(|m| m.contains("SIGTERM")));
    eprintln!("SIGTERM during a pass: exited in {took:?}");

    // SIGINT on an idle agent.
    proxy.set(Mode::Up);
    let mut agent = Agent::spawn(&cfg, &[]);
    agent
        .wait_log(T, |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;
    agent.signal(libc::SIGINT);
    let st = agent
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGINT");
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_standby_takes_over_after_sigkill_and_passes_never_overlap() {
    let env = env(3).await;
    let direct = env.server().base_url();
    let mk = |name| {
        write_config(
            &env,
            &Opts {
                server: false,
                db_url: Some(db_url(&env)),
                url: Some(direct.clone()),
                name,
                ..Opts::default()
            },
        )
    };
    let (ca, cb) = (mk("fa"), mk("fb"));
    let mut a = Agent::spawn(&ca, &[]);
    a.wait_log(T, |v| msg(v) == "became leader").await;
    let b = Agent::spawn(&cb, &[]);
    b.wait_log(T, |v| msg(v) == "isymphony-sync agent started")
        .await;
    // B is a standby in the election (it knows the lock, A holds it) before A is killed.
    let b_root = b.endpoint(0).await;
    assert!(
        eventually(T, || async {
            let st = status(&b_root).await;
            st["role"] == "standby" && st["lock"].is_string()
        })
        .await,
        "B standby before the kill: {}\n{}",
        status(&b_root).await,
        b.dump()
    );
    assert_eq!(status(&a.endpoint(0).await).await["role"], "leader");
    assert_eq!(b.count(|v| msg(v) == "became leader"), 0, "B was standby");
    assert!(
        eventually(T, || async {
            ext_names(&direct).await.is_some_and(|m| m.len() == 3)
        })
        .await,
        "{}",
        a.dump()
    );
    // A change, and the leader killed while (or right after) it syncs it.
    let starts = a.count(|v| msg(v) == "pass started");
    env.db
        .exec("UPDATE users SET name = 'Killed Mid Pass' WHERE extension = '1001'")
        .await;
    a.wait_nth(starts, T, |v| msg(v) == "pass started").await;
    // Counted before the kill: after it, B may take the lock before `wait_exit` returns.
    let b_led_before = b.count(|v| msg(v) == "became leader");
    let killed_at = now_secs();
    a.signal(libc::SIGKILL);
    a.wait_exit(Duration::from_secs(5)).expect("SIGKILL");
    assert_eq!(b_led_before, 0, "B was standby");

    let led = b.wait_log(T, |v| msg(v) == "became leader").await;
    let took = ts(led["timestamp"].as_str().unwrap()) - killed_at;
    assert!(took < 10.0, "standby took {took:.1}s to lead");
    eprintln!("standby led {took:.2}s after SIGKILL");
    env.db
        .exec("UPDATE users SET name = 'New Leader' WHERE extension = '1002'")
        .await;
    assert!(
        eventually(T, || async {
            ext_names(&direct).await.is_some_and(|m| {
                m.len() == 3
                    && m.get("1001").map(String::as_str) == Some("Killed Mid Pass")
                    && m.get("1002").map(String::as_str) == Some("New Leader")
            })
        })
        .await,
        "{}",
        b.dump()
    );

    // Pass intervals from both logs: none overlap.
    let intervals = |ag: &Agent, end_default: f64| -> Vec<(f64, f64)> {
        let lines = ag.lines.lock().unwrap().clone();
        let mut out = Vec::new();
        let mut open: Option<f64> = None;
        for v in lines {
            let t = v["timestamp"].as_str().map(ts);
            if msg(&v) == "pass started" {
                open = t;
            } else if msg(&v).starts_with("pass:") {
                if let (Some(s), Some(e)) = (open.take(), t) {
                    out.push((s, e));
                }
            }
        }
        if let Some(s) = open {
            out.push((s, end_default));
        }
        out
    };
    let ia = intervals(&a, killed_at);
    let ib = intervals(&b, f64::MAX);
    assert!(!ia.is_empty() && !ib.is_empty(), "{ia:?} {ib:?}");
    for x in &ia {
        for y in &ib {
            assert!(x.1 <= y.0 || y.1 <= x.0, "passes overlap: A {x:?}, B {y:?}");
        }
    }
}
