//! Point 10: the file watch cannot feed itself. The agent runs at trace level with its log
//! file inside the directory it watches (next to voicemail.conf and its own config); the log
//! must not grow by lines about its own writes, and only the watched files trigger a pass.

use super::agent::{eventually, get_text};
use super::e2e::Env;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn log_text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

async fn successful_passes(root: &str) -> u64 {
    let pw = isymphony_sync::config::DEFAULT_API_PASSWORD;
    let (_, text) = get_text(root, "/isymphony-sync/api/metrics", pw).await;
    text.lines()
        .find_map(|l| l.strip_prefix("isymphony_sync_passes_total{result=\"success\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_log_in_the_watched_directory_does_not_feed_the_watcher() {
    let env = Env::new(2).await;
    let d = env.dir.path();
    let cfg = d.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n\
             [freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\npoll_interval = \"1s\"\n\n\
             [sync]\ndebounce = \"100ms\"\nresync_interval = \"1h\"\nstate_dir = {:?}\n",
            d.join("agent-server").display().to_string(),
            env.db.url(),
            env.vm_path().display().to_string(),
            d.join("agent-state").display().to_string(),
        ),
    )
    .unwrap();
    let log = d.join("agent.log");
    let file = std::fs::File::create(&log).unwrap();
    let _agent = crate::support::process::spawn(
        crate::support::process::bin()
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "trace")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(file),
    );
    let started = eventually(Duration::from_secs(30), || async {
        log_text(&log).contains("pass: in sync") || log_text(&log).contains("pass: applied")
    })
    .await;
    assert!(started, "no pass logged:\n{}", log_text(&log));
    let text = log_text(&log);
    let root = text
        .lines()
        .find(|l| l.contains("agent resources at"))
        .and_then(|l| l.split("url=").nth(1))
        .and_then(|u| u.split("/communication_manager").next())
        .unwrap_or_else(|| panic!("no endpoint line:\n{text}"))
        .to_string();

    // Idle: the log grows only by what the agent does on its own (polls), not by lines
    // about the events its own writes cause.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = std::fs::metadata(&log).unwrap().len();
    let passes = successful_passes(&root).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = std::fs::metadata(&log).unwrap().len();
    let window = log_text(&log)[before as usize..].to_string();
    let grown = after - before;
    println!(
        "trace log in the watched directory: grew {grown} bytes ({} lines) in 3 s idle",
        window.lines().count()
    );
    assert!(
        !window.contains("inotify event"),
        "{}",
        &window[..window.len().min(3000)]
    );
    assert!(
        grown < 256 * 1024,
        "the log feeds itself: {grown} bytes in 3 s"
    );
    assert_eq!(
        successful_passes(&root).await,
        passes,
        "its own log triggered a pass"
    );

    // Other files in the directory trigger nothing.
    for i in 0..20 {
        std::fs::write(d.join("other.conf"), format!("x{i}\n")).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        successful_passes(&root).await,
        passes,
        "an unwatched file triggered a pass"
    );

    // A watched file does.
    let vm = std::fs::read_to_string(env.vm_path()).unwrap();
    std::fs::write(
        env.vm_path(),
        vm.replace("u1001@example.com", "new1001@example.com"),
    )
    .unwrap();
    let passed = eventually(Duration::from_secs(15), || async {
        successful_passes(&root).await > passes
    })
    .await;
    assert!(passed, "voicemail.conf change triggered no pass");
}
