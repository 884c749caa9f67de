//! The embedded Configuration API over real HTTP on loopback: core servers, users,
//! administrators, contacts, extensions and groups; each method, both prefixes, trailing
//! slashes, hashing vs noHash, bindings, 409s. The other families are in `api_families.rs`,
//! status codes, the ACL and the auth challenge in `api_http.rs`.

use crate::support;

use isymphony_sync::digest::sha1_hex as sha1;
use serde_json::json;
use support::server::*;

#[tokio::test]
async fn core_servers_lookups_prefixes_and_cascade() {
    let t = start().await;
    expect(t.get("server/coreServers").await, 200, "");
    expect(t.get("server/coreServers/getBySlug/default").await, 404, "");
    let id = "2f0b0f5e-0000-4000-8000-000000000001";
    t.post_204(
        "server/coreServers",
        json!({"id": id, "slug": "default", "name": "Default"}),
    )
    .await;
    expect(
        t.post(
            "server/coreServers",
            json!({"id": id, "slug": "other", "name": "x"}),
        )
        .await,
        409,
        "A core server with the given id already exists.",
    );
    expect(
        t.post(
            "server/coreServers",
            json!({"slug": "default", "name": "x"}),
        )
        .await,
        409,
        "A core server with the given slug already exists.",
    );
    expect(
        t.post("server/coreServers", json!({"name": "x"})).await,
        412,
        "No slug provided.",
    );
    expect(
        t.post("server/coreServers", json!({"slug": "y"})).await,
        412,
        "No name provided.",
    );
    // Both lookups, both prefixes, with and without trailing slash.
    let v = expect(
        t.get("server/coreServers/getBySlug/default/").await,
        200,
        "",
    );
    assert_eq!(v["id"], json!(id));
    let v = expect(t.get("server/coreServers/getByName/default").await, 200, "");
    assert_eq!(v["name"], json!("Default"));
    let alt = t.base.replace("api/resource", "rest/config");
    let url = format!("{alt}server/coreServers/{id}/");
    assert_core_server_at(&t.client, url, "default").await;
    // Core root and seeded Asterisk settings.
    let v = expect(t.get(&format!("core/{id}")).await, 200, "");
    assert_eq!(v, json!({"serverId": id}));
    let v = expect(t.get(&format!("asterisk/{id}")).await, 200, "");
    assert_eq!(v["originatingContext"], json!("from-internal"));
    assert_eq!(v["redirectingContext"], json!("from-internal"));
    assert_eq!(v["musicOnHoldClass"], json!("default"));
    let mut s = v.clone();
    s["musicOnHoldClass"] = json!("jazz");
    s["agentLoginContext"] = json!("from-agents");
    t.put_204(&format!("asterisk/{id}/"), s).await;
    let v = expect(t.get(&format!("asterisk/{id}")).await, 200, "");
    assert_eq!(v["musicOnHoldClass"], json!("jazz"));
    assert_eq!(v["agentLoginContext"], json!("from-agents"));
    // PUT: path id wins, unknown fields kept, numeric strings become numbers.
    t.put_204(&format!("server/coreServers/{id}"), json!({"id": "ignored", "slug": "default", "name": "Renamed", "brokerPort": "50000", "zz": 1})).await;
    let v = expect(t.get(&format!("server/coreServers/{id}")).await, 200, "");
    assert_eq!(v["id"], json!(id));
    assert_eq!(v["brokerPort"], json!(50000));
    assert_eq!(v["zz"], json!(1));
    // Unknown parents.
    expect(t.get("asterisk/nope/extensions").await, 404, "core server");
    expect(t.get("core/nope/users").await, 404, "core server");
    expect(
        t.put("server/coreServers/nope", json!({"slug": "a", "name": "b"}))
            .await,
        404,
        "",
    );
    // Deleting the core server deletes everything below it.
    t.post_204(
        &format!("asterisk/{id}/extensions"),
        json!({"extension": "1"}),
    )
    .await;
    t.post_204(
        &format!("core/{id}/users"),
        json!({"username": "u", "password": "p"}),
    )
    .await;
    t.delete_204(&format!("server/coreServers/{id}")).await;
    expect(t.delete(&format!("server/coreServers/{id}")).await, 404, "");
    expect(t.get(&format!("asterisk/{id}/extensions")).await, 404, "");
    let cs2 = t.core_server("default").await;
    assert_ne!(cs2, id);
    let v = expect(t.get(&format!("asterisk/{cs2}/extensions")).await, 200, "");
    assert_eq!(v, json!([]));
    t.handle.shutdown().await;
}

