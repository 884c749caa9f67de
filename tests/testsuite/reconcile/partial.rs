//! The safety valve and partial passes, on real MariaDB and the embedded server over loopback: the safety
//! valve per kind (small kinds pass, a refusal withholds only its kind), and partial passes
//! when one iSymphony resource fails (403, 404, an unreadable body, one odd object), made with
//! a FAKE peer in front of the embedded server (tests/support/fake_peer.rs says why).

use crate::support;
use support::e2e;
use support::fake_peer;

use e2e::*;
use fake_peer::{FakePeer, Fault};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::model::Kind;
use isymphony_sync::reconcile::plan::Action;
use isymphony_sync::reconcile::{PassOutcome, ReconcileError};

/// Deleting the only queue / all (two) rooms, the parking lot when parking is disabled and the
/// old PBX connection after asterisk_host changed goes through with the default minimum of 4;
/// the same plan was refused as a whole before (shown with `valve_min_managed = 1`).
#[tokio::test]
async fn small_kinds_are_deleted_without_the_valve() {
    let mut env = Env::new(4).await;
    env.sync().await;
    env.db
        .exec(
            "DELETE FROM queues_config WHERE extension = '401';
             DELETE FROM meetme;
             UPDATE modules SET enabled = 0 WHERE modulename = 'parking';
             UPDATE cxpanel_server SET asterisk_host = 'pbx2.test';",
        )
        .await;
    env.sync().await;
    // One queue left: deleting it, too, is fine.
    env.db
        .exec("DELETE FROM queues_config; INSERT INTO meetme (exten, description) VALUES ('9003', 'New');")
        .await;

    // The old rule (every kind guarded) refuses it all.
    env.cfg.sync.valve_min_managed = 1;
    let r = env.pass(true, false, false).await.unwrap();
    let e = r.valve_refusal().expect("the safety valve refuses");
    assert!(e.to_string().contains("1 of 1 managed queue"), "{e}");
    assert_eq!(r.outcome(), PassOutcome::Partial);

    env.cfg.sync.valve_min_managed = 4;
    let r = env.sync().await;
    assert_eq!(r.outcome().code(false), 0);
    assert_eq!(
        count(&r, Kind::Queue, Action::Delete),
        1,
        "{:#?}",
        plan_lines(&r)
    );
    let cs = env.cs().await;
    let queues: Vec<Queue> = env.api.get(paths::queues(&cs)).await.unwrap();
    let rooms: Vec<ConferenceRoom> = env.api.get(paths::conference_rooms(&cs)).await.unwrap();
    let lots: Vec<ParkingLot> = env.api.get(paths::parking_lots(&cs)).await.unwrap();
    let pbx: Vec<PbxServer> = env.api.get(paths::pbx_servers(&cs)).await.unwrap();
    assert!(queues.is_empty(), "{queues:?}");
    let rooms: Vec<&str> = rooms.iter().map(|r| r.identifier.as_str()).collect();
    assert_eq!(rooms, vec!["9003"]);
    assert!(lots.is_empty(), "{lots:?}");
    let hosts: Vec<&str> = pbx.iter().map(|p| p.host.as_str()).collect();
    assert_eq!(hosts, vec!["pbx2.test"]);
}

/// A refusal withholds only the refused kind's deletions; every other change of the pass is
/// applied, the pass reports the refusal and exits 1.
#[tokio::test]
async fn a_refusal_withholds_only_its_kind() {
    let mut env = Env::new(6).await;
    env.sync().await;
    env.db
        .exec(
            "DELETE FROM users WHERE extension IN ('1003', '1004', '1005', '1006');
             UPDATE users SET name = 'Alice Cooper' WHERE extension = '1001';
             INSERT INTO queues_config (extension, descr) VALUES ('402', 'Billing');
             DELETE FROM meetme WHERE exten = '9002';",
        )
        .await;
    env.emails.insert(1002, "bob.new@example.com".into());
    env.write_voicemail();

    let report = env.pass(false, false, false).await.unwrap();
    let e = report.valve_refusal().expect("the safety valve refuses");
    assert!(e.0.contains("4 of 6 managed extension"), "{e}");
    assert!(e.to_string().contains("everything else was applied"), "{e}");
    assert_eq!(report.outcome().code(false), 1);
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert!(report.withheld >= 4, "{}", report.withheld);
    assert!(report.summary_line().contains("safety valve withheld"));
    // Withheld: the extension (and user) deletions.
    assert_eq!(env.extensions().await.len(), 6);
    // Applied: the rename, the new queue, the deleted room, the new e-mail address.
    let cs = env.cs().await;
    let x = env.extensions().await;
    let alice = x.iter().find(|x| x.extension == "1001").unwrap();
    assert_eq!(alice.display_name, "Alice Cooper");
    let queues: Vec<Queue> = env.api.get(paths::queues(&cs)).await.unwrap();
    assert!(queues.iter().any(|q| q.identifier == "402"), "{queues:?}");
    let rooms: Vec<ConferenceRoom> = env.api.get(paths::conference_rooms(&cs)).await.unwrap();
    assert!(rooms.iter().all(|r| r.identifier != "9002"));
    assert_eq!(env.emails("1002").await, vec!["bob.new@example.com"]);

    // The withheld deletions stay pending until forced.
    let rep = env.pass(true, false, false).await.unwrap();
    assert!(rep.valve_refusal().is_some());
    assert_eq!(rep.plan.summary().create + rep.plan.summary().update, 0);
    let r = env.pass(false, false, true).await.unwrap();
    assert_eq!(r.outcome().code(false), 0, "{:?}", r.errors);
    assert_eq!(env.extensions().await.len(), 2);
}

