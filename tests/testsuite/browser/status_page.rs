//! The status page in a real browser: the real daemon against a real
//! MariaDB and an embedded iSymphony endpoint, its page at `/isymphony-sync/` on the agent's
//! own port opened in headless Chromium (Debian's `chromium`, driven over WebDriver by
//! `chromedriver` through the `fantoccini` crate).
//!
//! First the agent polls FreePBX every 200 ms: a change by plain SQL is detected by the
//! agent itself, and the page shows the pass the database change triggered and a point on
//! the change-to-converged chart. Then a config reload slows polling to every 10 minutes, so
//! only the "Sync now" button can bring the next change across: the test sees it in the
//! pending plan, clicks, and sees the `api` pass and the new counts arrive, with no latency
//! point (nothing was detected to measure from). All without the page being reloaded (a
//! marker set in the page's JavaScript survives). Whole-page screenshots at desktop and phone
//! width land in `target/status-page*.png`.
//! Without Chromium the test fails and says how to install it (scripts/test.sh does).

use crate::support;

use fantoccini::{Client as Browser, Locator};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::agent::*;
use support::browser::{browser, click, open_agent_page, page_agent_toml, text_of, until};
use support::e2e::*;

const PW: &str = "pag3-passw0rd";
const T: Duration = Duration::from_secs(30);

/// The agent's config with `[freepbx] poll_interval = poll`.
fn agent_config(env: &Env, poll: &str) -> PathBuf {
    let p = env.dir.path().join("agent.toml");
    write_agent_config(env, &p, poll);
    p
}

