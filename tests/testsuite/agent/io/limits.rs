//! The API client reads bounded answers: a response body is read up to
//! `[isymphony] max_response_bytes` (default 64 MiB) and never further, and an error message
//! quotes at most 200 characters of what a server sent.
//!
//! The embedded server shows the cap on a real list; [`fake_peer`] (a FAKE server, started
//! here) sends what no real iSymphony sends: an endless body, a 10 GB announcement, a
//! megabyte-long error message, a megabyte-long value of the wrong type.

use super::e2e::Env;
use isymphony_sync::api::client::{ApiError, Client, ClientConfig, DEFAULT_MAX_RESPONSE_BYTES};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::Extension;
use isymphony_sync::secret::Secret;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the FAKE peer answers to every request.
#[derive(Clone)]
pub enum Fake {
    /// A fixed response (status line, headers and body as given).
    Fixed(Vec<u8>),
    /// 200 with a chunked body that never ends.
    Endless,
}

/// A FAKE HTTP server on loopback; returns its base URL and the body bytes it sent.
pub async fn fake_peer(what: Fake) -> (String, Arc<AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let sent2 = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let what = what.clone();
            let sent = sent2.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match what {
                    Fake::Fixed(resp) => {
                        let _ = s.write_all(&resp).await;
                    }
                    Fake::Endless => {
                        let hdr = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                        if s.write_all(hdr.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = format!("10000\r\n{}\r\n", "[".repeat(0x10000));
                        while s.write_all(chunk.as_bytes()).await.is_ok() {
                            sent.fetch_add(0x10000, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    (
        format!("http://{addr}/communication_manager/api/resource/"),
        sent,
    )
}

/// A complete HTTP/1.1 response.
pub fn response(status: &str, headers: &str, body: &str) -> Fake {
    Fake::Fixed(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn client(url: &str, cap: Option<usize>) -> Client {
    let mut c = ClientConfig::new(
        url,
        "manager",
        Secret::new(isymphony_sync::config::DEFAULT_API_PASSWORD),
    );
    c.max_attempts = 1;
    c.timeout = Duration::from_secs(20);
    if let Some(cap) = cap {
        c.max_response_bytes = cap;
    }
    Client::new(&c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_bodies_are_capped_on_a_real_list_and_an_endless_one() {
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 64 * 1024 * 1024);
    // Real: 40 extensions synced into the embedded server list in about 20 KB.
    let env = Env::new(40).await;
    env.sync().await;
    let cs = env.cs().await;
    let all: Vec<Extension> = client(&env.server().base_url(), None)
        .get(paths::extensions(&cs))
        .await
        .unwrap();
    assert_eq!(all.len(), 40);
    let e = client(&env.server().base_url(), Some(4096))
        .get::<Vec<Extension>>(paths::extensions(&cs))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Decode { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("larger than 4096 bytes") && msg.contains("max_response_bytes"),
        "{msg}"
    );
    // The same through a pass, configured in the TOML way.
    let mut cfg = env.cfg.clone();
    cfg.isymphony.max_response_bytes = Some(4096);
    // Since partial passes, an unreadable collection is skipped (nothing of it is created,
    // changed or deleted) and named, with the setting to raise.
    let r = isymphony_sync::reconcile::run_pass(&cfg, &Default::default())
        .await
        .expect("a partial pass");
    assert!(
        r.unreadable
            .iter()
            .any(|u| u.contains("extensions") && u.contains("max_response_bytes")),
        "{:?}",
        r.unreadable
    );
    assert_eq!(r.applied + r.failed, 0, "{:?}", r.errors);

    // FAKE: an endless body stops at the cap (default 64 MiB), not at the end of memory.
    let (url, sent) = fake_peer(Fake::Endless).await;
    let t = Instant::now();
    let e = client(&url, None)
        .get::<Value>("server/brand")
        .await
        .unwrap_err();
    let took = t.elapsed();
    let sent = sent.load(Ordering::Relaxed);
    println!(
        "endless body: refused after {:.1} MiB sent, {took:?}",
        sent as f64 / 1048576.0
    );
    assert!(e.to_string().contains("larger than 67108864 bytes"), "{e}");
    // What the peer got out before the refusal: the cap plus socket buffers.
    assert!(
        sent < (DEFAULT_MAX_RESPONSE_BYTES as u64) + 16 * 1024 * 1024,
        "{sent}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");

    // FAKE: a 10 GB announcement is refused before a byte of it is read.
    let (url10, _) = fake_peer(Fake::Fixed(
        b"HTTP/1.1 200 OK\r\ncontent-length: 10000000000\r\n\r\n[".to_vec(),
    ))
    .await;
    let t = Instant::now();
    let e = client(&url10, None).get::<Value>("x").await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn error_messages_quote_at_most_200_characters_escaped() {
    // FAKE: a 400 whose JSON message is 1 MB long and full of escape sequences.
    let long = format!(
        "{}\n2026-12-01T00:00:00Z ERROR forged \u{1b}[2J",
        "x".repeat(1_000_000)
    );
    let body = serde_json::json!({ "status": 400, "message": long }).to_string();
    let (url, _) = fake_peer(response("400 Bad Request", "", &body)).await;
    let e = client(&url, None)
        .get::<Value>("server/brand")
        .await
        .unwrap_err()
        .to_string();
    println!(
        "1 MB error message shown as {} characters",
        e.chars().count()
    );
    assert!(e.chars().count() < 300, "{} characters", e.chars().count());
    assert!(e.contains("more characters"), "{e}");
    super::assert_no_control(&e, "error");

    // The same text as plain (non-JSON) body, and a short one with a forged line.
    let (url, _) = fake_peer(response(
        "500 Oops",
        "",
        "boom\r\nINFO pass: in sync\u{1b}[0m",
    ))
    .await;
    let e = client(&url, None)
        .get::<Value>("server/brand")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("boom\\r\\nINFO pass: in sync\\x1b[0m"), "{e}");
    super::assert_no_control(&e, "error");

    // FAKE: a 1 MB string where a number belongs; serde would quote all of it.
    let body = format!(
        "{{\"version\":\"3.5\",\"build\":\"1\",\"n\":[\"{}\"]}}",
        "y".repeat(1_000_000)
    );
    let (url, _) = fake_peer(response("200 OK", "", &body)).await;
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Wants {
        n: Vec<u32>,
    }
    let e = client(&url, None)
        .get::<Wants>("server/brand")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.chars().count() < 400,
        "{} characters: {}",
        e.chars().count(),
        &e[..400]
    );
    assert!(
        e.contains("expected u32") && e.contains("at line 1 column"),
        "{e}"
    );
}