/// E-mail addresses are a kind under the valve: a voicemail.conf that suddenly lists no
/// addresses does not strip the ones the agent added, and nothing else is held back.
#[tokio::test]
async fn e_mail_deletions_fall_under_the_valve() {
    let mut env = Env::new(5).await;
    env.sync().await;
    env.emails.clear();
    env.write_voicemail();
    env.db
        .exec("UPDATE users SET name = 'Eve Changed' WHERE extension = '1005';")
        .await;
    let report = env.pass(false, true, false).await.unwrap();
    let e = report.valve_refusal().expect("the safety valve refuses");
    assert!(e.to_string().contains("5 of 5 managed e-mail"), "{e}");
    assert_eq!(report.outcome(), PassOutcome::Partial);
    assert_eq!(report.withheld, 5);
    assert_eq!(env.emails("1001").await, vec!["u1001@example.com"]);
    let x = env.extensions().await;
    assert!(x.iter().any(|x| x.display_name == "Eve Changed"));
    // One address removed is an ordinary change.
    env.emails = (1..=5)
        .map(|i| (1000 + i, format!("u{}@example.com", 1000 + i)))
        .collect();
    env.emails.remove(&1003);
    env.write_voicemail();
    let r = env.sync().await;
    assert_eq!(
        count(&r, Kind::Email, Action::Delete),
        1,
        "{:#?}",
        plan_lines(&r)
    );
    assert!(env.emails("1003").await.is_empty());
}

fn root_of(base_url: &str) -> String {
    base_url
        .split("/communication_manager")
        .next()
        .unwrap()
        .to_string()
}

