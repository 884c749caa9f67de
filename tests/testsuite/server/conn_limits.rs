//! Connections cannot exhaust the endpoint, against the real binary in
//! `--serve-only` mode over loopback: 1,000 idle sockets, slowloris clients, a body sent one
//! byte a second and an idle keep-alive connection, all at once, while a normal client's GET
//! on a fresh connection is timed. The server's open files and RSS are read from /proc.
//! A peer outside the ACL gets a fixed 403 (`Connection: close`) and is closed before any of
//! its request is read, also when 300 of them come at once.

use base64::Engine;
use std::time::{Duration, Instant};
use support::process::Spawned as Child;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support;
use support::process;

const CAP: usize = 200;
const IDLE: usize = 1000;
const SLOWLORIS: usize = 10;
const PATH: &str = "/communication_manager/api/resource/server/coreServers";

fn auth() -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!(
        "manager:{}",
        isymphony_sync::config::DEFAULT_API_PASSWORD
    ));
    format!("Basic {b}")
}

fn rss_kib(child: &Child) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn open_files(child: &Child) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .count()
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let (child, base) = process::spawn_server(&cfg);
    let addr = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    Server {
        child,
        addr,
        _dir: dir,
    }
}

/// A GET on a fresh connection with the right credentials: its status and how long it took.
async fn timed_get(addr: &str) -> (u16, Duration) {
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let t = Instant::now();
    let r = support::server::get_as_manager(&c, format!("http://{addr}{PATH}")).await;
    let st = r.status().as_u16();
    let _ = r.bytes().await.unwrap();
    (st, t.elapsed())
}

