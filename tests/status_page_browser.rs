//! The status page in a real browser (issue 13 point 2): the real daemon against a real
//! MariaDB and an embedded iSymphony endpoint, its page at `/isymphony-sync/` on the agent's
//! own port opened in headless Chromium (Debian's `chromium`, driven over WebDriver by
//! `chromedriver` through the `fantoccini` crate).
//!
//! Change detection is slowed down (poll every 10 minutes), so only the "Sync now" button
//! can bring a FreePBX change across: the test sees the change in the pending plan, clicks,
//! and sees the new pass and the new counts arrive without the page being reloaded (a marker
//! set in the page's JavaScript survives). Screenshots land in `target/status-page*.png`.
//! Without Chromium the test fails and says how to install it (scripts/test.sh does).

mod support;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::agent::*;
use support::e2e::*;

const PW: &str = "pag3-passw0rd";
const T: Duration = Duration::from_secs(30);

/// chromedriver as a child, killed on drop (also when an assertion fails).
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start chromedriver and a headless Chromium session with a fresh profile; `script: false`
/// turns JavaScript off in that browser.
async fn browser(script: bool) -> (Driver, Browser) {
    let chromium = find_program(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
        panic!(
            "Chromium is not installed: this test needs a real browser. Install Debian's \
             packages with `apt-get install chromium chromium-driver` (scripts/test.sh does)"
        )
    });
    let chromedriver = find_program(&["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "chromedriver is not installed: install Debian's `chromium-driver` package \
             (scripts/test.sh does)"
        )
    });
    let port = free_port();
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1700",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!(
        "--user-data-dir={}",
        driver._profile.path().display()
    )])
    .chain((!script).then(|| "--blink-settings=scriptEnabled=false".to_string()))
    .collect();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": chromium, "args": args }),
    );
    let deadline = Instant::now() + T;
    let client = loop {
        let conn = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(conn)
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("headless Chromium did not start through chromedriver: {e}"),
        }
    };
    (driver, client)
}

