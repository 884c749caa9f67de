//! The service and a voicemail.conf that FreePBX rewrites or someone deletes: the
//! real binary, real MariaDB, real inotify, the embedded server on loopback. No
//! e-mail address is ever removed because the file was missing or empty for a moment.

use crate::support;
use support::agent;
use support::e2e;

use agent::*;
use e2e::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn removals(agent: &Agent) -> Vec<String> {
    agent
        .messages()
        .into_iter()
        .filter(|m| m.starts_with("write: - remove e-mail"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_or_truncating_voicemail_conf_removes_no_email() {
    let mut env = Env::new(2).await;
    let cfg = env.dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nenabled = false\npassword = \"Agent-Pw-8\"\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\
             config_file = {:?}\npoll_interval = \"200ms\"\n\n[isymphony]\nurl = {:?}\n\
             username = \"manager\"\npassword = {:?}\ntimeout = \"2s\"\n\n[sync]\n\
             debounce = \"100ms\"\nretry_backoff_max = \"1s\"\nstate_dir = {:?}\n",
            env.db.url(),
            env.vm_path().display().to_string(),
            env.dir.path().join("freepbx.conf").display().to_string(),
            env.server().base_url(),
            env.password().expose(),
            env.dir.path().join("state").display().to_string(),
        ),
    )
    .unwrap();
    let agent = Agent::spawn(&cfg, &[]);
    let first = &env;
    assert!(
        eventually(T, || async {
            env_emails(first, "1001").await == ["u1001@example.com"]
        })
        .await,
        "{}",
        agent.dump()
    );

    // Deleted: the pass after the event leaves the addresses alone and says so.
    let starts = pass_starts(&agent);
    std::fs::remove_file(env.vm_path()).unwrap();
    agent
        .wait_log(T, |v| msg(v).contains("cannot read voicemail file"))
        .await;
    pass_done(&agent, starts).await;
    assert_eq!(env_emails(&env, "1001").await, ["u1001@example.com"]);
    let warned = agent
        .messages()
        .iter()
        .any(|m| m.contains("voicemail e-mail addresses are left as they are this pass"));
    assert!(warned, "{}", agent.dump());

    // Rewritten in place as FreePBX does (truncate, a pause longer than the debounce, then
    // the new text): the empty file is "unknown", the new address arrives, nothing is removed
    // on the way except the one address FreePBX really changed.
    env.write_voicemail();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let starts = pass_starts(&agent);
    std::fs::write(env.vm_path(), "").unwrap();
    pass_done(&agent, starts).await;
    assert_eq!(env_emails(&env, "1001").await, ["u1001@example.com"]);
    env.emails.insert(1002, "new1002@example.com".into());
    env.write_voicemail();
    let env2 = &env;
    assert!(
        eventually(T, || async {
            env_emails(env2, "1002").await == ["new1002@example.com"]
        })
        .await,
        "{}",
        agent.dump()
    );
    assert_eq!(env_emails(&env, "1001").await, ["u1001@example.com"]);
    let removed = removals(&agent);
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(removed[0].contains("u1002@example.com"), "{removed:?}");
}

fn pass_starts(agent: &Agent) -> usize {
    agent.count(|v| msg(v) == "pass started")
}

/// Wait until a pass started after `starts` passes had, and ended (its summary line), instead
/// of a fixed time.
async fn pass_done(agent: &Agent, starts: usize) {
    agent
        .wait_nth(starts, T, |v| msg(v) == "pass started")
        .await;
    agent
        .wait_nth(starts, T, |v| msg(v).starts_with("pass:"))
        .await;
}

/// The user's e-mail addresses on the server (empty while the user does not exist yet).
async fn env_emails(env: &Env, user: &str) -> Vec<String> {
    use isymphony_sync::api::{paths, types::*};
    let Ok(cs) = env
        .api
        .get::<CoreServer>(paths::core_server_by_slug("default"))
        .await
    else {
        return Vec::new();
    };
    let cs = cs.id.unwrap_or_default();
    let users: Vec<User> = env.api.get(paths::users(&cs)).await.unwrap_or_default();
    let Some(uid) = users
        .into_iter()
        .find(|u| u.username == user)
        .and_then(|u| u.id)
    else {
        return Vec::new();
    };
    let v: Vec<EmailAddress> = env
        .api
        .get(paths::email_addresses(&cs, &uid))
        .await
        .unwrap_or_default();
    let mut out: Vec<String> = v.into_iter().map(|e| e.address).collect();
    out.sort();
    out
}