/// Wait until the server closes `s` (EOF or reset); None if it is still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A slowloris client: one byte of an endless header every 300 ms until the server closes
/// the connection. Returns the seconds from the first byte to the close.
async fn slowloris(addr: String) -> f64 {
    let s = TcpStream::connect(&addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let head = format!("GET {PATH} HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    let first = Instant::now();
    let writer = async move {
        for b in head.bytes().chain(std::iter::repeat(b'a')) {
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let reader = async {
        let mut buf = [0u8; 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
    first.elapsed().as_secs_f64()
}

/// An authenticated POST announcing a 1 MB body and sending one byte a second. Returns the
/// server's answer and the seconds until it came.
async fn slow_body(addr: String) -> (String, f64) {
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000000\r\n\r\n",
        auth()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let (mut r, mut w) = s.into_split();
    let writer = async move {
        loop {
            if w.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::future::pending::<()>().await
    };
    let reader = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    tokio::select! {
        _ = writer => unreachable!(),
        text = reader => (text, t.elapsed().as_secs_f64()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_neither_starve_a_normal_client_nor_grow_the_process() {
    // The test itself holds more than 1,000 sockets.
    process::raise_nofile();
    let srv = spawn(&format!(
        "max_connections = {CAP}\nheader_read_timeout = \"2s\"\nidle_timeout = \"3s\"\n\
         body_read_timeout = \"3s\"\n"
    ));
    let addr = srv.addr.clone();
    let (st, _) = timed_get(&addr).await;
    assert_eq!(st, 200);
    let (rss0, fds0) = (rss_kib(&srv.child), open_files(&srv.child));

    // 1,000 sockets that connect and send nothing.
    let mut idle = Vec::new();
    for _ in 0..IDLE / 100 {
        let batch = (0..100).map(|_| TcpStream::connect(&addr));
        for s in futures::future::join_all(batch).await {
            idle.push(s.unwrap());
        }
    }
    // A keep-alive connection that made one request and then says nothing.
    let mut keep = TcpStream::connect(&addr).await.unwrap();
    keep.write_all(
        format!(
            "GET {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
            auth()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = keep.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A socket that connects and never sends a byte; it and the keep-alive one are timed
    // until the server closes them.
    let quiet = TcpStream::connect(&addr).await.unwrap();
    let until_closed = |mut s: TcpStream| {
        tokio::spawn(async move {
            let t = Instant::now();
            closed_within(&mut s, Duration::from_secs(10))
                .await
                .map(|_| t.elapsed().as_secs_f64())
        })
    };
    let quiet = until_closed(quiet);
    let keep = until_closed(keep);
    // Slowloris clients and a slow body, running in the background.
    let lorises: Vec<_> = (0..SLOWLORIS)
        .map(|_| tokio::spawn(slowloris(addr.clone())))
        .collect();
    let body = tokio::spawn(slow_body(addr.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The normal client, under all of that.
    let mut times = Vec::new();
    for _ in 0..10 {
        let (st, t) = timed_get(&addr).await;
        assert_eq!(st, 200);
        times.push(t);
    }
    let (rss1, fds1) = (rss_kib(&srv.child), open_files(&srv.child));
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "normal GET under attack: median {median:?}, max {:?}; server open files {fds0} -> \
         {fds1}; RSS {rss0} KiB -> {rss1} KiB",
        times[times.len() - 1]
    );
    // At least 9 of the 10 under 100 ms (one may meet a scheduling hiccup of this shared
    // machine), none over 1 s.
    assert!(median < Duration::from_millis(100), "{times:?}");
    assert!(times[8] < Duration::from_millis(100), "{times:?}");
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(1)),
        "{times:?}"
    );
    // Open files stay under the cap (plus the store and the runtime's own).
    assert!(
        fds1 <= fds0 + CAP + 5,
        "server holds {fds1} files (cap {CAP})"
    );
    assert!(
        rss1 < rss0 + 32 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );

    // Slowloris: closed by the header timeout (2 s from the first byte) at the latest. One may
    // be closed sooner to make room: idle sockets that overflowed the listen backlog are
    // accepted after their SYN retry, so they can be younger than a slowloris (the cap closes
    // the oldest connection without a request). Either way it holds nothing for longer.
    for l in lorises {
        let secs = l.await.unwrap();
        assert!(secs < 4.0, "slowloris held {secs} s");
    }
    // The slow body: 408 after the body timeout (3 s), then closed.
    let (text, secs) = body.await.unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_read_timeout"), "{text}");
    assert!((2.5..5.0).contains(&secs), "slow body held {secs} s");
    // The idle keep-alive connection: closed by the idle timeout (3 s).
    let kept = keep
        .await
        .unwrap()
        .expect("the idle keep-alive connection stays open");
    // (At the latest; like a slowloris it may be closed sooner to make room.)
    assert!(kept < 4.5, "keep-alive idle held {kept} s");
    // The silent socket: closed by the header timeout (2 s from its start).
    let quiet_for = quiet.await.unwrap().expect("a silent socket stays open");
    assert!(quiet_for < 3.5, "a silent socket held {quiet_for} s");
    eprintln!("closed after: silent socket {quiet_for:.2} s, idle keep-alive {kept:.2} s");
    // Every idle socket is closed: made room for others, or timed out; none got a byte.
    for s in idle.iter_mut() {
        let got = closed_within(s, Duration::from_secs(2))
            .await
            .expect("an idle socket is still open after the idle timeout");
        assert!(got.is_empty());
    }
    let (rss2, fds2) = (rss_kib(&srv.child), open_files(&srv.child));
    eprintln!("after the attack: open files {fds2}, RSS {rss2} KiB");
    assert!(fds2 <= fds0 + 2, "{fds0} -> {fds2}");
    let (st, t) = timed_get(&addr).await;
    assert_eq!(st, 200);
    assert!(t < Duration::from_millis(100), "{t:?}");
}

/// The fixed answer to a peer outside the ACL, as the seed says ("403 – returned when the
/// client does not have access to the REST system due to ACLs").
fn assert_acl_403(got: &[u8]) {
    let text = String::from_utf8_lossy(got);
    assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text:?}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("\r\nconnection: close\r\n"), "{text:?}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert_eq!(body.len(), len, "{text:?}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["status"], 403, "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_the_acl_gets_a_fixed_403_and_is_closed_unread() {
    let srv = spawn("acl = [\"127.0.0.1/32\"]\n");
    let addr: std::net::SocketAddr = srv.addr.parse().unwrap();
    let from = |ip: &str| {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        s
    };
    // Sends nothing: answered and closed at once all the same (nothing is waited for).
    let t = Instant::now();
    let mut s = from("127.0.0.2").connect(addr).await.unwrap();
    let got = closed_within(&mut s, Duration::from_secs(2))
        .await
        .expect("a refused peer's connection stays open");
    assert_acl_403(&got);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // A complete request: the same fixed answer (nothing parsed: a request that is not even
    // HTTP gets it too).
    for req in [
        format!("GET {PATH} HTTP/1.1\r\nHost: x\r\n\r\n"),
        "\u{1}\u{2} garbage that is no HTTP at all\r\n\r\n".to_string(),
    ] {
        let mut s = from("127.0.0.2").connect(addr).await.unwrap();
        let _ = s.write_all(req.as_bytes()).await;
        let got = closed_within(&mut s, Duration::from_secs(2)).await.unwrap();
        assert_acl_403(&got);
    }
    // A flood from outside: every connection gets the answer and is closed; the server keeps
    // nothing open for them.
    let t = Instant::now();
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let s = from(&format!("127.0.1.{}", 1 + i % 200));
            tokio::spawn(async move {
                let mut s = s.connect(addr).await.unwrap();
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
                closed_within(&mut s, Duration::from_secs(5)).await
            })
        })
        .collect();
    let mut answered = 0;
    for f in flood {
        if let Some(got) = f.await.unwrap() {
            if got.starts_with(b"HTTP/1.1 403 Forbidden\r\n") {
                answered += 1;
            }
        }
    }
    eprintln!(
        "flood of 300 refused peers: {answered} got the 403, in {:?}",
        t.elapsed()
    );
    assert!(answered >= 295, "{answered} of 300 got the 403");
    // The allowed address is served as usual.
    let mut s = from("127.0.0.1").connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            auth()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = closed_within(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}
