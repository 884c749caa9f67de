//! Unit tests of the pure diff, one group per object kind, over hand-built values.

use super::*;
use crate::model::*;
use crate::reconcile::facts::hash_of_hash;
use crate::reconcile::facts::Known;
use crate::reconcile::ownership::ManagedItem;
use crate::secret::Secret;
use serde_json::json;

const SHA_A: &str = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
const SHA_B: &str = "7c4a8d09ca3762af61e59520943dc26494f8941b";

fn desired() -> Desired {
    let mut d = Desired {
        core_server: CoreServerSpec {
            slug: "default".into(),
            name: "default".into(),
        },
        asterisk: AsteriskSpec {
            originating_context: "from-internal".into(),
            redirecting_context: "from-internal".into(),
            music_on_hold_class: "default".into(),
        },
        ..Default::default()
    };
    for (n, name) in [("1001", "Alice Smith"), ("1002", "Bob Jones")] {
        d.extensions.insert(
            n.into(),
            ExtensionSpec {
                extension: n.into(),
                display_name: name.into(),
                auto_answer: false,
                peer: format!("PJSIP/{n}"),
                agent_name: name.into(),
                agent_location: format!("Local/{n}@from-queue/n"),
                agent_interface: format!("PJSIP/{n}"),
                voice_mail_context: "default".into(),
                voice_mail_box: n.into(),
            },
        );
        let (first, last) = name.split_once(' ').unwrap();
        d.users.insert(
            n.into(),
            UserSpec {
                username: n.into(),
                password: PasswordSpec {
                    hash: Some(Secret::new(SHA_A)),
                    dirty: false,
                },
                full: true,
                enabled: true,
                first_name: first.into(),
                last_name: last.into(),
                emails: vec![format!("{n}@example.com")],
                phones: vec![PhoneSpec {
                    kind: "Cell".into(),
                    number: format!("555{n}"),
                }],
                extensions: vec![n.into()],
            },
        );
    }
    d.queues.insert(
        "400".into(),
        QueueSpec {
            identifier: "400".into(),
            display_name: "Sales".into(),
            destination_extension: "400".into(),
            destination_context: "from-internal".into(),
        },
    );
    d.conference_rooms.insert(
        "9001".into(),
        ConferenceRoomSpec {
            identifier: "9001".into(),
            name: "Board".into(),
            destination_extension: "9001".into(),
            destination_context: "from-internal".into(),
        },
    );
    d.parking_lot = Some(ParkingLotSpec {
        identifier: "default".into(),
        name: "Main".into(),
        destination_extension: "70".into(),
        destination_context: "from-internal".into(),
    });
    d
}

fn own() -> Ownership {
    Ownership::new("default", false, Known::default(), &[])
}