#[tokio::test]
async fn users_hashing_nohash_and_permissions() {
    let t = start().await;
    let cs = t.core_server("default").await;
    let users = format!("core/{cs}/users");
    expect(
        t.post(&users, json!({"password": "x"})).await,
        412,
        "No username provided.",
    );
    expect(
        t.post(&users, json!({"username": "a"})).await,
        412,
        "No password provided.",
    );
    expect(
        t.post(
            &users,
            json!({"username": "a", "password": "x", "enabled": "maybe"}),
        )
        .await,
        412,
        "enabled",
    );
    let uid = "11111111-2222-4333-8444-555555555555";
    t.post_204(&users, json!({"id": uid, "username": "alice", "password": "secret", "enabled": true, "full": true, "restricted": false})).await;
    let v = expect(t.get(&format!("{users}/{uid}")).await, 200, "");
    assert_eq!(v["password"], json!(sha1("secret")));
    assert_eq!(v["permissionId"], json!(uid));
    assert_eq!(v["permissionDisplayName"], json!("alice"));
    assert_eq!(v["full"], json!(true));
    expect(
        t.post(&users, json!({"id": uid, "username": "b", "password": "x"}))
            .await,
        409,
        "id already exists",
    );
    expect(
        t.post(&users, json!({"username": "alice", "password": "x"}))
            .await,
        409,
        "username already exists",
    );
    // noHash stores verbatim (lower-cased only for a 40-hex digest).
    let digest = sha1("pw2").to_uppercase();
    t.post_204(
        &format!("{users}/noHash"),
        json!({"username": "bob", "password": digest, "enabled": true, "full": false}),
    )
    .await;
    t.post_204(
        &format!("{users}/noHash/"),
        json!({"username": "carol", "password": "Rnd0mX", "enabled": true}),
    )
    .await;
    let list = expect(t.get(&users).await, 200, "");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let by = |n: &str| {
        list.iter()
            .find(|u| u["username"] == json!(n))
            .unwrap()
            .clone()
    };
    assert_eq!(by("bob")["password"], json!(sha1("pw2")));
    assert_eq!(by("carol")["password"], json!("Rnd0mX"));
    // Hashing PUT that sends the stored digest back keeps it; a clear value is hashed.
    let mut a = by("alice");
    a["displayName"] = json!("Alice A");
    t.put_204(&format!("{users}/{uid}"), a.clone()).await;
    let v = expect(t.get(&format!("{users}/{uid}")).await, 200, "");
    assert_eq!(v["password"], json!(sha1("secret")));
    assert_eq!(v["permissionDisplayName"], json!("Alice A"));
    a["password"] = json!("newpass");
    t.put_204(&format!("{users}/{uid}"), a.clone()).await;
    let v = expect(t.get(&format!("{users}/{uid}")).await, 200, "");
    assert_eq!(v["password"], json!(sha1("newpass")));
    a["password"] = json!("plainstored");
    t.put_204(&format!("{users}/noHash/{uid}"), a.clone()).await;
    let v = expect(t.get(&format!("{users}/{uid}")).await, 200, "");
    assert_eq!(v["password"], json!("plainstored"));
    // Renaming onto another user's name is a conflict.
    a["username"] = json!("bob");
    expect(t.put(&format!("{users}/{uid}"), a).await, 409, "username");
    expect(
        t.put(&format!("{users}/nope"), json!({"username": "z"}))
            .await,
        404,
        "",
    );
    t.delete_204(&format!("{users}/{uid}")).await;
    expect(t.get(&format!("{users}/{uid}")).await, 404, "");
    t.handle.shutdown().await;
}

