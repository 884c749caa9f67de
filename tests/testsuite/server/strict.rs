//! The embedded endpoint refuses what iSymphony refuses. Real HTTP over
//! loopback against the in-process endpoint (raw TCP where reqwest would not send the bytes):
//! a JSON value of the wrong type is 412 naming the field, for every resource that takes a
//! body; request heads over 8 KiB are 431; an overflowing chunk size is 400 (an answer, not
//! a dropped connection); percent-encoded path segments are decoded before routing, and an
//! encoded `/` inside a segment is 400.

use crate::support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::server::*;

/// One resource: method, path, a body it accepts, and fields to break, each with a value of
/// the wrong type.
struct Case {
    method: &'static str,
    path: String,
    good: Value,
    breaks: Vec<(&'static str, Value)>,
}

fn c(method: &'static str, path: String, good: Value, breaks: Vec<(&'static str, Value)>) -> Case {
    Case {
        method,
        path,
        good,
        breaks,
    }
}

fn cases(cs: &str) -> Vec<Case> {
    let mut all = server_and_user_cases(cs);
    all.extend(asterisk_cases(cs));
    all.extend(agent_and_licence_cases(cs));
    all
}

/// Core servers, administrators, users (and their contact data).
fn server_and_user_cases(cs: &str) -> Vec<Case> {
    let user = json!({"username": "u1", "password": "pw", "enabled": true, "full": false});
    let user_breaks = || {
        vec![
            ("username", json!(true)),
            ("password", json!(12345)),
            ("enabled", json!("true")),
            ("full", json!(1)),
            ("displayName", json!({"a": 1})),
        ]
    };
    vec![
        c(
            "POST",
            "server/coreServers".into(),
            json!({"slug": "second", "name": "Second", "brokerPort": "50000"}),
            vec![
                ("slug", json!(true)),
                ("name", json!(true)),
                ("brokerPort", json!(true)),
            ],
        ),
        c(
            "PUT",
            format!("server/coreServers/{cs}"),
            json!({"slug": "default", "name": "Default"}),
            vec![("name", json!({"x": 1}))],
        ),
        c(
            "POST",
            "server/administrators".into(),
            json!({"userName": "ops", "password": "pw", "superUser": false}),
            vec![("userName", json!(false)), ("superUser", json!("false"))],
        ),
        c(
            "POST",
            format!("core/{cs}/users"),
            user.clone(),
            user_breaks(),
        ),
        c(
            "POST",
            format!("core/{cs}/users/noHash"),
            json!({"username": "u2", "password": "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"}),
            vec![("password", json!(true)), ("restricted", json!("no"))],
        ),
        c(
            "PUT",
            format!("core/{cs}/users/uid1"),
            json!({"username": "u0", "password": "pw", "enabled": true}),
            user_breaks(),
        ),
        c(
            "PUT",
            format!("contact/{cs}/users/uid1"),
            json!({"firstName": "A", "lastName": "B"}),
            vec![("firstName", json!(true)), ("lastName", json!([]))],
        ),
        c(
            "POST",
            format!("contact/{cs}/users/uid1/emailAddresses"),
            json!({"type": "work", "address": "a@b.c"}),
            vec![("address", json!(true)), ("type", json!({}))],
        ),
        c(
            "POST",
            format!("contact/{cs}/users/uid1/phoneNumbers"),
            json!({"type": "work", "number": 5551234}),
            vec![("number", json!(false))],
        ),
    ]
}