/// Write the config to `p` (a running agent watches it and reloads).
fn write_agent_config(env: &Env, p: &Path, poll: &str) {
    let toml = page_agent_toml(env, PW, poll);
    // Written whole in one go (a reload refuses a half-written file anyway).
    let tmp = p.with_extension("toml.new");
    std::fs::write(&tmp, toml).unwrap();
    std::fs::rename(&tmp, p).unwrap();
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

/// The trigger cell and the result of the newest pass row, as the browser shows them.
async fn newest_pass(b: &Browser) -> (String, String) {
    (
        text_of(b, "#passes tr:nth-child(2) td:nth-child(2)").await,
        text_of(b, "#passes tr:nth-child(2) td.result").await,
    )
}

async fn dots(b: &Browser, chart: &str) -> usize {
    let css = format!("#{chart} circle");
    b.find_all(Locator::Css(&css))
        .await
        .unwrap_or_default()
        .len()
}

/// The tooltips of a chart's points ("21:06:44 312 ms"), oldest first.
async fn dot_titles(b: &Browser, chart: &str) -> Vec<String> {
    let js = format!(
        "return Array.from(document.querySelectorAll('#{chart} circle title'))\
         .map(function(t){{return t.textContent;}});"
    );
    let v = b.execute(&js, vec![]).await.unwrap();
    serde_json::from_value(v).unwrap()
}

/// From one rendering of the page: the successful passes a FreePBX change triggered
/// (`database` or `file`), and the points on the latency chart.
async fn change_passes_and_latencies(b: &Browser) -> (u64, u64) {
    let js = "var rows = Array.from(document.querySelectorAll('#passes tr')).slice(1);\
              var changes = rows.filter(function(r){\
                var t = r.children[1] ? r.children[1].textContent : '';\
                return r.className === 'success' && /database|file/.test(t);}).length;\
              return [changes, document.querySelectorAll('#chart-latency circle').length];";
    let v: (u64, u64) = serde_json::from_value(b.execute(js, vec![]).await.unwrap()).unwrap();
    v
}

/// Seconds from a point's tooltip ("21:06:44 312 ms" or "21:06:44 3 s").
fn tooltip_seconds(t: &str) -> f64 {
    let mut w = t.split_whitespace().skip(1);
    let n: f64 = w.next().and_then(|n| n.parse().ok()).unwrap_or(-1.0);
    match w.next() {
        Some("ms") => n / 1000.0,
        Some("s") => n,
        _ => panic!("not a chart tooltip: {t:?}"),
    }
}

/// Wait until the browser shows a newest pass whose trigger cell satisfies `ok`, successful.
async fn until_newest(b: &Browser, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + T;
    loop {
        let (trig, result) = newest_pass(b).await;
        if ok(&trig) && result == "success" {
            return trig;
        }
        if Instant::now() > deadline {
            let page = b.source().await.unwrap_or_default();
            panic!("{what}: the newest pass is {trig:?} {result:?}; page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Phase one (polling every 200 ms): a FreePBX change by plain SQL is detected by the agent
/// itself, and the page shows the database-triggered pass and a point on the latency chart.
async fn detected_change_is_charted(env: &Env, agent: &Agent, b: &Browser) {
    let ext = "#managed tr[data-kind=extension] td.count";
    assert_eq!(dots(b, "chart-latency").await, 0, "no change converged yet");
    assert!(text_of(b, "#chart-latency").await.contains("no data yet"));
    let before = pass_rows(b).await;
    env.db.exec(&extension_rows(4, 1)).await;
    until(b, ext, "extensions after the detected change", |t| t == "4").await;
    let trig = until_newest(b, "the pass the database change triggered", |t| {
        t.contains("database")
    })
    .await;
    assert!(!trig.contains("api"), "nobody pressed a button: {trig}");
    assert!(pass_rows(b).await > before);
    // The latency chart now has a point, drawn in the SVG (a dot and the axis label).
    let deadline = Instant::now() + T;
    while dots(b, "chart-latency").await == 0 {
        assert!(Instant::now() < deadline, "{}", b.source().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let chart = text_of(b, "#chart-latency").await;
    assert!(
        !chart.contains("no data yet") && chart.contains("point"),
        "{chart}"
    );
    let titles = dot_titles(b, "chart-latency").await;
    let secs = tooltip_seconds(&titles[titles.len() - 1]);
    // From detection to converged: more than nothing (a pass ran), within the test's patience.
    assert!(secs > 0.0 && secs < T.as_secs_f64(), "{titles:?}");
    assert!(
        env.extensions().await.iter().any(|x| x.extension == "1004"),
        "{}",
        agent.dump()
    );
    whole_page_at(b, 1100).await;
    let png = b.screenshot().await.unwrap();
    screenshot(&png, "status-page-detected.png");
}

/// Switch the running agent to slow polling (a config reload) and wait until it has settled:
/// leader again, idle, the passes the reload brings done.
async fn slow_down_polling(env: &Env, agent: &Agent, cfg: &Path, b: &Browser) {
    let reloads = agent.count(|v| msg(v) == "configuration reloaded");
    write_agent_config(env, cfg, "600s");
    agent
        .wait_nth(reloads, T, |v| msg(v) == "configuration reloaded")
        .await;
    // Stable means: leader, idle, and the pass table unchanged over a few refreshes.
    let deadline = Instant::now() + T;
    let mut last = (usize::MAX, Instant::now());
    loop {
        let role = text_of(b, "#role").await;
        let n = pass_rows(b).await;
        if n != last.0 || !(role.contains("leader") && role.contains("idle")) {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            return;
        }
        assert!(Instant::now() < deadline, "{}", agent.dump());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_headless_chromium_charts_a_detected_change_and_sync_now_brings_one() {
    let env = Env::new(3).await;
    let cfg = agent_config(&env, "200ms");
    let (agent, _, _driver, b) = open_agent_page(&cfg, PW).await;

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

    detected_change_is_charted(&env, &agent, &b).await;
    slow_down_polling(&env, &agent, &cfg, &b).await;
    // One latency point per pass a FreePBX change triggered, and no other: reloading our
    // own config file is no FreePBX change. A new poll interval restarts only the poll: the
    // reload's pass comes without a new election.
    let table = text_of(&b, "#passes").await;
    assert!(!table.contains("file"), "no FreePBX file changed: {table}");
    let newest = text_of(&b, "#passes tr:nth-child(2)").await;
    assert!(
        newest.contains("reload") && !newest.contains("leadership"),
        "the reload re-elected: {newest}"
    );
    let (changes, latencies) = change_passes_and_latencies(&b).await;
    assert!(changes >= 1, "{}", b.source().await.unwrap());
    assert_eq!(latencies, changes, "{}", b.source().await.unwrap());
    let before = pass_rows(&b).await;

    // A FreePBX change by plain SQL; polling is slowed down now, so nothing picks it up alone.
    env.db.exec(&extension_rows(5, 1)).await;
    env.db
        .exec("UPDATE users SET name = 'Zed Zulu' WHERE extension = '1002'")
        .await;
    // The pending plan (a dry run, refreshed in place) shows it before any pass.
    until(&b, "#plan", "the pending plan", |t| {
        t.contains("1005") && t.contains("Zed Zulu")
    })
    .await;
    assert_eq!(pass_rows(&b).await, before, "no pass without the button");
    let png = b.screenshot().await.unwrap();
    screenshot(&png, "status-page-pending.png");

    click(&b, "#sync-now").await;
    until(&b, ext, "extensions after Sync now", |t| t == "5").await;
    let deadline = Instant::now() + T;
    while pass_rows(&b).await <= before {
        assert!(Instant::now() < deadline, "{}", b.source().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let trig = until_newest(&b, "the pass the button asked for", |t| t == "api").await;
    assert_eq!(trig, "api");
    assert_eq!(pass_rows(&b).await, before + 1, "one pass for one click");
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
    // No change was detected before the click, so there is no detection time to measure
    // from: the manual pass adds a duration, not a latency.
    assert_eq!(change_passes_and_latencies(&b).await, (changes, latencies));
    // One dot per recorded pass on the duration chart.
    assert_eq!(dots(&b, "chart-duration").await, pass_rows(&b).await);
    screenshots_fit(&b).await;
    b.close().await.unwrap();
}

/// Resize the window to `width` and tall enough for the whole page (a screenshot shows the
/// viewport only).
async fn whole_page_at(b: &Browser, width: u32) {
    b.set_window_size(width, 900).await.unwrap();
    let js = "return document.documentElement.scrollHeight;";
    let tall = b.execute(js, vec![]).await.unwrap();
    // The window is taller than its viewport by the browser's own frame.
    let tall = tall.as_u64().unwrap_or(3000).min(8000) as u32 + 200;
    b.set_window_size(width, tall).await.unwrap();
}

/// Desktop and phone screenshots of the whole page; on a phone-sized window the page still
/// fits its width (tables scroll in their box).
async fn screenshots_fit(b: &Browser) {
    whole_page_at(b, 1100).await;
    let png = b.screenshot().await.unwrap();
    let shot = screenshot(&png, "status-page.png");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1;";
    b.set_window_size(390, 844).await.unwrap();
    let wide = b.execute(fits, vec![]).await.unwrap();
    let png = b.screenshot().await.unwrap();
    screenshot(&png, "status-page-phone.png");
    assert_eq!(
        wide,
        serde_json::json!(true),
        "the page is wider than a phone"
    );
    // The charts are far down on a phone: the whole page at the same width.
    whole_page_at(b, 390).await;
    let wide = b.execute(fits, vec![]).await.unwrap();
    let png = b.screenshot().await.unwrap();
    screenshot(&png, "status-page-phone-full.png");
    assert_eq!(
        wide,
        serde_json::json!(true),
        "the page is wider than a phone"
    );
}

/// Without JavaScript the page is complete and its buttons are plain form posts; a foreign
/// site's post and a request without credentials are refused over real HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_works_without_javascript_and_refuses_foreign_posts() {
    let env = Env::new(2).await;
    let cfg = agent_config(&env, "600s");
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
    click(&b, "#full-verify").await;
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
