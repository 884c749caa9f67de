//! Licence refusals converge: the embedded endpoint with `[server]
//! licensed_full_users` refuses one full user too many with 403, as iSymphony refuses a change
//! for licensing; the agent reports it once per change of desired state and holds it.
//! Real MariaDB, the real embedded server over loopback HTTP.

use crate::support;
use support::e2e;

use e2e::*;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::model::Kind;
use isymphony_sync::reconcile::plan::Action;
use isymphony_sync::reconcile::PassReport;
use serde_json::json;

fn held_warnings(r: &PassReport) -> Vec<&String> {
    r.plan
        .warnings
        .iter()
        .filter(|w| w.starts_with("held: "))
        .collect()
}

fn user_writes(r: &PassReport) -> Vec<String> {
    r.plan
        .ops
        .iter()
        .filter(|o| o.kind == Kind::User)
        .map(|o| o.describe())
        .collect()
}

#[tokio::test]
async fn the_endpoint_answers_a_licence_refusal_with_403() {
    let env = Env::new_with(0, |c| c.server.licensed_full_users = Some(1)).await;
    env.sync().await;
    let cs = env.cs().await;
    let post = |name: &str, full: bool| json!({"id": format!("id-{name}"), "username": name, "password": "x", "full": full});
    env.api
        .post(&paths::users(&cs), &post("a", true), None)
        .await
        .unwrap();
    let e = env
        .api
        .post(&paths::users(&cs), &post("b", true), None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert!(e.to_string().contains("licenses"), "{e}");
    // A lite user is fine, but making it full is refused; the full user stays editable.
    env.api
        .post(&paths::users(&cs), &post("b", false), None)
        .await
        .unwrap();
    let e = env
        .api
        .put(&paths::user(&cs, "id-b"), &post("b", true))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    env.api
        .put(&paths::user(&cs, "id-a"), &post("a", true))
        .await
        .unwrap();
    let users = env.users().await;
    assert_eq!(users.iter().filter(|u| u.full).count(), 1);
    // The licence shows the limit.
    let ml: Vec<ModuleLicense> = env
        .api
        .get(format!("server/coreServers/{cs}/license/moduleLicenses"))
        .await
        .unwrap();
    let props: Vec<ModuleLicenseProperty> = env
        .api
        .get(format!(
            "server/coreServers/{cs}/license/moduleLicenses/{}/properties",
            ml[0].id
        ))
        .await
        .unwrap();
    let full = props.iter().find(|p| p.key == "full_users").unwrap();
    assert_eq!(full.value, "1");
}

/// The real binary on `args` against `env` (its database, voicemail.conf, state and server).
async fn cli(env: &Env, args: &'static [&'static str]) -> (i32, String) {
    let path = env.write_agent_config_here();
    let mut cmd = support::process::with_config(&path, args);
    cmd.env("NO_COLOR", "1").env("RUST_LOG", "warn");
    let out = support::process::run_off_runtime(cmd).await;
    (out.code_or_signal(), out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_is_reported_once_per_desired_state_and_not_retried() {
    let env = Env::new_with(4, |c| c.server.licensed_full_users = Some(2)).await;
    let first = env.pass(false, false, false).await.unwrap();
    assert_eq!(first.outcome().code(false), 1, "the refusal is reported");
    let refused: Vec<&String> = first
        .errors
        .iter()
        .filter(|e| e.contains("HTTP 403") && e.contains("licensing"))
        .collect();
    assert_eq!(refused.len(), 2, "{:#?}", first.errors);
    let mut created: Vec<String> = env.users().await.into_iter().map(|u| u.username).collect();
    created.sort();
    assert_eq!(created.len(), 2);
    let mut missing: Vec<String> = ["1001", "1002", "1003", "1004"]
        .iter()
        .map(|s| s.to_string())
        .filter(|u| !created.contains(u))
        .collect();
    missing.sort();

    // Next passes: nothing sent for them, no error, the plan lists them as warnings.
    for _ in 0..2 {
        let before = env.stats();
        let r = env.pass(false, false, false).await.unwrap();
        assert_eq!(
            r.outcome().code(false),
            0,
            "{:#?} {:#?}",
            r.errors,
            plan_lines(&r)
        );
        assert!(user_writes(&r).is_empty(), "{:?}", plan_lines(&r));
        let after = env.stats();
        assert_eq!((after.post, after.put), (before.post, before.put));
        let w = held_warnings(&r);
        assert_eq!(w.len(), 2, "{:#?}", r.plan.warnings);
        for m in &missing {
            assert!(
                w.iter()
                    .any(|w| w.contains(&format!("+ create user {m} ")) && w.contains("HTTP 403")),
                "{w:#?}"
            );
        }
    }
    let dry = env.pass(true, false, false).await.unwrap();
    assert_eq!(dry.outcome().code(true), 0, "{:?}", plan_lines(&dry));
    assert_eq!(held_warnings(&dry).len(), 2);
    // The same through the real binary: `--dry-run` exits 0 and shows the held changes.
    let (code, out) = cli(&env, &["--dry-run"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("warning: held: + create user").count(),
        2,
        "{out}"
    );
    let (code, out) = cli(&env, &["--sync-now"]).await;
    assert_eq!(code, 0, "{out}");

    // FreePBX changes (one refused login becomes lite): tried again, once.
    env.db
        .exec(&format!(
            "UPDATE cxpanel_users SET full = 0 WHERE user_id = '{}'",
            missing[0]
        ))
        .await;
    let r = env.pass(false, false, false).await.unwrap();
    let users = env.users().await;
    assert!(users.iter().any(|u| u.username == missing[0] && !u.full));
    assert_eq!(
        r.outcome().code(false),
        1,
        "the other one is refused again, and said so"
    );
    assert_eq!(
        r.errors.iter().filter(|e| e.contains("licensing")).count(),
        1,
        "{:#?}",
        r.errors
    );
    let r = env.pass(false, false, false).await.unwrap();
    assert_eq!(r.outcome().code(false), 0, "{:#?}", r.errors);
    assert_eq!(held_warnings(&r).len(), 1);
    assert!(held_warnings(&r)[0].contains(&format!("+ create user {} ", missing[1])));

    // --force tries it again (after a licence was added); still refused here, said once more.
    let r = env.pass(false, false, true).await.unwrap();
    assert!(r
        .plan
        .ops
        .iter()
        .any(|o| o.kind == Kind::User && o.action == Action::Create && o.key == missing[1]));
    assert_eq!(r.outcome().code(false), 1);
    let r = env.pass(true, false, false).await.unwrap();
    assert_eq!(r.outcome().code(true), 0, "{:?}", plan_lines(&r));
}
