//! A wiped iSymphony is refilled, with the real agent binary as a service: a wiped or reinstalled
//! iSymphony (the embedded server stopped, its data directory deleted, started again on the
//! same port) is noticed within seconds and refilled by a full pass with no FreePBX change and
//! the ten-minute verify far away; a collection that drops to nothing is noticed the same way;
//! and a partial pass (one collection answering 403, from a FAKE peer: see
//! tests/support/fake_peer.rs) shows as such in the status and the metrics, and, when the same
//! refusal comes again (a licence that does not cover the collection), is neither retried with
//! backoff nor warned about on every pass.

use crate::support;
use support::agent;
use support::e2e;
use support::fake_peer;

use agent::*;
use e2e::*;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::server;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PW: &str = isymphony_sync::config::DEFAULT_API_PASSWORD;
const T: Duration = Duration::from_secs(20);

/// The agent's config: its own endpoint for status (port 0), the sync target `url`, the
/// ten-minute verify (so that only the quick check can notice a wipe), fast polling.
fn agent_config(env: &Env, url: &str) -> PathBuf {
    let dir = env.dir.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
         [freepbx]\ndatabase_url = \"{}\"\nvoicemail_conf = \"{}\"\npoll_interval = \"200ms\"\n\n\
         [isymphony]\nurl = \"{url}\"\nusername = \"manager\"\npassword = \"{PW}\"\ntimeout = \"2s\"\n\n\
         [sync]\ndebounce = \"100ms\"\nretry_backoff_max = \"1s\"\nresync_interval = \"10m\"\nstate_dir = \"{}\"\n",
        dir.join("server").display(),
        env.db.url(),
        env.vm_path().display(),
        dir.join("state").display(),
    );
    let p = env.dir.path().join("agent.toml");
    std::fs::write(&p, text).unwrap();
    p
}

async fn get(root: &str, path: &str) -> String {
    get_text(root, path, PW).await.1
}

async fn status(root: &str) -> Value {
    serde_json::from_str(&get(root, "/isymphony-sync/api/status").await).unwrap()
}

/// A FAKE peer in front of the embedded server that refuses the queues collection, as a
/// licence without queues does (a licence refusal cannot be produced for real).
async fn refusing_queues(env: &Env) -> fake_peer::FakePeer {
    let upstream = env.server().base_url();
    let fake =
        fake_peer::FakePeer::start(upstream.split("/communication_manager").next().unwrap()).await;
    fake.rule(
        "/queues",
        fake_peer::Fault::Status(403, "Resource restricted by licensing"),
    );
    fake
}

fn is_pass_line(v: &Value) -> bool {
    msg(v).starts_with("pass: ")
}

/// Every extension with its display name, binding and the user's e-mail, as the server has it.
async fn converged(env: &Env, n: usize) -> bool {
    let Ok(cs) = env
        .api
        .get::<CoreServer>(paths::core_server_by_slug("default"))
        .await
    else {
        return false;
    };
    let cs = cs.id.unwrap();
    let Ok(exts) = env.api.get::<Vec<Extension>>(paths::extensions(&cs)).await else {
        return false;
    };
    if exts.len() != n {
        return false;
    }
    for x in &exts {
        let bound: Option<User> = env
            .api
            .get_opt(paths::managing_user(&cs, x.id.as_deref().unwrap()))
            .await
            .unwrap_or(None);
        if bound.map(|u| u.username) != Some(x.extension.clone()) {
            return false;
        }
    }
    let users: Vec<User> = env.api.get(paths::users(&cs)).await.unwrap_or_default();
    let Some(u) = users.iter().find(|u| u.username == "1002") else {
        return false;
    };
    let mails: Vec<EmailAddress> = env
        .api
        .get(paths::email_addresses(&cs, u.id.as_deref().unwrap()))
        .await
        .unwrap_or_default();
    mails.len() == 1 && mails[0].address == "u1002@example.com"
}