/// One 403, one 404, one unreadable body, one odd object and one failed sub-resource skip only
/// what depends on them; the rest is read, planned and applied; the pass is partial (exit 1);
/// with the faults gone the next pass converges.
#[tokio::test]
async fn one_failing_resource_does_not_stop_the_rest() {
    let mut env = Env::new(4).await;
    env.sync().await;
    let cs = env.cs().await;
    let u1003 = env.user_id("1003").await;
    let fake = FakePeer::start(&root_of(&env.server().base_url())).await;
    fake.rule(
        "/queues",
        Fault::Status(403, "Resource restricted by licensing"),
    );
    fake.rule("/conferenceRooms", Fault::Status(404, "Not Found"));
    fake.rule("/parkingLots", Fault::Garbage("<html>proxy error</html>"));
    fake.rule(
        "/extensions",
        Fault::Corrupt {
            key_field: "extension",
            key: "1002".into(),
            field: "autoAnswer",
            value: serde_json::json!({"unexpected": true}),
        },
    );
    fake.rule(
        format!("/users/{u1003}/emailAddresses"),
        Fault::Status(403, "Forbidden"),
    );
    env.cfg.isymphony.url = Some(fake.url.clone());

    env.db
        .exec(
            "UPDATE users SET name = CONCAT(name, ' X');
             INSERT INTO queues_config (extension, descr) VALUES ('402', 'Billing');
             INSERT INTO meetme (exten, description) VALUES ('9003', 'New');",
        )
        .await;
    env.emails.insert(1003, "carol.new@example.com".into());
    env.emails.insert(1004, "dan.new@example.com".into());
    env.write_voicemail();

    let r = env.pass(false, true, false).await.unwrap();
    assert_eq!(
        r.outcome().code(false),
        1,
        "a partial pass is not a success"
    );
    assert_eq!(r.failed, 0, "{:?}", r.errors);
    let u = r.unreadable.join("\n");
    for want in [
        format!("GET asterisk/{cs}/queues: HTTP 403 (Resource restricted by licensing): queues skipped"),
        format!("GET asterisk/{cs}/conferenceRooms: HTTP 404"),
        format!("GET asterisk/{cs}/parkingLots: unexpected response: unreadable body"),
        format!("GET asterisk/{cs}/extensions: extension 1002: field autoAnswer has an unexpected value; left alone"),
        "HTTP 403 (Forbidden): the e-mail addresses of user 1003 left alone".to_string(),
    ] {
        assert!(u.contains(&want), "missing {want:?} in:\n{u}");
    }
    assert!(!u.contains("unreachable"), "{u}");
    assert!(
        r.summary_line()
            .contains("partial: 5 iSymphony resources unreadable"),
        "{}",
        r.summary_line()
    );
    let text = isymphony_sync::reconcile::render::render_report(&r, false);
    assert!(text.contains("warning: GET asterisk/"), "{text}");

    // Applied: every rename but the odd extension's, the e-mail of 1004.
    let exts = env.extensions().await;
    assert_eq!(exts.len(), 4, "no duplicate of the odd extension");
    for x in &exts {
        let renamed = x.display_name.ends_with(" X");
        assert_eq!(renamed, x.extension != "1002", "{x:?}");
    }
    assert_eq!(env.contact("1002").await.unwrap().last_name, "Smith X");
    assert_eq!(env.emails("1004").await, vec!["dan.new@example.com"]);
    // Skipped: everything of the unreadable collections and sub-resource.
    assert_eq!(env.emails("1003").await, vec!["u1003@example.com"]);
    let queues: Vec<Queue> = env.api.get(paths::queues(&cs)).await.unwrap();
    assert_eq!(queues.len(), 2);
    let rooms: Vec<ConferenceRoom> = env.api.get(paths::conference_rooms(&cs)).await.unwrap();
    assert_eq!(rooms.len(), 2);
    let lots: Vec<ParkingLot> = env.api.get(paths::parking_lots(&cs)).await.unwrap();
    assert_eq!(lots.len(), 1);

    // The faults gone, a normal pass finishes the job.
    fake.clear();
    let r = env.sync().await;
    assert_eq!(r.outcome().code(false), 0);
    assert!(r.unreadable.is_empty());
    let queues: Vec<Queue> = env.api.get(paths::queues(&cs)).await.unwrap();
    assert_eq!(queues.len(), 3);
    assert_eq!(env.emails("1003").await, vec!["carol.new@example.com"]);
    let x = env.extensions().await;
    assert!(x.iter().all(|x| x.display_name.ends_with(" X")));
    let dry = env.pass(true, true, false).await.unwrap();
    assert!(dry.plan.is_empty(), "{:#?}", plan_lines(&dry));
}

/// A refused core server is said as such (path and status), not "unreachable"; the binary
/// exits 1 for a partial pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_core_server_is_not_unreachable_and_partial_exits_1() {
    let mut env = Env::new(2).await;
    env.sync().await;
    let fake = FakePeer::start(&root_of(&env.server().base_url())).await;
    fake.rule("/getBySlug/default", Fault::Status(403, "Forbidden"));
    env.cfg.isymphony.url = Some(fake.url.clone());
    let e = env.pass(false, false, false).await.unwrap_err();
    assert!(matches!(e, ReconcileError::IsymphonyRefused(_)), "{e}");
    let s = e.to_string();
    assert!(
        s.contains("GET server/coreServers/getBySlug/default: HTTP 403"),
        "{s}"
    );
    assert!(!s.contains("unreachable"), "{s}");

    fake.clear();
    fake.rule(
        "/queues",
        Fault::Status(403, "Resource restricted by licensing"),
    );
    let path = env.dir.path().join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n\
             [isymphony]\nurl = {:?}\n\n[sync]\nstate_dir = {:?}\n",
            env.db.url(),
            env.vm_path().display().to_string(),
            fake.url,
            env.dir.path().join("state").display().to_string(),
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        support::process::bin()
            .arg("--config")
            .arg(&path)
            .args(["--sync-now", "--output", "json"])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["partial"], serde_json::json!(true), "{stdout}");
    assert!(
        v["unreadable"][0].as_str().unwrap().contains("HTTP 403"),
        "{stdout}"
    );
    // A one-shot pass warns about it every time (the daemon only when it appears or changes).
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warned = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("/queues: HTTP 403"))
        .collect::<Vec<_>>();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].contains("check that the iSymphony licence covers this feature"),
        "{stderr}"
    );
}