/// Everything below `asterisk/`, the bindings and the licence bind.
fn asterisk_cases(cs: &str) -> Vec<Case> {
    let ext = json!({"extension": "2001", "displayName": "A", "autoAnswer": false});
    let ext_breaks = || {
        vec![
            ("extension", json!(false)),
            ("displayName", json!(["A"])),
            ("autoAnswer", json!("false")),
            ("agentPenalty", json!(true)),
            ("agentPaused", json!(0)),
        ]
    };
    let plain = |ident: &str| json!({"identifier": ident, "name": "N", "displayName": "N"});
    vec![
        c(
            "POST",
            format!("asterisk/{cs}/extensions"),
            ext.clone(),
            ext_breaks(),
        ),
        c(
            "PUT",
            format!("asterisk/{cs}/extensions/eid1"),
            json!({"extension": "2000", "displayName": "A"}),
            ext_breaks(),
        ),
        c(
            "POST",
            format!("asterisk/{cs}/extensions/eid1/managingUser"),
            json!({"id": "uid1", "username": "u0"}),
            vec![("username", json!(true)), ("enabled", json!("yes"))],
        ),
        c(
            "POST",
            format!("asterisk/{cs}/extensionGroups"),
            json!({"displayName": "G2", "publicGroup": true}),
            vec![
                ("displayName", json!(false)),
                ("publicGroup", json!("true")),
            ],
        ),
        c(
            "POST",
            format!("asterisk/{cs}/extensionGroups/gid1/extensions"),
            json!({"id": "eid1", "extension": "2000"}),
            vec![("extension", json!(true)), ("autoAnswer", json!("1"))],
        ),
        c(
            "POST",
            format!("asterisk/{cs}/extensionGroups/gid1/users"),
            json!({"id": "uid1"}),
            vec![("username", json!([]))],
        ),
        c(
            "POST",
            format!("asterisk/{cs}/queues"),
            plain("q1"),
            vec![("identifier", json!(true)), ("enabled", json!("true"))],
        ),
        c(
            "POST",
            format!("asterisk/{cs}/conferenceRooms"),
            plain("r1"),
            vec![("name", json!(false)), ("restricted", json!(1))],
        ),
        c(
            "POST",
            format!("asterisk/{cs}/parkingLots"),
            plain("p1"),
            vec![("destinationExtension", json!(true))],
        ),
        c(
            "POST",
            format!("asterisk/{cs}/pbxServers"),
            json!({"host": "localhost", "port": "5038", "enabled": true}),
            vec![
                ("host", json!(true)),
                ("port", json!(true)),
                ("enabled", json!("1")),
                ("cdrPassword", json!(42)),
            ],
        ),
        c(
            "PUT",
            format!("asterisk/{cs}"),
            json!({"originatingContext": "from-internal"}),
            vec![("originatingContext", json!(false))],
        ),
    ]
}

/// The voicemail and recording agents, and the licence bind.
fn agent_and_licence_cases(cs: &str) -> Vec<Case> {
    vec![
        c(
            "PUT",
            "asterisk/voicemailAgents/local-vm".into(),
            json!({"identifier": "local-vm", "rootPath": "/var/spool"}),
            vec![("rootPath", json!(true))],
        ),
        c(
            "PUT",
            "asterisk/recordingAgents/local-rec".into(),
            json!({"identifier": "local-rec", "fileNameMask": "x"}),
            vec![("fileNameMask", json!({}))],
        ),
        c(
            "POST",
            format!("server/coreServers/{cs}/license/bind/SERIAL"),
            json!({"cancel": true, "licensedTo": "x", "email": "a@b.c"}),
            vec![("cancel", json!("true")), ("email", json!(false))],
        ),
    ]
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_412_naming_the_field_for_every_resource() {
    let t = start().await;
    let cs = t.core_server("default").await;
    // The objects the instance paths and bindings refer to.
    for (path, body) in [
        (
            format!("core/{cs}/users"),
            json!({"id": "uid1", "username": "u0", "password": "pw"}),
        ),
        (
            format!("asterisk/{cs}/extensions"),
            json!({"id": "eid1", "extension": "2000"}),
        ),
        (
            format!("asterisk/{cs}/extensionGroups"),
            json!({"id": "gid1", "displayName": "G"}),
        ),
    ] {
        expect(t.post(&path, body).await, 204, "");
    }
    let mut refused = 0;
    for case in cases(&cs) {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        for (field, bad) in &case.breaks {
            let mut body = case.good.clone();
            body[*field] = bad.clone();
            let got = t.req(method.clone(), &case.path, Some(body.clone())).await;
            let msg = expect(got, 412, &format!("'{field}'"));
            assert!(
                msg["message"].as_str().unwrap().contains("expected"),
                "{msg}"
            );
            refused += 1;
        }
        // The same body with the right types is accepted: the refusal was the type alone.
        let (st, v) = t.req(method, &case.path, Some(case.good.clone())).await;
        assert!(st.is_success(), "{} {}: {st} {v}", case.method, case.path);
    }
    eprintln!("{refused} wrong-typed bodies refused with 412 naming the field");
}

/// Send raw bytes and return the status line of the answer ("" when the connection closed
/// without one).
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&out);
    text.lines().next().unwrap_or_default().to_string()
}

