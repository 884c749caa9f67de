//! The status page's search box and object pages (issue 21 point 2) in a real browser: the
//! real daemon against a real MariaDB and an embedded iSymphony endpoint, its page opened in
//! headless Chromium (see `support::browser`).
//!
//! The administrator types a key in the search box and lands on the object's page (what
//! `--explain KIND/KEY` prints); a key FreePBX does not have lists the closest keys as links;
//! a kind's count in the managed objects leads to that kind's objects; a change FreePBX has
//! and iSymphony not yet (polling is slow, so it stays pending) is linked from the pending
//! plan to its page, which says it is pending. The object pages are protected like the page:
//! no login, a wrong login or a forged `Host` is refused.
//!
//! With the endpoint's Live API on a **real Asterisk** (tests/support/asterisk.rs; set
//! `ASTERISK_PREFIX`), the readiness card names an extension whose login is a lite user as
//! configured but not live, and its link leads to the page saying why.

use crate::support;

use fantoccini::{Client as Browser, Locator};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::agent::*;
use support::asterisk::Asterisk;
use support::browser::{click, open_agent_page, page_agent_toml, text_of, until, Driver};
use support::e2e::*;

const PW: &str = "expl4in-passw0rd";
const T: Duration = Duration::from_secs(30);

/// The agent's config; polling every 10 minutes, so a FreePBX change stays pending.
fn agent_config(env: &Env) -> PathBuf {
    let p = env.dir.path().join("agent.toml");
    std::fs::write(&p, page_agent_toml(env, PW, "600s")).unwrap();
    p
}

/// The agent on `env`, and a browser logged in to its page once the start-up pass succeeded:
/// (agent, its root URL, driver, browser).
async fn open_page(env: &Env) -> (Agent, String, Driver, Browser) {
    let (agent, root, driver, b) = open_agent_page(&agent_config(env), PW).await;
    until(&b, "#last-pass", "the start-up pass", |t| {
        t.contains("success")
    })
    .await;
    (agent, root, driver, b)
}

/// Click `css`, again if the live part was swapped under it (it is re-rendered every 2 s),
/// and wait until the browser is at a path ending in `path`.
async fn click_to(b: &Browser, css: &str, path: &str) {
    let deadline = Instant::now() + T;
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await {
            let _ = e.click().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = b.current_url().await.unwrap();
        if at.path() == path {
            return;
        }
        if Instant::now() > deadline {
            let page = b.source().await.unwrap_or_default();
            panic!("clicking {css} did not lead to {path} (at {at}); page:\n{page}");
        }
    }
}