#[tokio::test]
async fn administrators_hash_and_nohash() {
    let t = start().await;
    let p = "server/administrators";
    expect(
        t.post(p, json!({"password": "x"})).await,
        412,
        "No username provided.",
    );
    expect(
        t.post(p, json!({"userName": "root"})).await,
        412,
        "No password provided.",
    );
    t.post_204(
        p,
        json!({"id": "a1", "userName": "root", "password": "pw", "superUser": true}),
    )
    .await;
    expect(
        t.post(p, json!({"id": "a1", "userName": "x", "password": "pw"}))
            .await,
        409,
        "An administrator with the given id already exists.",
    );
    expect(
        t.post(p, json!({"userName": "root", "password": "pw"}))
            .await,
        409,
        "An administrator with the given username already exists.",
    );
    // A string where a boolean is expected is refused; a real one is not.
    expect(
        t.post(
            &format!("{p}/noHash"),
            json!({"id": "a2", "userName": "ops", "password": sha1("o"), "superUser": "true"}),
        )
        .await,
        412,
        "'superUser'",
    );
    t.post_204(
        &format!("{p}/noHash"),
        json!({"id": "a2", "userName": "ops", "password": sha1("o"), "superUser": true}),
    )
    .await;
    let v = expect(t.get(&format!("{p}/a1")).await, 200, "");
    assert_eq!(v["password"], json!(sha1("pw")));
    assert_eq!(v["superUser"], json!(true));
    let v = expect(t.get(&format!("{p}/a2")).await, 200, "");
    assert_eq!(v["password"], json!(sha1("o")));
    assert_eq!(v["superUser"], json!(true));
    t.put_204(
        &format!("{p}/noHash/a2"),
        json!({"userName": "ops", "password": "abc"}),
    )
    .await;
    assert_eq!(t.get(&format!("{p}/a2")).await.1["password"], json!("abc"));
    t.put_204(
        &format!("{p}/a2"),
        json!({"userName": "ops", "password": "abc"}),
    )
    .await;
    assert_eq!(t.get(&format!("{p}/a2")).await.1["password"], json!("abc"));
    expect(
        t.get(&format!("{p}/zzz")).await,
        404,
        "An administrator with the given id does not exist",
    );
    assert_eq!(t.get(p).await.1.as_array().unwrap().len(), 2);
    t.delete_204(&format!("{p}/a1")).await;
    assert_eq!(t.get(p).await.1.as_array().unwrap().len(), 1);
    t.handle.shutdown().await;
}

