//! A FreePBX source that is unknown is never read as "no rows": real MariaDB, real files, the embedded server on loopback.
//!
//! - a table FreePBX implies (framework, or a module the `modules` table lists) that is
//!   missing or unreadable freezes the kinds it feeds, the pass reports the table by name and
//!   `--check-config` fails naming it; every other kind is still applied;
//! - tables of a module that is really absent still read as empty;
//! - a missing, empty or oversized voicemail.conf leaves e-mail addresses alone.

use crate::support;
use support::e2e;

use e2e::*;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::model::Kind;
use isymphony_sync::reconcile::plan::Action;
use isymphony_sync::reconcile::PassReport;

fn peers(xs: &[Extension]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = xs
        .iter()
        .map(|x| (x.extension.clone(), x.peer.clone()))
        .collect();
    v.sort();
    v
}

async fn queue_names(env: &Env) -> Vec<String> {
    let q: Vec<Queue> = env.api.get(paths::queues(&env.cs().await)).await.unwrap();
    let mut v: Vec<String> = q.into_iter().map(|q| q.display_name).collect();
    v.sort();
    v
}

/// Run `sql` on the FreePBX database, then a pass; it must report an error that `says`
/// accepts. Its report.
async fn pass_after(env: &Env, sql: &str, says: impl Fn(&str) -> bool) -> PassReport {
    env.db.exec(sql).await;
    let r = env.pass(false, false, false).await.unwrap();
    assert!(r.errors.iter().any(|e| says(e)), "{:?}", r.errors);
    r
}