/// The server state a successful first pass leaves behind (all sub-resources read).
fn converged(d: &Desired, own: &Ownership) -> Observed {
    let cs = own.id(Kind::CoreServer, "default");
    let mut o = Observed {
        core_server: Some(CoreServer {
            id: Some(cs),
            slug: "default".into(),
            name: "default".into(),
            ..Default::default()
        }),
        asterisk: Some(AsteriskSettings {
            originating_context: "from-internal".into(),
            redirecting_context: "from-internal".into(),
            music_on_hold_class: "default".into(),
            extra: Default::default(),
        }),
        ..Default::default()
    };
    for (k, s) in &d.extensions {
        let id = own.id(Kind::Extension, k);
        o.extensions.push(Extension {
            id: Some(id.clone()),
            extension: k.clone(),
            display_name: s.display_name.clone(),
            auto_answer: s.auto_answer,
            peer: s.peer.clone(),
            agent_name: s.agent_name.clone(),
            agent_location: s.agent_location.clone(),
            agent_interface: s.agent_interface.clone(),
            voice_mail_context: s.voice_mail_context.clone(),
            voice_mail_box: s.voice_mail_box.clone(),
            ..Default::default()
        });
    }
    for (k, s) in &d.users {
        let id = own.id(Kind::User, k);
        o.users.push(User {
            id: Some(id.clone()),
            username: k.clone(),
            password: s.password.hash.clone().unwrap_or_default(),
            enabled: true,
            full: s.full,
            ..Default::default()
        });
        o.contacts.insert(
            id.clone(),
            Some(Contact {
                first_name: s.first_name.clone(),
                last_name: s.last_name.clone(),
                ..Default::default()
            }),
        );
        o.emails.insert(
            id.clone(),
            s.emails
                .iter()
                .map(|e| EmailAddress {
                    id: Some(own.id(Kind::Email, &format!("{k}\0{e}"))),
                    kind: "Work".into(),
                    address: e.clone(),
                    extra: Default::default(),
                })
                .collect(),
        );
        o.phones.insert(
            id.clone(),
            s.phones
                .iter()
                .map(|p| PhoneNumber {
                    id: Some("p-".to_string() + &p.number),
                    kind: p.kind.clone(),
                    number: p.number.clone(),
                    extra: Default::default(),
                })
                .collect(),
        );
    }
    for (k, s) in &d.users {
        for e in &s.extensions {
            let ext_id = own.id(Kind::Extension, e);
            let u = o.users.iter().find(|u| &u.username == k).cloned();
            o.managing_users.insert(ext_id, u);
        }
    }
    for (k, s) in &d.queues {
        o.queues.push(Queue {
            id: Some(own.id(Kind::Queue, k)),
            identifier: k.clone(),
            display_name: s.display_name.clone(),
            destination_extension: s.destination_extension.clone(),
            destination_context: s.destination_context.clone(),
            enabled: true,
            ..Default::default()
        });
    }
    for (k, s) in &d.conference_rooms {
        o.conference_rooms.push(ConferenceRoom {
            id: Some(own.id(Kind::ConferenceRoom, k)),
            identifier: k.clone(),
            name: s.name.clone(),
            destination_extension: s.destination_extension.clone(),
            destination_context: s.destination_context.clone(),
            ..Default::default()
        });
    }
    if let Some(l) = &d.parking_lot {
        o.parking_lots.push(ParkingLot {
            id: Some(own.id(Kind::ParkingLot, &l.identifier)),
            identifier: l.identifier.clone(),
            name: l.name.clone(),
            destination_extension: l.destination_extension.clone(),
            destination_context: l.destination_context.clone(),
            ..Default::default()
        });
    }
    o
}

/// Ownership that remembers the passwords of `d` as pushed.
fn own_pushed(d: &Desired) -> Ownership {
    let mut o = own();
    for (k, u) in &d.users {
        o.known.passwords.insert(
            (Kind::User, k.clone()),
            hash_of_hash(u.password.hash.as_ref().unwrap().expose()),
        );
    }
    o
}

fn lines(p: &Plan) -> Vec<String> {
    p.ops.iter().map(Op::describe).collect()
}

#[test]
fn converged_system_gives_an_empty_plan() {
    let d = desired();
    let own = own_pushed(&d);
    let o = converged(&d, &own);
    let p = diff(&d, &o, &own);
    assert!(p.is_empty(), "{:#?}", lines(&p));
    assert!(p.verified.is_empty());
}