#[tokio::test]
async fn contacts_emails_and_phone_numbers() {
    let t = start().await;
    let cs = t.core_server("default").await;
    t.post_204(
        &format!("core/{cs}/users"),
        json!({"id": "u1", "username": "alice", "password": "x"}),
    )
    .await;
    let c = format!("contact/{cs}/users/u1");
    expect(t.get(&c).await, 404, "");
    expect(
        t.get(&format!("contact/{cs}/users/nobody")).await,
        404,
        "user",
    );
    expect(
        t.put(
            &format!("contact/{cs}/users/nobody"),
            json!({"firstName": "a"}),
        )
        .await,
        404,
        "user",
    );
    t.put_204(&c, json!({"firstName": "Alice", "lastName": "Smith"}))
        .await;
    let v = expect(t.get(&c).await, 200, "");
    assert_eq!(v["firstName"], json!("Alice"));
    assert_eq!(v["userConfigurationId"], json!("u1"));
    let contact_id = v["id"].clone();
    t.put_204(&c, json!({"firstName": "Alicia", "lastName": "Smith"}))
        .await;
    let v = expect(t.get(&c).await, 200, "");
    assert_eq!(
        (v["id"].clone(), v["firstName"].clone()),
        (contact_id, json!("Alicia"))
    );
    assert_eq!(
        expect(t.get(&format!("contact/{cs}/users")).await, 200, "")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Both spellings of the e-mail collection are the same resource.
    t.post_204(
        &format!("{c}/emailAddresses"),
        json!({"type": "Work", "address": "a@x.org"}),
    )
    .await;
    t.post_204(
        &format!("{c}/emailAdresses/"),
        json!({"id": "e2", "type": "Home", "address": "a@y.org"}),
    )
    .await;
    expect(
        t.post(&format!("{c}/emailAddresses"), json!({"type": "Home"}))
            .await,
        412,
        "No address provided.",
    );
    let v = expect(t.get(&format!("{c}/emailAdresses")).await, 200, "");
    assert_eq!(v.as_array().unwrap().len(), 2);
    t.put_204(
        &format!("{c}/emailAddresses/e2"),
        json!({"type": "Home", "address": "b@y.org"}),
    )
    .await;
    assert_eq!(
        t.get(&format!("{c}/emailAddresses/e2")).await.1["address"],
        json!("b@y.org")
    );
    t.delete_204(&format!("{c}/emailAddresses/e2")).await;
    expect(t.delete(&format!("{c}/emailAddresses/e2")).await, 404, "");
    t.post_204(
        &format!("{c}/phoneNumbers"),
        json!({"id": "p1", "type": "Cell", "number": 5551234}),
    )
    .await;
    let v = expect(t.get(&format!("{c}/phoneNumbers")).await, 200, "");
    assert_eq!(v[0]["number"], json!("5551234"));
    t.delete_204(&format!("{c}/phoneNumbers/p1")).await;
    t.post_204(
        &format!("{c}/phoneNumbers"),
        json!({"type": "Cell", "number": "1"}),
    )
    .await;
    // Deleting the user deletes its contact data.
    t.delete_204(&format!("core/{cs}/users/u1")).await;
    t.post_204(
        &format!("core/{cs}/users"),
        json!({"id": "u1", "username": "alice", "password": "x"}),
    )
    .await;
    expect(t.get(&c).await, 404, "");
    assert_eq!(t.get(&format!("{c}/phoneNumbers")).await.1, json!([]));
    t.handle.shutdown().await;
}

#[tokio::test]
async fn extensions_and_managing_user_bindings() {
    let t = start().await;
    let cs = t.core_server("default").await;
    let ex = format!("asterisk/{cs}/extensions");
    expect(
        t.post(&ex, json!({"displayName": "x"})).await,
        412,
        "No extension provided.",
    );
    expect(
        t.post(&ex, json!({"extension": "1", "agentPenalty": "high"}))
            .await,
        412,
        "agentPenalty",
    );
    expect(t.post(&ex, "{\"extension\": ".into()).await, 412, "");
    // Numbers for strings and numeric strings for numbers pass (the PHP client's habits); a
    // string for a boolean does not.
    expect(
        t.post(&ex, json!({"id": "e1", "extension": 1001, "displayName": "Alice", "autoAnswer": "true", "agentPenalty": "2", "restricted": false}))
            .await,
        412,
        "'autoAnswer'",
    );
    t.post_204(&ex, json!({"id": "e1", "extension": 1001, "displayName": "Alice", "autoAnswer": true, "agentPenalty": "2", "restricted": false})).await;
    t.post_204(
        &ex,
        json!({"id": "e2", "extension": "1002", "displayName": "Bob"}),
    )
    .await;
    expect(
        t.post(&ex, json!({"id": "e1", "extension": "1003"})).await,
        409,
        "id already exists",
    );
    expect(
        t.post(&ex, json!({"extension": "1002"})).await,
        409,
        "extension already exists",
    );
    let v = expect(t.get(&format!("{ex}/e1")).await, 200, "");
    assert_eq!(v["extension"], json!("1001"));
    assert_eq!(v["autoAnswer"], json!(true));
    assert_eq!(v["agentPenalty"], json!(2));
    assert_eq!(v["permissionDisplayName"], json!("Alice <1001>"));
    let v = expect(t.get(&format!("{ex}/getByName/1002")).await, 200, "");
    assert_eq!(v["id"], json!("e2"));
    expect(t.get(&format!("{ex}/getByName/9999")).await, 404, "");
    let mut e = expect(t.get(&format!("{ex}/e1/")).await, 200, "");
    e["displayName"] = json!("Alice B");
    e["permissionDisplayName"] = json!("forged");
    t.put_204(&format!("{ex}/e1"), e).await;
    assert_eq!(
        t.get(&format!("{ex}/e1")).await.1["permissionDisplayName"],
        json!("Alice B <1001>")
    );
    expect(
        t.put(&format!("{ex}/e1"), json!({"extension": "1002"}))
            .await,
        409,
        "extension",
    );

    // Managing user.
    let users = format!("core/{cs}/users");
    t.post_204(
        &users,
        json!({"id": "u1", "username": "alice", "password": "x"}),
    )
    .await;
    t.post_204(
        &users,
        json!({"id": "u2", "username": "bob", "password": "x"}),
    )
    .await;
    let mu = format!("{ex}/e1/managingUser");
    expect(t.get(&mu).await, 404, "Extension has not set user");
    let u1 = t.get(&format!("{users}/u1")).await.1;
    t.post_204(&mu, u1.clone()).await;
    assert_eq!(t.get(&mu).await.1["username"], json!("alice"));
    expect(
        t.post(&mu, u1).await,
        409,
        "The Extension's managed user is already set to the given user.",
    );
    t.post_204(&mu, json!({"username": "bob"})).await;
    assert_eq!(t.get(&mu).await.1["id"], json!("u2"));
    expect(t.post(&mu, json!({"username": "nobody"})).await, 404, "");
    expect(
        t.post(&mu, json!({"enabled": true})).await,
        412,
        "No username provided.",
    );
    // The old `core/…` parent of managingUser is the same resource.
    assert_eq!(
        t.get(&format!("core/{cs}/extensions/e1/managingUser"))
            .await
            .1["id"],
        json!("u2")
    );
    // One user may manage several extensions.
    t.post_204(&format!("{ex}/e2/managingUser"), json!({"id": "u2"}))
        .await;
    // Default extension user.
    let du = format!("{ex}/e1/defaultExtensionUser");
    expect(
        t.get(&du).await,
        404,
        "This extension is not a default extension",
    );
    expect(t.post(&du, json!({"id": "u1"})).await, 404, "not bound");
    t.post_204(&du, json!({"id": "u2"})).await;
    assert_eq!(t.get(&du).await.1["id"], json!("u2"));
    expect(
        t.get(&format!("{ex}/getByName/1002/defaultExtensionUser"))
            .await,
        404,
        "This extension is not a default extension",
    );
    // DELETE clears; deleting the user unbinds the rest.
    t.delete_204(&mu).await;
    expect(t.get(&mu).await, 404, "Extension has not set user");
    expect(t.get(&du).await, 404, "not bound");
    expect(t.delete(&mu).await, 404, "");
    t.delete_204(&format!("{users}/u2")).await;
    expect(
        t.get(&format!("{ex}/e2/managingUser")).await,
        404,
        "Extension has not set user",
    );
    expect(t.get(&format!("{ex}/nope/managingUser")).await, 404, "");
    // Deleting an extension.
    t.delete_204(&format!("{ex}/e2")).await;
    expect(t.get(&format!("{ex}/e2")).await, 404, "");
    assert_eq!(t.get(&ex).await.1.as_array().unwrap().len(), 1);
    t.handle.shutdown().await;
}

#[tokio::test]
async fn extension_groups_and_members() {
    let t = start().await;
    let cs = t.core_server("default").await;
    let g = format!("asterisk/{cs}/extensionGroups");
    t.post_204(
        &format!("asterisk/{cs}/extensions"),
        json!({"id": "e1", "extension": "1001"}),
    )
    .await;
    t.post_204(
        &format!("core/{cs}/users"),
        json!({"id": "u1", "username": "alice", "password": "x"}),
    )
    .await;
    expect(
        t.post(&g, json!({"publicGroup": true})).await,
        412,
        "No displayName provided.",
    );
    t.post_204(
        &g,
        json!({"id": "g1", "displayName": "Sales", "publicGroup": true}),
    )
    .await;
    expect(
        t.post(&g, json!({"id": "g1", "displayName": "Other"}))
            .await,
        409,
        "An extension group with the given id already exists.",
    );
    expect(
        t.post(&g, json!({"displayName": "Sales"})).await,
        409,
        "displayName already exists",
    );
    t.put_204(
        &format!("{g}/g1"),
        json!({"displayName": "Sales EU", "publicGroup": false}),
    )
    .await;
    assert_eq!(
        t.get(&format!("{g}/g1")).await.1["displayName"],
        json!("Sales EU")
    );
    t.post_204(&format!("{g}/g1/extensions"), json!({"extension": "1001"}))
        .await;
    expect(
        t.post(&format!("{g}/g1/extensions"), json!({"id": "e1"}))
            .await,
        409,
        "",
    );
    t.post_204(&format!("{g}/g1/users"), json!({"username": "alice"}))
        .await;
    t.post_204(&format!("{g}/g1/editors"), json!({"id": "u1"}))
        .await;
    expect(
        t.post(&format!("{g}/g1/editors"), json!({"id": "zz"}))
            .await,
        404,
        "",
    );
    assert_eq!(
        t.get(&format!("{g}/g1/extensions")).await.1[0]["extension"],
        json!("1001")
    );
    assert_eq!(
        t.get(&format!("{g}/g1/editors/u1")).await.1["username"],
        json!("alice")
    );
    expect(t.get(&format!("{g}/g1/bogus")).await, 404, "");
    t.delete_204(&format!("{g}/g1/users/u1")).await;
    assert_eq!(t.get(&format!("{g}/g1/users")).await.1, json!([]));
    // Deleting a member object removes its memberships.
    t.delete_204(&format!("asterisk/{cs}/extensions/e1")).await;
    assert_eq!(t.get(&format!("{g}/g1/extensions")).await.1, json!([]));
    t.delete_204(&format!("{g}/g1")).await;
    expect(t.get(&format!("{g}/g1/editors")).await, 404, "");
    t.handle.shutdown().await;
}
