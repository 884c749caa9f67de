//! Helpers for the agent tests: the real binary as a child process (JSON logs collected),
//! a TCP proxy that can cut, refuse (503) or slow down a connection, and time parsing.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use super::process::BIN;

/// The agent binary running as a child, its stderr parsed as JSON log lines.
pub struct Agent {
    pub child: super::process::Spawned,
    pub lines: Arc<Mutex<Vec<Value>>>,
}

impl Agent {
    pub fn spawn(config: &Path, env: &[(&str, &str)]) -> Agent {
        Agent::spawn_with(config, env, |_| {})
    }

    /// [`Agent::spawn`], letting `adjust` change the command first (limits, for example).
    pub fn spawn_with(
        config: &Path,
        env: &[(&str, &str)],
        adjust: impl FnOnce(&mut Command),
    ) -> Agent {
        let mut cmd = super::process::bin();
        cmd.arg("--config")
            .arg(config)
            .arg("--log-format")
            .arg("json")
            .env("RUST_LOG", "info,isymphony_sync::agent=debug")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        adjust(&mut cmd);
        let mut child = super::process::spawn(&mut cmd);
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                l2.lock().unwrap().push(v);
            }
        });
        Agent { child, lines }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Messages of all log lines so far.
    pub fn messages(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["message"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|v| pred(v))
            .count()
    }

    /// The log lines `pred` picks.
    pub fn select(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|v| pred(v))
            .cloned()
            .collect()
    }

    pub fn dump(&self) -> String {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Wait for the `nth` (0-based) log line matching `pred`.
    pub async fn wait_nth(
        &self,
        nth: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some(v) = lines.iter().filter(|v| pred(v)).nth(nth) {
                    return v.clone();
                }
            }
            if Instant::now() > deadline {
                panic!("log line not seen in {timeout:?}; log:\n{}", self.dump());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_log(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_nth(0, timeout, pred).await
    }

    /// The agent's endpoint root (`http://127.0.0.1:PORT`), from the `nth` start-up line.
    pub async fn endpoint(&self, nth: usize) -> String {
        let v = self
            .wait_nth(nth, Duration::from_secs(20), |v| {
                msg(v).starts_with("agent resources at")
            })
            .await;
        let url = v["url"].as_str().unwrap().to_string();
        // `…/communication_manager/api/resource/` (shared with the embedded endpoint) or
        // `…/isymphony-sync/api/` (a listener of their own).
        url.split("/communication_manager")
            .next()
            .unwrap()
            .split("/isymphony-sync")
            .next()
            .unwrap()
            .to_string()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn msg(v: &Value) -> &str {
    v["message"].as_str().unwrap_or("")
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as tracing writes it.
pub fn ts(s: &str) -> f64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (y, m, day) = (d[0], d[1], d[2]);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Poll `f` every 100 ms until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward.
    Up,
    /// Close every connection at once (server down / network cut).
    Down,
    /// Answer every HTTP request with 503.
    Error503,
    /// Forward after a delay of 2 s per connection.
    Slow,
}

/// A TCP proxy in front of `upstream`; changing the mode cuts open connections.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = watch::channel(Mode::Up);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let mode = *rx.borrow_and_update();
                    match mode {
                        Mode::Down => drop(s),
                        Mode::Error503 => {
                            let mut buf = vec![0u8; 65536];
                            let mut got = Vec::new();
                            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                                match s.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => got.extend_from_slice(&buf[..n]),
                                }
                            }
                            let body = "{\"message\":\"unavailable\"}";
                            let resp = format!(
                                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = s.write_all(resp.as_bytes()).await;
                        }
                        Mode::Up | Mode::Slow => {
                            if mode == Mode::Slow {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                            let Ok(mut u) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut s, &mut u) => {}
                                _ = rx.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        Proxy { addr, mode: tx }
    }

    pub fn set(&self, m: Mode) {
        self.mode.send_replace(m);
    }
}

/// GET `path` on an agent's endpoint (`root` from [`Agent::endpoint`]) with the realm login:
/// the status and the body.
pub async fn get_text(root: &str, path: &str, pw: &str) -> (u16, String) {
    let r = get_logged_in(root, path, pw).await;
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// GET `path` below the agent's `root`, logged in as `manager` with `pw`; panics when no
/// answer comes.
pub async fn get_logged_in(root: &str, path: &str, pw: &str) -> reqwest::Response {
    let r = http()
        .get(format!("{root}{path}"))
        .basic_auth("manager", Some(pw));
    r.send().await.expect("the agent answers")
}

/// Ask for a pass now (`POST …/sync`), as "Sync now" does; the agent answers 204.
pub async fn sync_now(root: &str, pw: &str) {
    let st = http()
        .post(format!("{root}/isymphony-sync/api/sync"))
        .basic_auth("manager", Some(pw))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 204, "POST …/sync");
}

/// An HTTP client with the default realm credentials.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
