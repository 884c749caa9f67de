//! The embedded Configuration API over real HTTP: queues, conference rooms, parking lots, PBX
//! servers, agents, identifiers, the license and the brand.

use crate::support;

use serde_json::json;
use support::server::*;

#[tokio::test]
async fn queues_rooms_lots_and_pbx_servers() {
    let t = start().await;
    let cs = t.core_server("default").await;
    for (family, key, body) in [
        (
            "queues",
            Some("identifier"),
            json!({"identifier": "400", "displayName": "Sales", "destinationExtension": "400", "destinationContext": "from-internal", "enabled": true, "restricted": false}),
        ),
        (
            "conferenceRooms",
            Some("identifier"),
            json!({"identifier": "650", "name": "Room", "destinationExtension": 650, "destinationContext": "from-internal"}),
        ),
        (
            "parkingLots",
            Some("identifier"),
            json!({"identifier": "default", "name": "Main", "destinationExtension": "70", "destinationContext": "from-internal"}),
        ),
        (
            "pbxServers",
            None,
            json!({"displayName": "PBX", "host": "localhost", "port": "5038", "username": "cxpanel", "password": "pw", "enabled": true, "cdrHost": "localhost", "cdrPort": "3306", "cdrUsername": "u", "cdrPassword": "p", "recordingAgentIdentifier": "local-rec"}),
        ),
    ] {
        let coll = format!("asterisk/{cs}/{family}/");
        t.post_204(&coll, body.clone()).await;
        let list = expect(t.get(&coll).await, 200, "");
        let obj = list[0].clone();
        let id = obj["id"].as_str().unwrap().to_string();
        assert_eq!(
            uuid::Uuid::parse_str(&id).unwrap().get_version_num(),
            4,
            "{family}"
        );
        if let Some(k) = key {
            let mut dup = body.clone();
            dup["id"] = json!("other-id");
            expect(t.post(&coll, dup).await, 409, "already exists");
            let mut missing = body.clone();
            missing.as_object_mut().unwrap().remove(k);
            expect(t.post(&coll, missing).await, 412, "No identifier provided.");
        } else {
            expect(
                t.post(&coll, json!({"port": 1})).await,
                412,
                "No host provided.",
            );
        }
        let mut changed = obj.clone();
        changed["destinationContext"] = json!("ext-local");
        t.put_204(&format!("{coll}{id}"), changed).await;
        let got = expect(t.get(&format!("{coll}{id}")).await, 200, "");
        assert_eq!(got["destinationContext"], json!("ext-local"), "{family}");
        expect(t.put(&format!("{coll}missing"), obj.clone()).await, 404, "");
        t.delete_204(&format!("{coll}{id}")).await;
        expect(t.get(&format!("{coll}{id}")).await, 404, "");
        t.post_204(&coll, body).await;
    }
    let q = t.get(&format!("asterisk/{cs}/queues")).await.1;
    assert_eq!(q[0]["enabled"], json!(true));
    assert_eq!(q[0]["permissionDisplayName"], json!("Sales <400>"));
    let r = t.get(&format!("asterisk/{cs}/conferenceRooms")).await.1;
    assert_eq!(r[0]["destinationExtension"], json!("650"));
    assert_eq!(r[0]["permissionDisplayName"], json!("Room <650>"));
    let p = t.get(&format!("asterisk/{cs}/pbxServers")).await.1;
    assert_eq!(p[0]["port"], json!(5038));
    assert_eq!(p[0]["cdrPort"], json!(3306));
    assert_eq!(p[0]["cdrName"], json!("asteriskcdrdb"));
    assert_eq!(p[0]["password"], json!("pw"));
    t.handle.shutdown().await;
}