/// The pass planned no deletion at all.
fn assert_no_deletion(r: &PassReport) {
    assert!(
        !r.plan.ops.iter().any(|o| o.action == Action::Delete),
        "{:?}",
        plan_lines(r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_framework_table_freezes_what_it_feeds_and_nothing_else() {
    let env = Env::new(3).await;
    env.sync().await;
    let before = peers(&env.extensions().await);
    assert_eq!(before[0].1, "PJSIP/1001");

    // `devices` gone (a failed restore, a wrong grant): every peer would read as empty.
    let sql = "RENAME TABLE devices TO devices_gone; UPDATE queues_config SET descr = 'Sales EU' WHERE extension = '400';";
    let r = pass_after(&env, sql, |e| {
        e.contains("FreePBX table devices is missing")
    })
    .await;
    assert_eq!(r.outcome().code(false), 1, "the pass is an error");
    assert!(
        r.plan.ops.iter().all(|o| o.kind != Kind::Extension),
        "{:?}",
        plan_lines(&r)
    );
    assert!(r
        .plan
        .warnings
        .iter()
        .any(|w| w.starts_with("Extensions left as they are this pass") && w.contains("devices")));
    assert_eq!(peers(&env.extensions().await), before, "peers kept");
    assert!(
        queue_names(&env).await.contains(&"Sales EU".to_string()),
        "other kinds still applied"
    );

    // Back: the next pass is clean and in sync.
    env.db.exec("RENAME TABLE devices_gone TO devices").await;
    let r = env.sync().await;
    assert!(r.plan.ops.is_empty(), "{:?}", plan_lines(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_of_an_installed_module_keeps_its_objects() {
    let env = Env::new(3).await;
    env.sync().await;
    let users = env.users().await.len();
    assert_eq!(users, 3);

    // cxpanel is installed (the modules table says so) but its users table is gone: without
    // the rule the pass would fall back to "no cxpanel module" and delete every login.
    let sql = "INSERT INTO modules (modulename, version, enabled) VALUES ('cxpanel', '16.0.6', 1); RENAME TABLE cxpanel_users TO cxpanel_users_gone;";
    let r = pass_after(&env, sql, |e| {
        e.contains("cxpanel_users is missing") && e.contains("cxpanel module is installed")
    })
    .await;
    assert_no_deletion(&r);
    assert_eq!(env.users().await.len(), users);
    assert_eq!(env.extensions().await.len(), 3);

    // --check-config fails on the tables line, naming the table.
    let cfg_path = env.dir.path().join("check.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[server]\nenabled = false\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n[isymphony]\nurl = {:?}\n",
            env.db.url(),
            env.vm_path().display().to_string(),
            env.server().base_url()
        ),
    )
    .unwrap();
    let mut check = support::process::with_config(&cfg_path, &["--check-config"]);
    check.env("RUST_LOG", "error");
    let out = support::process::run_off_runtime(check).await;
    let text = out.stdout;
    assert_eq!(out.code, Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("tables"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with("FAIL") && line.contains("cxpanel_users"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_table_is_an_error_not_empty() {
    let env = Env::new(3).await;
    env.sync().await;
    // A view that exists (information_schema lists its columns) but whose SELECT fails.
    let sql = "RENAME TABLE users TO users_real; CREATE VIEW users AS SELECT extension, name, voicemail FROM users_real WHERE (SELECT 1 UNION SELECT 2) = 1;";
    let r = pass_after(&env, sql, |e| {
        e.contains("FreePBX table users could not be read") && e.contains("1242")
    })
    .await;
    assert_no_deletion(&r);
    assert_eq!(env.extensions().await.len(), 3);
    assert_eq!(env.users().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_a_really_absent_module_stay_empty() {
    let env = Env::new(2).await;
    env.sync().await;
    let cs = env.cs().await;
    let rooms: Vec<ConferenceRoom> = env.api.get(paths::conference_rooms(&cs)).await.unwrap();
    assert_eq!(rooms.len(), 2);
    // The conferences module is not in `modules`: its table missing means no rooms.
    env.db.exec("DROP TABLE meetme").await;
    // --force: deleting every room trips the safety valve, which is not under test here.
    let r = env.pass(false, false, true).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let deleted = count(&r, Kind::ConferenceRoom, Action::Delete);
    assert_eq!(deleted, 2, "{:?}", plan_lines(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_empty_voicemail_conf_deletes_no_email() {
    let env = Env::new(3).await;
    env.sync().await;
    assert_eq!(env.emails("1001").await, ["u1001@example.com"]);

    for (what, act) in [("deleted", 0), ("truncated", 1), ("an #include missing", 2)] {
        match act {
            0 => std::fs::remove_file(env.vm_path()).unwrap(),
            1 => std::fs::write(env.vm_path(), "").unwrap(),
            _ => std::fs::write(env.vm_path(), "[default]\n#include gone.conf\n").unwrap(),
        }
        // A dry run first: not "in sync", and the warning says e-mails are left alone (with
        // an include missing, that their removals are held).
        let dry = env.pass(true, true, false).await.unwrap();
        let said = match act {
            0 | 1 => "E-mail addresses left as they are this pass",
            _ => "E-mail addresses: 3 removals held back this pass",
        };
        assert!(
            dry.plan.warnings.iter().any(|w| w.starts_with(said)),
            "{what}: {:?}",
            dry.plan.warnings
        );
        let r = env.pass(false, true, false).await.unwrap();
        assert!(
            !r.plan.ops.iter().any(|o| o.kind == Kind::Email),
            "{what}: {:?}",
            plan_lines(&r)
        );
        assert!(
            r.errors.is_empty(),
            "{what}: a warning, not an error: {:?}",
            r.errors
        );
        assert_eq!(env.emails("1001").await, ["u1001@example.com"], "{what}");
    }

    // A limit exceeded: the same, and the pass is an error.
    let mut text = String::from("[default]\n");
    for i in 0..=100_000 {
        text.push_str(&format!("{i}=1\n"));
    }
    std::fs::write(env.vm_path(), text).unwrap();
    let r = env.pass(false, true, false).await.unwrap();
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("more than 100000 mailboxes")),
        "{:?}",
        r.errors
    );
    assert!(!r.plan.ops.iter().any(|o| o.kind == Kind::Email));
    assert_eq!(env.emails("1001").await, ["u1001@example.com"]);

    // The real file again: a changed address is synced as before.
    let mut env = env;
    env.emails.insert(1001, "new1001@example.com".into());
    env.write_voicemail();
    env.sync().await;
    assert_eq!(env.emails("1001").await, ["new1001@example.com"]);
}
