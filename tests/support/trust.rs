//! The agent as a hostile web page or a hostile local process meets it: the real
//! binary with a FreePBX snapshot as its source and the embedded endpoint as its target (no
//! MariaDB needed), its own port at a fixed address, and raw HTTP over real sockets.

use super::agent::{msg, Agent};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const PW: &str = "tru5t-b-passw0rd";

/// A free loopback port (bound and released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running agent on `127.0.0.1:port` (its own resources) and the Configuration API
/// embedded endpoint on `127.0.0.1:api_port`.
pub struct Trust {
    pub dir: tempfile::TempDir,
    pub cfg: PathBuf,
    pub port: u16,
    pub api_port: u16,
    pub agent: Agent,
}

/// The config text; `server_extra` goes into `[server]`.
pub fn config_text(dir: &Path, port: u16, api_port: u16, server_extra: &str) -> String {
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/freepbx-snapshot.json");
    format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:{api_port}\"\n\
         agent_listen = \"127.0.0.1:{port}\"\npassword = \"{PW}\"\ndata_dir = \"{data}\"\n\
         {server_extra}\n\n[freepbx]\nsnapshot = \"{snap}\"\n\n\
         [sync]\ndebounce = \"100ms\"\nresync_interval = \"600s\"\nstate_dir = \"{state}\"\n",
        data = dir.join("data").display(),
        snap = snapshot.display(),
        state = dir.join("state").display(),
    )
}

/// Replace the config file in one rename (a running agent watches it and reloads).
pub fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

impl Trust {
    pub async fn start(server_extra: &str) -> Trust {
        let dir = tempfile::tempdir().unwrap();
        let (port, api_port) = (free_port(), free_port());
        let cfg = dir.path().join("agent.toml");
        write_config(&cfg, &config_text(dir.path(), port, api_port, server_extra));
        let agent = Agent::spawn(&cfg, &[]);
        agent
            .wait_log(Duration::from_secs(30), |v| msg(v).starts_with("pass: "))
            .await;
        Trust {
            dir,
            cfg,
            port,
            api_port,
            agent,
        }
    }

    pub fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Passes whose triggers include `api` (a `POST …/sync`), so far.
    pub fn api_passes(&self) -> usize {
        self.agent.count(|v| {
            msg(v).starts_with("pass: ") && v["triggers"].as_str().unwrap_or("").contains("api")
        })
    }

    /// RSS of the agent, KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.agent.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

/// `Basic` credentials of the realm.
pub fn basic(user: &str, pw: &str) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    format!("Basic {b}")
}

/// One answer read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Send `method path` to `127.0.0.1:port` with these headers (plus `Connection: close`) and
/// `body`, on a connection of its own; the answer is read until the server closes (status 0:
/// no answer).
pub async fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    // Nobody listening: status 0 (a reload that dropped the port, for example).
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return parse(b"");
    };
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    // A reset after the answer still leaves the answer in `got`.
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the answer within 10 s");
    parse(&got)
}

pub fn parse(got: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(got).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// GET `path` on the agent's port with the realm's credentials and `Host: 127.0.0.1:port`.
pub async fn get(port: u16, path: &str) -> Answer {
    let host = format!("127.0.0.1:{port}");
    let auth = basic("manager", PW);
    send_as(port, "GET", path, (&host, &auth), None).await
}

/// `method` on `path` of the agent's port with the given `Host` and `Authorization`, and a
/// JSON body when given.
pub async fn send_as(
    port: u16,
    method: &str,
    path: &str,
    (host, auth): (&str, &str),
    json: Option<&str>,
) -> Answer {
    let mut headers = vec![("Host", host), ("Authorization", auth)];
    if json.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    send(port, method, path, &headers, json.unwrap_or_default()).await
}