fn auth_header() -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    format!("Authorization: Basic {b}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_are_431_and_overflowing_chunks_400() {
    let t = start().await;
    let addr = t.handle.http_addr();
    let path = "/communication_manager/api/resource/server/brand";
    let head = move |filler: usize| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\n{}X-Pad: {}\r\n\r\n",
            auth_header(),
            "a".repeat(filler)
        )
    };
    let small = tokio::task::spawn_blocking(move || raw(addr, head(7000).as_bytes()));
    assert!(
        small.await.unwrap().contains(" 200 "),
        "a 7 KB head is served"
    );
    let big = tokio::task::spawn_blocking(move || raw(addr, head(9000).as_bytes()));
    let line = big.await.unwrap();
    assert!(line.contains(" 431 "), "a 9 KB head: {line:?}");
    // Many small headers add up the same way.
    let many = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\n{}{}\r\n",
        auth_header(),
        (0..90)
            .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(100)))
            .collect::<String>()
    );
    let line = tokio::task::spawn_blocking(move || raw(addr, many.as_bytes()))
        .await
        .unwrap();
    assert!(line.contains(" 431 "), "90 headers of 100 bytes: {line:?}");

    let cs = t.core_server("default").await;
    let chunked = format!(
        "POST /communication_manager/api/resource/asterisk/{cs}/extensions HTTP/1.1\r\n\
         Host: x\r\n{}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         FFFFFFFFFFFFFFFFFFFF\r\n{{}}\r\n0\r\n\r\n",
        auth_header()
    );
    let line = tokio::task::spawn_blocking(move || raw(addr, chunked.as_bytes()))
        .await
        .unwrap();
    assert!(line.contains(" 400 "), "overflowing chunk size: {line:?}");
    // The server still answers normally afterwards.
    expect(t.get("server/brand").await, 200, "");
}

#[tokio::test]
async fn path_segments_are_decoded_before_routing_and_encoded_slashes_refused() {
    let t = start().await;
    let cs = t.core_server("default").await;
    let brand = expect(t.get("server/brand").await, 200, "");
    assert_eq!(expect(t.get("server/br%61nd").await, 200, ""), brand);
    assert_eq!(expect(t.get("%73erver/%62rand/").await, 200, ""), brand);
    expect(
        t.post(
            &format!("asterisk/{cs}/extensions"),
            json!({"id": "e 1", "extension": "1001"}),
        )
        .await,
        204,
        "",
    );
    let e = expect(
        t.get(&format!("asterisk/{cs}/ext%65nsions/e%201")).await,
        200,
        "",
    );
    assert_eq!(e["id"], json!("e 1"));
    let by_name = t
        .get(&format!("asterisk/{cs}/extensions/getBy%4Eame/1001"))
        .await;
    assert_eq!(expect(by_name, 200, "")["id"], json!("e 1"));
    for bad in [
        "server/coreServers/getBySlug/def%2Fault".to_string(),
        format!("asterisk/{cs}%2Fextensions"),
        format!("asterisk/{cs}/extensions/e%2f1"),
        "server%2Fbrand".to_string(),
    ] {
        expect(t.get(&bad).await, 400, "%2F");
        expect(t.delete(&bad).await, 400, "%2F");
    }
    // Still there: nothing was deleted through an encoded slash.
    expect(
        t.get(&format!("asterisk/{cs}/extensions/e%201")).await,
        200,
        "",
    );
}
