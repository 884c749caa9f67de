//! Passwords follow FreePBX's dirty flag, and e-mail addresses keep their letter case:
//! real MariaDB → agent → embedded server over loopback HTTP.

use crate::support;
use support::e2e;

use e2e::*;
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::model::Kind;
use isymphony_sync::secret::Secret;
use serde_json::json;

/// What a person does in the iSymphony client: set a new clear password (the server hashes it).
async fn change_in_client(env: &Env, username: &str, clear: &str) {
    let cs = env.cs().await;
    let id = env.user_id(username).await;
    let mut u: User = env.api.get(paths::user(&cs, &id)).await.unwrap();
    u.password = Secret::new(clear);
    env.api
        .put(&paths::user(&cs, &id), &serde_json::to_value(&u).unwrap())
        .await
        .unwrap();
}

async fn server_password(env: &Env, username: &str) -> String {
    let u = env.users().await;
    let u = u.iter().find(|u| u.username == username).unwrap();
    u.password.expose().to_string()
}

fn forget_state(env: &Env) {
    std::fs::remove_dir_all(env.dir.path().join("state")).unwrap();
}

fn password_ops(r: &isymphony_sync::reconcile::PassReport) -> usize {
    r.plan
        .ops
        .iter()
        .filter(|o| o.changes.iter().any(|c| c.field == "password"))
        .count()
}

#[tokio::test]
async fn cxpanel_tables_push_only_dirty_values_and_a_client_change_survives() {
    let env = Env::new(2).await;
    env.sync().await;
    assert_eq!(server_password(&env, "1001").await, sha1_hex("pw-1001"));

    // The user picks another password in the iSymphony client.
    change_in_client(&env, "1001", "Mine-123").await;
    let mine = sha1_hex("Mine-123");
    // FreePBX's stored value changes without the dirty flag (as after cxpanel cleared it).
    env.db
        .exec(&format!(
            "UPDATE cxpanel_users SET hashed_password = '{}', password_dirty = 0 WHERE user_id = '1001'",
            sha1_hex("other")
        ))
        .await;
    let r = env.sync().await;
    assert_eq!(password_ops(&r), 0, "{:?}", plan_lines(&r));
    assert_eq!(server_password(&env, "1001").await, mine);
    // The first pass of an agent whose state directory was deleted leaves it too.
    forget_state(&env);
    let dry = env.pass(true, false, false).await.unwrap();
    assert_eq!(dry.outcome().code(true), 0, "{:?}", plan_lines(&dry));
    let r = env.sync().await;
    assert_eq!(password_ops(&r), 0, "{:?}", plan_lines(&r));
    assert_eq!(server_password(&env, "1001").await, mine);

    // FreePBX marks a new password dirty: pushed once (upper-case hex compares equal).
    let new = sha1_hex("set-in-freepbx");
    env.db
        .exec(&format!(
            "UPDATE cxpanel_users SET hashed_password = '{}', password_dirty = 1 WHERE user_id = '1001'",
            new.to_uppercase()
        ))
        .await;
    let r = env.sync().await;
    assert_eq!(
        plan_lines(&r),
        vec!["~ update user 1001: password *** -> ***"]
    );
    assert_eq!(server_password(&env, "1001").await, new);
    // The flag stays set (the agent never writes FreePBX), yet the user's next change survives.
    change_in_client(&env, "1001", "Mine-456").await;
    for _ in 0..2 {
        let r = env.sync().await;
        assert_eq!(password_ops(&r), 0, "{:?}", plan_lines(&r));
    }
    assert_eq!(server_password(&env, "1001").await, sha1_hex("Mine-456"));
    // The other login was never touched.
    assert_eq!(server_password(&env, "1002").await, sha1_hex("pw-1002"));
}

async fn admin(env: &Env) -> Administrator {
    let v: Vec<Administrator> = env.api.get(paths::administrators()).await.unwrap();
    v.into_iter().find(|a| a.user_name == "boss").unwrap()
}

#[tokio::test]
async fn administrators_have_no_flag_so_each_freepbx_value_is_pushed_once() {
    let env = Env::new(1).await;
    env.db
        .exec(&format!(
            "INSERT INTO ampusers (username, password_sha1, sections) VALUES ('boss', '{}', '*')",
            sha1_hex("gui-pw")
        ))
        .await;
    env.sync().await;
    let a = admin(&env).await;
    assert_eq!(a.password.expose(), sha1_hex("gui-pw"));
    // Changed on the iSymphony side: the agent already pushed FreePBX's value, so it stays.
    let mut changed = a.clone();
    changed.password = Secret::new("Admin-Own");
    env.api
        .put(
            &paths::administrator(a.id.as_deref().unwrap()),
            &serde_json::to_value(&changed).unwrap(),
        )
        .await
        .unwrap();
    let r = env.sync().await;
    assert_eq!(password_ops(&r), 0, "{:?}", plan_lines(&r));
    assert_eq!(admin(&env).await.password.expose(), sha1_hex("Admin-Own"));
    // A new FreePBX GUI password is pushed.
    env.db
        .exec(&format!(
            "UPDATE ampusers SET password_sha1 = '{}' WHERE username = 'boss'",
            sha1_hex("gui-pw-2")
        ))
        .await;
    let r = env.sync().await;
    assert_eq!(
        plan_lines(&r),
        vec!["~ update administrator boss: password *** -> ***"]
    );
    assert_eq!(admin(&env).await.password.expose(), sha1_hex("gui-pw-2"));
}