#[test]
fn empty_server_creates_everything_in_dependency_order() {
    let d = desired();
    let p = diff(&d, &Observed::default(), &own());
    let l = lines(&p);
    assert!(
        l.contains(&"+ create core server default \"default\"".to_string()),
        "{l:#?}"
    );
    assert!(l.contains(&"+ create extension 1001 \"Alice Smith\"".to_string()));
    assert!(l.contains(&"+ create user 1001".to_string()));
    assert!(l.contains(&"+ add e-mail 1001@example.com to user 1001".to_string()));
    assert!(l.contains(&"+ add phone number Cell 5551001 to user 1001".to_string()));
    assert!(l.contains(&"+ bind extension 1001 to user \"1001\"".to_string()));
    assert!(l.contains(&"+ create queue 400 \"Sales\"".to_string()));
    assert!(l.contains(&"+ create conference room 9001 \"Board\"".to_string()));
    assert!(l.contains(&"+ create parking lot default \"Main\"".to_string()));
    // Stages never go backwards, and everything waits for the core server.
    let stages: Vec<u8> = p.ops.iter().map(|o| o.stage).collect();
    assert!(stages.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(p.ops[0].kind, Kind::CoreServer);
    assert!(p.ops[1..]
        .iter()
        .all(|o| o.needs.contains(&(Kind::CoreServer, "default".into()))));
    // The binding waits for both ends.
    let bind = p.ops.iter().find(|o| o.kind == Kind::ManagingUser).unwrap();
    assert!(bind.needs.contains(&(Kind::Extension, "1001".into())));
    assert!(bind.needs.contains(&(Kind::User, "1001".into())));
    // POSTs carry our recomputable ids.
    let ext = p.ops.iter().find(|o| o.kind == Kind::Extension).unwrap();
    assert_eq!(
        ext.request.body.as_ref().unwrap().value()["id"],
        json!(own().id(Kind::Extension, "1001"))
    );
    assert_eq!(
        ext.request.body.as_ref().unwrap().value()["agentPenalty"],
        json!(0)
    );
    // The core server alone, planned first by the pass, is the whole diff's first op.
    let first = core_server_only(&d, &Observed::default(), &own());
    assert_eq!(first.ops.len(), 1);
    assert_eq!(format!("{:?}", first.ops[0]), format!("{:?}", p.ops[0]));
    let there = converged(&d, &own());
    assert!(core_server_only(&d, &there, &own()).ops.is_empty());
}

#[test]
fn extension_compares_only_the_compared_fields() {
    let d = desired();
    let own = own_pushed(&d);
    let mut o = converged(&d, &own);
    // Create-only fields edited in iSymphony survive.
    o.extensions[0].agent_penalty = 5;
    o.extensions[0].agent_paused = true;
    o.extensions[0].restricted = true;
    o.extensions[0].alt_origination_method = "SIP/x".into();
    o.extensions[0].originate_timeout_override = 30;
    assert!(diff(&d, &o, &own).is_empty());
    // A compared field differs: one PUT of the whole object, create-only fields kept.
    o.extensions[0].display_name = "Alicia".into();
    o.extensions[0].redirecting_context_override = "custom".into();
    let p = diff(&d, &o, &own);
    assert_eq!(
        lines(&p),
        vec![
            "~ update extension 1001: displayName \"Alicia\" -> \"Alice Smith\", redirectingContextOverride \"custom\" -> \"\""
        ]
    );
    let body = p.ops[0].request.body.as_ref().unwrap().value();
    assert_eq!(body["agentPenalty"], json!(5));
    assert_eq!(body["restricted"], json!(true));
    assert_eq!(p.ops[0].request.method, Method::Put);
}

#[test]
fn loose_equality_null_and_numeric_strings() {
    let d = desired();
    let own = own_pushed(&d);
    let mut o = converged(&d, &own);
    let id = own.id(Kind::Extension, "1001");
    o.extensions[0] = serde_json::from_value(json!({
        "id": id, "extension": 1001, "displayName": "Alice Smith", "autoAnswer": "0",
        "peer": "PJSIP/1001", "agentName": "Alice Smith", "agentLocation": "Local/1001@from-queue/n",
        "agentInterface": "PJSIP/1001", "originatingContextOverride": null,
        "redirectingContextOverride": null, "voiceMailContext": "default", "voiceMailBox": 1001
    }))
    .unwrap();
    assert!(diff(&d, &o, &own).is_empty());
}

#[test]
fn unmanaged_objects_survive_unless_clean_unknown_items() {
    let d = desired();
    let own0 = own_pushed(&d);
    let mut o = converged(&d, &own0);
    o.extensions.push(Extension {
        id: Some("11111111-2222-3333-4444-555555555555".into()),
        extension: "7777".into(),
        display_name: "Lobby".into(),
        ..Default::default()
    });
    o.extensions.push(Extension {
        id: Some(own0.id(Kind::Extension, "1003")),
        extension: "1003".into(),
        display_name: "Gone".into(),
        ..Default::default()
    });
    let p = diff(&d, &o, &own0);
    assert_eq!(lines(&p), vec!["- delete extension 1003 \"Gone\""]);
    let mut clean = own0.clone();
    clean.clean_unknown_items = true;
    let p = diff(&d, &o, &clean);
    assert_eq!(p.ops.len(), 2, "{:?}", lines(&p));
    // Listed in cxpanel_managed_items: managed too.
    let module = Ownership::new(
        "default",
        false,
        own0.known.clone(),
        &[ManagedItem {
            kind: Kind::Extension,
            fpbx_id: "7777".into(),
            cxpanel_id: "11111111-2222-3333-4444-555555555555".into(),
        }],
    );
    assert_eq!(diff(&d, &o, &module).ops.len(), 2);
}

#[test]
fn server_object_with_a_freepbx_key_is_adopted_not_duplicated() {
    let d = desired();
    let own = own_pushed(&d);
    let mut o = converged(&d, &own);
    let foreign = "99999999-0000-0000-0000-000000000001".to_string();
    o.queues[0].id = Some(foreign.clone());
    o.queues[0].display_name = "Old".into();
    let p = diff(&d, &o, &own);
    assert_eq!(
        lines(&p),
        vec!["~ update queue 400: displayName \"Old\" -> \"Sales\""]
    );
    assert!(p.ops[0].request.path.ends_with(&foreign));
    assert_eq!(
        p.ops[0].effects,
        vec![Effect::Adopt {
            kind: Kind::Queue,
            id: foreign.clone(),
            key: "400".into()
        }]
    );
    // No change needed: adoption is a verified fact.
    o.queues[0].display_name = "Sales".into();
    let p = diff(&d, &o, &own);
    assert!(p.is_empty());
    assert_eq!(p.verified.len(), 1);
}

#[test]
fn queue_update_text_and_enabled_flag() {
    let mut d = desired();
    d.queues.get_mut("400").unwrap().display_name = "Sales EU".into();
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    let p = diff(&d, &o, &own);
    assert_eq!(
        lines(&p),
        vec!["~ update queue 400: displayName \"Sales\" -> \"Sales EU\""]
    );
    o.queues[0].display_name = "Sales EU".into();
    o.queues[0].enabled = false;
    assert_eq!(
        lines(&diff(&d, &o, &own)),
        vec!["~ update queue 400: enabled false -> true"]
    );
}

#[test]
fn conference_room_and_parking_lot() {
    let mut d = desired();
    d.conference_rooms.clear();
    d.parking_lot = None;
    let own = own_pushed(&d);
    let o = converged(&desired(), &own);
    let mut l = lines(&diff(&d, &o, &own));
    l.sort();
    assert_eq!(
        l,
        vec![
            "- delete conference room 9001 \"Board\"",
            "- delete parking lot default \"Main\""
        ]
    );
    let mut d2 = desired();
    d2.conference_rooms.get_mut("9001").unwrap().name = "Board room".into();
    d2.parking_lot.as_mut().unwrap().destination_extension = "71".into();
    let mut l = lines(&diff(&d2, &o, &own));
    l.sort();
    assert_eq!(
        l,
        vec![
            "~ update conference room 9001: name \"Board\" -> \"Board room\"",
            "~ update parking lot default: destinationExtension \"70\" -> \"71\""
        ]
    );
}

#[test]
fn administrators() {
    let mut d = desired();
    d.administrators.insert(
        "admin".into(),
        AdministratorSpec {
            user_name: "admin".into(),
            password: PasswordSpec {
                hash: Some(Secret::new(SHA_A)),
                dirty: false,
            },
        },
    );
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    let p = diff(&d, &o, &own);
    assert_eq!(lines(&p), vec!["+ create administrator admin"]);
    assert!(p.ops[0].request.path.ends_with("administrators/noHash"));
    o.administrators.push(Administrator {
        id: Some(own.id(Kind::Administrator, "old")),
        user_name: "old".into(),
        ..Default::default()
    });
    o.administrators.push(Administrator {
        id: Some("someone".into()),
        user_name: "root".into(),
        ..Default::default()
    });
    let l = lines(&diff(&d, &o, &own));
    assert!(
        l.contains(&"- delete administrator old".to_string()),
        "{l:?}"
    );
    assert!(!l.iter().any(|x| x.contains("root")));
}

#[test]
fn pbx_server_match_update_and_foreign() {
    let mut d = desired();
    d.pbx_server = Some(PbxServerSpec {
        display_name: "FreePBX - 10.0.0.5".into(),
        host: "10.0.0.5".into(),
        port: 5038,
        username: "cxpanel".into(),
        password: Secret::new("cxmanager*con"),
        cdr_host: "10.0.0.5".into(),
        cdr_port: 3306,
        cdr_username: Some("freepbxuser".into()),
        cdr_password: Some(Secret::new("dbpw-secret")),
        recording_agent_identifier: "local-rec".into(),
    });
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    o.pbx_servers.push(
        serde_json::from_value(json!({
            "id": "foreign", "host": "other", "port": "5038", "username": "x", "password": "y"
        }))
        .unwrap(),
    );
    let p = diff(&d, &o, &own);
    assert_eq!(
        lines(&p),
        vec!["+ create pbx server 10.0.0.5 \"FreePBX - 10.0.0.5\""]
    );
    o.pbx_servers.push(serde_json::from_value(json!({
        "id": "m", "host": "10.0.0.5", "port": "5038", "username": "cxpanel",
        "password": "cxmanager*con", "cdrHost": "10.0.0.5", "cdrPort": "3306",
        "cdrUsername": "freepbxuser", "cdrPassword": "old", "recordingAgentIdentifier": "local-rec"
    })).unwrap());
    let p = diff(&d, &o, &own);
    assert_eq!(
        lines(&p),
        vec!["~ update pbx server 10.0.0.5: cdrPassword *** -> ***"]
    );
    assert!(!p.render_text(false).contains("dbpw-secret"));
    let mut clean = own.clone();
    clean.clean_unknown_items = true;
    assert!(lines(&diff(&d, &o, &clean)).contains(&"- delete pbx server other".to_string()));
}

#[test]
fn asterisk_settings_and_agents() {
    let mut d = desired();
    d.voicemail_agent = Some(AgentSpec {
        identifier: "local-vm".into(),
        root_path: "/var/spool/asterisk/voicemail".into(),
        resource_host: "pbx".into(),
        resource_extension: "wav".into(),
    });
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    o.asterisk.as_mut().unwrap().music_on_hold_class = "jazz".into();
    o.voicemail_agent = Some(VoicemailAgent {
        identifier: "local-vm".into(),
        root_path: "/tmp".into(),
        resource_host: "pbx".into(),
        resource_extension: "wav".into(),
        ..Default::default()
    });
    let mut l = lines(&diff(&d, &o, &own));
    l.sort();
    assert_eq!(
        l,
        vec![
            "+ bind voicemail agent local-vm",
            "~ update asterisk settings of core server default: musicOnHoldClass \"jazz\" -> \"default\"",
            "~ update voicemail agent local-vm: rootPath \"/tmp\" -> \"/var/spool/asterisk/voicemail\"",
        ]
    );
    o.voicemail_agent = None;
    assert!(diff(&d, &o, &own)
        .warnings
        .iter()
        .any(|w| w.contains("local-vm")));
}

#[test]
fn safety_valve_counts_per_kind() {
    let d = desired();
    let own = own_pushed(&d);
    let mut o = converged(&d, &own);
    for n in ["2001", "2002", "2003"] {
        o.extensions.push(Extension {
            id: Some(own.id(Kind::Extension, n)),
            extension: n.into(),
            ..Default::default()
        });
    }
    // 3 of 5 managed extensions would go: refused at 50%.
    let p = diff(&d, &o, &own);
    let v = crate::reconcile::valve::check(&p, 0.5, 4);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("3 of 5 managed extension"), "{v:?}");
    assert!(crate::reconcile::valve::check(&p, 0.7, 4).is_empty());
    // Five managed extensions are below a minimum of six: not guarded.
    assert!(crate::reconcile::valve::check(&p, 0.5, 6).is_empty());
}

