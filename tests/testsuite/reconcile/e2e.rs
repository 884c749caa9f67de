//! End to end: real MariaDB → agent → embedded server over HTTP.

use crate::support;
use support::e2e;

use e2e::*;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::model::Kind;
use isymphony_sync::reconcile::plan::Action;
use isymphony_sync::reconcile::ReconcileError;
use serde_json::json;

#[tokio::test]
async fn first_sync_creates_exactly_the_expected_objects_then_dry_run_is_clean() {
    let env = Env::new(4).await;
    let freepbx_before = env.db_checksum().await;
    let dry = env.pass(true, false, false).await.unwrap();
    assert_eq!(dry.outcome().code(true), 2);
    assert_eq!(
        env.stats().post + env.stats().put + env.stats().delete,
        0,
        "dry run wrote"
    );

    let r = env.sync().await;
    assert_eq!(r.outcome().code(false), 0);
    assert_eq!(
        env.db_checksum().await,
        freepbx_before,
        "the agent wrote to FreePBX"
    );
    for (kind, n) in [
        (Kind::CoreServer, 1),
        (Kind::Extension, 4),
        (Kind::User, 4),
        (Kind::Contact, 4),
        (Kind::Email, 4),
        (Kind::ManagingUser, 4),
        (Kind::Queue, 2),
        (Kind::ConferenceRoom, 2),
        (Kind::ParkingLot, 1),
        (Kind::PbxServer, 1),
    ] {
        assert_eq!(
            count(&r, kind, Action::Create),
            n,
            "{kind:?}: {:#?}",
            plan_lines(&r)
        );
    }
    assert_eq!(r.plan.summary().delete, 0);

    let mut exts: Vec<(String, String)> = env
        .extensions()
        .await
        .into_iter()
        .map(|x| (x.extension, x.display_name))
        .collect();
    exts.sort();
    assert_eq!(
        exts,
        vec![
            ("1001".into(), "Alice Smith".into()),
            ("1002".into(), "Bob Smith".into()),
            ("1003".into(), "Carol Smith".into()),
            ("1004".into(), "Dan Smith".into()),
        ]
    );
    let users = env.users().await;
    assert_eq!(users.len(), 4);
    let u1 = users.iter().find(|u| u.username == "1001").unwrap();
    assert_eq!(u1.password.expose(), sha1_hex("pw-1001"));
    assert!(u1.full);
    let c = env.contact("1002").await.unwrap();
    assert_eq!(
        (c.first_name.as_str(), c.last_name.as_str()),
        ("Bob", "Smith")
    );
    assert_eq!(env.emails("1003").await, vec!["u1003@example.com"]);
    assert_eq!(env.managing_user("1004").await.as_deref(), Some("1004"));
    let cs = env.cs().await;
    let queues: Vec<Queue> = env.api.get(paths::queues(&cs)).await.unwrap();
    assert_eq!(queues.len(), 2);
    let lots: Vec<ParkingLot> = env.api.get(paths::parking_lots(&cs)).await.unwrap();
    assert_eq!(lots[0].destination_extension, "70");

    // Second run: in sync, and no writes at all.
    let before = env.stats();
    let dry = env.pass(true, false, false).await.unwrap();
    assert!(dry.plan.is_empty(), "{:#?}", plan_lines(&dry));
    assert_eq!(dry.outcome().code(true), 0);
    let again = env.sync().await;
    assert!(again.plan.is_empty());
    let after = env.stats();
    assert_eq!(
        (after.post, after.put, after.delete),
        (before.post, before.put, before.delete)
    );
}