#[tokio::test]
async fn agents_identifiers_license_and_brand() {
    let t = start().await;
    let cs = t.core_server("default").await;
    let agents = expect(t.get("asterisk/voicemailAgents").await, 200, "");
    assert_eq!(agents[0]["identifier"], json!("local-vm"));
    let id = agents[0]["id"].as_str().unwrap().to_string();
    let mut a = expect(t.get("asterisk/voicemailAgents/local-vm").await, 200, "");
    assert_eq!(t.get(&format!("asterisk/voicemailAgents/{id}")).await.1, a);
    assert_eq!(
        t.get("asterisk/voicemailAgents/getByName/local-vm").await.1,
        a
    );
    a["rootPath"] = json!("/srv/vm");
    t.put_204("asterisk/voicemailAgents/local-vm", a).await;
    assert_eq!(
        t.get("asterisk/voicemailAgents/local-vm").await.1["rootPath"],
        json!("/srv/vm")
    );
    expect(t.get("asterisk/voicemailAgents/other").await, 404, "");
    expect(
        t.post("asterisk/voicemailAgents", json!({"identifier": "x"}))
            .await,
        405,
        "",
    );
    let mut r = expect(t.get("asterisk/recordingAgents/local-rec").await, 200, "");
    assert!(r["fileNameMask"].as_str().unwrap().contains("CDRUniqueId"));
    r["resourceHost"] = json!("pbx.example");
    t.put_204("asterisk/recordingAgents/getByName/local-rec", r)
        .await;
    assert_eq!(
        t.get("asterisk/recordingAgents").await.1[0]["resourceHost"],
        json!("pbx.example")
    );
    // Identifiers: bare JSON strings.
    let ids = format!("asterisk/{cs}/voicemailAgentIdentifiers");
    assert_eq!(expect(t.get(&ids).await, 200, ""), json!([]));
    t.post_204(&format!("{ids}/"), json!("local-vm")).await;
    expect(t.post(&ids, json!("local-vm")).await, 409, "");
    expect(t.post(&ids, json!({"identifier": "x"})).await, 412, "");
    t.post_204(&ids, json!("not-connected")).await;
    assert_eq!(t.get(&ids).await.1, json!(["local-vm", "not-connected"]));
    t.delete_204(&format!("{ids}/not-connected")).await;
    expect(t.delete(&format!("{ids}/not-connected")).await, 404, "");
    assert_eq!(t.get(&ids).await.1, json!(["local-vm"]));
    // Licensing (read-only) and brand.
    let lic = expect(
        t.get(&format!("server/coreServers/{cs}/license")).await,
        200,
        "",
    );
    assert_eq!(lic["clientConnections"], json!(-1));
    assert_eq!(
        t.get("server/coreServers/getBySlug/default/license")
            .await
            .1,
        lic
    );
    expect(
        t.get("server/coreServers/getBySlug/nope/license").await,
        404,
        "",
    );
    let ml = expect(
        t.get(&format!("server/coreServers/{cs}/license/moduleLicenses"))
            .await,
        200,
        "",
    );
    let mlid = ml[0]["id"].as_str().unwrap().to_string();
    assert_eq!(ml[0]["moduleId"], json!("core"));
    let props = expect(
        t.get(&format!(
            "server/coreServers/{cs}/license/moduleLicenses/{mlid}/properties"
        ))
        .await,
        200,
        "",
    );
    assert_eq!(props[0]["key"], json!("pbx_connections"));
    assert_eq!(props[0]["value"], json!("-1"));
    let pid = props[0]["id"].as_str().unwrap();
    expect(
        t.get(&format!(
            "server/coreServers/{cs}/license/moduleLicenses/{mlid}/properties/{pid}"
        ))
        .await,
        200,
        "",
    );
    expect(
        t.get(&format!(
            "server/coreServers/{cs}/license/moduleLicenses/nope"
        ))
        .await,
        404,
        "",
    );
    expect(
        t.put(&format!("server/coreServers/{cs}/license"), json!({}))
            .await,
        405,
        "",
    );
    t.post_204(
        &format!("server/coreServers/{cs}/license/activate"),
        json!("SERIAL-1"),
    )
    .await;
    expect(
        t.post(
            &format!("server/coreServers/{cs}/license/activate"),
            json!(42),
        )
        .await,
        412,
        "",
    );
    t.post_204(
        &format!("server/coreServers/{cs}/license/bind/SERIAL-1"),
        json!({"cancel": true, "licensedTo": "x", "email": "a@b"}),
    )
    .await;
    let b = expect(t.get("server/brand").await, 200, "");
    assert!(b["version"].is_string() && b["build"].is_string());
    t.handle.shutdown().await;
}