#[test]
fn sub_reads_follow_fingerprints() {
    let d = desired();
    let mut own = own_pushed(&d);
    let o = converged(&d, &own);
    let full = sub_reads(&d, &o, &own, true);
    assert_eq!(full.len(), 4 * 2);
    // Nothing known yet: everything is read.
    assert_eq!(sub_reads(&d, &o, &own, false), full);
    // Record what a converged pass records, then only a change is re-read.
    for f in diff(&d, &o, &own).fingerprints {
        own.known.fingerprints.insert(f.key, f.value);
    }
    assert!(sub_reads(&d, &o, &own, false).is_empty());
    let mut d2 = d.clone();
    d2.users.get_mut("1001").unwrap().first_name = "Alicia".into();
    let r = sub_reads(&d2, &o, &own, false);
    assert_eq!(r.contacts, vec![own.id(Kind::User, "1001")]);
    assert!(r.emails.is_empty() && r.phones.is_empty() && r.bindings.is_empty());
}

#[test]
fn render_text_groups_by_kind_and_json_is_tool_friendly() {
    let d = desired();
    let p = diff(&d, &Observed::default(), &own());
    let t = p.render_text(false);
    assert!(
        t.contains("Extensions:\n  + create extension 1001 \"Alice Smith\"\n"),
        "{t}"
    );
    assert!(t.contains("Plan: "));
    assert!(!t.contains(SHA_A));
    let colored = p.render_text(true);
    assert!(colored.contains("\x1b[32m+ create"));
    let j = p.to_json();
    assert_eq!(j["in_sync"], json!(false));
    assert!(j["operations"].as_array().unwrap().len() == p.ops.len());
    assert!(!j.to_string().contains(SHA_A));
    assert!(Plan::default().render_text(false).contains("in sync"));
}

#[path = "diff_frozen_tests.rs"]
mod frozen_and_cdr;
#[path = "diff_users_tests.rs"]
mod users;