#[tokio::test]
async fn freepbx_changes_give_exactly_the_expected_plan_and_converge() {
    let mut env = Env::new(5).await;
    env.sync().await;

    env.db
        .exec(
            "UPDATE users SET name = 'Alice Cooper' WHERE extension = '1001';
             DELETE FROM users WHERE extension = '1004';
             DELETE FROM devices WHERE id = '1004';
             DELETE FROM cxpanel_users WHERE user_id = '1004';
             UPDATE cxpanel_users SET parent_user_id = '1001' WHERE user_id = '1003';",
        )
        .await;
    env.db.exec(&extension_rows(6, 1)).await;
    env.emails.insert(1002, "bob.new@example.com".into());
    env.emails.remove(&1004);
    env.emails.insert(1006, "u1006@example.com".into());
    env.write_voicemail();

    let dry = env.pass(true, false, false).await.unwrap();
    assert_eq!(dry.outcome().code(true), 2);
    assert_eq!(
        plan_lines(&dry),
        vec![
            "+ add e-mail bob.new@example.com to user 1002",
            "+ add e-mail u1006@example.com to user 1006",
            "+ bind extension 1006 to user \"1006\"",
            "+ create contact of user 1006 \"Frank Smith\"",
            "+ create extension 1006 \"Frank Smith\"",
            "+ create user 1006",
            "- delete extension 1004 \"Dan Smith\"",
            "- delete user 1004",
            "- remove e-mail u1002@example.com from user 1002",
            "~ rebind extension 1003: user \"1003\" -> \"1001\"",
            "~ update contact of user 1001: lastName \"Smith\" -> \"Cooper\"",
            "~ update extension 1001: displayName \"Alice Smith\" -> \"Alice Cooper\", agentName \"Alice Smith\" -> \"Alice Cooper\"",
        ]
    );
    let r = env.sync().await;
    assert_eq!(r.applied, 12);
    let dry = env.pass(true, false, false).await.unwrap();
    assert!(dry.plan.is_empty(), "{:#?}", plan_lines(&dry));
    // A full verify agrees.
    let full = env.pass(true, true, false).await.unwrap();
    assert!(full.plan.is_empty(), "{:#?}", plan_lines(&full));
    assert_eq!(env.emails("1002").await, vec!["bob.new@example.com"]);
    assert_eq!(env.managing_user("1003").await.as_deref(), Some("1001"));
    assert!(env.extensions().await.iter().all(|x| x.extension != "1004"));
}

#[tokio::test]
async fn objects_created_in_isymphony_survive_unless_clean_unknown_items() {
    let mut env = Env::new(4).await;
    env.sync().await;
    let cs = env.cs().await;
    env.api
        .post(
            &paths::extensions(&cs),
            &json!({"id": "11111111-2222-4333-8444-555555555555", "extension": "7777", "displayName": "Lobby phone"}),
            None,
        )
        .await
        .unwrap();
    let uid = env.user_id("1001").await;
    env.api
        .post(
            &paths::phone_numbers(&cs, &uid),
            &json!({"type": "Home", "number": "555-HOME"}),
            None,
        )
        .await
        .unwrap();
    env.api
        .post(
            &paths::email_addresses(&cs, &uid),
            &json!({"type": "Home", "address": "alice@home.example"}),
            None,
        )
        .await
        .unwrap();

    let r = env.pass(false, true, false).await.unwrap();
    assert!(r.plan.is_empty(), "{:#?}", plan_lines(&r));
    assert!(env.extensions().await.iter().any(|x| x.extension == "7777"));

    env.cfg.sync.clean_unknown_items = true;
    let r = env.pass(false, true, false).await.unwrap();
    assert_eq!(
        plan_lines(&r),
        vec!["- delete extension 7777 \"Lobby phone\""]
    );
    assert!(env.extensions().await.iter().all(|x| x.extension != "7777"));
    // What people added to a user stays, even then.
    let phones: Vec<PhoneNumber> = env.api.get(paths::phone_numbers(&cs, &uid)).await.unwrap();
    assert!(phones.iter().any(|p| p.number == "555-HOME"));
    assert!(env
        .emails("1001")
        .await
        .contains(&"alice@home.example".to_string()));
}

#[tokio::test]
async fn server_side_edits_are_reverted_by_a_full_verify() {
    let env = Env::new(3).await;
    env.sync().await;
    let cs = env.cs().await;
    let uid = env.user_id("1002").await;
    env.api
        .put(
            &paths::contact(&cs, &uid),
            &json!({"firstName": "Robert", "lastName": "Smith"}),
        )
        .await
        .unwrap();
    // A cheap pass does not re-read unchanged contacts …
    let r = env.pass(true, false, false).await.unwrap();
    assert!(r.plan.is_empty(), "{:#?}", plan_lines(&r));
    // … a full verify does, and puts FreePBX's value back.
    let r = env.pass(false, true, false).await.unwrap();
    assert_eq!(
        plan_lines(&r),
        vec!["~ update contact of user 1002: firstName \"Robert\" -> \"Bob\""]
    );
    assert_eq!(env.contact("1002").await.unwrap().first_name, "Bob");
    // Top-level fields are compared on every pass.
    let ext_id = env.ext_id("1001").await;
    let mut x: serde_json::Value = env.api.get(paths::extension(&cs, &ext_id)).await.unwrap();
    x["displayName"] = json!("Hacked");
    x["agentPenalty"] = json!(3);
    env.api
        .put(&paths::extension(&cs, &ext_id), &x)
        .await
        .unwrap();
    let r = env.sync().await;
    assert_eq!(
        plan_lines(&r),
        vec!["~ update extension 1001: displayName \"Hacked\" -> \"Alice Smith\""]
    );
    let x: Extension = env.api.get(paths::extension(&cs, &ext_id)).await.unwrap();
    assert_eq!(x.display_name, "Alice Smith");
    assert_eq!(x.agent_penalty, 3, "create-only field must survive");
}