/// User Manager mode with one user `ann` (extension 1001), password `hash`, dirty flag `dirty`.
async fn userman_mode(env: &Env, hash: &str, dirty: &str) {
    env.db
        .exec(&format!(
            "UPDATE cxpanel_server SET sync_with_userman = 1;
             INSERT INTO modules (modulename, version, enabled) VALUES ('userman', '16.0.30', 1), ('cxpanel', '16.0.6', 1);
             INSERT INTO userman_users (id, username, password, displayname, email, default_extension)
               VALUES (1, 'ann', '{hash}', 'Ann Lee', 'Ann.Lee@Corp.COM', '1001');
             INSERT INTO userman_users_settings (uid, module, `key`, val) VALUES
               (1, 'cxpanel', 'add', '1'), (1, 'cxpanel', 'password_dirty', '{dirty}');"
        ))
        .await;
}

#[tokio::test]
async fn user_manager_hook_password_survives_a_bcrypt_hash_and_lost_state() {
    let env = Env::new(1).await;
    let bcrypt1 = "$2a$08$W9yKqZ1cG6m0v1bH1e7Ree4xKp7m6qJrjvYfQmQy0dUu3gk2a9Q1e";
    userman_mode(&env, bcrypt1, "1").await;
    let r = env.sync().await;
    // Creation sends FreePBX's value, as cxpanel does.
    assert_eq!(server_password(&env, "ann").await, bcrypt1);
    assert!(r.plan.ops.iter().any(|o| o.kind == Kind::User));
    // E-mail posted as written in FreePBX.
    assert_eq!(env.emails("ann").await, vec!["Ann.Lee@Corp.COM"]);

    // cxpanel's User Manager hook: the new clear password goes to iSymphony's hashing path
    // (SHA-1 of it is stored), User Manager stores a new bcrypt hash, the flag is cleared.
    change_in_client(&env, "ann", "Hook-Pw-1").await;
    let bcrypt2 = "$2a$08$Zx1Jm2b7V0q5u8yT3r6Wce9oP4lK1jH2gF5dS8aQ7wE3rT6yU9iO0";
    env.db
        .exec(&format!(
            "UPDATE userman_users SET password = '{bcrypt2}' WHERE id = 1;
             UPDATE userman_users_settings SET val = '0' WHERE uid = 1 AND `key` = 'password_dirty'"
        ))
        .await;
    let hook = sha1_hex("Hook-Pw-1");
    let r = env.sync().await;
    assert_eq!(password_ops(&r), 0, "{:?}", plan_lines(&r));
    assert_eq!(server_password(&env, "ann").await, hook);
    forget_state(&env);
    env.sync().await;
    assert_eq!(server_password(&env, "ann").await, hook);

    // Marked dirty again (e.g. cxpanel marks all dirty on a mode switch): a bcrypt hash is
    // never pushed over the SHA-1 on the server; the plan warns, naming the user only.
    env.db
        .exec("UPDATE userman_users_settings SET val = '1' WHERE uid = 1 AND `key` = 'password_dirty'")
        .await;
    let dry = env.pass(true, false, false).await.unwrap();
    assert_eq!(dry.outcome().code(true), 0, "{:?}", plan_lines(&dry));
    let w: Vec<&String> = dry
        .plan
        .warnings
        .iter()
        .filter(|w| w.starts_with("user ann:"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", dry.plan.warnings);
    let shown = dry.plan.render_text(false) + &dry.to_json().to_string();
    assert!(
        !shown.contains(bcrypt2) && !shown.contains(&hook),
        "{shown}"
    );
    env.sync().await;
    assert_eq!(server_password(&env, "ann").await, hook);
}

#[tokio::test]
async fn emails_keep_their_case_and_are_not_reposted_in_another_case() {
    let mut env = Env::new(2).await;
    env.emails.insert(1001, "Ann.Lee@Corp.COM".into());
    env.write_voicemail();
    env.sync().await;
    assert_eq!(env.emails("1001").await, vec!["Ann.Lee@Corp.COM"]);

    // The server holds an address in another case (e.g. posted lower-cased by an older sync).
    let cs = env.cs().await;
    let uid = env.user_id("1002").await;
    let cur: Vec<EmailAddress> = env
        .api
        .get(paths::email_addresses(&cs, &uid))
        .await
        .unwrap();
    for e in cur {
        env.api
            .delete(&paths::email_address(&cs, &uid, e.id.as_deref().unwrap()))
            .await
            .unwrap();
    }
    env.api
        .post(
            &paths::email_addresses(&cs, &uid),
            &json!({"type": "Work", "address": "bob.b@example.org"}),
            None,
        )
        .await
        .unwrap();
    env.emails.insert(1002, "Bob.B@Example.ORG".into());
    env.write_voicemail();
    let before = env.stats();
    let r = env.pass(false, true, false).await.unwrap();
    assert!(
        !r.plan.ops.iter().any(|o| o.kind == Kind::Email),
        "{:?}",
        plan_lines(&r)
    );
    assert_eq!(env.stats().post, before.post);
    assert_eq!(env.emails("1002").await, vec!["bob.b@example.org"]);
}
