//! The daemon's tasks have one lifecycle: after SIGTERM every task it started has stopped.
//! The real binary, a real MariaDB, the embedded endpoint as the target, the systemd watchdog
//! on (so that its task runs too), and the status page asked for (so that a plan was computed
//! for it); the last log line counts the runtime's tasks still alive.

use crate::support;
use support::agent::*;
use support::e2e::Env;

use isymphony_sync::secret::Secret;
use serde_json::Value;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

const PW: &str = "Daemon-Lifecycle-Pw-1";
const T: Duration = Duration::from_secs(20);

/// The agent's configuration: the embedded endpoint is its own target.
fn config(env: &Env) -> std::path::PathBuf {
    let d = env.dir.path();
    let text = format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\
         password = \"{PW}\"\n\n[freepbx]\ndatabase_url = \"{}/{}\"\nconfig_file = \"{}\"\n\
         amportal_conf = \"{}\"\nvoicemail_conf = \"{}\"\npoll_interval = \"200ms\"\n\n\
         [sync]\ndebounce = \"100ms\"\nstate_dir = \"{}\"\n",
        d.join("agent-server").display(),
        support::server_url(),
        env.db.name,
        d.join("freepbx.conf").display(),
        d.join("amportal.conf").display(),
        env.vm_path().display(),
        d.join("agent-state").display(),
    );
    let p = d.join("agent.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn stopped_line(agent: &Agent) -> Option<Value> {
    agent
        .lines
        .lock()
        .unwrap()
        .iter()
        .find(|v| msg(v) == "isymphony-sync agent stopped")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_no_task_running() {
    let env = Env::new_with(3, |c| c.server.password = Secret::new(PW)).await;
    let sock_path = env.dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&sock_path).unwrap();
    let cfg = config(&env);
    let mut agent = Agent::spawn(
        &cfg,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let root = agent.endpoint(0).await;
    agent
        .wait_log(T, |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;
    // The page computes a dry-run plan and asks MariaDB who holds the lock.
    let (st, page) = get_text(&root, "/isymphony-sync/", PW).await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("in sync: nothing pending"), "{page}");
    // Leader, the watchdog pinging: every kind of task is running now.
    notify.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut got = String::new();
    assert!(
        eventually(T, || {
            while let Ok(n) = notify.recv(&mut buf) {
                got.push_str(&String::from_utf8_lossy(&buf[..n]));
                got.push('\n');
            }
            let seen = got.contains("WATCHDOG=1");
            async move { seen }
        })
        .await,
        "no watchdog ping: {got}\n{}",
        agent.dump()
    );

    let t0 = std::time::Instant::now();
    agent.signal(libc::SIGTERM);
    let status = agent
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", agent.dump()));
    assert!(status.success(), "{status:?}\n{}", agent.dump());
    eprintln!("SIGTERM to exit: {:?}", t0.elapsed());
    // The log thread may still be reading the last lines.
    assert!(
        eventually(Duration::from_secs(5), || {
            let seen = stopped_line(&agent).is_some();
            async move { seen }
        })
        .await,
        "{}",
        agent.dump()
    );
    let line = stopped_line(&agent).unwrap_or_default();
    assert_eq!(line["tasks_not_stopped"], 0, "{line}\n{}", agent.dump());
    assert_eq!(line["runtime_tasks_alive"], 0, "{line}\n{}", agent.dump());
    // No task was reported as hanging.
    let hanging: Vec<String> = agent
        .messages()
        .into_iter()
        .filter(|m| m.contains("did not stop"))
        .collect();
    assert!(hanging.is_empty(), "{hanging:?}");
    while let Ok(n) = notify.recv(&mut buf) {
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.contains("STOPPING=1"), "{got}");
}
