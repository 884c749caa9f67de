//! Headless Chromium driven over WebDriver (`chromedriver`, through `fantoccini`) for the
//! browser tests: the status page as an administrator sees it, and attacker pages.

use fantoccini::{Client as Browser, ClientBuilder};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// chromedriver as a child, killed on drop (also when an assertion fails). It holds the
/// [`super::heavy`] lock, so one browser runs at a time in the test binary.
pub struct Driver {
    child: Child,
    pub url: String,
    _profile: tempfile::TempDir,
    _heavy: tokio::sync::MutexGuard<'static, ()>,
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

pub use super::trust::free_port;

/// Start chromedriver and a headless Chromium session with a fresh profile; `script: false`
/// turns JavaScript off in that browser.
pub async fn browser(script: bool) -> (Driver, Browser) {
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
    let heavy = super::heavy::exclusive().await;
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
        _heavy: heavy,
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
    // The console, for the tests that look for Content-Security-Policy violations.
    caps.insert(
        "goog:loggingPrefs".into(),
        serde_json::json!({ "browser": "ALL" }),
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

/// The browser console's messages since the last call (chromedriver's log endpoint).
pub async fn console(driver: &Driver, b: &Browser) -> Vec<String> {
    let id = b.session_id().await.unwrap().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/session/{id}/se/log", driver.url))
        .json(&serde_json::json!({ "type": "browser" }))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    v["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| format!("{} {}", e["level"], e["message"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

/// The text of the element `css` as the browser shows it now ("" when there is none).
pub async fn text_of(b: &Browser, css: &str) -> String {
    match b.find(fantoccini::Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Start the agent on `config` and open its page in a fresh headless browser, logged in as
/// `manager` with `pw` (the browser keeps the login for that origin): (agent, its root URL,
/// driver, browser).
pub async fn open_agent_page(
    config: &std::path::Path,
    pw: &str,
) -> (super::agent::Agent, String, Driver, Browser) {
    let agent = super::agent::Agent::spawn(config, &[]);
    let root = agent.endpoint(0).await;
    let (driver, b) = browser(true).await;
    let host = root.trim_start_matches("http://");
    let page = format!("http://manager:{pw}@{host}/isymphony-sync/");
    b.goto(&page).await.expect("the browser opens the page");
    (agent, root, driver, b)
}

/// Click the element `css`, which must be there.
pub async fn click(b: &Browser, css: &str) {
    let e = b.find(fantoccini::Locator::Css(css)).await;
    let e = e.unwrap_or_else(|err| panic!("no `{css}` to click: {err}"));
    e.click()
        .await
        .unwrap_or_else(|err| panic!("click `{css}`: {err}"));
}

/// The agent's config of the page tests: its own listener with the login `pw`, this
/// database and endpoint, FreePBX polled every `poll`.
pub fn page_agent_toml(env: &super::e2e::Env, pw: &str, poll: &str) -> String {
    let dir = env.dir.path();
    format!(
        "[server]\nenabled = false\nagent_listen = \"127.0.0.1:0\"\npassword = \"{pw}\"\n\
         data_dir = \"{data}\"\n\n\
         [freepbx]\ndatabase_url = \"{db}\"\nconfig_file = \"{dir}/freepbx.conf\"\n\
         amportal_conf = \"{dir}/amportal.conf\"\nvoicemail_conf = \"{vm}\"\n\
         poll_interval = \"{poll}\"\n\n\
         [isymphony]\nurl = \"{url}\"\nusername = \"{user}\"\npassword = \"{api_pw}\"\n\n\
         [sync]\ndebounce = \"100ms\"\nresync_interval = \"600s\"\nstate_dir = \"{dir}/state\"\n",
        data = dir.join("agent-data").display(),
        db = format_args!("{}/{}", super::db::server_url(), env.db.name),
        dir = dir.display(),
        vm = env.vm_path().display(),
        url = env.server().base_url(),
        user = env.cfg.server.username,
        api_pw = env.cfg.server.password.expose(),
    )
}

/// Wait up to 30 s until the element `css` (as the browser shows it now) satisfies `ok`; on
/// failure, panic with what it shows, the page's refresh note (`#note`, if any) and the page.
pub async fn until<F: Fn(&str) -> bool>(b: &Browser, css: &str, what: &str, ok: F) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
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