fn agent_config(env: &Env) -> PathBuf {
    let dir = env.dir.path();
    let toml = format!(
        "[server]\nenabled = false\nagent_listen = \"127.0.0.1:0\"\npassword = \"{PW}\"\n\
         data_dir = \"{data}\"\n\n\
         [freepbx]\ndatabase_url = \"{db}\"\nconfig_file = \"{dir}/freepbx.conf\"\n\
         amportal_conf = \"{dir}/amportal.conf\"\nvoicemail_conf = \"{vm}\"\n\
         poll_interval = \"600s\"\n\n\
         [isymphony]\nurl = \"{url}\"\nusername = \"{user}\"\npassword = \"{api_pw}\"\n\n\
         [sync]\ndebounce = \"100ms\"\nresync_interval = \"600s\"\nstate_dir = \"{dir}/state\"\n",
        data = dir.join("agent-data").display(),
        db = format_args!("{}/{}", support::server_url(), env.db.name),
        dir = dir.display(),
        vm = env.vm_path().display(),
        url = env.server().base_url(),
        user = env.cfg.server.username,
        api_pw = env.cfg.server.password.expose(),
    );
    let p = dir.join("agent.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

async fn text_of(b: &Browser, css: &str) -> String {
    match b.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Wait until the page (as the browser shows it now) satisfies `ok`.
async fn until<F: Fn(&str) -> bool>(b: &Browser, css: &str, what: &str, ok: F) -> String {
    let deadline = Instant::now() + T;
    loop {
        let t = text_of(b, css).await;
        if ok(&t) {
            return t;
        }
        if Instant::now() > deadline {
            let note = text_of(b, "#note").await;
            let page = b.source().await.unwrap_or_default();
            panic!("{what}: `{css}` shows {t:?}; refresh note: {note:?}; page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn pass_rows(b: &Browser) -> usize {
    let rows = b
        .find_all(Locator::Css("#passes tr"))
        .await
        .unwrap_or_default();
    rows.len().saturating_sub(1)
}

fn screenshot(png: &[u8], name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, png).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_headless_chromium_shows_passes_and_sync_now_brings_a_change() {
    let env = Env::new(3).await;
    let cfg = agent_config(&env);
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    let (_driver, b) = browser(true).await;
    let host = root.trim_start_matches("http://");
    b.goto(&format!("http://manager:{PW}@{host}/isymphony-sync/"))
        .await
        .unwrap();

    // The start-up pass and the managed counts, as rendered by the browser.
    until(&b, "#last-pass", "the last pass", |t| t.contains("success")).await;
    until(&b, "#role", "the role and the lock holder", |t| {
        t.contains("leader") && t.contains("held by this agent (MariaDB connection ")
    })
    .await;
    let ext = "#managed tr[data-kind=extension] td.count";
    until(&b, ext, "managed extensions", |t| t == "3").await;
    assert_eq!(pass_rows(&b).await, 1, "{}", b.source().await.unwrap());
    let first = text_of(&b, "#passes tr:nth-child(2)").await;
    // The first pass comes with leadership (or start-up), not from the button.
    assert!(
        first.contains("success") && !first.contains("api"),
        "{first}"
    );

    // A marker that a reload would wipe.
    b.execute("window.__marker = 'kept'; return 1;", vec![])
        .await
        .unwrap();

    // A FreePBX change by plain SQL; polling is slowed down, so nothing picks it up alone.
    env.db.exec(&extension_rows(4, 1)).await;
    env.db
        .exec("UPDATE users SET name = 'Zed Zulu' WHERE extension = '1002'")
        .await;
    // The pending plan (a dry run, refreshed in place) shows it before any pass.
    until(&b, "#plan", "the pending plan", |t| {
        t.contains("1004") && t.contains("Zed Zulu")
    })
    .await;
    assert_eq!(pass_rows(&b).await, 1, "no pass without the button");
    let png = b.screenshot().await.unwrap();
    screenshot(&png, "status-page-pending.png");

    b.find(Locator::Css("#sync-now"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&b, ext, "extensions after Sync now", |t| t == "4").await;
    let deadline = Instant::now() + T;
    while pass_rows(&b).await < 2 {
        assert!(Instant::now() < deadline, "{}", b.source().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let newest = text_of(&b, "#passes tr:nth-child(2)").await;
    assert!(
        newest.contains("api") && newest.contains("success"),
        "{newest}"
    );
    until(&b, "#plan", "the plan after the pass", |t| {
        t.contains("in sync")
    })
    .await;
    let kept = b
        .execute("return window.__marker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!("kept"), "the page was reloaded");
    // The change really arrived.
    assert!(
        env.extensions()
            .await
            .iter()
            .any(|x| x.extension == "1002" && x.display_name == "Zed Zulu"),
        "{}",
        agent.dump()
    );
    // Charts are drawn (one dot per pass on the duration chart).
    let dots = b
        .find_all(Locator::Css("#chart-duration circle"))
        .await
        .unwrap();
    assert_eq!(dots.len(), 2);
    let png = b.screenshot().await.unwrap();
    let shot = screenshot(&png, "status-page.png");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );

    // On a phone-sized window the page still fits its width (tables scroll in their box).
    b.set_window_size(390, 844).await.unwrap();
    let wide = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    let png = b.screenshot().await.unwrap();
    screenshot(&png, "status-page-phone.png");
    assert_eq!(
        wide,
        serde_json::json!(true),
        "the page is wider than a phone"
    );
    b.close().await.unwrap();
}

/// Without JavaScript the page is complete and its buttons are plain form posts; a foreign
/// site's post and a request without credentials are refused over real HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_works_without_javascript_and_refuses_foreign_posts() {
    let env = Env::new(2).await;
    let cfg = agent_config(&env);
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    let page = format!("{root}/isymphony-sync/");

    // No credentials: the realm's challenge, as for every agent resource.
    let r = http().get(&page).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A post from another site, even with credentials, is refused and starts nothing.
    let r = http()
        .post(format!("{root}/isymphony-sync/sync"))
        .basic_auth("manager", Some(PW))
        .header("origin", "http://attacker.example")
        .form(&[("token", "guess"), ("full", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().await.unwrap().contains("another site"));

    let (_driver, b) = browser(false).await;
    let host = root.trim_start_matches("http://");
    let url = format!("http://manager:{PW}@{host}/isymphony-sync/");
    b.goto(&url).await.unwrap();
    let deadline = Instant::now() + T;
    // Reloading is how a page without script refreshes.
    while !text_of(&b, "#last-pass").await.contains("success") {
        assert!(Instant::now() < deadline, "{}", b.source().await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.goto(&url).await.unwrap();
    }
    assert_eq!(
        text_of(&b, "#note").await,
        "without JavaScript: reload the page to refresh"
    );
    let ext = text_of(&b, "#managed tr[data-kind=extension] td.count").await;
    assert_eq!(ext, "2");
    let before = pass_rows(&b).await;
    assert!(before >= 1);
    env.db.exec(&extension_rows(3, 1)).await;
    // The plain form post: the browser follows the 303 back to the page.
    b.find(Locator::Css("#full-verify"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + T;
    loop {
        let ext = text_of(&b, "#managed tr[data-kind=extension] td.count").await;
        if ext == "3" && pass_rows(&b).await > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            b.source().await.unwrap(),
            agent.dump()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.goto(&url).await.unwrap();
    }
    let newest = text_of(&b, "#passes tr:nth-child(2)").await;
    assert!(
        newest.contains("api") && newest.contains("full"),
        "{newest}"
    );
    let png = b.screenshot().await.unwrap();
    screenshot(&png, "status-page-no-script.png");
    b.close().await.unwrap();
}
