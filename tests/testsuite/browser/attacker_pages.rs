//! The agent's port against attacker pages in a real browser:
//! headless Chromium whose administrator has logged in to the status page (the credentials
//! are in the browser's cache) visits pages of another origin that post to the agent, and
//! the status page itself runs under its Content-Security-Policy with no violation in the
//! console. The agent is the real binary on a FreePBX snapshot (see `support::trust`).

use crate::support;

use fantoccini::{Client as Browser, Locator};
use std::time::{Duration, Instant};
use support::browser::{browser, click, console, free_port, text_of, Driver};
use support::trust::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(30);

/// A web server on `127.0.0.1:port` answering every request with `html` (the attacker's
/// site; the browser reaches it as `localhost` for a cross-site page, as `127.0.0.1` for a
/// same-site one on another port).
fn attacker_site(html: String) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let l = tokio::net::TcpListener::from_std(l).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

/// The attacks of the review: auto-submitted forms (`text/plain`, urlencoded) to the API, a
/// urlencoded form with a guessed token to the page's own button route, and a credentialed
/// `no-cors` fetch.
fn attacker_html(agent: u16, what: &str) -> String {
    let target = format!("http://127.0.0.1:{agent}");
    match what {
        // No field: an empty body, which the API took as "a pass, not full".
        "text/plain form" => format!(
            r#"<form id="f" method="post" enctype="text/plain" action="{target}/isymphony-sync/api/sync"></form><script>document.getElementById('f').submit();</script>"#
        ),
        "urlencoded form to the API" => format!(
            r#"<form id="f" method="post" action="{target}/isymphony-sync/api/sync"></form><script>document.getElementById('f').submit();</script>"#
        ),
        "urlencoded form" => format!(
            r#"<form id="f" method="post" action="{target}/isymphony-sync/sync"><input name="full" value="1"><input name="token" value="guess"></form><script>document.getElementById('f').submit();</script>"#
        ),
        _ => format!(
            r#"<p id="r">sending</p><script>fetch('{target}/isymphony-sync/api/sync',{{method:'POST',mode:'no-cors',credentials:'include',headers:{{'Content-Type':'text/plain'}},body:'{{"full":true}}'}}).then(function(){{document.getElementById('r').textContent='sent';}}).catch(function(e){{document.getElementById('r').textContent='failed '+e;}});</script>"#
        ),
    }
}

/// The agent on a snapshot and a browser whose administrator has logged in to its page.
async fn logged_in() -> (Trust, Driver, Browser) {
    let t = Trust::start("").await;
    let (driver, b) = browser(true).await;
    log_in(&b, t.port).await;
    (t, driver, b)
}

/// Log the administrator in: the page at `/isymphony-sync/` with the credentials in the URL,
/// which the browser keeps for that origin.
async fn log_in(b: &Browser, port: u16) {
    b.goto(&format!(
        "http://manager:{PW}@127.0.0.1:{port}/isymphony-sync/"
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + T;
    while b.find(Locator::Css("#last-pass")).await.is_err() {
        assert!(Instant::now() < deadline, "{}", b.source().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_page_cannot_start_a_pass() {
    let (t, driver, b) = logged_in().await;
    // The logged-in browser can start a pass itself (the credentials are cached): a plain
    // same-origin JSON post from the page's own origin.
    let before = t.api_passes();
    let js = "return fetch(location.origin+'/isymphony-sync/api/sync',{method:'POST',headers:\
              {'Content-Type':'application/json'},body:'{}'}).then(function(r){return r.status;});";
    let st = b.execute(js, vec![]).await.unwrap();
    assert_eq!(st, serde_json::json!(204));
    wait_for(|| t.api_passes() > before, &t).await;
    let _ = console(&driver, &b).await;

    for what in [
        "text/plain form",
        "urlencoded form to the API",
        "urlencoded form",
        "no-cors fetch",
    ] {
        let site = attacker_site(attacker_html(t.port, what));
        for host in ["localhost", "127.0.0.1"] {
            let before = t.api_passes();
            b.goto(&format!("http://{host}:{site}/")).await.unwrap();
            // Long enough for a post and the pass it would start.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let shown = b.source().await.unwrap_or_default();
            assert_eq!(
                t.api_passes(),
                before,
                "{what} from {host}:{site} started a pass; the browser shows:\n{shown}"
            );
        }
    }
    // Nothing in between either: no pass asked for by any of them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = free_port();
    b.close().await.unwrap();
}

async fn wait_for(ok: impl Fn() -> bool, t: &Trust) {
    let deadline = Instant::now() + T;
    while !ok() {
        assert!(Instant::now() < deadline, "{}", t.agent.dump());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_works_under_its_policy_with_no_violation_in_the_console() {
    let (t, driver, b) = logged_in().await;
    // The script runs (its hash is allowed): the note changes and the live part refreshes.
    let deadline = Instant::now() + T;
    loop {
        let note = text_of(&b, "#note").await;
        if note.starts_with("live") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the script did not run: {note:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The style sheet applies (its hash is allowed).
    let bg = b
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(bg, serde_json::json!("rgb(250, 250, 250)"));
    // The button posts through the script, under the policy, and a pass runs.
    let before = t.api_passes();
    click(&b, "#sync-now").await;
    wait_for(|| t.api_passes() > before, &t).await;
    // A few refreshes of the live part (innerHTML swaps) later, the console is clean.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let note = text_of(&b, "#note").await;
    assert!(
        note.starts_with("live") || note == "pass requested",
        "{note}"
    );
    let log = console(&driver, &b).await;
    let violations: Vec<_> = log
        .iter()
        .filter(|l| l.contains("Content Security Policy") || l.contains("Refused"))
        .collect();
    assert!(violations.is_empty(), "{violations:#?}");
    // The page cannot be framed by another site.
    let site = attacker_site(format!(
        r#"<iframe id="f" src="http://127.0.0.1:{}/isymphony-sync/"></iframe>"#,
        t.port
    ));
    b.goto(&format!("http://localhost:{site}/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = console(&driver, &b).await;
    assert!(
        log.iter()
            .any(|l| l.contains("frame-ancestors") || l.contains("X-Frame-Options")),
        "the status page was framed: {log:#?}"
    );
    b.close().await.unwrap();
}