#[tokio::test]
async fn safety_valve_refuses_and_empty_source_never_deletes() {
    let env = Env::new(4).await;
    env.sync().await;
    env.db
        .exec("DELETE FROM users WHERE extension IN ('1002', '1003', '1004');")
        .await;
    let report = env.pass(false, false, false).await.unwrap();
    let e = report.valve_refusal().expect("the safety valve refuses");
    assert!(e.0.contains("3 of 4 managed extension"), "{e}");
    assert_eq!(report.outcome().code(false), 1);
    assert_eq!(env.extensions().await.len(), 4, "nothing may be deleted");
    assert_eq!(env.users().await.len(), 4);

    // Everything gone in FreePBX: an error even with --force.
    env.db
        .exec("DELETE FROM users; DELETE FROM queues_config; DELETE FROM meetme;")
        .await;
    let e = env.pass(false, false, true).await.unwrap_err();
    assert!(matches!(e, ReconcileError::EmptySource { .. }), "{e}");
    assert_eq!(env.extensions().await.len(), 4);

    // --force overrides the valve for a real (non-empty) source.
    env.db
        .exec("INSERT INTO users (extension, name, voicemail) VALUES ('1001', 'Alice Smith', 'default');")
        .await;
    let r = env.pass(false, false, true).await.unwrap();
    assert_eq!(r.failed, 0, "{:?}", r.errors);
    let left = env.extension_numbers().await;
    assert_eq!(left, vec!["1001"]);
}

#[tokio::test]
async fn existing_objects_are_adopted_and_module_ownership_is_honoured() {
    let env = Env::new(4).await;
    // An iSymphony that already has a core server with extension 1001 (someone else's id) and
    // an extension 1099 the cxpanel module created (listed in cxpanel_managed_items).
    env.api
        .post(
            &paths::core_servers(),
            &json!({"id": "0c0c0c0c-0000-4000-8000-000000000001", "slug": "default", "name": "default"}),
            None,
        )
        .await
        .unwrap();
    let cs = env.cs().await;
    let foreign = "0e0e0e0e-0000-4000-8000-000000001001";
    env.api
        .post(
            &paths::extensions(&cs),
            &json!({"id": foreign, "extension": "1001", "displayName": "Old name", "agentPenalty": 2}),
            None,
        )
        .await
        .unwrap();
    let module_id = "0b7c3f5e-0000-4000-8000-000000001099";
    env.api
        .post(
            &paths::extensions(&cs),
            &json!({"id": module_id, "extension": "1099", "displayName": "Module made"}),
            None,
        )
        .await
        .unwrap();
    env.db
        .exec(&format!(
            "INSERT INTO cxpanel_managed_items (cxpanel_id, fpbx_id, type) VALUES ('{module_id}', '1099', 'extension');"
        ))
        .await;

    let r = env.sync().await;
    let lines = plan_lines(&r);
    assert!(
        lines.iter().any(|l| l.starts_with(
            "~ update extension 1001: displayName \"Old name\" -> \"Alice Smith\", peer"
        )),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"- delete extension 1099 \"Module made\"".to_string()),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("create extension 1001")));
    let exts = env.extensions().await;
    assert_eq!(exts.len(), 4);
    let x = exts.iter().find(|x| x.extension == "1001").unwrap();
    assert_eq!(x.id.as_deref(), Some(foreign));
    assert_eq!(x.agent_penalty, 2);

    // Adopted means managed: removed from FreePBX, it is deleted.
    env.db
        .exec("DELETE FROM users WHERE extension = '1001'; DELETE FROM cxpanel_users WHERE user_id = '1001';")
        .await;
    let r = env.sync().await;
    assert!(plan_lines(&r).contains(&"- delete extension 1001 \"Alice Smith\"".to_string()));
    assert!(env.extensions().await.iter().all(|x| x.extension != "1001"));
}