/// Type `key` into the search box of the page the browser shows, and send the form.
async fn search(b: &Browser, key: &str) {
    let input = b.find(Locator::Css("#search-key")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(key).await.unwrap();
    click(b, "#search-go").await;
}

async fn status_of(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

/// The object pages answer only the realm's login, at the listener's own Host.
async fn object_pages_are_protected(root: &str) {
    let url = format!("{root}/isymphony-sync/explain/extension/1001");
    let c = http();
    assert_eq!(status_of(c.get(&url)).await, 401, "no login");
    let wrong = c.get(&url).basic_auth("manager", Some("not-the-password"));
    assert!(matches!(status_of(wrong).await, 401 | 403), "wrong login");
    let forged = c
        .get(&url)
        .basic_auth("manager", Some(PW))
        .header("Host", "rebound.example");
    assert_eq!(status_of(forged).await, 421, "forged Host");
    let (st, body) = get_text(root, "/isymphony-sync/explain/extension/1001", PW).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("extension 1001"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_box_and_plan_links_lead_to_object_pages_in_headless_chromium() {
    let env = Env::new(3).await;
    let (_agent, root, _driver, b) = open_page(&env).await;
    let ext = "#managed tr[data-kind=extension] td.count";
    until(&b, ext, "managed extensions", |t| t == "3").await;
    // The start-up pass applied changes, so readiness was checked after it.
    let ready = until(&b, "#readiness", "readiness after the pass", |t| {
        !t.is_empty() && !t.contains("not checked yet")
    })
    .await;
    eprintln!("readiness card: {ready}");

    // The search box: extension (the default kind) 1002.
    search(&b, "1002").await;
    until(&b, "#title", "the object page", |t| t == "extension 1002").await;
    let at = b.current_url().await.unwrap();
    assert_eq!(at.path(), "/isymphony-sync/explain/extension/1002");
    let fp = text_of(&b, "#freepbx").await;
    assert!(fp.contains("1002"), "FreePBX rows: {fp}");
    let held = text_of(&b, "#held").await;
    assert!(held.contains("owner"), "iSymphony holds it: {held}");
    let verdict = text_of(&b, "#verdict").await;
    assert!(
        !verdict.contains("pending"),
        "in sync after the pass: {verdict}"
    );
    assert!(!text_of(&b, "#live-state").await.is_empty());

    // A key nobody has: the closest keys, as links to their pages.
    search(&b, "10002").await;
    until(&b, "#unknown", "the unknown object", |t| {
        t.contains("is unknown")
    })
    .await;
    let sugg = text_of(&b, "#suggestions").await;
    assert!(sugg.contains("1002"), "closest keys: {sugg}");
    click_to(
        &b,
        "#suggestions a[href$='/1002']",
        "/isymphony-sync/explain/extension/1002",
    )
    .await;
    until(&b, "#title", "the suggested object", |t| {
        t == "extension 1002"
    })
    .await;

    // The managed count leads to the kind's objects, each linked.
    b.goto(&format!("{root}/isymphony-sync/")).await.unwrap();
    click_to(&b, &format!("{ext} a"), "/isymphony-sync/explain/extension").await;
    let objects = until(&b, "#objects", "the extensions", |t| t.contains("1003")).await;
    assert!(
        objects.contains("1001") && objects.contains("1002"),
        "{objects}"
    );
    click_to(
        &b,
        "#objects a[href$='/1001']",
        "/isymphony-sync/explain/extension/1001",
    )
    .await;
    until(&b, "#title", "an object from the list", |t| {
        t == "extension 1001"
    })
    .await;

    // A FreePBX change that stays pending (slow polling): the plan links it to its page.
    env.db.exec(&extension_rows(4, 1)).await;
    b.goto(&format!("{root}/isymphony-sync/")).await.unwrap();
    until(&b, "#plan", "the pending plan", |t| t.contains("1004")).await;
    click_to(
        &b,
        "#plan a.explain[href$='/extension/1004']",
        "/isymphony-sync/explain/extension/1004",
    )
    .await;
    until(&b, "#title", "the pending object", |t| {
        t == "extension 1004"
    })
    .await;
    let verdict = text_of(&b, "#verdict").await;
    assert!(verdict.contains("changes pending"), "{verdict}");
    let pending = text_of(&b, "#pending").await;
    assert!(pending.contains("create extension 1004"), "{pending}");
    assert!(
        text_of(&b, "#held").await.contains("not present"),
        "{}",
        b.source().await.unwrap()
    );

    // For a look at the layout: target/explain-page-pending.png.
    let png = b.screenshot().await.unwrap();
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::write(dir.join("explain-page-pending.png"), png).unwrap();

    object_pages_are_protected(&root).await;
    b.close().await.unwrap();
}

/// The endpoint of `env` replaced by one serving the Live API from `ast`, applying the
/// full-user rule; returns the URL that answers 200 once the core server exists and the AMI
/// link is up.
async fn live_endpoint(env: &mut Env, ast: &Asterisk) -> String {
    let mut sc = env.cfg.server.clone();
    sc.data_dir = env.dir.path().join("server-live");
    sc.licensed_full_users = Some(10);
    let live = isymphony_sync::live::Live {
        cfg: isymphony_sync::config::LiveConfig {
            backend: isymphony_sync::config::LiveBackend::Asterisk,
            ..Default::default()
        },
        backend: isymphony_sync::live::backend::Backend::Asterisk(
            isymphony_sync::live::asterisk::start(ast.settings()),
        ),
    };
    let server = isymphony_sync::server::start_live(&sc, None, None, Some(live))
        .await
        .expect("the endpoint starts");
    let url = server.base_url().replace("api/resource", "rest/live")
        + "coreServers/getByName/default/callSegments";
    env.server = Some(server);
    url
}

/// Wait until the Live API at `url` answers 200.
async fn live_api_up(env: &Env, url: &str) {
    let sc = &env.cfg.server;
    let deadline = Instant::now() + T;
    loop {
        let r = http()
            .get(url)
            .basic_auth(&sc.username, Some(sc.password.expose()))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().as_u16() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "the Live API never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_card_links_a_lite_users_extension_to_its_not_live_page() {
    let ast = Asterisk::start();
    let mut env = Env::new(3).await;
    env.db
        .exec("UPDATE cxpanel_users SET full = 0 WHERE user_id = '1001';")
        .await;
    let live_url = live_endpoint(&mut env, &ast).await;
    let (_agent, _, _driver, b) = open_page(&env).await;
    // The start-up pass created the core server; once the AMI link is up too, a full verify
    // checks readiness again (the first check may have come before the link).
    live_api_up(&env, &live_url).await;
    click(&b, "#full-verify").await;
    let row = "#readiness tr[data-kind=extension]";
    let ext = until(&b, row, "extensions not live", |t| t.contains("1001")).await;
    assert!(
        ext.starts_with("extension 1 1001"),
        "only 1001 is not live: {ext}"
    );
    click_to(
        &b,
        &format!("{row} a[href$='/extension/1001']"),
        "/isymphony-sync/explain/extension/1001",
    )
    .await;
    until(&b, "#title", "the not-live object", |t| {
        t == "extension 1001"
    })
    .await;
    let live = text_of(&b, "#live-state").await;
    assert!(
        live.contains("NOT live") && live.contains("lite user"),
        "{live}"
    );
    assert!(text_of(&b, "#verdict")
        .await
        .contains("configured but not live"));
    b.close().await.unwrap();
}
