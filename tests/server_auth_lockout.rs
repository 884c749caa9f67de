//! Brute-force lockout of the embedded endpoint, at the default thresholds: after 10 failed
//! authentications from one address within a minute, that address gets 403 without a
//! credential check (even with the right password), while a correct login from another
//! loopback address (127.0.0.2) is unaffected.

mod server_common;

use reqwest::StatusCode;
use server_common::*;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Log lines of this test's thread (the current-thread runtime runs the server there too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Capture this thread's log lines. Every test of this file does it, so no test thread runs
/// without a subscriber (tracing caches a callsite's interest globally).
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let logs = Captured::default();
    let sink = logs.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(sub))
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, url: &str, pass: Option<&str>) -> (StatusCode, String) {
    let mut r = c.get(url);
    if let Some(p) = pass {
        r = r.basic_auth(USER, Some(p));
    }
    let resp = r.send().await.unwrap();
    let s = resp.status();
    (s, resp.text().await.unwrap())
}

#[tokio::test]
async fn ten_failures_block_that_address_only() {
    let (logs, _guard) = capture();
    let t = start().await;
    assert_eq!(t.handle.http_addr().ip().to_string(), "127.0.0.1");
    let url = format!("{}server/coreServers", t.base);
    let a = client_from("127.0.0.1");
    let b = client_from("127.0.0.2");

    // Challenges (no credentials) are not attempts: many of them block nothing.
    for _ in 0..15 {
        assert_eq!(get(&a, &url, None).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::OK);

    // Ten wrong passwords: each is checked and refused.
    for _ in 0..10 {
        let (s, body) = get(&a, &url, Some("wrong")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(body.contains("Invalid credentials"), "{body}");
    }
    // Now even the right password is refused without a check.
    let (s, body) = get(&a, &url, Some(PASS)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body.contains("Too many failed authentications"), "{body}");
    let (s, body) = get(&a, &url, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");

    // Another address logs in as usual, and its own failures are counted apart.
    assert_eq!(get(&b, &url, Some(PASS)).await.0, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(get(&b, &url, Some("wrong")).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(get(&b, &url, Some(PASS)).await.0, StatusCode::OK);
    // Still blocked.
    for _ in 0..5 {
        assert_eq!(get(&a, &url, Some("wrong")).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::FORBIDDEN);
    }
    // One warning for the whole episode, naming the address but no password.
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("too many failed authentications"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("127.0.0.1"),
        "{text}"
    );
    assert!(!text.contains(PASS) && !text.contains("wrong"), "{text}");
}

#[tokio::test]
async fn nine_failures_do_not_block_and_a_block_ends() {
    let (logs, _guard) = capture();
    let t = start_with(
        |c| {
            c.auth_fail_limit = 3;
            c.auth_block = Duration::from_millis(400);
        },
        None,
    )
    .await;
    let url = format!("{}server/coreServers", t.base);
    let a = client_from("127.0.0.1");
    for _ in 0..2 {
        assert_eq!(get(&a, &url, Some("wrong")).await.0, StatusCode::FORBIDDEN);
    }
    // Below the limit, a correct login works and clears the count.
    assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(get(&a, &url, Some("wrong")).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::OK);
    // A malformed Authorization header is an attempt too.
    for _ in 0..3 {
        let s = a
            .get(&url)
            .header("Authorization", "Basic !!!not-base64")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, body) = get(&a, &url, Some(PASS)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body.contains("Too many"), "{body}");
    // After auth_block the address is let in again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(&a, &url, Some(PASS)).await.0, StatusCode::OK);
    // One episode, one warning.
    let text = logs.text();
    assert_eq!(
        text.matches("too many failed authentications").count(),
        1,
        "{text}"
    );
}
