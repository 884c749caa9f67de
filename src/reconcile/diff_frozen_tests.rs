//! Frozen kinds (an unknown FreePBX source) and the CDR login the agent may not know.

use super::*;

fn pbx(user: Option<&str>, password: Option<&str>) -> PbxServerSpec {
    PbxServerSpec {
        display_name: "FreePBX - localhost".into(),
        host: "localhost".into(),
        port: 5038,
        username: "cxpanel".into(),
        password: Secret::new("cxmanager*con"),
        cdr_host: "localhost".into(),
        cdr_port: 3306,
        cdr_username: user.map(str::to_string),
        cdr_password: password.map(Secret::new),
        recording_agent_identifier: "local-rec".into(),
    }
}

#[test]
fn an_unknown_cdr_login_is_never_sent_and_cdr_name_is_omitted() {
    let mut d = desired();
    d.pbx_server = Some(pbx(None, None));
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    let p = diff(&d, &o, &own);
    let body = p.ops[0].request.body.as_ref().unwrap().value();
    for absent in ["cdrUsername", "cdrPassword", "cdrName"] {
        assert!(body.get(absent).is_none(), "{absent} sent");
    }
    assert_eq!(body["cdrHost"], "localhost");

    // Known: both sent; cdrName still omitted.
    d.pbx_server = Some(pbx(Some("freepbxuser"), Some("cdr-pw")));
    let p = diff(&d, &o, &own);
    let body = p.ops[0].request.body.as_ref().unwrap().value();
    assert_eq!(body["cdrUsername"], "freepbxuser");
    assert!(body.get("cdrName").is_none());

    // On the server with other values: unknown fields are left as they are.
    o.pbx_servers.push(
        serde_json::from_value(json!({
            "id": "p", "host": "localhost", "port": 5038, "username": "cxpanel",
            "password": "cxmanager*con", "cdrName": "asteriskcdrdb", "cdrHost": "localhost",
            "cdrPort": 3306, "cdrUsername": "someone", "cdrPassword": "theirs",
            "recordingAgentIdentifier": "old-rec"
        }))
        .unwrap(),
    );
    d.pbx_server = Some(pbx(None, Some("cdr-pw")));
    let p = diff(&d, &o, &own);
    assert_eq!(
        lines(&p),
        [
            "~ update pbx server localhost: cdrPassword *** -> ***, recordingAgentIdentifier \"old-rec\" -> \"local-rec\""
        ]
    );
    let body = p.ops[0].request.body.as_ref().unwrap().value();
    assert_eq!(body["cdrUsername"], "someone", "kept");
    assert_eq!(body["cdrName"], "asteriskcdrdb", "kept");
}

#[test]
fn a_frozen_kind_gets_no_operation_and_its_dependents_wait() {
    let mut d = desired();
    d.extensions.insert(
        "1003".into(),
        crate::model::ExtensionSpec {
            extension: "1003".into(),
            display_name: "New".into(),
            ..Default::default()
        },
    );
    d.users
        .get_mut("1001")
        .unwrap()
        .extensions
        .push("1003".into());
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    // The server's 1002 differs, and an agent-managed 1009 is gone from FreePBX.
    o.extensions[1].display_name = "Stale".into();
    let mut gone = o.extensions[1].clone();
    gone.extension = "1009".into();
    gone.id = Some(own.id(Kind::Extension, "1009"));
    o.extensions.push(gone);
    o.emails.insert(
        o.users[0].id.clone().unwrap(),
        vec![EmailAddress {
            id: Some(own.id(Kind::Email, "1001\u{0}old@example.com")),
            address: "old@example.com".into(),
            ..Default::default()
        }],
    );
    let unfrozen = lines(&diff(&d, &o, &own));
    assert!(
        unfrozen
            .iter()
            .any(|l| l.starts_with("- delete extension 1009")),
        "{unfrozen:?}"
    );
    assert!(
        unfrozen
            .iter()
            .any(|l| l.starts_with("+ bind extension 1003")),
        "{unfrozen:?}"
    );

    d.frozen
        .insert(Kind::Extension, "FreePBX table devices is missing".into());
    d.frozen
        .insert(Kind::Email, "cannot read voicemail file x".into());
    let p = diff(&d, &o, &own);
    let l = lines(&p);
    assert!(
        !p.ops
            .iter()
            .any(|op| matches!(op.kind, Kind::Extension | Kind::Email | Kind::ManagingUser)),
        "{l:?}"
    );
    assert!(p.fingerprints.iter().all(|f| !f.key.starts_with("emails/")));
    assert!(p.warnings.iter().any(|w| w
        .starts_with("Extensions left as they are this pass (3 changes held back)")
        && w.contains("devices")));
    assert!(p
        .warnings
        .iter()
        .any(|w| w.starts_with("Managing users (bindings) left")));
}