/// Stop the embedded server, delete everything it stored, start it again on the same port:
/// what a reinstalled iSymphony looks like to the agent.
async fn reinstall(env: &mut Env) {
    let addr = env.server().http_addr();
    env.server.take().unwrap().shutdown().await;
    std::fs::remove_dir_all(&env.cfg.server.data_dir).unwrap();
    env.cfg.server.http_listen = addr;
    env.server = Some(server::start(&env.cfg.server, None).await.unwrap());
    assert!(env
        .api
        .get_opt::<CoreServer>(paths::core_server_by_slug("default"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_isymphony_is_noticed_and_refilled_within_seconds() {
    let n = 3;
    let mut env = Env::new(n).await;
    let cfg = agent_config(&env, &env.server().base_url());
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    assert!(
        eventually(T, || converged(&env, n)).await,
        "{}",
        agent.dump()
    );
    // The check has taken its baseline and found everything as expected.
    assert!(
        eventually(T, || async {
            status(&root).await["isymphony_check"]["found"] == "ok"
        })
        .await,
        "{}",
        agent.dump()
    );

    reinstall(&mut env).await;
    let t0 = Instant::now();
    assert!(
        eventually(T, || converged(&env, n)).await,
        "{}",
        agent.dump()
    );
    let refill = t0.elapsed();
    println!("wiped iSymphony refilled after {refill:?}");
    assert!(refill < Duration::from_secs(10), "took {refill:?}");
    let st = status(&root).await;
    let f = &st["isymphony_check"]["last_finding"];
    assert!(
        f["found"]
            .as_str()
            .unwrap()
            .contains("core server default is missing"),
        "{st}"
    );
    assert_eq!(f["full_pass_triggered"], true, "{st}");
    assert!(
        eventually(T, || async {
            let st = status(&root).await;
            st["last_pass"]["triggers"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "isymphony_check"))
                && st["last_pass"]["full"] == true
        })
        .await,
        "{}",
        status(&root).await
    );

    // A collection that dropped to nothing (the core server kept): the same.
    assert!(
        eventually(T, || async {
            status(&root).await["isymphony_check"]["found"] == "ok"
        })
        .await
    );
    let cs = env.cs().await;
    for x in env.extensions().await {
        env.api
            .delete(&paths::extension(&cs, x.id.as_deref().unwrap()))
            .await
            .unwrap();
    }
    let t0 = Instant::now();
    assert!(
        eventually(T, || converged(&env, n)).await,
        "{}",
        agent.dump()
    );
    println!("emptied extensions refilled after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(10));
    let st = status(&root).await;
    assert_eq!(
        st["isymphony_check"]["last_finding"]["found"], "extensions dropped from 3 to nothing",
        "{st}"
    );
    let m = get(&root, "/isymphony-sync/api/metrics").await;
    assert!(m.contains("isymphony_sync_isymphony_resets_total 2"), "{m}");
    assert_eq!(
        agent.count(|v| msg(v).starts_with("iSymphony check:")),
        2,
        "{}",
        agent.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_pass_shows_in_status_and_metrics() {
    let env = Env::new(2).await;
    let fake = refusing_queues(&env).await;
    let cfg = agent_config(&env, &fake.url);
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    assert!(
        eventually(T, || async {
            status(&root).await["last_pass"]["result"] == "partial"
        })
        .await,
        "{}",
        agent.dump()
    );
    let st = status(&root).await;
    let u = st["isymphony_unreadable"][0].as_str().unwrap_or("");
    assert!(
        u.contains("/queues: HTTP 403 (Resource restricted by licensing)"),
        "{st}"
    );
    assert_eq!(st["isymphony"]["reachable"], true, "{st}");
    assert!(!st.to_string().contains("unreachable"), "{st}");
    let m = get(&root, "/isymphony-sync/api/metrics").await;
    assert!(
        m.contains("isymphony_sync_isymphony_unreadable_resources 1"),
        "{m}"
    );
    assert!(
        !m.contains("isymphony_sync_passes_total{result=\"partial\"} 0"),
        "{m}"
    );
    // Everything else was applied: the extensions are there.
    assert_eq!(env.extensions().await.len(), 2);

    fake.clear();
    // The refusal, met again, is settled: the next pass comes with a trigger.
    sync_now(&root, PW).await;
    assert!(
        eventually(T, || async {
            let st = status(&root).await;
            st["last_pass"]["result"] == "success"
                && st["isymphony_unreadable"]
                    .as_array()
                    .is_some_and(|a| a.is_empty())
        })
        .await,
        "{}",
        agent.dump()
    );
    let cs = env.cs().await;
    let queues: Vec<Queue> = env.api.get(paths::queues(&cs)).await.unwrap();
    assert_eq!(queues.len(), 2);
}

/// A collection iSymphony refuses on every request (a licence restriction, from the FAKE peer):
/// after the first pass and one retry that meets the same refusal, no pass runs until something
/// triggers one; the refusal is warned about once; the status keeps showing it, with what to do.
/// A FreePBX change still converges, and once the refusal ends the next pass is a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_met_again_is_settled_not_retried_and_warned_once() {
    let env = Env::new(2).await;
    let fake = refusing_queues(&env).await;
    // retry_backoff_max = 1s: retried as a failure, this would be a pass every second.
    let cfg = agent_config(&env, &fake.url);
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    let warned = |v: &Value| {
        v["level"] == "WARN" && msg(v).contains("/queues: HTTP 403 (Resource restricted")
    };
    let second = agent.wait_nth(1, T, is_pass_line).await;
    assert!(
        msg(&second).contains("partial: 1 iSymphony resources unreadable"),
        "{second}"
    );
    assert!(
        second["triggers"].as_str().unwrap_or("").contains("retry"),
        "the new refusal was retried once: {second}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        agent.count(is_pass_line),
        2,
        "no pass in 5 s without a trigger:\n{}",
        agent.dump()
    );
    assert_eq!(agent.count(warned), 1, "{}", agent.dump());
    assert_eq!(second["level"], "INFO", "warned once already: {second}");
    let st = status(&root).await;
    assert_eq!(st["last_pass"]["result"], "partial", "{st}");
    assert!(st["next_retry"].is_null(), "{st}");
    let u = st["isymphony_unreadable"][0].as_str().unwrap_or("");
    for want in [
        "/queues: HTTP 403 (Resource restricted by licensing)",
        "check that the iSymphony licence covers this feature",
        "reads it again on the next change or the periodic verify",
    ] {
        assert!(u.contains(want), "{want:?} in {st}");
    }
    let m = get(&root, "/isymphony-sync/api/metrics").await;
    assert!(
        m.contains("isymphony_sync_isymphony_unreadable_resources 1"),
        "{m}"
    );
    let page = get(&root, "/isymphony-sync/").await;
    assert!(
        page.contains("check that the iSymphony licence covers this feature"),
        "{page}"
    );

    // A FreePBX change runs a pass and converges; the refusal is not warned about again.
    env.db
        .exec("UPDATE users SET name = 'Zed Zulu' WHERE extension = '1002'")
        .await;
    assert!(
        eventually(T, || async {
            env.extensions()
                .await
                .iter()
                .any(|x| x.extension == "1002" && x.display_name == "Zed Zulu")
        })
        .await,
        "{}",
        agent.dump()
    );
    let third = agent.wait_nth(2, T, is_pass_line).await;
    assert!(
        third["triggers"]
            .as_str()
            .unwrap_or("")
            .contains("database"),
        "{third}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(agent.count(is_pass_line), 3, "{}", agent.dump());
    assert_eq!(agent.count(warned), 1, "{}", agent.dump());
    let st = status(&root).await;
    assert_eq!(st["last_pass"]["result"], "partial", "{st}");
    assert!(
        st["isymphony_unreadable"][0]
            .as_str()
            .is_some_and(|u| u.contains("/queues: HTTP 403")),
        "{st}"
    );
    let m = get(&root, "/isymphony-sync/api/metrics").await;
    assert!(
        m.contains("isymphony_sync_isymphony_unreadable_resources 1"),
        "{m}"
    );
    assert!(
        m.contains("isymphony_sync_passes_total{result=\"partial\"} 3"),
        "{m}"
    );

    // The licence now covers queues: the next pass (asked for) reads and syncs them.
    fake.clear();
    sync_now(&root, PW).await;
    let fourth = agent.wait_nth(3, T, is_pass_line).await;
    assert_eq!(fourth["result"], "success", "{fourth}");
    let st = status(&root).await;
    assert_eq!(st["last_pass"]["result"], "success", "{st}");
    assert_eq!(st["isymphony_unreadable"], serde_json::json!([]), "{st}");
    let m = get(&root, "/isymphony-sync/api/metrics").await;
    assert!(
        m.contains("isymphony_sync_isymphony_unreadable_resources 0"),
        "{m}"
    );
    assert_eq!(
        agent.count(|v| msg(v) == "every iSymphony resource is readable again"),
        1,
        "{}",
        agent.dump()
    );
    let cs = env.cs().await;
    let queues: Vec<Queue> = env.api.get(paths::queues(&cs)).await.unwrap();
    assert_eq!(queues.len(), 2);
}
